//! The setup the deploy and gate-integrity tests share: shop, whose production is approved by
//! carol alone and deployed by Greenlight, with Slack as its channel and a manual clock.

use greenlight_storage::Deployment;
use serde_json::Value;

use crate::ci::{self, Fields};
use crate::clock::manual_clock;
use crate::config::{shop_app, slack_section};
use crate::fakes::{FakeProduction, FakeSlack};
use crate::shop::{production, shop};
use crate::{spawn_app_with_clock, TestApp};

/// The secret the deploy hook and Greenlight share (`${HOOK_SECRET}`).
pub const HOOK_SECRET: &str = "deploy-hook-secret";
/// A token for the read APIs.
pub const API_TOKEN: &str = "read-api-token";
/// shop's CI token.
pub const CI_TOKEN: &str = "shop-ci";
/// shop's Slack channel.
pub const CHANNEL: &str = "C0DEPLOYS";
/// Slack ids: alice writes the code, carol approves and operates.
pub const ALICE: &str = "U0ALICE01";
pub const CAROL: &str = "U0CAROL01";

/// Slack on; production runs `deploy` (CI deploys when empty) and, when `production` is given,
/// checks its health 30 s after each deploy.
pub fn config(slack: &FakeSlack, deploy: &str, production: Option<&FakeProduction>) -> String {
    let smoke = production
        .map(crate::config::health_smoke)
        .unwrap_or_default();
    format!(
        r#"
[server]
api_token = "{API_TOKEN}"

{slack}
[people]
alice = {{ slack = "{ALICE}", github = "alice" }}
carol = {{ slack = "{CAROL}", github = "carol" }}

{shop}"#,
        slack = slack_section(slack),
        shop = shop_app(
            &format!(
                "repository = \"acme/shop\"\nci_token = \"{CI_TOKEN}\"\n\
                 channels = {{ slack = \"{CHANNEL}\" }}\noperators = [\"carol\"]"
            ),
            "",
            &format!("reviewers = [\"carol\"]\n{deploy}\n{smoke}"),
        ),
    )
}

/// Greenlight on `config`, with the hook's secret in its environment, at the manual clock's
/// start.
pub async fn start(config: &str) -> TestApp {
    spawn_app_with_clock(config, &[("HOOK_SECRET", HOOK_SECRET)], manual_clock()).await
}

/// CI reports `event` for shop; it must be accepted.
pub async fn report(app: &TestApp, event: Value) -> Value {
    ci::report(app, CI_TOKEN, event).await
}

/// CI reports the build of `sha` by alice.
pub async fn build(app: &TestApp, sha: &str) {
    let message = format!("Change {}", &sha[..7]);
    report(
        app,
        ci::build(sha).with(serde_json::json!({"author": "alice", "message": message})),
    )
    .await;
}

/// Builds `sha` and reports it healthy in staging; returns the production approval request.
pub async fn staging_healthy(app: &TestApp, sha: &str) -> i64 {
    build(app, sha).await;
    let answer = report(app, ci::deployed("staging", sha, "success")).await;
    ci::opened_request(&answer)
}

/// Carol approves `request` (alone enough).
pub async fn approve(app: &TestApp, request: i64) {
    app.approve_on_slack(request, CAROL).await;
}

/// Lets `smoke_settle` pass and runs production's checks.
pub async fn verify(app: &TestApp) {
    app.clock.advance(chrono::Duration::seconds(31));
    app.state
        .engine
        .run_due_verifications()
        .await
        .expect("verification");
}

/// What runs in production now.
pub async fn running(app: &TestApp) -> Deployment {
    app.storage()
        .current_deployment(&shop(), &production())
        .await
        .expect("read")
        .expect("something runs in production")
}

/// A deploy script that records each run (`run <deployment id>`) in the returned file, then
/// takes a minute: long enough that the test decides how it ends.
pub fn slow_deploy_script(dir: &std::path::Path) -> (String, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let runs = dir.join("runs");
    let script = dir.join("slow-deploy.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"run $1\" >> '{}'\nexec sleep 60\n",
            runs.display()
        ),
    )
    .expect("write the script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .expect("make it executable");
    (script.display().to_string(), runs)
}
