//! Production deploys end to end: an approval triggers exactly one signed deploy request, the
//! release is verified with production smoke checks, a faulty release is rolled back on its
//! own and the environment locked, a later approval waits for `/unlock`, and deploys that never
//! complete time out. Everything runs through the real app with a manual clock, a fake Slack,
//! a fake deploy hook, a fake production service and a real script deployer.

use std::os::unix::fs::PermissionsExt;

use greenlight::cards::CardKey;
use greenlight::engine::{HeldDeploy, LockRefusal, RollbackRefusal, UnlockOutcome};
use greenlight_commands::{CommitSha, DeploymentKind, DeploymentState};
use greenlight_storage::{Deployment, LockOutcome};
use greenlight_tests::ci::{self, Fields};
use greenlight_tests::config::http_deploy;
use greenlight_tests::fakes::{DeployHook, FakeProduction, FakeSlack, Recorded};
use greenlight_tests::gated::{
    approve, build, config, report, running, slow_deploy_script, staging_healthy, verify, CHANNEL,
    CI_TOKEN, HOOK_SECRET,
};
use greenlight_tests::shop::{environment, image, production as prod, sha, shop};
use greenlight_tests::{gated, TestApp};
use serde_json::{json, Value};

const OLD: &str = "1111111111111111111111111111111111111111";
const NEW: &str = "2222222222222222222222222222222222222222";
const NEXT: &str = "3333333333333333333333333333333333333333";

/// Greenlight on `config`, whose Slack cards the test may leave unread: these tests check the
/// card through the engine's model (`headline`), its Slack rendering is slack_approvals'.
async fn start(slack: &FakeSlack, config: &str) -> TestApp {
    slack.allow_unread_cards("deploy tests read the card through the engine's `headline`");
    gated::start(config).await
}

/// Slack, a deploy hook that expects `requests` requests in all, and Greenlight deploying
/// production through it, checking `production`'s health when given.
async fn through_hook(
    requests: u64,
    production: Option<&FakeProduction>,
) -> (FakeSlack, DeployHook, TestApp) {
    let slack = FakeSlack::start().await;
    let hook = DeployHook::start(HOOK_SECRET, requests).await;
    let app = start(&slack, &config(&slack, &http_deploy(&hook), production)).await;
    (slack, hook, app)
}

/// Builds `sha`, reports it healthy in staging, carol approves it for production, what that
/// causes is delivered and the approval is announced; returns the approval request.
async fn approved(app: &TestApp, slack: &FakeSlack, sha: &str) -> i64 {
    let request = staging_healthy(app, sha).await;
    approve(app, request).await;
    app.deliver_due().await;
    let announced = format!("{} approved for production by carol", &sha[..7]);
    slack_with(slack, "chat.postMessage", &announced).await;
    request
}

/// `sha` went through the gate and ran healthy in production before the test began.
async fn approved_in_production(app: &TestApp, sha: &str) {
    build(app, sha).await;
    app.seed_approved_healthy("shop", "production", sha).await;
    assert_eq!(running(app).await.state, DeploymentState::Healthy);
}

/// The deployer reports that deployment `id` of `sha` completed.
async fn deployer_reports(app: &TestApp, sha: &str, id: i64, status: &str) -> Value {
    report(
        app,
        ci::deployed("production", sha, status).with(json!({"deployment_id": id})),
    )
    .await
}

/// Carol unlocks production; she is allowed to.
async fn unlock(app: &TestApp) -> UnlockOutcome {
    app.state
        .engine
        .unlock(&shop(), &prod(), "carol")
        .await
        .expect("stored")
        .expect("allowed")
}

async fn deployment(app: &TestApp, id: i64) -> Deployment {
    app.storage().deployment(id).await.expect("deployment")
}

async fn headline(app: &TestApp, request: i64) -> String {
    app.state
        .engine
        .card(CardKey::Approval(request))
        .await
        .expect("card")
        .headline()
}

async fn audit_count(app: &TestApp, kind: &str, sha: &str) -> usize {
    app.audit(kind)
        .await
        .iter()
        .filter(|entry| entry.sha.as_ref().map(CommitSha::as_str) == Some(sha))
        .count()
}

/// The next Slack `method` call to the channel whose body mentions `needle` (earlier ones are
/// skipped).
async fn slack_with(slack: &FakeSlack, method: &str, needle: &str) -> String {
    slack
        .next_call_mentioning(method, CHANNEL, needle)
        .await
        .body
        .to_string()
}

fn deployment_id(request: &Recorded) -> i64 {
    request.body["deployment_id"]
        .as_i64()
        .expect("deployment_id in the deploy request")
}

#[tokio::test]
async fn an_approval_deploys_once_through_the_signed_hook_and_the_card_ends_deployed() {
    let production = FakeProduction::start().await;
    let (slack, hook, app) = through_hook(1, Some(&production)).await;
    approved_in_production(&app, OLD).await;
    let request = approved(&app, &slack, NEW).await;
    let sent = hook.next_request().await;
    let id = deployment_id(&sent);
    assert_eq!(
        sent.body,
        json!({"deployment_id": id, "app": "shop", "environment": "production", "sha": NEW,
            "image": image(NEW), "previous_sha": OLD, "kind": "deploy"})
    );
    assert_eq!(
        sent.header("idempotency-key"),
        Some(id.to_string().as_str())
    );
    let started = deployment(&app, id).await;
    assert_eq!(started.state, DeploymentState::Deploying);
    assert_eq!(
        started.triggered_by.as_deref(),
        Some(format!("approval:{request}").as_str())
    );
    assert_eq!(started.deployer.as_deref(), Some("http"));
    assert_eq!(
        headline(&app, request).await,
        "shop → production: approved — deploy deploying"
    );

    // The hook's platform reports back with the id; production's checks then pass.
    let reply = deployer_reports(&app, NEW, id, "success").await;
    assert_eq!(reply["deployment"]["state"], "verifying");
    verify(&app).await;
    assert_eq!(deployment(&app, id).await.state, DeploymentState::Healthy);
    assert_eq!(running(&app).await.id, id);
    assert_eq!(
        headline(&app, request).await,
        "shop → production: deployed and healthy"
    );
    app.deliver_due().await;
    slack_with(&slack, "chat.update", "deployed and healthy").await;

    // Nothing is triggered again, however long the outbox keeps running.
    for _ in 0..3 {
        app.clock.advance(chrono::Duration::minutes(10));
        app.deliver_due().await;
    }
    assert_eq!(audit_count(&app, "deployment_deploying", NEW).await, 1);
    hook.assert_all_read();
    app.teardown().await;
}

#[tokio::test]
async fn a_faulty_release_is_rolled_back_locked_and_the_next_approval_waits_for_unlock() {
    let production = FakeProduction::start().await;
    let (slack, hook, app) = through_hook(3, Some(&production)).await;
    approved_in_production(&app, OLD).await;
    let request = approved(&app, &slack, NEW).await;
    let deploy = deployment_id(&hook.next_request().await);

    // NEW breaks production: its health check fails after the deploy.
    production.set_healthy(false);
    deployer_reports(&app, NEW, deploy, "success").await;
    verify(&app).await;
    assert_eq!(
        deployment(&app, deploy).await.state,
        DeploymentState::Faulty
    );

    // In the same write: a rollback to OLD through the same hook, and the lock.
    app.deliver_due().await;
    let rollback_request = hook.next_request().await;
    let rollback = deployment_id(&rollback_request);
    assert_eq!(rollback_request.body["kind"], "rollback");
    assert_eq!(rollback_request.body["sha"], OLD);
    assert_eq!(rollback_request.body["image"], image(OLD));
    assert_eq!(rollback_request.body["previous_sha"], NEW);
    let rolling_back = deployment(&app, rollback).await;
    assert_eq!(
        (rolling_back.kind, rolling_back.state),
        (DeploymentKind::Rollback, DeploymentState::Deploying)
    );
    let lock = app
        .storage()
        .active_lock(&shop(), &prod())
        .await
        .expect("read")
        .expect("production is locked after the rollback");
    assert!(lock.automatic);
    assert_eq!(lock.locked_by, "greenlight");
    assert!(lock.reason.contains("health"), "{}", lock.reason);
    let told = slack_with(&slack, "chat.postMessage", "is faulty in production").await;
    for expected in [
        "smoke check failed: health (503",
        "Rolling back automatically to 1111111",
        &format!("git revert {NEW}"),
        "/unlock shop production",
    ] {
        assert!(told.contains(expected), "{expected:?} missing from {told}");
    }

    // The rollback completes and passes; the faulty release is marked rolled back.
    production.set_healthy(true);
    let reply = deployer_reports(&app, OLD, rollback, "success").await;
    assert_eq!(reply["deployment"]["id"], rollback);
    verify(&app).await;
    assert_eq!(
        deployment(&app, rollback).await.state,
        DeploymentState::Healthy
    );
    assert_eq!(
        deployment(&app, deploy).await.state,
        DeploymentState::RolledBack
    );
    assert_eq!(running(&app).await.sha.as_str(), OLD);
    assert_eq!(
        headline(&app, request).await,
        "shop → production: deployed, rolled back"
    );
    app.deliver_due().await;
    slack_with(&slack, "chat.postMessage", "runs 1111111 again").await;

    // A later release is approved while locked: the deploy is held.
    let held = approved(&app, &slack, NEXT).await;
    hook.assert_all_read();
    assert_eq!(
        headline(&app, held).await,
        "shop → production: approved — waiting for deploy"
    );
    let card = app
        .state
        .engine
        .card(CardKey::Approval(held))
        .await
        .expect("card");
    assert_eq!(card.lock.map(|lock| lock.by), Some("greenlight".to_owned()));

    // /unlock starts it, once.
    let unlocked = unlock(&app).await;
    let UnlockOutcome::Unlocked { released, .. } = unlocked else {
        panic!("production was locked: {unlocked:?}");
    };
    assert_eq!(
        released,
        Some(HeldDeploy {
            request_id: held,
            sha: sha(NEXT),
        })
    );
    app.deliver_due().await;
    let next = hook.next_request().await;
    assert_eq!(
        (
            &next.body["sha"],
            &next.body["kind"],
            &next.body["previous_sha"]
        ),
        (&json!(NEXT), &json!("deploy"), &json!(OLD))
    );
    slack_with(&slack, "chat.postMessage", "unlocked by carol").await;
    // Unlocking again finds nothing to unlock and starts nothing.
    let again = unlock(&app).await;
    assert_eq!(again, UnlockOutcome::NotLocked);
    app.deliver_due().await;
    hook.assert_all_read();
    app.teardown().await;
}

#[tokio::test]
async fn a_restart_between_approval_and_delivery_still_deploys_exactly_once() {
    let production = FakeProduction::start().await;
    let (slack, hook, app) = through_hook(2, Some(&production)).await;
    // The first attempt meets a hook that is down, so the trigger is still pending at restart.
    hook.answer([503]);
    approved_in_production(&app, OLD).await;
    let request = approved(&app, &slack, NEW).await;
    let first = hook.next_request().await;

    let app = app.restart().await;
    app.clock.advance(chrono::Duration::seconds(30));
    app.deliver_due().await;
    let second = hook.next_request().await;
    assert_eq!(
        second.body, first.body,
        "the same deployment, not a new one"
    );
    assert_eq!(
        second.header("idempotency-key"),
        first.header("idempotency-key")
    );

    for _ in 0..3 {
        app.clock.advance(chrono::Duration::minutes(5));
        app.deliver_due().await;
    }
    assert_eq!(audit_count(&app, "deploy_owed", NEW).await, 1);
    assert_eq!(audit_count(&app, "deployment_deploying", NEW).await, 1);
    let id = deployment_id(&second);
    deployer_reports(&app, NEW, id, "success").await;
    verify(&app).await;
    assert_eq!(
        headline(&app, request).await,
        "shop → production: deployed and healthy"
    );
    hook.assert_all_read();
    app.teardown().await;
}

#[tokio::test]
async fn a_deploy_that_never_completes_times_out_as_failed_and_says_so() {
    let (slack, hook, app) = through_hook(1, None).await;
    let request = approved(&app, &slack, NEW).await;
    let id = deployment_id(&hook.next_request().await);

    let pass = app.run_timers_after(chrono::Duration::minutes(29)).await;
    assert_eq!(pass.deploys_timed_out, 0);
    let pass = app.run_timers_after(chrono::Duration::minutes(2)).await;
    assert_eq!(pass.deploys_timed_out, 1);
    let failed = deployment(&app, id).await;
    assert_eq!(failed.state, DeploymentState::Failed);
    let detail = failed.detail.expect("a detail");
    assert!(detail.starts_with("timed out after 30m"), "{detail}");
    assert_eq!(
        headline(&app, request).await,
        "shop → production: approved — deploy failed"
    );
    app.deliver_due().await;
    let told = slack_with(&slack, "chat.postMessage", "failed").await;
    assert!(told.contains("timed out after 30m"), "{told}");
    assert!(told.contains("nothing is recorded as running"), "{told}");

    // A completion arriving after the timeout is refused (409), naming the deployment.
    let (status, refusal) = ci::post(
        &app,
        Some(CI_TOKEN),
        &ci::deployed("production", NEW, "success").with(json!({"deployment_id": id})),
    )
    .await;
    assert_eq!(status, 409);
    assert!(
        refusal.to_string().contains("already finished as failed"),
        "{refusal}"
    );
    assert_eq!(
        app.state
            .engine
            .run_due_timers()
            .await
            .expect("timers")
            .deploys_timed_out,
        0,
        "timed out once"
    );
    hook.assert_all_read();
    app.teardown().await;
}

#[tokio::test]
async fn a_hook_that_refuses_fails_the_deployment_without_retrying() {
    let (slack, hook, app) = through_hook(1, None).await;
    hook.answer([422]);
    let request = approved(&app, &slack, NEW).await;
    let id = deployment_id(&hook.next_request().await);
    let failed = deployment(&app, id).await;
    assert_eq!(failed.state, DeploymentState::Failed);
    let detail = failed.detail.expect("detail");
    assert!(
        detail.contains("422") && detail.contains("deploy refused by the fake hook"),
        "{detail}"
    );
    let told = slack_with(&slack, "chat.postMessage", "failed").await;
    assert!(told.contains("HTTP 422"), "{told}");
    for _ in 0..3 {
        app.clock.advance(chrono::Duration::minutes(10));
        app.deliver_due().await;
    }
    assert_eq!(
        headline(&app, request).await,
        "shop → production: approved — deploy failed"
    );
    hook.assert_all_read();
    app.teardown().await;
}

/// A deploy script run directly (its shebang, no shell in between) that fails for NEXT.
fn write_script(dir: &std::path::Path) -> String {
    let script = dir.join("deploy.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             echo \"deploying $1 as deployment $2\"\n\
             if [ \"$1\" = \"{}\" ]; then echo 'registry said no' >&2; exit 1; fi\n\
             echo done\n",
            image(NEXT)
        ),
    )
    .expect("write the script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .expect("make it executable");
    script.display().to_string()
}

#[tokio::test]
async fn a_command_deploy_succeeds_on_exit_0_and_fails_with_its_output_otherwise() {
    let slack = FakeSlack::start().await;
    let scripts = tempfile::tempdir().expect("temporary folder");
    let script = write_script(scripts.path());
    let deploy = format!(
        r#"deploy = {{ kind = "command", run = ["{script}", "{{image}}", "{{deployment_id}}"], timeout = "5m" }}"#
    );
    let app = start(&slack, &config(&slack, &deploy, None)).await;

    approved(&app, &slack, NEW).await;
    // The script runs in the background; its result edits the card.
    slack_with(&slack, "chat.update", "deployed and healthy").await;
    let deployed = running(&app).await;
    assert_eq!(deployed.sha.as_str(), NEW);
    assert_eq!(deployed.state, DeploymentState::Healthy);
    let detail = deployed.detail.expect("the output is kept");
    assert!(
        detail.starts_with("command exited with status 0"),
        "{detail}"
    );
    assert!(
        detail.contains(&format!(
            "deploying {} as deployment {}",
            image(NEW),
            deployed.id
        )),
        "{detail}"
    );

    let request = approved(&app, &slack, NEXT).await;
    let told = slack_with(&slack, "chat.postMessage", "failed").await;
    assert!(told.contains("command exited with status 1"), "{told}");
    assert!(told.contains("production still runs 2222222"), "{told}");
    let failed = app
        .audit("deployment_failed")
        .await
        .into_iter()
        .next()
        .expect("the failure is in the release log");
    let detail = failed.detail["detail"].as_str().expect("detail").to_owned();
    assert!(detail.contains("registry said no"), "{detail}");
    assert!(
        detail.contains(&format!("deploying {}", image(NEXT))),
        "{detail}"
    );
    assert_eq!(
        running(&app).await.sha.as_str(),
        NEW,
        "the old release still runs"
    );
    assert_eq!(
        headline(&app, request).await,
        "shop → production: approved — deploy failed"
    );
    app.teardown().await;
}

#[tokio::test]
async fn rollback_plans_refuse_clearly_and_a_confirmed_rollback_runs_once() {
    let production = FakeProduction::start().await;
    let (slack, hook, app) = through_hook(2, Some(&production)).await;
    let engine = &app.state.engine;
    let plan = |to: Option<&'static str>| async move {
        engine
            .rollback_plan(&shop(), &prod(), to)
            .await
            .expect("read")
    };

    assert!(matches!(
        plan(None).await,
        Err(RollbackRefusal::NothingDeployed { .. })
    ));
    let staging = environment("staging");
    let refused = engine
        .rollback_plan(&shop(), &staging, None)
        .await
        .expect("read")
        .expect_err("staging is deployed by CI");
    assert_eq!(
        refused.to_string(),
        "Greenlight does not deploy shop staging (CI does), so it cannot roll it back; redeploy the previous release from there"
    );
    let unknown = environment("qa");
    assert!(matches!(
        engine
            .rollback_plan(&shop(), &unknown, None)
            .await
            .expect("read"),
        Err(RollbackRefusal::UnknownEnvironment { .. })
    ));

    approved_in_production(&app, OLD).await;
    let refused = plan(None).await.expect_err("only one release ever ran");
    assert_eq!(
        refused.to_string(),
        "there is nothing to roll back to: no release other than 1111111 was ever healthy in shop production"
    );

    approved(&app, &slack, NEW).await;
    let id = deployment_id(&hook.next_request().await);
    assert!(
        matches!(
            plan(None).await,
            Err(RollbackRefusal::DeployInProgress { .. })
        ),
        "no rollback while a deploy is in flight"
    );
    deployer_reports(&app, NEW, id, "success").await;
    verify(&app).await;

    assert!(matches!(
        plan(Some("2222222")).await,
        Err(RollbackRefusal::AlreadyRunning { .. })
    ));
    assert!(matches!(
        plan(Some("12345")).await,
        Err(RollbackRefusal::NotASha { .. })
    ));
    assert!(matches!(
        plan(Some("4444444")).await,
        Err(RollbackRefusal::NotATarget { .. })
    ));
    let by_prefix = plan(Some("1111111")).await.expect("OLD by its short SHA");
    let plan = plan(None).await.expect("back to OLD");
    assert_eq!(plan, by_prefix);
    assert_eq!((plan.current.id, plan.target.sha.as_str()), (id, OLD));
    assert!(plan
        .summary()
        .starts_with("shop production: 2222222 (healthy) → 1111111"));

    // The confirmation arrives twice (a double tap): one rollback.
    let key = plan.reference();
    let first = engine
        .start_rollback(&plan, "carol", &key)
        .await
        .expect("stored")
        .expect("allowed");
    let again = engine
        .start_rollback(&plan, "carol", &key)
        .await
        .expect("stored")
        .expect("the same answer");
    assert_eq!(first.id, again.id);
    assert_eq!(
        (first.kind, first.sha.as_str()),
        (DeploymentKind::Rollback, OLD)
    );
    app.deliver_due().await;
    let sent = hook.next_request().await;
    assert_eq!(
        (&sent.body["kind"], &sent.body["sha"], &sent.body["image"]),
        (&json!("rollback"), &json!(OLD), &json!(image(OLD)))
    );
    let told = slack_with(&slack, "chat.postMessage", "is rolling back").await;
    assert!(
        told.contains("carol is rolling back shop production from 2222222 to 1111111"),
        "{told}"
    );
    assert!(told.contains(&format!("git revert {NEW}")), "{told}");
    assert!(app
        .storage()
        .active_lock(&shop(), &prod())
        .await
        .expect("read")
        .is_some());

    // The old confirmation cannot start another one once production moved on.
    assert!(engine
        .rollback_plan_from_reference(&key)
        .await
        .expect("read")
        .is_err());
    deployer_reports(&app, OLD, first.id, "success").await;
    verify(&app).await;
    assert_eq!(
        deployment(&app, id).await.state,
        DeploymentState::RolledBack
    );
    let stale = engine
        .start_rollback(&plan, "carol", "another confirmation")
        .await
        .expect("stored")
        .expect_err("production changed");
    assert!(
        matches!(stale, RollbackRefusal::Changed { .. }),
        "{stale:?}"
    );
    app.deliver_due().await;
    slack_with(&slack, "chat.postMessage", "runs 1111111 again").await;
    hook.assert_all_read();
    app.teardown().await;
}

#[tokio::test]
async fn locking_a_locked_environment_says_who_holds_it_and_changes_nothing() {
    let (slack, _hook, app) = through_hook(0, None).await;
    let engine = &app.state.engine;
    assert_eq!(
        engine
            .lock(&shop(), &prod(), "  ", "carol")
            .await
            .expect("read"),
        Err(LockRefusal::ReasonRequired)
    );
    let locked = engine
        .lock(&shop(), &prod(), "incident 42", "carol")
        .await
        .expect("stored")
        .expect("allowed");
    assert!(matches!(&locked, LockOutcome::Acquired(lock) if lock.locked_by == "carol"));
    let again = engine
        .lock(&shop(), &prod(), "my own reason", "alice")
        .await
        .expect("stored")
        .expect("allowed");
    let LockOutcome::AlreadyHeld(held) = again else {
        panic!("expected the existing lock: {again:?}");
    };
    assert_eq!(
        (held.locked_by.as_str(), held.reason.as_str()),
        ("carol", "incident 42")
    );
    app.deliver_due().await;
    slack_with(&slack, "chat.postMessage", "locked by carol: incident 42").await;

    let unlocked = unlock(&app).await;
    assert!(matches!(
        unlocked,
        UnlockOutcome::Unlocked { released: None, .. }
    ));
    app.deliver_due().await;
    slack_with(&slack, "chat.postMessage", "unlocked by carol").await;
    assert_eq!(
        engine
            .unlock(&shop(), &prod(), "carol")
            .await
            .expect("stored"),
        Ok(UnlockOutcome::NotLocked)
    );
    let locked_count = app.audit("locked").await.len();
    assert_eq!(locked_count, 1, "the second /lock changed nothing");
    app.teardown().await;
}

#[tokio::test]
async fn a_github_workflow_deploy_is_dispatched_once_with_the_deployment_as_inputs() {
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let slack = FakeSlack::start().await;
    let github = MockServer::start().await;
    let app = start(
        &slack,
        &format!(
        "{}\n[github]\nwebhook_secret = \"webhook-secret\"\ntoken = \"gh-token\"\napi_url = \"{}\"\n",
        config(
            &slack,
            r#"deploy = { kind = "github-workflow", workflow = "deploy.yml", ref = "main" }"#,
                None
            ),
            github.uri()
        ),
    )
    .await;
    let request = staging_healthy(&app, NEW).await;
    let id = 1 + app
        .storage()
        .current_deployment(&shop(), &environment("staging"))
        .await
        .expect("read")
        .expect("staging deployment")
        .id;
    Mock::given(method("POST"))
        .and(path(
            "/repos/acme/shop/actions/workflows/deploy.yml/dispatches",
        ))
        .and(header("authorization", "Bearer gh-token"))
        .and(header("accept", "application/vnd.github+json"))
        .and(body_json(json!({"ref": "main", "inputs": {
            "sha": NEW, "image": image(NEW), "environment": "production",
            "deployment_id": id.to_string()}})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&github)
        .await;
    approve(&app, request).await;
    app.deliver_due().await;
    assert_eq!(
        running(&app).await.id,
        id,
        "the dispatched deployment is the one deploying"
    );
    slack_with(
        &slack,
        "chat.postMessage",
        "approved for production by carol",
    )
    .await;
    for _ in 0..3 {
        app.clock.advance(chrono::Duration::minutes(5));
        app.deliver_due().await;
    }
    // The workflow reports back through GitHub's deployment_status or a `deployed` event
    // without the id: it completes the deployment Greenlight started.
    let reply = report(&app, ci::deployed("production", NEW, "success")).await;
    assert_eq!(reply["deployment"]["id"], id);
    assert_eq!(
        headline(&app, request).await,
        "shop → production: deployed and healthy"
    );
    app.teardown().await;
}

#[tokio::test]
async fn a_command_deploy_cut_short_by_a_restart_fails_as_interrupted_and_never_runs_again() {
    let slack = FakeSlack::start().await;
    let scripts = tempfile::tempdir().expect("temporary folder");
    let (script, runs) = slow_deploy_script(scripts.path());
    let deploy = format!(
        r#"deploy = {{ kind = "command", run = ["{script}", "{{deployment_id}}"], timeout = "10m" }}"#
    );
    let app = start(&slack, &config(&slack, &deploy, None)).await;
    let request = approved(&app, &slack, NEW).await;
    let id = running(&app).await.id;
    assert!(
        deployment(&app, id).await.deployer_ref.is_some(),
        "the command was started"
    );

    // Stopping Greenlight kills the command and records why.
    let app = app.restart().await;
    let interrupted = deployment(&app, id).await;
    assert_eq!(interrupted.state, DeploymentState::Failed);
    let detail = interrupted.detail.expect("detail");
    assert!(detail.starts_with("interrupted"), "{detail}");
    for _ in 0..3 {
        app.clock.advance(chrono::Duration::minutes(5));
        app.deliver_due().await;
    }
    let ran = std::fs::read_to_string(&runs).unwrap_or_default();
    assert!(
        ran.lines().count() <= 1,
        "run again after the restart: {ran}"
    );
    assert_eq!(
        headline(&app, request).await,
        "shop → production: approved — deploy failed"
    );
    slack_with(&slack, "chat.postMessage", "interrupted").await;

    // A crash gives no chance to record anything: the next start finds the command deploy
    // still marked running and fails it the same way.
    let release = app
        .storage()
        .release(&shop(), &sha(NEW))
        .await
        .expect("release");
    let orphan = app
        .storage()
        .insert_deployment(greenlight_storage::NewDeployment {
            release_id: release.id,
            environment: prod(),
            kind: DeploymentKind::Deploy,
            state: DeploymentState::Deploying,
            previous_sha: None,
            deployer: Some("command".to_owned()),
            deployer_ref: Some("command started by a process that was killed".to_owned()),
            triggered_by: Some("test".to_owned()),
            smoke: Vec::new(),
            detail: None,
            approved: true,
            at: app.clock.now(),
        })
        .await
        .expect("insert");
    let app = app.restart().await;
    let failed = deployment(&app, orphan.id).await;
    assert_eq!(failed.state, DeploymentState::Failed);
    assert!(
        failed
            .detail
            .as_deref()
            .is_some_and(|d| d.starts_with("interrupted")),
        "{failed:?}"
    );
    app.deliver_due().await;
    slack_with(&slack, "chat.postMessage", "interrupted").await;
    app.teardown().await;
}
