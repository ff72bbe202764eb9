//! GitHub's webhook deliveries: JSON signed with the webhook secret (`X-Hub-Signature-256`),
//! each with its event name and a delivery id.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use crate::fakes::github::INSTALLATION_ID;
use crate::signing::github_signature;
use crate::{fixtures, TestApp};

/// A fresh `X-GitHub-Delivery`, shaped like GitHub's GUIDs.
pub fn delivery_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "72d3162e-cc78-11e3-81ab-{:012x}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// POSTs `body` to `/webhooks/github` with GitHub's `User-Agent`, `Content-Type:
/// application/json` unless `headers` name another, and exactly the other `headers` given.
pub async fn post(app: &TestApp, headers: &[(&str, &str)], body: Vec<u8>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/webhooks/github"))
        .header("User-Agent", "GitHub-Hookshot/044aadd");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        request = request.header("Content-Type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .body(body)
        .send()
        .await
        .expect("POST /webhooks/github")
}

/// Delivers `body` as GitHub does: event `event`, delivery `delivery`, signed with `secret`.
pub async fn deliver(
    app: &TestApp,
    secret: &str,
    event: &str,
    delivery: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    let signature = github_signature(secret, &body);
    post(
        app,
        &[
            ("X-GitHub-Event", event),
            ("X-GitHub-Delivery", delivery),
            ("X-Hub-Signature-256", &signature),
        ],
        body,
    )
    .await
}

/// A `deployment_protection_rule` `requested` delivery, built from its schema around the
/// `deployment` of GitHub's `deployment` example (no public example exists).
pub fn protection_rule(environment: &str, callback_url: &str) -> Value {
    let example = fixtures::read_json("github/deployment/0-created.json");
    json!({
        "action": "requested",
        "environment": environment,
        "event": "push",
        "deployment_callback_url": callback_url,
        "deployment": example["deployment"],
        "pull_requests": [],
        "repository": example["repository"],
        "sender": example["sender"],
        "installation": {"id": INSTALLATION_ID, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMjMxMTIxMw=="},
    })
}
