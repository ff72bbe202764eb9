//! Nothing reaches a gated environment around the gate (SPEC §10): a deploy CI or GitHub
//! reports without an approval is recorded as unapproved, announced, counted and never rolled
//! back to; a lock holds GitHub protection rules until `/unlock`; an old approval does not
//! answer a new protection rule. Everything runs through the real app with a manual clock.

use chrono::{TimeZone, Utc};
use greenlight::clock::Clock;
use greenlight::engine::{ChatActor, DecisionReply, ReplyTo, RollbackRefusal};
use greenlight_commands::{AppName, DeploymentState, EnvironmentName, Platform, Verdict};
use greenlight_storage::Deployment;
use greenlight_tests::fakes::{DeployHook, FakeProduction, FakeSlack};
use greenlight_tests::{spawn_app_with_clock, TestApp};
use serde_json::{json, Value};

const OLD: &str = "1111111111111111111111111111111111111111";
const NEW: &str = "2222222222222222222222222222222222222222";
const AROUND: &str = "3333333333333333333333333333333333333333";
const HOOK_SECRET: &str = "deploy-hook-secret";
const API_TOKEN: &str = "read-api-token";
const CHANNEL: &str = "C0DEPLOYS";
const ALICE: &str = "U0ALICE01";
const CAROL: &str = "U0CAROL01";

/// The metrics recorder is process-wide and both tests flag deploys of shop production: they
/// take turns so one can count what it caused.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn shop() -> AppName {
    AppName::parse("shop").expect("app")
}

fn prod() -> EnvironmentName {
    EnvironmentName::parse("production").expect("environment")
}

/// Slack on, alice writes the code, carol approves alone; production is deployed by `deploy`
/// (CI when empty) and checked 30 s after each deploy when `production` is given.
fn config(slack: &FakeSlack, deploy: &str, production: Option<&FakeProduction>) -> String {
    let smoke = production
        .map(|production| {
            format!(
                "smoke = [ {{ name = \"health\", url = \"{}\" }} ]\nsmoke_settle = \"30s\"",
                production.health_url()
            )
        })
        .unwrap_or_default();
    format!(
        r#"
[server]
api_token = "{API_TOKEN}"

[slack]
bot_token = "{token}"
signing_secret = "slack-signing-secret"
api_url = "{api}"

[people]
alice = {{ slack = "{ALICE}", github = "alice" }}
carol = {{ slack = "{CAROL}", github = "carol" }}

[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "shop-ci"
channels = {{ slack = "{CHANNEL}" }}
operators = ["carol"]

[apps.shop.environments.staging]

[apps.shop.environments.production]
after = "staging"
reviewers = ["carol"]
{deploy}
{smoke}
"#,
        token = slack.bot_token,
        api = slack.api_url(),
    )
}

fn http_deploy(hook: &DeployHook) -> String {
    format!(
        r#"deploy = {{ kind = "http", url = "{}", secret = "${{HOOK_SECRET}}" }}"#,
        hook.url()
    )
}

async fn start(config: &str) -> TestApp {
    let start = Utc
        .with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
        .single()
        .expect("time");
    spawn_app_with_clock(
        config,
        &[("HOOK_SECRET", HOOK_SECRET)],
        Clock::manual(start),
    )
    .await
}

async fn ci(app: &TestApp, event: Value) -> Value {
    let response = app
        .client
        .post(app.url("/api/v1/events"))
        .bearer_auth("shop-ci")
        .json(&event)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(status, 202, "{body}");
    body
}

async fn build(app: &TestApp, sha: &str) {
    ci(
        app,
        json!({"event": "build", "app": "shop", "sha": sha,
            "image": format!("ghcr.io/acme/shop:{sha}"), "author": "alice"}),
    )
    .await;
}

/// CI says it deployed `sha` to production, without any deployment id of Greenlight's.
async fn ci_deployed_to_production(app: &TestApp, sha: &str) -> Value {
    build(app, sha).await;
    ci(
        app,
        json!({"event": "deployed", "app": "shop", "environment": "production", "sha": sha,
            "status": "success"}),
    )
    .await
}

/// Builds `sha`, reports it healthy in staging; returns the production approval request.
async fn staging_healthy(app: &TestApp, sha: &str) -> i64 {
    build(app, sha).await;
    let reply = ci(
        app,
        json!({"event": "deployed", "app": "shop", "environment": "staging", "sha": sha,
            "status": "success"}),
    )
    .await;
    reply["approval_requests"][0]["id"]
        .as_i64()
        .expect("an approval request opened")
}

async fn approve(app: &TestApp, request: i64) {
    let reply = app
        .state
        .engine
        .decide(
            request,
            ChatActor {
                platform: Platform::Slack,
                user_id: CAROL.to_owned(),
                reply_to: ReplyTo::Nobody,
            },
            Verdict::Approve,
        )
        .await
        .expect("decision stored");
    assert!(
        matches!(reply, DecisionReply::Accepted(_)),
        "approval refused: {reply:?}"
    );
}

async fn deliver(app: &TestApp) {
    app.outbox_idle().await;
    app.state.outbox.run_once().await.expect("outbox pass");
    app.outbox_idle().await;
}

async fn verify(app: &TestApp) {
    app.clock.advance(chrono::Duration::seconds(31));
    app.state
        .engine
        .run_due_verifications()
        .await
        .expect("verification");
}

async fn running(app: &TestApp) -> Deployment {
    app.storage()
        .current_deployment(&shop(), &prod())
        .await
        .expect("read")
        .expect("something runs in production")
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

/// The value of `greenlight_unapproved_deploys_total` for shop production, 0 when absent.
async fn unapproved_metric(app: &TestApp) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find(|line| {
            line.starts_with("greenlight_unapproved_deploys_total")
                && line.contains("app=\"shop\"")
                && line.contains("environment=\"production\"")
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

/// The next message posted to the channel that mentions `needle` (earlier ones skipped).
async fn posted(slack: &FakeSlack, needle: &str) -> String {
    loop {
        let call = slack.next_call("chat.postMessage", CHANNEL).await;
        let text = call.body["text"].as_str().unwrap_or_default().to_owned();
        if text.contains(needle) {
            return text;
        }
    }
}

#[tokio::test]
async fn a_deploy_around_the_gate_is_flagged_and_the_rollback_skips_it() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let slack = FakeSlack::start().await;
    // NEW's deploy and the rollback after it: nothing for the unapproved release.
    let hook = DeployHook::start(HOOK_SECRET, 2).await;
    let production = FakeProduction::start().await;
    let app = start(&config(&slack, &http_deploy(&hook), Some(&production))).await;
    build(&app, OLD).await;
    app.seed_approved_healthy("shop", "production", OLD).await;
    let metric_before = unapproved_metric(&app).await;

    // Someone with the CI token reports a production deploy nobody approved.
    let reply = ci_deployed_to_production(&app, AROUND).await;
    assert_eq!(reply["deployment"]["approved"], false, "{reply}");
    verify(&app).await;
    let around = running(&app).await;
    assert_eq!(around.sha.as_str(), AROUND);
    assert_eq!(around.state, DeploymentState::Healthy);
    assert!(!around.approved);
    deliver(&app).await;
    let warning = posted(&slack, "without approval").await;
    assert_eq!(
        warning,
        "⚠ shop 3333333 deployed to production without approval (reported by CI). It will never be a rollback target."
    );
    assert_eq!(unapproved_metric(&app).await, metric_before + 1.0);

    // The release log and the environment API show it.
    let releases = get_json(&app, "/api/v1/releases?app=shop").await;
    let listed = releases["releases"]
        .as_array()
        .expect("releases")
        .iter()
        .find(|release| release["sha"] == AROUND)
        .expect("the unapproved release is listed")
        .clone();
    assert_eq!(listed["environments"]["production"]["approved"], false);
    assert_eq!(listed["environments"]["production"]["state"], "healthy");
    let status = get_json(&app, "/api/v1/apps/shop/environments/production").await;
    assert_eq!(status["current"]["sha"], AROUND);
    assert_eq!(status["current"]["approved"], false);

    // `/rollback … to` it is refused, by name.
    let refused = app
        .state
        .engine
        .rollback_plan(&shop(), &prod(), Some("3333333"))
        .await
        .expect("read")
        .expect_err("not a target");
    assert!(
        matches!(refused, RollbackRefusal::Unapproved { .. }),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("without approval"),
        "{refused}"
    );
    // The default target skips it too.
    let plan = app
        .state
        .engine
        .rollback_plan(&shop(), &prod(), None)
        .await
        .expect("read")
        .expect("OLD is a target");
    assert_eq!(plan.target.sha.as_str(), OLD);

    // NEW goes through the gate, deploys, and breaks production.
    let request = staging_healthy(&app, NEW).await;
    approve(&app, request).await;
    deliver(&app).await;
    let deploy = hook.next_request().await;
    let deploy_id = deploy.body["deployment_id"].as_i64().expect("id");
    production.set_healthy(false);
    let reply = ci(
        &app,
        json!({"event": "deployed", "app": "shop", "environment": "production", "sha": NEW,
            "status": "success", "deployment_id": deploy_id}),
    )
    .await;
    assert_eq!(reply["deployment"]["approved"], true, "{reply}");
    verify(&app).await;
    assert_eq!(
        app.storage()
            .deployment(deploy_id)
            .await
            .expect("deployment")
            .state,
        DeploymentState::Faulty
    );

    // The automatic rollback goes to the last *approved* healthy image, never around it.
    deliver(&app).await;
    let rollback = hook.next_request().await;
    assert_eq!(rollback.body["kind"], "rollback");
    assert_eq!(rollback.body["sha"], OLD);
    assert_eq!(rollback.body["image"], format!("ghcr.io/acme/shop:{OLD}"));
    app.teardown().await;
}

#[tokio::test]
async fn where_ci_deploys_only_an_approved_release_counts_as_approved() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let slack = FakeSlack::start().await;
    let app = start(&config(&slack, "", None)).await;

    let request = staging_healthy(&app, NEW).await;
    approve(&app, request).await;
    let approved = ci_deployed_to_production(&app, NEW).await;
    assert_eq!(approved["deployment"]["approved"], true, "{approved}");

    let around = ci_deployed_to_production(&app, AROUND).await;
    assert_eq!(around["deployment"]["approved"], false, "{around}");
    // A repeat of the same report is no second announcement.
    let again = ci(
        &app,
        json!({"event": "deployed", "app": "shop", "environment": "production", "sha": AROUND,
            "status": "success"}),
    )
    .await;
    assert_eq!(again["deployment"]["id"], around["deployment"]["id"]);
    deliver(&app).await;
    posted(&slack, "3333333 deployed to production without approval").await;

    // Staging has no gate: nothing there is ever "unapproved".
    let staging = ci(
        &app,
        json!({"event": "deployed", "app": "shop", "environment": "staging", "sha": AROUND,
            "status": "success"}),
    )
    .await;
    assert_eq!(staging["deployment"]["approved"], true, "{staging}");
    app.teardown().await;
}
