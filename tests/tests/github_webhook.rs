//! `POST /webhooks/github` through the real app: GitHub's own example payloads, signed as
//! GitHub signs them, and what each leaves in the release log.

use greenlight_commands::{CommitSha, EnvironmentName};
use greenlight_storage::{gates, AuditEntry, AuditFilter, ReleaseFilter, ReleaseSummary};
use greenlight_tests::config::{shop_app, slack_section};
use greenlight_tests::fakes::FakeSlack;
use greenlight_tests::inbound::github::{self as from_github, delivery_id, protection_rule};
use greenlight_tests::shop::{production, sha, shop};
use greenlight_tests::signing::github_signature;
use greenlight_tests::{fixtures, spawn_app, spawn_app_with, TestApp};
use serde_json::{json, Value};

const SECRET: &str = "It's a Secret to Everybody";
const OLD_SECRET: &str = "the secret before rotation";
const API_TOKEN: &str = "read-api-token";
/// The sha of the deployments in the fixtures.
const FIXTURE_SHA: &str = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e";
const OTHER_SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const LIMIT: usize = 25 * 1024 * 1024;

/// Greenlight with GitHub webhooks on, app `shop` built from the fixtures' `Codertocat/Hello-World`
/// (staging, then a gated production) and app `octo` from `octo-org/octo-repo`. Slack is the
/// card channel a gated environment needs, pointed at a fake: the tests read what it is told,
/// not the cards (slack_approvals' subject).
struct GithubBot {
    app: TestApp,
    slack: FakeSlack,
}

impl GithubBot {
    async fn start() -> Self {
        Self::start_with_secret(r#""${GITHUB_WEBHOOK_SECRET}""#).await
    }

    async fn start_with_secret(webhook_secret: &str) -> Self {
        let slack = FakeSlack::start().await;
        slack.allow_unread_cards("GitHub webhook tests read announcements, not cards");
        let config = format!(
            r#"
            [server]
            api_token = "${{API_TOKEN}}"

            {slack}
            [github]
            webhook_secret = {webhook_secret}

            [people]
            alice = {{ slack = "U0ALICE", github = "alice" }}

            {shop}
            [apps.octo]
            repository = "octo-org/octo-repo"
            image = "ghcr.io/octo-org/octo-repo"
            ci_token = "${{OCTO_CI_TOKEN}}"

            [apps.octo.environments.production]
            "#,
            slack = slack_section(&slack),
            shop = shop_app(
                r#"repository = "Codertocat/Hello-World"
ci_token = "${SHOP_CI_TOKEN}"
channels = { slack = "C0DEPLOYS" }"#,
                "",
                "reviewers = [\"alice\"]\napproval_timeout = \"2h\"",
            ),
        );
        let app = spawn_app_with(
            &config,
            &[
                ("GITHUB_WEBHOOK_SECRET", SECRET),
                ("GITHUB_WEBHOOK_SECRET_OLD", OLD_SECRET),
                ("API_TOKEN", API_TOKEN),
                ("SHOP_CI_TOKEN", "shop-ci-token"),
                ("OCTO_CI_TOKEN", "octo-ci-token"),
            ],
        )
        .await;
        Self { app, slack }
    }

    /// Delivers `body` as GitHub does: signed with the webhook secret, a fresh delivery id.
    async fn deliver(&self, event: &str, body: &[u8]) -> (u16, Value) {
        self.deliver_as(event, &delivery_id(), body).await
    }

    async fn deliver_as(&self, event: &str, delivery: &str, body: &[u8]) -> (u16, Value) {
        let response =
            from_github::deliver(&self.app, SECRET, event, delivery, body.to_vec()).await;
        answer(response).await
    }

    async fn deliver_json(&self, event: &str, payload: &Value) -> (u16, Value) {
        self.deliver(event, payload.to_string().as_bytes()).await
    }

    /// A POST with exactly these headers (plus `Content-Type: application/json`).
    async fn send(&self, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Value) {
        answer(from_github::post(&self.app, headers, body).await).await
    }

    /// The next message to the channel that mentions `needle` (cards aside).
    async fn announced(&self, needle: &str) {
        self.slack
            .next_call_mentioning("chat.postMessage", "C0DEPLOYS", needle)
            .await;
    }

    async fn releases(&self, app: &str) -> Vec<ReleaseSummary> {
        self.app
            .storage()
            .list_releases(&ReleaseFilter {
                app: Some(app.to_owned()),
                environment: None,
                limit: 50,
            })
            .await
            .expect("list releases")
    }

    async fn audit(&self, app: &str, kind: &str) -> Vec<AuditEntry> {
        self.app
            .storage()
            .list_audit(&AuditFilter {
                app: Some(app.to_owned()),
                environment: None,
                before_id: None,
                limit: 500,
            })
            .await
            .expect("list audit")
            .into_iter()
            .filter(|entry| entry.kind == kind)
            .collect()
    }

    async fn teardown(self) {
        self.app.teardown().await;
    }
}

/// The status and JSON body of the webhook's answer, which must be JSON.
async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("response body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("a JSON answer, got {status} {text:?}"));
    (status, body)
}

/// GitHub's `deployment_status` example (success, production), moved to `environment` and `sha`
/// with the given `state`.
fn deployment_status(state: &str, environment: &str, sha: &str) -> Value {
    let mut payload = fixtures::read_json("github/deployment_status/0-created.json");
    payload["deployment_status"]["state"] = json!(state);
    payload["deployment_status"]["environment"] = json!(environment);
    payload["deployment"]["environment"] = json!(environment);
    payload["deployment"]["original_environment"] = json!(environment);
    payload["deployment"]["sha"] = json!(sha);
    payload
}

const CALLBACK_URL: &str =
    "https://api.github.com/repos/Codertocat/Hello-World/actions/runs/1/deployment_protection_rule";

fn environment_state<'a>(release: &'a ReleaseSummary, environment: &str) -> Option<&'a str> {
    let name = EnvironmentName::parse(environment).expect("environment name");
    release
        .environments
        .get(&name)
        .map(|outcome| outcome.state.as_str())
}

#[tokio::test]
async fn every_github_example_payload_is_answered_without_a_server_error() {
    let bot = GithubBot::start().await;
    let examples = fixtures::all_under("github");
    // Every event folder of @octokit/webhooks-examples that the fixtures hold.
    let mut events: Vec<&str> = examples
        .iter()
        .filter_map(|(path, _)| path.split('/').nth(1))
        .collect();
    events.dedup();
    assert_eq!(
        events,
        ["deployment", "deployment_status", "ping", "workflow_run"],
        "fixtures found: {}",
        examples.len()
    );
    for (path, body) in &examples {
        // github/<event>/<n>-<action>.json
        let event = path.split('/').nth(1).expect("an event folder");
        let (status, answer) = bot.deliver(event, body).await;
        assert_eq!(status, 200, "{path}: {answer}");
        assert_eq!(answer["ok"], true, "{path}: {answer}");
    }
    // The messy completed run (status `queued`, null conclusion) was recorded for shop, and the
    // two octo-org runs for octo.
    assert_eq!(bot.audit("shop", "workflow_run_completed").await.len(), 1);
    assert_eq!(bot.audit("octo", "workflow_run_completed").await.len(), 2);
    // The three successful production deployment statuses of shop were recorded.
    let releases = bot.releases("shop").await;
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].release.sha.as_str(), FIXTURE_SHA);
    assert_eq!(
        releases[0].release.image,
        format!("ghcr.io/acme/shop:{FIXTURE_SHA}")
    );
    // Nobody approved them in Greenlight: each is announced as a deploy around the gate.
    for _ in 0..3 {
        bot.announced("deployed to production without approval")
            .await;
    }
    bot.teardown().await;
}

#[tokio::test]
async fn ping_answers_with_githubs_zen() {
    let bot = GithubBot::start().await;
    let body = fixtures::read("github/ping/0-event.json");
    let zen = fixtures::read_json("github/ping/0-event.json")["zen"].clone();
    let (status, answer) = bot.deliver("ping", &body).await;
    assert_eq!(status, 200);
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["zen"], zen);
    bot.teardown().await;
}

#[tokio::test]
async fn deliveries_without_a_valid_signature_are_401_and_change_nothing() {
    let bot = GithubBot::start().await;
    let body = deployment_status("success", "staging", FIXTURE_SHA)
        .to_string()
        .into_bytes();
    let delivery = delivery_id();
    let forged = format!("sha256={}", "ab".repeat(32));
    let wrong_secret = github_signature("not the secret", &body);
    let sha1_style = github_signature(SECRET, &body).replace("sha256=", "sha1=");
    let not_hex = "sha256=zz".to_owned();
    let cases: [(&str, Option<&str>); 5] = [
        ("forged", Some(&forged)),
        ("missing", None),
        ("wrong secret", Some(&wrong_secret)),
        ("sha1 prefix", Some(&sha1_style)),
        ("not hex", Some(&not_hex)),
    ];
    for (case, signature) in cases {
        let mut headers = vec![
            ("X-GitHub-Event", "deployment_status"),
            ("X-GitHub-Delivery", delivery.as_str()),
        ];
        if let Some(signature) = signature {
            headers.push(("X-Hub-Signature-256", signature));
        }
        let (status, answer) = bot.send(&headers, body.clone()).await;
        assert_eq!(status, 401, "{case}: {answer}");
        assert_eq!(answer["error"], "unauthorized", "{case}");
        let text = answer.to_string();
        assert!(!text.contains(SECRET), "{case}: {text}");
        assert!(
            !text.contains(&github_signature(SECRET, &body)[7..]),
            "{case} leaks the expected signature: {text}"
        );
    }
    // The signature is checked before the headers and the body: a bad request without one is
    // still a 401, telling an unauthenticated caller nothing more.
    let (status, _) = bot.send(&[], b"not json".to_vec()).await;
    assert_eq!(status, 401);

    assert!(bot.releases("shop").await.is_empty());
    // The refused attempts did not use up the delivery id: GitHub's real delivery goes through.
    let (status, answer) = bot.deliver_as("deployment_status", &delivery, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["duplicate"], Value::Null, "{answer}");
    assert_eq!(bot.releases("shop").await.len(), 1);
    bot.teardown().await;
}

#[tokio::test]
async fn both_secrets_of_a_rotation_list_are_accepted() {
    let bot = GithubBot::start_with_secret(
        r#"["${GITHUB_WEBHOOK_SECRET}", "${GITHUB_WEBHOOK_SECRET_OLD}"]"#,
    )
    .await;
    let body = fixtures::read("github/ping/1-event.json");
    for secret in [SECRET, OLD_SECRET] {
        let signature = github_signature(secret, &body);
        let (status, answer) = bot
            .send(
                &[
                    ("X-GitHub-Event", "ping"),
                    ("X-GitHub-Delivery", &delivery_id()),
                    ("X-Hub-Signature-256", &signature),
                ],
                body.clone(),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    let signature = github_signature("a third secret", &body);
    let (status, _) = bot
        .send(
            &[
                ("X-GitHub-Event", "ping"),
                ("X-GitHub-Delivery", &delivery_id()),
                ("X-Hub-Signature-256", &signature),
            ],
            body,
        )
        .await;
    assert_eq!(status, 401);
    bot.teardown().await;
}

#[tokio::test]
async fn malformed_deliveries_are_400_naming_what_is_wrong() {
    let bot = GithubBot::start().await;
    let full = deployment_status("success", "staging", FIXTURE_SHA).to_string();

    // Cut short in transit, but signed over exactly the bytes that arrived.
    let truncated = &full.as_bytes()[..full.len() / 2];
    let (status, answer) = bot.deliver("deployment_status", truncated).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "bad_request");
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not JSON")),
        "{answer}"
    );

    let (status, answer) = bot.deliver("deployment_status", b"this is not JSON").await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = bot.deliver("workflow_run", b"[1, 2, 3]").await;
    assert_eq!(status, 400, "{answer}");

    let mut without_sha = deployment_status("success", "staging", FIXTURE_SHA);
    without_sha["deployment"]
        .as_object_mut()
        .expect("deployment object")
        .remove("sha");
    let (status, answer) = bot.deliver_json("deployment_status", &without_sha).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["detail"], "deployment.sha: is required");

    let short_sha = deployment_status("success", "staging", "f95f852");
    let (status, answer) = bot.deliver_json("deployment_status", &short_sha).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("deployment.sha:")),
        "{answer}"
    );

    let mut state_not_text = deployment_status("success", "staging", FIXTURE_SHA);
    state_not_text["deployment_status"]["state"] = json!(null);
    let (status, answer) = bot.deliver_json("deployment_status", &state_not_text).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("deployment_status.state")),
        "{answer}"
    );

    let mut run = fixtures::read_json("github/workflow_run/1-completed.json");
    run["workflow_run"]
        .as_object_mut()
        .expect("workflow_run object")
        .remove("head_sha");
    let (status, answer) = bot.deliver_json("workflow_run", &run).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["detail"], "workflow_run.head_sha: is required");

    let mut rule = protection_rule("production", CALLBACK_URL);
    rule.as_object_mut()
        .expect("object")
        .remove("deployment_callback_url");
    let (status, answer) = bot.deliver_json("deployment_protection_rule", &rule).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["detail"], "deployment_callback_url: is required");

    // Both delivery headers are required.
    let body = full.clone().into_bytes();
    let signature = github_signature(SECRET, &body);
    let (status, answer) = bot
        .send(
            &[
                ("X-GitHub-Delivery", &delivery_id()),
                ("X-Hub-Signature-256", &signature),
            ],
            body.clone(),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["detail"]
        .as_str()
        .is_some_and(|d| d.contains("X-GitHub-Event")));
    let (status, answer) = bot
        .send(
            &[
                ("X-GitHub-Event", "deployment_status"),
                ("X-Hub-Signature-256", &signature),
            ],
            body,
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["detail"]
        .as_str()
        .is_some_and(|d| d.contains("X-GitHub-Delivery")));

    assert!(bot.releases("shop").await.is_empty());
    assert!(bot.audit("octo", "workflow_run_completed").await.is_empty());
    bot.teardown().await;
}

/// A `ping` of exactly `size` bytes: GitHub's example with a padding field.
fn ping_of_size(size: usize) -> Vec<u8> {
    let head = br#"{"zen":"Non-blocking is better than blocking.","padding":""#;
    let tail = br#""}"#;
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(head);
    body.resize(size - tail.len(), b'x');
    body.extend_from_slice(tail);
    body
}

#[tokio::test]
async fn the_route_takes_25_mb_while_the_others_keep_1_mb() {
    let bot = GithubBot::start().await;

    // Above both the server's 1 MB default and axum's own 2 MB one.
    let (status, answer) = bot.deliver("ping", &ping_of_size(3 * 1024 * 1024)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["zen"], "Non-blocking is better than blocking.");

    let (status, answer) = bot.deliver("ping", &ping_of_size(LIMIT)).await;
    assert_eq!(status, 200, "{answer}");

    let (status, answer) = bot.deliver("ping", &ping_of_size(LIMIT + 1)).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"], "payload_too_large");

    // The raised limit is this route's only: CI events still stop at 1 MB.
    let response = bot
        .app
        .client
        .post(bot.app.url("/api/v1/events"))
        .bearer_auth("shop-ci-token")
        .header("Content-Type", "application/json")
        .body(vec![b' '; 1024 * 1024 + 1])
        .send()
        .await
        .expect("POST /api/v1/events");
    assert_eq!(response.status(), 413);
    bot.teardown().await;
}

#[tokio::test]
async fn a_redelivery_is_answered_200_and_processed_once() {
    let bot = GithubBot::start().await;
    let body = deployment_status("success", "staging", FIXTURE_SHA)
        .to_string()
        .into_bytes();
    let delivery = delivery_id();
    let (status, first) = bot.deliver_as("deployment_status", &delivery, &body).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["deployments"][0]["deployment"]["state"], "healthy");
    let (status, again) = bot.deliver_as("deployment_status", &delivery, &body).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, json!({"ok": true, "duplicate": true}));

    let releases = bot.releases("shop").await;
    assert_eq!(releases.len(), 1);
    assert_eq!(bot.audit("shop", "deployment_healthy").await.len(), 1);
    assert_eq!(bot.audit("shop", "approval_requested").await.len(), 1);

    // Deliveries that change nothing are remembered too.
    for (event, body) in [
        ("push", b"{}".to_vec()),
        ("ping", fixtures::read("github/ping/2-event.json")),
        (
            "deployment",
            fixtures::read("github/deployment/1-created.json"),
        ),
    ] {
        let delivery = delivery_id();
        let (status, first) = bot.deliver_as(event, &delivery, &body).await;
        assert_eq!(status, 200, "{event}: {first}");
        assert_eq!(first["duplicate"], Value::Null, "{event}: {first}");
        let (status, again) = bot.deliver_as(event, &delivery, &body).await;
        assert_eq!(status, 200, "{event}: {again}");
        assert_eq!(again["duplicate"], true, "{event}: {again}");
    }
    bot.teardown().await;
}

#[tokio::test]
async fn a_successful_staging_deployment_opens_the_production_approval() {
    let bot = GithubBot::start().await;
    let (status, answer) = bot
        .deliver_json(
            "deployment_status",
            &deployment_status("success", "staging", FIXTURE_SHA),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let recorded = &answer["deployments"][0];
    assert_eq!(recorded["app"], "shop");
    assert_eq!(recorded["environment"], "staging");
    assert_eq!(
        recorded["approval_requests"][0]["environment"],
        "production"
    );

    // What people read: GET /api/v1/releases.
    let (status, log) = bot
        .app
        .get_with_token("/api/v1/releases?app=shop", API_TOKEN)
        .await;
    assert_eq!(status, 200);
    assert!(log.is_object(), "{log}");
    let release = &log["releases"][0];
    assert_eq!(release["sha"], FIXTURE_SHA);
    assert_eq!(release["image"], format!("ghcr.io/acme/shop:{FIXTURE_SHA}"));
    assert_eq!(release["environments"]["staging"]["state"], "healthy");
    assert_eq!(release["environments"]["production"]["state"], "waiting");

    let deployed = bot.audit("shop", "deployment_healthy").await;
    assert_eq!(deployed[0].actor, "github:Codertocat");
    bot.teardown().await;
}

#[tokio::test]
async fn failure_and_error_statuses_record_a_failed_deployment() {
    let bot = GithubBot::start().await;
    for (state, sha) in [("failure", FIXTURE_SHA), ("error", OTHER_SHA)] {
        let mut payload = deployment_status(state, "staging", sha);
        payload["deployment_status"]["description"] = json!("Deploy job exited with 1");
        let (status, answer) = bot.deliver_json("deployment_status", &payload).await;
        assert_eq!(status, 200, "{state}: {answer}");
        assert_eq!(answer["deployments"][0]["deployment"]["state"], "failed");
    }
    let releases = bot.releases("shop").await;
    assert_eq!(releases.len(), 2);
    for release in &releases {
        assert_eq!(environment_state(release, "staging"), Some("failed"));
        assert_eq!(environment_state(release, "production"), None);
    }
    assert!(bot.audit("shop", "approval_requested").await.is_empty());
    bot.teardown().await;
}

#[tokio::test]
async fn the_deployment_payload_may_name_the_image() {
    let bot = GithubBot::start().await;
    let digest = format!("ghcr.io/acme/shop@sha256:{}", "a1".repeat(32));
    let mut payload = deployment_status("success", "staging", FIXTURE_SHA);
    payload["deployment"]["payload"] = json!({ "image": digest });
    let (status, answer) = bot.deliver_json("deployment_status", &payload).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(bot.releases("shop").await[0].release.image, digest);

    // A mutable tag is refused like any CI report of one, naming where GitHub carried it.
    let mut payload = deployment_status("success", "staging", OTHER_SHA);
    payload["deployment"]["payload"] = json!({ "image": "ghcr.io/acme/shop:latest" });
    let (status, answer) = bot.deliver_json("deployment_status", &payload).await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("deployment.payload.image:")),
        "{answer}"
    );
    assert_eq!(bot.releases("shop").await.len(), 1);
    bot.teardown().await;
}

#[tokio::test]
async fn deliveries_greenlight_does_not_use_are_ignored_with_a_reason() {
    let bot = GithubBot::start().await;
    let cases = [
        (
            "deployment_status",
            fixtures::read_json("github/deployment_status/1-created.json"),
            "github-pages",
        ),
        (
            "deployment_status",
            deployment_status("in_progress", "staging", FIXTURE_SHA),
            "in_progress",
        ),
        (
            "deployment_status",
            {
                let mut other = deployment_status("success", "staging", FIXTURE_SHA);
                other["repository"]["full_name"] = json!("someone/else");
                other
            },
            "someone/else is not configured",
        ),
        (
            "workflow_run",
            fixtures::read_json("github/workflow_run/3-requested.json"),
            "requested",
        ),
        ("push", json!({"ref": "refs/heads/main"}), "push"),
    ];
    for (event, payload, reason) in cases {
        let (status, answer) = bot.deliver_json(event, &payload).await;
        assert_eq!(status, 200, "{event}: {answer}");
        assert_eq!(answer["ignored"], true, "{event}: {answer}");
        assert!(
            answer["reason"]
                .as_str()
                .is_some_and(|r| r.contains(reason)),
            "{event}: expected the reason to mention {reason:?}: {answer}"
        );
    }
    assert!(bot.releases("shop").await.is_empty());
    assert!(bot.audit("octo", "workflow_run_completed").await.is_empty());
    bot.teardown().await;
}

#[tokio::test]
async fn a_completed_workflow_run_is_recorded_for_lead_time() {
    let bot = GithubBot::start().await;
    let delivery = delivery_id();
    let body = fixtures::read("github/workflow_run/0-completed.json");
    let (status, answer) = bot.deliver_as("workflow_run", &delivery, &body).await;
    assert_eq!(status, 200, "{answer}");
    let (status, again) = bot.deliver_as("workflow_run", &delivery, &body).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true);

    let entries = bot.audit("shop", "workflow_run_completed").await;
    assert_eq!(entries.len(), 1, "{entries:#?}");
    let entry = &entries[0];
    assert_eq!(
        entry.sha.as_ref().map(CommitSha::as_str),
        Some("5779607b49aab1200488439f02372c57b4f75444")
    );
    assert_eq!(entry.actor, "github:Codertocat");
    let detail = &entry.detail;
    assert_eq!(detail["workflow"], "Manually triggered workflow");
    assert_eq!(detail["run_id"], 1589141559);
    // GitHub's example really is this messy; it is kept as sent.
    assert_eq!(detail["status"], "queued");
    assert_eq!(detail["conclusion"], Value::Null);
    assert_eq!(detail["head_branch"], "main");
    assert_eq!(
        detail["html_url"],
        "https://github.com/octo-org/octo-repo/actions/runs/1589141559"
    );
    assert_eq!(detail["run_started_at"], "2021-12-16T19:37:22Z");
    assert_eq!(detail["updated_at"], "2021-12-16T19:37:22Z");
    assert_eq!(detail["duration_secs"], 0);
    bot.teardown().await;
}

#[tokio::test]
async fn a_protection_rule_request_stores_a_gate_for_the_gated_environment() {
    let bot = GithubBot::start().await;
    let delivery = delivery_id();
    // GitHub's spelling of the environment is kept for the callback.
    let body = protection_rule("Production", CALLBACK_URL)
        .to_string()
        .into_bytes();
    let (status, answer) = bot
        .deliver_as("deployment_protection_rule", &delivery, &body)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["gate"]["environment"], "production");

    let (app, production, sha) = (shop(), production(), sha(FIXTURE_SHA));
    let waiting = {
        let mut conn = bot.app.storage().reader().await.expect("reader");
        gates::waiting_github_gates(&mut conn, &app, &production, &sha)
            .await
            .expect("waiting gates")
    };
    assert_eq!(waiting.len(), 1, "{waiting:#?}");
    let gate = &waiting[0];
    assert_eq!(gate.callback_url, CALLBACK_URL);
    assert_eq!(gate.installation_id, Some(2311213));
    assert_eq!(gate.github_environment, "Production");
    assert_eq!(gate.answer, None);
    assert_eq!(
        gate.expires_at - gate.received_at,
        chrono::Duration::hours(2)
    );
    assert_eq!(bot.audit("shop", "github_gate_requested").await.len(), 1);

    // A redelivery, and the same callback in a new delivery, still make one gate.
    let (status, again) = bot
        .deliver_as("deployment_protection_rule", &delivery, &body)
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    let (status, same) = bot.deliver("deployment_protection_rule", &body).await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["gate"]["id"], gate.id);
    let mut conn = bot.app.storage().reader().await.expect("reader");
    let waiting = gates::waiting_github_gates(&mut conn, &app, &production, &sha)
        .await
        .expect("waiting gates");
    drop(conn);
    assert_eq!(waiting.len(), 1);
    assert_eq!(bot.audit("shop", "github_gate_requested").await.len(), 1);
    bot.teardown().await;
}

#[tokio::test]
async fn protection_rules_are_only_kept_for_gated_environments_on_github() {
    let bot = GithubBot::start().await;
    let staging_callback =
        "https://api.github.com/repos/Codertocat/Hello-World/actions/runs/2/deployment_protection_rule";
    let (status, answer) = bot
        .deliver_json(
            "deployment_protection_rule",
            &protection_rule("staging", staging_callback),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ignored"], true, "{answer}");
    assert!(answer["reason"]
        .as_str()
        .is_some_and(|r| r.contains("no approval gate")));

    let (status, answer) = bot
        .deliver_json(
            "deployment_protection_rule",
            &protection_rule("github-pages", staging_callback),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ignored"], true, "{answer}");

    // The installation token will be sent to the callback: only to GitHub's API.
    let (status, answer) = bot
        .deliver_json(
            "deployment_protection_rule",
            &protection_rule("production", "https://collector.example/callback"),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["detail"]
        .as_str()
        .is_some_and(|d| d.starts_with("deployment_callback_url:")));

    assert!(bot.audit("shop", "github_gate_requested").await.is_empty());
    bot.teardown().await;
}

#[tokio::test]
async fn form_encoded_deliveries_are_read_from_their_payload_field() {
    let bot = GithubBot::start().await;
    let json = deployment_status("success", "staging", FIXTURE_SHA).to_string();
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &json)
        .finish();
    let signature = github_signature(SECRET, body.as_bytes());
    let response = bot
        .app
        .client
        .post(bot.app.url("/webhooks/github"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-GitHub-Event", "deployment_status")
        .header("X-GitHub-Delivery", delivery_id())
        .header("X-Hub-Signature-256", signature)
        .body(body)
        .send()
        .await
        .expect("POST /webhooks/github");
    assert_eq!(response.status(), 200);
    let releases = bot.releases("shop").await;
    assert_eq!(environment_state(&releases[0], "staging"), Some("healthy"));
    bot.teardown().await;
}

#[tokio::test]
async fn without_a_github_section_the_route_is_off() {
    let app = spawn_app().await;
    let body = fixtures::read("github/ping/0-event.json");
    let response = app
        .client
        .post(app.url("/webhooks/github"))
        .header("X-GitHub-Event", "ping")
        .header("X-GitHub-Delivery", delivery_id())
        .header("X-Hub-Signature-256", github_signature(SECRET, &body))
        .body(body)
        .send()
        .await
        .expect("POST /webhooks/github");
    assert_eq!(response.status(), 404);
    let answer: Value = response.json().await.expect("JSON");
    assert!(answer["detail"]
        .as_str()
        .is_some_and(|d| d.contains("[github]")));
    app.teardown().await;
}

#[tokio::test]
async fn a_production_deployment_status_nobody_approved_is_flagged() {
    let bot = GithubBot::start().await;
    // Anyone with write access to the repository can create a deployment and its status.
    let payload = deployment_status("success", "production", FIXTURE_SHA);
    let (status, answer) = bot.deliver_json("deployment_status", &payload).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["deployments"][0]["deployment"]["approved"], false,
        "{answer}"
    );
    let releases = bot.releases("shop").await;
    let production = &releases[0].environments[&production()];
    assert!(!production.approved);
    let flagged = bot.audit("shop", "unapproved_deploy").await;
    assert_eq!(flagged.len(), 1);
    assert!(flagged[0].actor.starts_with("github:"), "{:?}", flagged[0]);
    bot.announced("f95f852 deployed to production without approval (reported by GitHub")
        .await;
    bot.teardown().await;
}
