//! Slack over Socket Mode (SPEC §12), beyond the approval and command tests that run over both
//! transports: no public route is open, a slow database still gets every envelope acknowledged
//! in time, and a `disconnect` or a dropped socket in the middle of a flow loses no click and
//! applies none twice. Slack's side is `FakeSocketMode`, which retries unacknowledged envelopes
//! on another connection as Slack does.

use std::time::Duration;

use greenlight_tests::approvals::{self, shop_config, STANDARD_POLICY};
use greenlight_tests::clock::manual_clock;
use greenlight_tests::config::{slack_section, slack_socket_mode_section, SLACK_SIGNING_SECRET};
use greenlight_tests::fakes::{FakeSlack, FakeSocketMode};
use greenlight_tests::inbound::slack::{self as from_slack, interaction_body};
use greenlight_tests::{spawn_app_with_clock, TestApp};
use serde_json::Value;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const CHANNEL: &str = "C0DEPLOYS";
const BOB: &str = "U0BOB0001";
const CAROL: &str = "U0CAROL01";

fn config(slack_section: &str) -> String {
    format!(
        r#"
{slack_section}
[people]
alice = {{ slack = "U0ALICE01", github = "alice" }}
bob = {{ slack = "{BOB}", github = "bob-gh" }}
carol = {{ slack = "{CAROL}", github = "carol" }}
{shop}"#,
        // Operators may /lock; the key rides along with the channels.
        shop = shop_config(
            &format!("{{ slack = \"{CHANNEL}\" }}\noperators = [\"group:sre\"]"),
            STANDARD_POLICY
        ),
    )
}

/// Greenlight reached over Socket Mode only, with one connection open.
async fn start(slack: &FakeSlack, socket: &FakeSocketMode) -> TestApp {
    let app = spawn_app_with_clock(
        &config(&slack_socket_mode_section(slack)),
        &[],
        manual_clock(),
    )
    .await;
    socket.connected(1).await;
    app
}

/// The request for `SHA`, its card posted and approvals open (the wait timer passed).
async fn approvals_open(slack: &FakeSlack, app: &TestApp) -> i64 {
    let request = approvals::staging_healthy(app, SHA, "alice").await;
    slack.next_call("chat.postMessage", CHANNEL).await;
    app.outbox_pass_after(chrono::Duration::minutes(5)).await;
    slack.next_call("chat.update", CHANNEL).await;
    request
}

fn approve(slack: &FakeSlack, user: &str, request: i64) -> Value {
    let response_url = slack.response_url(&format!("{user}-approve"));
    from_slack::click(
        user,
        CHANNEL,
        "approve",
        &request.to_string(),
        &response_url,
    )
}

async fn status(app: &TestApp) -> Value {
    app.get("/api/v1/status")
        .await
        .json()
        .await
        .expect("status JSON")
}

/// Waits (up to 10 s) until `/api/v1/status` says `slack` is `expected`.
async fn slack_status_becomes(app: &TestApp, expected: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = status(app).await["slack"].clone();
        if now == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "slack status stayed {now}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn reconnects(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|line| {
            line.starts_with("greenlight_chat_reconnects_total")
                && line.contains(r#"transport="slack_socket_mode""#)
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn without_a_signing_secret_no_http_route_takes_anything_and_status_shows_the_connection() {
    let slack = FakeSlack::start().await;
    let socket = FakeSocketMode::start(&slack).await;
    let app = start(&slack, &socket).await;
    slack_status_becomes(&app, "socket mode: connected").await;

    // Whatever secret a request is signed with, Slack's HTTP routes are off.
    let click = interaction_body(&approve(&slack, BOB, 1));
    for path in ["/slack/interactions", "/slack/commands"] {
        for secret in [SLACK_SIGNING_SECRET, ""] {
            let response = from_slack::post_signed(&app, path, click.clone(), secret, 0).await;
            assert_eq!(response.status(), 404, "{path}");
            let body = response.text().await.expect("body");
            assert!(body.contains("Socket Mode only"), "{body}");
        }
    }
    slack.inbox().allow_unread("nothing was sent");
    app.teardown().await;
}

#[tokio::test]
async fn a_refused_app_token_is_named_in_the_status() {
    let slack = FakeSlack::start().await;
    let _socket = FakeSocketMode::start(&slack).await;
    let section = slack_socket_mode_section(&slack).replace(
        greenlight_tests::fakes::slack_socket::APP_TOKEN,
        "xapp-1-A0FAKE-1-revoked",
    );
    let app = spawn_app_with_clock(&config(&section), &[], manual_clock()).await;
    slack_status_becomes(
        &app,
        "socket mode: not connected: Slack refused apps.connections.open (invalid_auth); retrying every 30 s",
    )
    .await;
    app.teardown().await;
}

#[tokio::test]
async fn every_envelope_is_acknowledged_within_3_s_while_the_database_is_slow() {
    let slack = FakeSlack::start().await;
    let socket = FakeSocketMode::start(&slack).await;
    // Both transports at once: the HTTP route must keep the same deadline.
    let section = format!(
        "{}app_token = \"{}\"\n",
        slack_section(&slack),
        greenlight_tests::fakes::slack_socket::APP_TOKEN
    );
    let app = spawn_app_with_clock(&config(&section), &[], manual_clock()).await;
    socket.connected(1).await;
    let request = approvals_open(&slack, &app).await;

    let held = app.hold_writes().await;
    let click = socket.interact(&approve(&slack, BOB, request)).await;
    let command = socket
        .command(from_slack::command_fields(
            "U0ALICE01",
            CHANNEL,
            "/lock",
            "production db migration running",
        ))
        .await;
    let started = std::time::Instant::now();
    let (status, over_http) = from_slack::command(
        &app,
        SLACK_SIGNING_SECRET,
        "U0ALICE01",
        CHANNEL,
        "/releases",
        "",
    )
    .await;
    let http_took = started.elapsed();
    for (what, took) in [
        ("click", click.after),
        ("command", command.after),
        ("HTTP command", http_took),
    ] {
        assert!(
            took < Duration::from_secs(3),
            "{what} answered after {took:?}"
        );
    }
    assert_eq!(status, 200);
    let still = "still being applied";
    let reply = command.payload.expect("the command's reply");
    assert!(
        reply["text"]
            .as_str()
            .is_some_and(|text| text.contains(still)),
        "{reply}"
    );
    assert!(
        over_http["text"]
            .as_str()
            .is_some_and(|text| !text.is_empty()),
        "{over_http}"
    );

    // Once the database answers, what was acknowledged is applied, once.
    held.release().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.approver_count(request).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the click was never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let locked = slack
        .next_call_mentioning("chat.postMessage", CHANNEL, "db migration running")
        .await;
    assert!(locked.text().contains("alice"), "{}", locked.body);
    assert_eq!(app.approver_count(request).await, 1);
    slack.allow_unread_cards("the card's edits while the database was held");
    app.deliver_due().await;
    app.teardown().await;
}

#[tokio::test]
async fn a_disconnect_mid_flow_reconnects_and_loses_no_click() {
    let slack = FakeSlack::start().await;
    let socket = FakeSocketMode::start(&slack).await;
    let app = start(&slack, &socket).await;
    let request = approvals_open(&slack, &app).await;
    // slack-morphism opens its second connection a few seconds after the first.
    socket.connected(2).await;
    let hellos = socket.hellos();
    let first = socket.open_connections()[0];

    // Slack asks the first connection to reconnect; the click goes over the other meanwhile.
    socket.disconnect(first);
    let bob = socket.interact(&approve(&slack, BOB, request)).await;
    assert_eq!(bob.attempts, 1);
    let update = slack.next_call("chat.update", CHANNEL).await;
    assert!(update.text().contains("bob") || update.body.to_string().contains("bob"));

    // The reconnected connection carries the next click.
    socket.connected(2).await;
    assert!(
        socket.hellos() > hellos,
        "the first connection was reopened"
    );
    let carol = socket.interact(&approve(&slack, CAROL, request)).await;
    assert_eq!(carol.attempts, 1);
    assert_eq!(app.request_state(request).await, "approved");
    assert_eq!(app.approver_count(request).await, 2);
    assert_eq!(app.audit("deploy_owed").await.len(), 1);
    socket.gone(first).await;

    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(reconnects(&metrics) >= 1, "{metrics}");
    slack_status_becomes(&app, "socket mode: connected").await;
    slack.allow_unread_cards("the final card and announcement");
    slack
        .inbox()
        .allow_unread("the final card and announcement");
    app.teardown().await;
}

#[tokio::test]
async fn a_socket_dropped_with_the_ack_on_the_wire_applies_the_click_once() {
    let slack = FakeSlack::start().await;
    let socket = FakeSocketMode::start(&slack).await;
    let app = start(&slack, &socket).await;
    let request = approvals_open(&slack, &app).await;
    socket.connected(2).await;

    // The app handles the click and acknowledges it, but the connection drops with the ack:
    // Slack sends the envelope again on the other connection.
    socket.lose_next_ack();
    let bob = socket.interact(&approve(&slack, BOB, request)).await;
    assert_eq!(bob.attempts, 2, "delivered twice");
    assert_eq!(app.approver_count(request).await, 1);
    assert_eq!(app.decision_count(request).await, 1, "applied once");
    assert_eq!(app.request_state(request).await, "waiting");

    let carol = socket.interact(&approve(&slack, CAROL, request)).await;
    assert_eq!(carol.attempts, 1);
    assert_eq!(app.request_state(request).await, "approved");
    assert_eq!(
        app.audit("deploy_owed").await.len(),
        1,
        "exactly one deploy"
    );
    // The dropped connection comes back.
    socket.connected(2).await;
    slack
        .inbox()
        .allow_unread("the card's edits and the announcement");
    app.teardown().await;
}
