//! Benchmark P5 (SPEC §13): OFREP bulk evaluation of 50 flags against a running `greenlight`
//! binary, and in the same run the same requests against a bare axum handler (`bare_axum`,
//! built beside this program) answering a body of the same size. Prints requests/s, latency
//! percentiles and Greenlight's share of the bare handler's rate (the target is ≥ 60%).
//!
//! Usage: `bench_flags PATH_TO_GREENLIGHT [SECONDS] [CONCURRENCY]` (defaults 5 s, 16
//! keep-alive connections). The flags are set as operators set them, with signed `/flag`
//! Slack commands, so the same program measures older releases too. Scenarios:
//! - `50 on/off flags`: production's flags, every one on or off (the common case: answers
//!   prepared once per version);
//! - `45 on/off + 5 rollouts`: staging's, where five flags are evaluated per targeting key.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenlight_tests::inbound::slack::command_body;
use greenlight_tests::signing::slack_signature;

const SLACK_SECRET: &str = "bench-slack-secret";
const PRODUCTION_TOKEN: &str = "bench-production-flags";
const STAGING_TOKEN: &str = "bench-staging-flags";
const CHANNEL: &str = "C0DEPLOYS";
const BULK: &str = "/ofrep/v1/evaluate/flags";
const FLAGS: usize = 50;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args
        .next()
        .expect("usage: bench_flags PATH_TO_GREENLIGHT [SECONDS] [CONCURRENCY]");
    let binary = std::fs::canonicalize(binary).expect("the greenlight binary exists");
    let seconds: u64 = args.next().map_or(5, |s| s.parse().expect("SECONDS"));
    let concurrency: usize = args.next().map_or(16, |s| s.parse().expect("CONCURRENCY"));
    let bare_binary = std::env::current_exe()
        .expect("this program's path")
        .with_file_name("bare_axum");

    let slack_api = fake_slack().await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("greenlight.toml"), config(&slack_api)).expect("config");
    let port = free_port();
    let greenlight = Command::new(&binary)
        .arg("serve")
        .current_dir(dir.path())
        .env("GREENLIGHT_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start greenlight");
    let greenlight = Running(greenlight);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&client, &base).await;
    set_flags(&client, &base).await;

    let sample = bulk(&client, &base, PRODUCTION_TOKEN, 0).await;
    let answer = dir.path().join("answer.json");
    std::fs::write(&answer, &sample).expect("answer file");
    println!(
        "P5: OFREP bulk evaluation of {FLAGS} flags ({} bytes), {concurrency} connections, {seconds} s each",
        sample.len()
    );

    let on_off = measure(&client, &base, PRODUCTION_TOKEN, seconds, concurrency).await;
    report("greenlight, 50 on/off flags", &on_off);
    let rollouts = measure(&client, &base, STAGING_TOKEN, seconds, concurrency).await;
    report("greenlight, 45 on/off + 5 rollouts", &rollouts);
    drop(greenlight);

    let bare_port = free_port();
    let bare = Command::new(&bare_binary)
        .arg(&answer)
        .arg(bare_port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bare_binary.display()));
    let bare = Running(bare);
    let bare_base = format!("http://127.0.0.1:{bare_port}");
    wait_answering(&client, &bare_base).await;
    let bare_outcome = measure(&client, &bare_base, PRODUCTION_TOKEN, seconds, concurrency).await;
    report("bare axum, same body", &bare_outcome);
    drop(bare);

    let bare_rate = bare_outcome.rate();
    println!(
        "ratio: 50 on/off flags {:.0}% of bare axum, 45 on/off + 5 rollouts {:.0}% (target ≥ 60%)",
        100.0 * on_off.rate() / bare_rate,
        100.0 * rollouts.rate() / bare_rate,
    );
}

/// Kills the child process when dropped (SIGTERM, as an operator stops it).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn config(slack_api: &str) -> String {
    format!(
        r#"
[slack]
bot_token = "xoxb-bench"
signing_secret = "{SLACK_SECRET}"
api_url = "{slack_api}"

[people]
alice = {{ slack = "U0ALICE01" }}

[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "bench-ci"
channels = {{ slack = "{CHANNEL}" }}
operators = ["alice"]

[apps.shop.environments.staging]
flags_token = "{STAGING_TOKEN}"

[apps.shop.environments.production]
flags_token = "{PRODUCTION_TOKEN}"
"#
    )
}

/// Production: 50 flags, a third off. Staging: the same, but every tenth is rolled out part way.
async fn set_flags(client: &reqwest::Client, base: &str) {
    for i in 0..FLAGS {
        let switch = if i % 3 == 0 { "off" } else { "on" };
        flag_command(client, base, &format!("production flag_{i:02} {switch}")).await;
        let staging = if i % 10 == 0 {
            format!("staging flag_{i:02} rollout {}", 10 + i)
        } else {
            format!("staging flag_{i:02} {switch}")
        };
        flag_command(client, base, &staging).await;
    }
}

async fn flag_command(client: &reqwest::Client, base: &str, text: &str) {
    let body = command_body("U0ALICE01", CHANNEL, "/flag", text);
    let timestamp = chrono::Utc::now().timestamp();
    let reply: serde_json::Value = client
        .post(format!("{base}/slack/commands"))
        .header("x-slack-request-timestamp", timestamp.to_string())
        .header(
            "x-slack-signature",
            slack_signature(SLACK_SECRET, timestamp, &body),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("/flag")
        .json()
        .await
        .expect("JSON reply");
    let said = reply["text"].as_str().unwrap_or_default();
    assert!(said.contains("is now"), "/flag {text}: {reply}");
}

fn context(n: u64) -> String {
    format!(r#"{{"context":{{"targetingKey":"user-{n}"}}}}"#)
}

async fn bulk(client: &reqwest::Client, base: &str, token: &str, n: u64) -> Vec<u8> {
    let response = client
        .post(format!("{base}{BULK}"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(context(n))
        .send()
        .await
        .expect("bulk evaluation");
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.expect("body").to_vec();
    let answer: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(answer["flags"].as_array().map(Vec::len), Some(FLAGS));
    body
}

/// A second of warm-up, then `seconds` measured, each request with its own targeting key.
async fn measure(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    seconds: u64,
    concurrency: usize,
) -> Outcome {
    let counter = Arc::new(AtomicU64::new(0));
    let request = {
        let (client, url, token) = (client.clone(), format!("{base}{BULK}"), token.to_owned());
        move || {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let sent = client
                .post(&url)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(context(n))
                .send();
            async move {
                let response = sent.await?;
                let status = response.status().as_u16();
                response.bytes().await?;
                Ok(status)
            }
        }
    };
    run(request.clone(), 1, concurrency).await;
    run(request, seconds, concurrency).await
}

async fn fake_slack() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake Slack");
    let address = listener.local_addr().expect("address");
    let app = axum::Router::new().fallback(|| async {
        axum::Json(serde_json::json!({"ok": true, "channel": CHANNEL, "ts": "1.000100"}))
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{address}/api")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    wait_until(|| async {
        client
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
    })
    .await;
}

async fn wait_answering(client: &reqwest::Client, base: &str) {
    wait_until(|| async { client.post(format!("{base}{BULK}")).send().await.is_ok() }).await;
}

async fn wait_until<F, Fut>(ready: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !ready().await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not answering after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct Outcome {
    latencies: Vec<Duration>,
    errors: u64,
    elapsed: Duration,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
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
                    Ok(200) => latencies.push(sent.elapsed()),
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
    outcome.latencies.sort();
    outcome
}

fn report(name: &str, outcome: &Outcome) {
    let n = outcome.latencies.len();
    let pct = |p: f64| {
        outcome
            .latencies
            .get(((n as f64 * p) as usize).min(n.saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{name}: {:.0} requests/s ({n} ok, {} errors in {:.1} s), latency p50 {:.2} ms, p99 {:.2} ms",
        outcome.rate(),
        outcome.errors,
        outcome.elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
    );
}
