//! Benchmark: signed inbound requests per second and their latency against a running
//! `greenlight` binary. Usage: `bench_http PATH_TO_GREENLIGHT [SECONDS] [CONCURRENCY]`.
//!
//! Starts `greenlight serve` with a config that has GitHub and Slack signing secrets, then for
//! each scenario sends requests from CONCURRENCY keep-alive connections for SECONDS and prints
//! throughput and latency percentiles:
//! - `github ping`: a signed `ping` webhook with a new delivery id each time (signature check,
//!   parse, and a committed de-duplication write);
//! - `slack click`: a signed `block_actions` Approve click by a stranger on a waiting request
//!   (signature check, parse, policy refusal recorded in one write, an ephemeral reply queued).

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenlight_tests::ci::{self, Fields};
use greenlight_tests::inbound::slack::interaction_body;
use greenlight_tests::signing::{github_signature, slack_signature};

const GITHUB_SECRET: &str = "bench-github-secret";
const SLACK_SECRET: &str = "bench-slack-secret";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args
        .next()
        .expect("usage: bench_http PATH_TO_GREENLIGHT [SECONDS] [CONCURRENCY]");
    let binary = std::fs::canonicalize(binary).expect("the greenlight binary exists");
    let seconds: u64 = args.next().map_or(5, |s| s.parse().expect("SECONDS"));
    let concurrency: usize = args.next().map_or(16, |s| s.parse().expect("CONCURRENCY"));

    // A Slack that answers every Web API call at once, so queued ephemeral replies are
    // delivered rather than retried (which would add writes a real deployment does not have).
    let slack_api = fake_slack().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    std::fs::write(
        dir.path().join("greenlight.toml"),
        format!(
            r#"
[slack]
bot_token = "xoxb-bench"
signing_secret = "{SLACK_SECRET}"
api_url = "{slack_api}"

[github]
webhook_secret = "{GITHUB_SECRET}"

[people]
alice = {{ slack = "U0ALICE01", github = "alice" }}

[apps.shop]
repository = "acme/shop"
image = "ghcr.io/acme/shop"
ci_token = "bench-ci"
channels = {{ slack = "C0DEPLOYS" }}

[apps.shop.environments.staging]

[apps.shop.environments.production]
after = "staging"
reviewers = ["alice"]
"#
        ),
    )
    .expect("config");
    let mut child = Command::new(&binary)
        .arg("serve")
        .current_dir(dir.path())
        .env("GREENLIGHT_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start greenlight");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    wait_healthy(&client, &base).await;
    let request_id = open_request(&client, &base).await;

    let ping = std::fs::read(greenlight_tests::fixtures::dir().join("github/ping/0-event.json"))
        .expect("ping fixture");
    let counter = Arc::new(AtomicU64::new(0));
    let github = {
        let (client, base, ping, counter) =
            (client.clone(), base.clone(), ping.clone(), counter.clone());
        move || {
            let (client, base, ping, counter) =
                (client.clone(), base.clone(), ping.clone(), counter.clone());
            async move {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                client
                    .post(format!("{base}/webhooks/github"))
                    .header("x-github-event", "ping")
                    .header("x-github-delivery", format!("bench-{n}"))
                    .header(
                        "x-hub-signature-256",
                        github_signature(GITHUB_SECRET, &ping),
                    )
                    .header("content-type", "application/json")
                    .body(ping)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }
        }
    };
    report("github ping", run(github, seconds, concurrency).await);

    // Each click has its own `action_ts`, as Slack gives it: a repeated one is a replay, which
    // Greenlight applies at most once and would make the benchmark measure nothing.
    let clicks = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let slack = {
        let (client, base) = (client.clone(), base.clone());
        move || {
            let (client, base) = (client.clone(), base.clone());
            let n = clicks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let body = interaction_body(
                &serde_json::json!({"type": "block_actions", "user": {"id": "U0STRANGER"},
                    "channel": {"id": "C0DEPLOYS"}, "trigger_id": "1.2.3",
                    "actions": [{"action_id": "approve", "value": request_id.to_string(),
                        "action_ts": format!("1700000000.{n:06}")}]}),
            );
            async move {
                let timestamp = chrono::Utc::now().timestamp();
                client
                    .post(format!("{base}/slack/interactions"))
                    .header("x-slack-request-timestamp", timestamp.to_string())
                    .header(
                        "x-slack-signature",
                        slack_signature(SLACK_SECRET, timestamp, &body),
                    )
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }
        }
    };
    report("slack click", run(slack, seconds, concurrency).await);

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

async fn fake_slack() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake Slack");
    let address = listener.local_addr().expect("address");
    let app = axum::Router::new().fallback(|| async {
        axum::Json(serde_json::json!({"ok": true, "channel": "C0DEPLOYS", "ts": "1.000100"}))
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{address}/api")
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let started = Instant::now();
    loop {
        if let Ok(response) = client.get(format!("{base}/health")).send().await {
            if response.status().is_success() {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not healthy after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A release healthy in staging, so production has a waiting request to click on.
async fn open_request(client: &reqwest::Client, base: &str) -> i64 {
    for event in [
        ci::build(SHA).with(serde_json::json!({"author": "alice"})),
        ci::deployed("staging", SHA, "success"),
    ] {
        let reply: serde_json::Value = client
            .post(format!("{base}/api/v1/events"))
            .bearer_auth("bench-ci")
            .json(&event)
            .send()
            .await
            .expect("event")
            .json()
            .await
            .expect("JSON");
        if let Some(id) = reply["approval_requests"][0]["id"].as_i64() {
            return id;
        }
    }
    panic!("no approval request opened");
}

struct Outcome {
    latencies: Vec<Duration>,
    errors: u64,
    elapsed: Duration,
}

async fn run<F, Fut>(make: F, seconds: u64, concurrency: usize) -> Outcome
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<u16, reqwest::Error>> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let make = make.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let sent = Instant::now();
                match make().await {
                    Ok(status) if status < 300 => latencies.push(sent.elapsed()),
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        })
    });
    let mut outcome = Outcome {
        latencies: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for worker in futures::future::join_all(workers).await {
        let (latencies, errors) = worker.expect("worker");
        outcome.latencies.extend(latencies);
        outcome.errors += errors;
    }
    outcome.elapsed = started.elapsed();
    outcome
}

fn report(name: &str, mut outcome: Outcome) {
    outcome.latencies.sort();
    let n = outcome.latencies.len();
    let pct = |p: f64| {
        outcome
            .latencies
            .get(((n as f64 * p) as usize).min(n.saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{name}: {:.0} requests/s ({n} ok, {} errors in {:.1} s), latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        n as f64 / outcome.elapsed.as_secs_f64(),
        outcome.errors,
        outcome.elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        pct(1.0),
    );
}
