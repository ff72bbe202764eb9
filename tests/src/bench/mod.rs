//! Shared parts of the benchmark programs (`src/bin/bench_*`): the load generator (`load`),
//! the process under measurement (`server`), a counting, rate-limiting Slack (`slack`), and
//! the setups of the click scenarios (SPEC §13 P1, P6): a config with a big reviewer group,
//! waiting requests opened through CI events, and signed Approve clicks.

pub mod load;
pub mod server;
pub mod slack;

use std::fmt::Write as _;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::inbound::slack::{click, interaction_body};
use crate::signing::slack_signature;
use load::Prepared;

pub const SLACK_SECRET: &str = "bench-slack-secret";
pub const CHANNEL: &str = "C0DEPLOYS";
/// The read API's bearer token (the read API is off without one).
pub const API_TOKEN: &str = "bench-api-token";
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// The name of app number `index`.
pub fn app_name(index: usize) -> String {
    format!("app{index:04}")
}

/// The Slack user id of reviewer number `index`.
pub fn reviewer_slack_id(index: usize) -> String {
    format!("UR{index:07}")
}

/// `apps` apps whose production is gated by one group of `reviewers` people, all of whom must
/// approve, so the benchmark's clicks (fewer than that) never complete a request.
pub fn clicks_config(slack_api: &str, apps: usize, reviewers: usize) -> String {
    let mut config = format!(
        "[server]\napi_token = \"{API_TOKEN}\"\n\n[slack]\nbot_token = \"xoxb-bench\"\nsigning_secret = \"{SLACK_SECRET}\"\napi_url = \"{slack_api}\"\n\n[people]\nauthor = {{ slack = \"UAUTHOR01\", github = \"author\" }}\n"
    );
    for index in 0..reviewers {
        let _ = writeln!(
            config,
            "r{index:07} = {{ slack = \"{}\" }}",
            reviewer_slack_id(index)
        );
    }
    config.push_str("\n[groups]\nreviewers = [");
    for index in 0..reviewers {
        let _ = write!(config, "\"r{index:07}\",");
    }
    config.push_str("]\n");
    for index in 0..apps {
        let app = app_name(index);
        // Each app in its own channel, as teams do: Slack (and Greenlight's pacing) allows
        // about one post per second per channel, so 1,000 cards in one channel take minutes.
        let channel = if apps == 1 {
            CHANNEL.to_owned()
        } else {
            format!("C0APP{index:05}")
        };
        let _ = write!(
            config,
            r#"
[apps.{app}]
image = "ghcr.io/acme/{app}"
ci_token = "bench-ci-{app}"
channels = {{ slack = "{channel}" }}

[apps.{app}.environments.staging]

[apps.{app}.environments.production]
after = "staging"
reviewers = ["group:reviewers"]
required_approvals = {reviewers}
"#
        );
    }
    config
}

/// Opens a waiting production request for each of `apps` apps (a build, healthy in staging),
/// 16 at a time; returns the request ids in app order.
pub async fn open_requests(base: &str, apps: usize) -> Vec<i64> {
    let client = reqwest::Client::new();
    let opened = futures::stream::iter(0..apps)
        .map(|index| open_request(&client, base, index))
        .buffered(16)
        .collect::<Vec<_>>()
        .await;
    opened
}

async fn open_request(client: &reqwest::Client, base: &str, index: usize) -> i64 {
    let app = app_name(index);
    let events = [
        json!({"event": "build", "app": app, "sha": SHA,
            "image": format!("ghcr.io/acme/{app}:{SHA}"), "author": "author"}),
        json!({"event": "deployed", "app": app, "environment": "staging", "sha": SHA,
            "status": "success"}),
    ];
    for event in events {
        let response = client
            .post(format!("{base}/api/v1/events"))
            .bearer_auth(format!("bench-ci-{app}"))
            .json(&event)
            .send()
            .await
            .expect("POST /api/v1/events");
        let status = response.status();
        let answer: Value = response.json().await.expect("a JSON answer");
        assert_eq!(status, 202, "{event} → {answer}");
        if let Some(id) = answer["approval_requests"][0]["id"].as_i64() {
            return id;
        }
    }
    panic!("no approval request opened for {app}");
}

/// One Approve click on request `request` by reviewer `reviewer`: Slack's documented
/// `block_actions` payload, form-encoded (not yet signed: see [`sign_clicks`]).
pub fn click_body(request: i64, reviewer: usize) -> Bytes {
    let payload = click(
        &reviewer_slack_id(reviewer),
        CHANNEL,
        "approve",
        &request.to_string(),
        "https://hooks.slack.com/actions/T0CAG/1509734234/bench",
    );
    Bytes::from(interaction_body(&payload))
}

/// The clicks as Slack sends them, signed now (Slack's signatures are valid for 5 minutes).
pub fn sign_clicks(bodies: &[Bytes]) -> Vec<Prepared> {
    let timestamp = chrono::Utc::now().timestamp();
    bodies
        .iter()
        .map(|body| {
            Prepared::post(
                "/slack/interactions",
                vec![
                    (
                        "content-type",
                        "application/x-www-form-urlencoded".to_owned(),
                    ),
                    ("x-slack-request-timestamp", timestamp.to_string()),
                    (
                        "x-slack-signature",
                        slack_signature(SLACK_SECRET, timestamp, body),
                    ),
                ],
                body.clone(),
            )
        })
        .collect()
}

/// The approvals counted on the waiting production request of each of `apps` apps, read back
/// through the read API (`GET /api/v1/apps/{app}/environments/production`).
pub async fn counted_approvals(base: &str, apps: usize) -> u64 {
    let client = reqwest::Client::new();
    let counts = futures::stream::iter(0..apps)
        .map(|index| {
            let client = client.clone();
            async move {
                let url = format!(
                    "{base}/api/v1/apps/{}/environments/production",
                    app_name(index)
                );
                let status: Value = client
                    .get(&url)
                    .bearer_auth(API_TOKEN)
                    .send()
                    .await
                    .expect("GET the environment")
                    .json()
                    .await
                    .expect("JSON");
                status["pending_approval"]["approvals"]
                    .as_array()
                    .map(|approvals| approvals.len() as u64)
                    .unwrap_or_else(|| panic!("a waiting request at {url}: {status}"))
            }
        })
        .buffered(16)
        .collect::<Vec<_>>()
        .await;
    counts.into_iter().sum()
}
