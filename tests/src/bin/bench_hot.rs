//! Benchmark of SPEC §13's hot paths against the release binary:
//! `bench_hot PATH_TO_GREENLIGHT p1|p2|p6|all [SECONDS] [CONCURRENCY] [--baseline]`.
//!
//! - `p1` hot card: one waiting request whose reviewer group has 20,000 people, Approve clicks
//!   each from a distinct reviewer, while Slack answers every call `429 Retry-After: 60`;
//! - `p6` many requests: 1,000 apps each with a waiting request, clicks round-robin over them;
//! - `p2` webhooks: signed ~25 KB `workflow_run` deliveries with unique delivery ids.
//!
//! Requests are built and signed before the timed window; the load generator runs on one
//! thread, leaving the other core(s) to the server. With `--baseline` the same requests are
//! also sent to what a user would write instead (`tests/baseline/`: a Bolt-for-JS app, an
//! `@octokit/webhooks` app, both committing one SQLite row per request) and the ratio printed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use greenlight_tests::bench::load::{self, Outcome, Prepared};
use greenlight_tests::bench::server::Server;
use greenlight_tests::bench::slack::{BenchSlack, RETRY_AFTER_SECS};
use greenlight_tests::bench::{self, SLACK_SECRET};
use greenlight_tests::signing::github_signature;

/// People in the reviewer group of P1 and P6.
const REVIEWERS: usize = 20_000;
/// Apps of P6.
const MANY_APPS: usize = 1_000;
const GITHUB_SECRET: &str = "bench-github-secret";
/// The repository of the `workflow_run` fixture, configured so its runs are stored.
const REPOSITORY: &str = "octo-org/octo-repo";
/// The size of a P2 delivery.
const DELIVERY_BYTES: usize = 25 * 1024;

struct Options {
    binary: PathBuf,
    scenario: String,
    seconds: f64,
    concurrency: usize,
    baseline: bool,
}

fn options() -> Options {
    let usage =
        "usage: bench_hot PATH_TO_GREENLIGHT p1|p2|p6|all [SECONDS] [CONCURRENCY] [--baseline]";
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let baseline = args.iter().any(|arg| arg == "--baseline");
    args.retain(|arg| arg != "--baseline");
    let mut args = args.into_iter();
    let binary = args.next().expect(usage);
    let binary = std::fs::canonicalize(&binary)
        .unwrap_or_else(|error| panic!("the greenlight binary {binary}: {error}"));
    let scenario = args.next().expect(usage);
    assert!(
        ["p1", "p2", "p6", "all"].contains(&scenario.as_str()),
        "{usage}"
    );
    Options {
        binary,
        scenario,
        seconds: args.next().map_or(5.0, |s| s.parse().expect("SECONDS")),
        concurrency: args.next().map_or(16, |s| s.parse().expect("CONCURRENCY")),
        baseline,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let options = options();
    let all = options.scenario == "all";
    if all || options.scenario == "p1" {
        clicks(&options, "P1 hot card", 1).await;
    }
    if all || options.scenario == "p6" {
        clicks(&options, "P6 many requests", MANY_APPS).await;
    }
    if all || options.scenario == "p2" {
        webhooks(&options).await;
    }
}

/// P1 and P6: Approve clicks from distinct reviewers spread round-robin over `apps` waiting
/// requests, while Slack is rate limiting.
async fn clicks(options: &Options, name: &str, apps: usize) {
    println!("== {name}: {apps} waiting request(s), {REVIEWERS} reviewers, Slack answering 429 Retry-After: {RETRY_AFTER_SECS}");
    let slack = BenchSlack::start().await;
    let config = bench::clicks_config(&slack.api_url, apps, REVIEWERS);
    let server = Server::greenlight(&options.binary, &config).await;
    let requests = bench::open_requests(&server.base, apps).await;
    // The cards are posted while Slack still answers, so there is a card to edit; then Slack
    // throttles every call.
    slack
        .wait_answered("chat.postMessage", apps as u64, 60)
        .await;
    slack.rate_limit();

    // Click `k` goes to request `k % apps`; each request's clicks come from distinct
    // reviewers (fewer than the group, so no request completes).
    let per_request = REVIEWERS - 1;
    let budget = (apps * per_request).min(click_budget(options.seconds));
    let bodies: Vec<Bytes> = (0..budget)
        .map(|k| {
            let (request, nth) = (k % apps, k / apps);
            bench::click_body(requests[request], (nth + request * 20) % REVIEWERS)
        })
        .collect();
    let prepared = Arc::new(bench::sign_clicks(&bodies));
    let before = server.rss_mib();
    let outcome = load::run(
        server.address,
        prepared,
        options.seconds,
        options.concurrency,
    )
    .await;
    let limited = slack.limited_calls();
    println!("greenlight: {}", outcome.summary());
    let updates = limited.get("chat.update").copied().unwrap_or(0);
    let windows = (outcome.elapsed.as_secs_f64() / RETRY_AFTER_SECS as f64).ceil();
    println!(
        "chat.update calls while rate-limited: {updates} ({:.2} per card per {RETRY_AFTER_SECS} s window); all calls while rate-limited: {limited:?}",
        updates as f64 / (apps as f64 * windows)
    );
    let counted = bench::counted_approvals(&server.base, apps).await;
    println!(
        "approvals counted by the server: {counted} (of {} clicks answered 2xx); memory {:.0} → {:.0} MiB",
        outcome.ok(),
        before.unwrap_or(0.0),
        server.rss_mib().unwrap_or(0.0)
    );
    drop(server);
    if options.baseline {
        let bolt = Server::node(
            &baseline_dir().join("bolt.js"),
            &[("SLACK_SIGNING_SECRET", SLACK_SECRET.to_owned())],
        )
        .await;
        let prepared = Arc::new(bench::sign_clicks(&bodies));
        let baseline =
            load::run(bolt.address, prepared, options.seconds, options.concurrency).await;
        println!(
            "baseline (Bolt for JS + better-sqlite3): {}",
            baseline.summary()
        );
        println!(
            "rows committed by the baseline: {}",
            baseline_rows(&bolt.base).await
        );
        ratio(name, &outcome, &baseline);
    }
}

/// Clicks prepared for a run: more than the fastest server can take in `seconds`, bounded so
/// the prepared bodies stay small.
fn click_budget(seconds: f64) -> usize {
    ((seconds * 12_000.0) as usize).clamp(1_000, 200_000)
}

/// P2: signed ~25 KB `workflow_run` deliveries, each with its own `X-GitHub-Delivery`.
async fn webhooks(options: &Options) {
    println!("== P2 webhooks: signed {DELIVERY_BYTES}-byte workflow_run deliveries, unique ids");
    let body = delivery_body();
    let signature = github_signature(GITHUB_SECRET, &body);
    let config = format!(
        r#"
[github]
webhook_secret = "{GITHUB_SECRET}"

[apps.shop]
repository = "{REPOSITORY}"
image = "ghcr.io/acme/shop"
ci_token = "bench-ci"

[apps.shop.environments.production]
"#
    );
    let server = Server::greenlight(&options.binary, &config).await;
    check_stored(&server.base, &body, &signature).await;
    let deliveries = |run: &str| -> Arc<Vec<Prepared>> {
        Arc::new(
            (0..click_budget(options.seconds))
                .map(|n| {
                    Prepared::post(
                        "/webhooks/github",
                        vec![
                            ("content-type", "application/json".to_owned()),
                            ("x-github-event", "workflow_run".to_owned()),
                            ("x-github-delivery", format!("{run}-{n:08}")),
                            ("x-hub-signature-256", signature.clone()),
                        ],
                        body.clone(),
                    )
                })
                .collect(),
        )
    };
    let outcome = load::run(
        server.address,
        deliveries("greenlight"),
        options.seconds,
        options.concurrency,
    )
    .await;
    println!("greenlight: {}", outcome.summary());
    drop(server);
    if options.baseline {
        let octokit = Server::node(
            &baseline_dir().join("octokit.mjs"),
            &[("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET.to_owned())],
        )
        .await;
        let baseline = load::run(
            octokit.address,
            deliveries("baseline"),
            options.seconds,
            options.concurrency,
        )
        .await;
        println!(
            "baseline (@octokit/webhooks + better-sqlite3): {}",
            baseline.summary()
        );
        println!(
            "rows committed by the baseline: {}",
            baseline_rows(&octokit.base).await
        );
        ratio("P2 webhooks", &outcome, &baseline);
    }
}

/// The `workflow_run` fixture of a completed, successful run in [`REPOSITORY`], its head
/// commit's message padded so the delivery is [`DELIVERY_BYTES`] long (GitHub sends messages
/// of any length there).
fn delivery_body() -> Bytes {
    let mut event = greenlight_tests::fixtures::read_json("github/workflow_run/1-completed.json");
    assert_eq!(event["repository"]["full_name"], REPOSITORY);
    let short = serde_json::to_vec(&event).expect("JSON").len();
    let message = event["workflow_run"]["head_commit"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let filler = "Lorem ipsum dolor sit amet. ".repeat(DELIVERY_BYTES / 28 + 1);
    let padding = &filler[..DELIVERY_BYTES.saturating_sub(short + 2)];
    event["workflow_run"]["head_commit"]["message"] =
        serde_json::json!(format!("{message}\n\n{padding}"));
    Bytes::from(serde_json::to_vec(&event).expect("JSON"))
}

/// One delivery before the timed window: Greenlight stores it (the repository is configured),
/// and the same delivery again is recognised as a duplicate.
async fn check_stored(base: &str, body: &Bytes, signature: &str) {
    let client = reqwest::Client::new();
    for expected in ["recorded", "duplicate"] {
        let answer: serde_json::Value = client
            .post(format!("{base}/webhooks/github"))
            .header("content-type", "application/json")
            .header("x-github-event", "workflow_run")
            .header("x-github-delivery", "bench-check")
            .header("x-hub-signature-256", signature)
            .body(body.clone())
            .send()
            .await
            .expect("a delivery")
            .json()
            .await
            .expect("JSON");
        assert!(
            answer.get(expected).is_some(),
            "the check delivery is {expected}: {answer}"
        );
    }
    println!("(a check delivery was recorded, and its redelivery seen as a duplicate)");
}

fn baseline_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("baseline")
}

/// The rows a baseline committed (its `GET /count`).
async fn baseline_rows(base: &str) -> String {
    match reqwest::get(format!("{base}/count")).await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(error) => format!("unknown ({error})"),
    }
}

fn ratio(name: &str, greenlight: &Outcome, baseline: &Outcome) {
    println!(
        "{name}: greenlight {:.0} req/s, baseline {:.0} req/s, ratio {:.2}×; p99 {:.2} ms vs {:.2} ms",
        greenlight.rate(),
        baseline.rate(),
        greenlight.rate() / baseline.rate().max(f64::MIN_POSITIVE),
        greenlight.percentile_ms(0.99),
        baseline.percentile_ms(0.99),
    );
}
