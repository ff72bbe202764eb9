//! `GET /api/v1/metrics/dora` (SPEC §14): a production history reported by CI over the real
//! events route, measured as DORA says, behind the read API's token.

use chrono::Duration;
use greenlight_tests::ci::{self, Fields};
use greenlight_tests::clock::manual_clock;
use greenlight_tests::config::shop_app;
use greenlight_tests::{spawn_app_with_clock, TestApp};
use serde_json::{json, Value};

const SHOP_TOKEN: &str = "shop-ci-token";
const API_TOKEN: &str = "read-api-token";
/// Built an hour before the manual clock starts; healthy in production an hour after.
const A: &str = "aaaaaaa1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// Faulty in production (CI's smoke checks failed).
const B: &str = "bbbbbbb2bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
/// Healthy an hour after B's fault: the restore.
const C: &str = "ccccccc3cccccccccccccccccccccccccccccccc";
/// Its deploy failed: not a deployment at all.
const D: &str = "ddddddd4dddddddddddddddddddddddddddddddd";

fn config() -> String {
    format!(
        r#"
[server]
api_token = "${{API_TOKEN}}"

# Cards and announcements go nowhere: this suite reads metrics, not chat.
[slack]
bot_token = "xoxb-unused"
signing_secret = "unused"
api_url = "http://127.0.0.1:9/api"

[people]
alice = {{ slack = "U012AB3CD" }}

{}"#,
        shop_app(
            r#"ci_token = "${SHOP_CI_TOKEN}"
channels = { slack = "C0DEPLOYS" }"#,
            "",
            r#"reviewers = ["alice"]"#
        )
    )
}

async fn start() -> TestApp {
    spawn_app_with_clock(
        &config(),
        &[("SHOP_CI_TOKEN", SHOP_TOKEN), ("API_TOKEN", API_TOKEN)],
        manual_clock(),
    )
    .await
}

async fn report(app: &TestApp, event: Value) {
    ci::report(app, SHOP_TOKEN, event).await;
}

fn advance(app: &TestApp, minutes: i64) {
    app.clock.advance(Duration::minutes(minutes));
}

/// Production over four hours, as CI reports it (times from the clock's start, 12:00):
/// A committed 11:00, healthy 13:00 (lead 2 h); B faulty at 15:00; C committed 15:00,
/// healthy 16:00 (lead 1 h, restores B after 1 h); D's deploy fails at 16:30.
async fn production_history(app: &TestApp) {
    let committed = |at: &str| json!({ "committed_at": at });
    report(app, ci::build(A).with(committed("2026-11-27T11:00:00Z"))).await;
    advance(app, 5);
    report(app, ci::deployed("staging", A, "success")).await;
    advance(app, 55);
    report(app, ci::deployed("production", A, "success")).await;
    advance(app, 60);
    report(app, ci::build(B)).await;
    advance(app, 60);
    let smoke_failed = json!({ "smoke": ci::smoke_failed() });
    report(
        app,
        ci::deployed("production", B, "success").with(smoke_failed),
    )
    .await;
    report(app, ci::build(C).with(committed("2026-11-27T15:00:00Z"))).await;
    advance(app, 60);
    report(app, ci::deployed("production", C, "success")).await;
    report(app, ci::build(D)).await;
    advance(app, 30);
    report(app, ci::deployed("production", D, "failure")).await;
}

async fn dora(app: &TestApp, query: &str) -> (u16, Value) {
    app.get_with_token(&format!("/api/v1/metrics/dora{query}"), API_TOKEN)
        .await
}

#[tokio::test]
async fn production_history_is_measured_as_dora_defines_it() {
    let app = start().await;
    production_history(&app).await;

    // The default environment is the last gated one: production.
    let (status, body) = dora(&app, "?app=shop").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "app": "shop", "environment": "production", "days": 30,
            "from": "2026-10-28T16:30:00Z", "to": "2026-11-27T16:30:00Z",
            "deployment_frequency": {"deployments": 3, "per_day": 0.1},
            // 1 h and 2 h: the median halfway, p90 nine tenths of the way.
            "lead_time_seconds": {"median": 5400.0, "p90": 6840.0, "samples": 2},
            "change_failure_rate": {"failed": 1, "deployments": 3, "rate": 0.3333},
            "time_to_restore_seconds": {"median": 3600.0, "samples": 1},
        })
    );

    // Staging: A alone, healthy 65 minutes after its commit.
    let (status, body) = dora(&app, "?app=shop&environment=staging&days=1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deployment_frequency"]["deployments"], 1);
    assert_eq!(body["lead_time_seconds"]["median"], json!(3900.0));
    assert_eq!(body["change_failure_rate"]["rate"], json!(0.0));

    // A month later the last 30 days are empty: nulls, not errors. A year still holds it all.
    advance(&app, 31 * 24 * 60);
    let (status, body) = dora(&app, "?app=shop&environment=production").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deployment_frequency"]["deployments"], 0);
    assert_eq!(body["deployment_frequency"]["per_day"], json!(0.0));
    assert_eq!(
        body["lead_time_seconds"],
        json!({"median": null, "p90": null, "samples": 0})
    );
    assert_eq!(body["change_failure_rate"]["rate"], Value::Null);
    assert_eq!(
        body["time_to_restore_seconds"],
        json!({"median": null, "samples": 0})
    );
    let (status, body) = dora(&app, "?app=shop&days=365").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["days"], 365);
    assert_eq!(body["deployment_frequency"]["deployments"], 3);
    assert_eq!(body["time_to_restore_seconds"]["samples"], 1);
    app.teardown().await;
}

#[tokio::test]
async fn bad_questions_are_400_naming_the_field() {
    let app = start().await;
    let cases = [
        ("?app=shop&days=0", "days"),
        ("?app=shop&days=366", "days"),
        ("?app=shop&days=-1", "days"),
        ("?app=shop&days=99999999999999999999999", "days"),
        ("?app=shop&days=1.5", "days"),
        ("?app=shop&days=", "days"),
        ("", "app"),
        ("?environment=production", "app"),
        ("?app=nope", "app"),
        ("?app=%00shop", "app"),
        ("?app=shop&environment=qa", "environment"),
        ("?app=shop&environment=../../etc", "environment"),
    ];
    for (query, field) in cases {
        let (status, body) = dora(&app, query).await;
        assert_eq!(status, 400, "{query} → {body}");
        assert_eq!(body["error"], "bad_request", "{query}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.starts_with(&format!("{field}:")),
            "{query}: {detail:?} does not name {field}"
        );
    }
    app.teardown().await;
}

#[tokio::test]
async fn only_the_api_token_reads_metrics() {
    let app = start().await;
    let path = "/api/v1/metrics/dora?app=shop";
    let response = app.get(path).await;
    assert_eq!(response.status().as_u16(), 401);
    for token in [SHOP_TOKEN, "read-api-token-but-longer", "wrong"] {
        let (status, body) = app.get_with_token(path, token).await;
        assert_eq!(status, 401, "{token}: {body}");
        assert_eq!(body["error"], "unauthorized");
    }
    // Checked before the question: a bad question without the token is still 401.
    let (status, _) = app
        .get_with_token("/api/v1/metrics/dora?days=0", "wrong")
        .await;
    assert_eq!(status, 401);
    app.teardown().await;
}
