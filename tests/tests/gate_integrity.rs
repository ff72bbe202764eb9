//! Nothing reaches a gated environment around the gate (SPEC §10): a deploy CI or GitHub
//! reports without an approval is recorded as unapproved, announced, counted and never rolled
//! back to; a lock holds GitHub protection rules until `/unlock`; an old approval does not
//! answer a new protection rule. Everything runs through the real app with a manual clock.

use greenlight::engine::RollbackRefusal;
use greenlight_commands::DeploymentState;
use greenlight_tests::ci::{self, Fields};
use greenlight_tests::config::http_deploy;
use greenlight_tests::fakes::{DeployHook, FakeProduction, FakeSlack};
use greenlight_tests::gated::{
    approve, build, config, report, running, staging_healthy, verify, API_TOKEN, CHANNEL,
    HOOK_SECRET,
};
use greenlight_tests::shop::{production as prod, shop};
use greenlight_tests::{gated, TestApp};
use serde_json::{json, Value};

const OLD: &str = "1111111111111111111111111111111111111111";
const NEW: &str = "2222222222222222222222222222222222222222";
const AROUND: &str = "3333333333333333333333333333333333333333";

/// The metrics recorder is process-wide and both tests flag deploys of shop production: they
/// take turns so one can count what it caused.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Greenlight on `config`, whose Slack cards the test may leave unread: gate integrity is about
/// what is recorded and announced, the cards are slack_approvals'.
async fn start(slack: &FakeSlack, config: &str) -> TestApp {
    slack.allow_unread_cards("gate-integrity tests read announcements, not cards");
    gated::start(config).await
}

/// CI says it deployed `sha` to production, without any deployment id of Greenlight's.
async fn ci_deployed_to_production(app: &TestApp, sha: &str) -> Value {
    build(app, sha).await;
    report(app, ci::deployed("production", sha, "success")).await
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.get_with_token(path, API_TOKEN).await;
    assert_eq!(status, 200);
    assert!(body.is_object(), "{path}: {body}");
    body
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
    let call = slack
        .next_call_mentioning("chat.postMessage", CHANNEL, needle)
        .await;
    call.text().to_owned()
}

#[tokio::test]
async fn a_deploy_around_the_gate_is_flagged_and_the_rollback_skips_it() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let slack = FakeSlack::start().await;
    // NEW's deploy and the rollback after it: nothing for the unapproved release.
    let hook = DeployHook::start(HOOK_SECRET, 2).await;
    let production = FakeProduction::start().await;
    let app = start(
        &slack,
        &config(&slack, &http_deploy(&hook), Some(&production)),
    )
    .await;
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
    app.deliver_due().await;
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
    app.deliver_due().await;
    posted(&slack, "approved for production by carol; deploying").await;
    let deploy = hook.next_request().await;
    let deploy_id = deploy.body["deployment_id"].as_i64().expect("id");
    production.set_healthy(false);
    let reply = report(
        &app,
        ci::deployed("production", NEW, "success").with(json!({"deployment_id": deploy_id})),
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
    app.deliver_due().await;
    let rollback = hook.next_request().await;
    posted(&slack, "is faulty in production").await;
    assert_eq!(rollback.body["kind"], "rollback");
    assert_eq!(rollback.body["sha"], OLD);
    assert_eq!(rollback.body["image"], format!("ghcr.io/acme/shop:{OLD}"));
    app.teardown().await;
}

#[tokio::test]
async fn where_ci_deploys_only_an_approved_release_counts_as_approved() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let slack = FakeSlack::start().await;
    let app = start(&slack, &config(&slack, "", None)).await;

    let request = staging_healthy(&app, NEW).await;
    approve(&app, request).await;
    let approved = ci_deployed_to_production(&app, NEW).await;
    assert_eq!(approved["deployment"]["approved"], true, "{approved}");

    let around = ci_deployed_to_production(&app, AROUND).await;
    assert_eq!(around["deployment"]["approved"], false, "{around}");
    // A repeat of the same report is no second announcement.
    let again = report(&app, ci::deployed("production", AROUND, "success")).await;
    assert_eq!(again["deployment"]["id"], around["deployment"]["id"]);
    app.deliver_due().await;
    posted(&slack, "3333333 deployed to production without approval").await;
    posted(&slack, "2222222 approved for production by carol").await;

    // Staging has no gate: nothing there is ever "unapproved".
    let staging = report(&app, ci::deployed("staging", AROUND, "success")).await;
    assert_eq!(staging["deployment"]["approved"], true, "{staging}");
    app.teardown().await;
}
