//! CI reports builds and deployments over `POST /api/v1/events`; the release log and the read
//! APIs show what happened.

use greenlight_storage::ReleaseFilter;
use greenlight_tests::ci::{self, Fields};
use greenlight_tests::config::shop_app;
use greenlight_tests::{spawn_app_with, TestApp};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const NEWER: &str = "89abcdef0123456789abcdef0123456789abcdef";
const SHOP_TOKEN: &str = "shop-ci-token";
const WEB_TOKEN: &str = "web-ci-token";
const API_TOKEN: &str = "read-api-token";

fn config(staging_extra: &str) -> String {
    format!(
        r#"
[server]
api_token = "${{API_TOKEN}}"

[slack]
bot_token = "xoxb-unused"
signing_secret = "unused"
api_url = "http://127.0.0.1:9/api"

[people]
alice = {{ slack = "U012AB3CD", github = "alice" }}
bob = {{ slack = "U045EF6GH", github = "bob-gh" }}
carol = {{ slack = "U0CAROL01", github = "carol" }}

[groups]
sre = ["alice", "bob"]

{shop}
[apps.web]
image = "ghcr.io/acme/web"
ci_token = "${{WEB_CI_TOKEN}}"

[apps.web.environments.staging]
"#,
        shop = shop_app(
            r#"repository = "acme/shop"
ci_token = "${SHOP_CI_TOKEN}"
channels = { slack = "C0DEPLOYS" }"#,
            staging_extra,
            r#"reviewers = ["group:sre", "carol"]
required_approvals = 2
wait_timer = "5m""#,
        ),
    )
}

async fn start(staging_extra: &str) -> TestApp {
    spawn_app_with(
        &config(staging_extra),
        &[
            ("SHOP_CI_TOKEN", SHOP_TOKEN),
            ("WEB_CI_TOKEN", WEB_TOKEN),
            ("API_TOKEN", API_TOKEN),
        ],
    )
    .await
}

async fn read_api(app: &TestApp, path: &str) -> (u16, Value) {
    app.get_with_token(path, API_TOKEN).await
}

fn build(sha: &str) -> Value {
    ci::build(sha).with(json!({"ref": "refs/heads/main", "author": "alice",
        "message": "Fix checkout\n\nLonger body", "committed_at": "2026-11-26T10:00:00Z",
        "url": "https://ci.example/run/1"}))
}

fn deployed(sha: &str, status: &str) -> Value {
    ci::deployed("staging", sha, status).with(json!({"url": "https://ci.example/run/2"}))
}

async fn releases(app: &TestApp) -> Vec<greenlight_storage::ReleaseSummary> {
    app.storage()
        .list_releases(&ReleaseFilter {
            limit: 50,
            ..ReleaseFilter::default()
        })
        .await
        .expect("list releases")
}

#[tokio::test]
async fn a_build_is_recorded_once_however_often_ci_sends_it() {
    let app = start("").await;
    let (status, first) = ci::post(&app, Some(SHOP_TOKEN), &build(SHA)).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["release"]["sha"], SHA);
    assert_eq!(
        first["release"]["image"],
        format!("ghcr.io/acme/shop:{SHA}")
    );
    assert_eq!(
        first["release"]["commit_url"],
        format!("https://github.com/acme/shop/commit/{SHA}")
    );

    let (status, again) = ci::post(&app, Some(SHOP_TOKEN), &build(SHA)).await;
    assert_eq!(status, 202);
    assert_eq!(again, first, "a repeat answers exactly as the first time");
    assert_eq!(releases(&app).await.len(), 1);
    assert_eq!(app.audit("release_recorded").await.len(), 1);
    app.teardown().await;
}

#[tokio::test]
async fn tokens_are_checked_before_anything_else() {
    let app = start("").await;
    let (status, body) = ci::post(&app, None, &build(SHA)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "unauthorized");
    let (status, _) = ci::post(&app, Some("wrong"), &build(SHA)).await;
    assert_eq!(status, 401);
    // A garbage body with a wrong token is still a 401, not a 400: no parsing before auth.
    let (status, _) = ci::post_bytes(&app, Some("wrong"), b"not json".to_vec(), None).await;
    assert_eq!(status, 401);
    // Another app's token.
    let (status, body) = ci::post(&app, Some(WEB_TOKEN), &build(SHA)).await;
    assert_eq!(status, 403);
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("web")),
        "{body}"
    );
    assert!(releases(&app).await.is_empty());
    app.teardown().await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_changes_nothing() {
    let app = start("").await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"event": "build", "app": "shop", "sha": "abc123", "image": "x"}),
            422,
            "sha",
        ),
        (
            json!({"event": "build", "app": "shop", "sha": SHA, "image": "ghcr.io/acme/shop:latest"}),
            422,
            "mutable",
        ),
        (
            json!({"event": "build", "app": "shop", "sha": SHA, "image": format!("ghcr.io/acme/shop:{NEWER}")}),
            422,
            "names commit",
        ),
        (
            json!({"event": "build", "app": "shop", "sha": SHA, "image": format!("ghcr.io/evil/shop:{SHA}")}),
            422,
            "repository",
        ),
        (
            json!({"event": "build", "app": "shop", "sha": SHA, "image": format!("ghcr.io/acme/shop:{SHA}"), "committed_at": "last tuesday"}),
            422,
            "committed_at",
        ),
        (
            json!({"event": "deployed", "app": "shop", "environment": "qa", "sha": SHA, "status": "success", "image": format!("ghcr.io/acme/shop:{SHA}")}),
            422,
            "environment",
        ),
        (
            json!({"event": "deployed", "app": "shop", "environment": "staging", "sha": SHA, "status": "done"}),
            422,
            "status",
        ),
        (
            json!({"event": "deployed", "app": "shop", "environment": "staging", "sha": SHA, "status": "success"}),
            422,
            "send a `build` event first",
        ),
        (json!({"event": "promoted", "app": "shop"}), 422, "event"),
        (json!(["build"]), 400, "object"),
    ];
    for (body, expected_status, mention) in cases {
        let (status, reply) = ci::post(&app, Some(SHOP_TOKEN), &body).await;
        assert_eq!(status, expected_status, "{body} → {reply}");
        let detail = reply["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(mention),
            "{body}: detail {detail:?} lacks {mention:?}"
        );
    }
    for raw in [&b"{\"event\": \"build\""[..], b"", b"\xff\xfe"] {
        let (status, reply) = ci::post_bytes(&app, Some(SHOP_TOKEN), raw.to_vec(), None).await;
        assert_eq!(status, 400, "{raw:?} → {reply}");
        assert_eq!(reply["error"], "bad_request");
    }
    let (status, _) =
        ci::post_bytes(&app, Some(SHOP_TOKEN), vec![b' '; 2 * 1024 * 1024], None).await;
    assert_eq!(status, 413);
    assert!(releases(&app).await.is_empty());
    app.teardown().await;
}

#[tokio::test]
async fn healthy_in_staging_opens_the_production_approval() {
    let app = start("").await;
    ci::post(&app, Some(SHOP_TOKEN), &build(SHA)).await;
    let (status, reply) = ci::post(&app, Some(SHOP_TOKEN), &deployed(SHA, "success")).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["deployment"]["state"], "healthy");
    let request = &reply["approval_requests"][0];
    assert_eq!(request["environment"], "production");
    assert_eq!(request["state"], "waiting");
    assert_eq!(request["required_approvals"], 2);
    // The policy is stored with the request (not echoed: with a big group it is large).
    let id = request["id"].as_i64().expect("request id");
    let policy = app.storage().approval_policy(id).await.expect("policy");
    assert_eq!(policy["author_person"], "alice");
    assert_eq!(policy["reviewer_people"], json!(["alice", "bob", "carol"]));

    let (status, production) = read_api(&app, "/api/v1/apps/shop/environments/production").await;
    assert_eq!(status, 200, "{production}");
    assert_eq!(production["current"], Value::Null);
    let pending = &production["pending_approval"];
    assert_eq!(pending["sha"], SHA);
    assert_eq!(pending["state"], "waiting");
    assert_eq!(pending["required"], 2);
    assert_eq!(pending["approvals"], json!([]));
    let opens =
        chrono::DateTime::parse_from_rfc3339(pending["opens_at"].as_str().expect("opens_at"))
            .expect("time");
    let healthy = chrono::DateTime::parse_from_rfc3339(
        reply["deployment"]["healthy_at"]
            .as_str()
            .expect("healthy_at"),
    )
    .expect("time");
    assert_eq!(opens - healthy, chrono::Duration::minutes(5), "wait_timer");

    let (status, staging) = read_api(&app, "/api/v1/apps/shop/environments/staging").await;
    assert_eq!(status, 200);
    assert_eq!(staging["current"]["sha"], SHA);
    assert_eq!(staging["current"]["state"], "healthy");
    app.teardown().await;
}

#[tokio::test]
async fn a_deployed_event_for_an_unknown_release_creates_it_when_it_names_the_image() {
    let app = start("").await;
    let mut event = deployed(SHA, "success");
    event["image"] = json!(format!("ghcr.io/acme/shop@sha256:{}", "a".repeat(64)));
    let (status, reply) = ci::post(&app, Some(SHOP_TOKEN), &event).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["release"]["image"], event["image"]);
    assert_eq!(releases(&app).await.len(), 1);
    app.teardown().await;
}

#[tokio::test]
async fn failing_ci_smoke_makes_the_release_not_promotable() {
    let app = start("").await;
    ci::post(&app, Some(SHOP_TOKEN), &build(SHA)).await;
    let mut event = deployed(SHA, "success");
    event["smoke"] = json!({"status": "failed", "checks": [
        {"name": "health", "status": "passed", "duration_ms": 12, "detail": "200 OK"},
        {"name": "checkout", "status": "failed", "duration_ms": 5003, "detail": "503 Service Unavailable"}
    ]});
    let (status, reply) = ci::post(&app, Some(SHOP_TOKEN), &event).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["deployment"]["state"], "faulty");
    assert_eq!(reply["approval_requests"], json!([]));

    let (status, log) = read_api(&app, "/api/v1/releases?app=shop").await;
    assert_eq!(status, 200);
    let staging = &log["releases"][0]["environments"]["staging"];
    assert_eq!(staging["state"], "faulty");
    assert_eq!(staging["smoke"][1]["detail"], "503 Service Unavailable");
    assert_eq!(log["releases"][0]["environments"].get("production"), None);
    app.teardown().await;
}

#[tokio::test]
async fn a_failed_deploy_is_recorded_as_failed() {
    let app = start("").await;
    ci::post(&app, Some(SHOP_TOKEN), &build(SHA)).await;
    let (status, reply) = ci::post(&app, Some(SHOP_TOKEN), &deployed(SHA, "failure")).await;
    assert_eq!(status, 202);
    assert_eq!(reply["deployment"]["state"], "failed");
    assert_eq!(reply["approval_requests"], json!([]));
    app.teardown().await;
}

#[tokio::test]
async fn a_newer_release_supersedes_the_waiting_one() {
    let app = start("").await;
    for sha in [SHA, NEWER] {
        ci::post(&app, Some(SHOP_TOKEN), &build(sha)).await;
        ci::post(&app, Some(SHOP_TOKEN), &deployed(sha, "success")).await;
    }
    let (_, production) = read_api(&app, "/api/v1/apps/shop/environments/production").await;
    assert_eq!(production["pending_approval"]["sha"], NEWER);
    let (_, log) = read_api(&app, "/api/v1/releases?app=shop&environment=production").await;
    let states: Vec<(&str, &str)> = log["releases"]
        .as_array()
        .expect("releases")
        .iter()
        .map(|r| {
            (
                r["sha"].as_str().unwrap_or_default(),
                r["environments"]["production"]["state"]
                    .as_str()
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(states, vec![(NEWER, "waiting"), (SHA, "superseded")]);
    // And staging now runs the newer release; the older one is superseded there too.
    let (_, staging) = read_api(&app, "/api/v1/apps/shop/environments/staging").await;
    assert_eq!(staging["current"]["sha"], NEWER);
    app.teardown().await;
}

#[tokio::test]
async fn the_same_deployment_reported_twice_is_one_deployment() {
    let app = start("").await;
    ci::post(&app, Some(SHOP_TOKEN), &build(SHA)).await;
    let (_, first) = ci::post(&app, Some(SHOP_TOKEN), &deployed(SHA, "success")).await;
    let (status, second) = ci::post(&app, Some(SHOP_TOKEN), &deployed(SHA, "success")).await;
    assert_eq!(status, 202);
    assert_eq!(first, second);

    // With an Idempotency-Key, the key decides: same key, same answer, whatever the body.
    let body = build(NEWER).to_string().into_bytes();
    let (_, keyed) = ci::post_bytes(&app, Some(SHOP_TOKEN), body, Some("run-7")).await;
    let other = build(SHA).to_string().into_bytes();
    let (status, repeat) = ci::post_bytes(&app, Some(SHOP_TOKEN), other, Some("run-7")).await;
    assert_eq!(status, 202);
    assert_eq!(keyed, repeat);
    let log = releases(&app).await;
    assert_eq!(log.len(), 2);
    let staging_deployments = log
        .iter()
        .filter(|r| {
            r.environments.contains_key(
                &greenlight_commands::EnvironmentName::parse("staging").expect("name"),
            )
        })
        .count();
    assert_eq!(staging_deployments, 1);
    app.teardown().await;
}

#[tokio::test]
async fn greenlights_own_smoke_checks_decide_promotion() {
    let staging = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"database": "ok"})))
        .mount(&staging)
        .await;
    Mock::given(method("GET"))
        .and(path("/broken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"database": "error"})))
        .mount(&staging)
        .await;
    let smoke = |route: &str| {
        format!(
            "smoke = [{{ name = \"health\", url = \"{}{route}\", expect_json = {{ database = \"ok\" }} }}]",
            staging.uri()
        )
    };

    // Passing checks: verifying, then healthy with the approval opened.
    let app = start(&smoke("/health")).await;
    ci::post(&app, Some(SHOP_TOKEN), &build(SHA)).await;
    let (_, reply) = ci::post(&app, Some(SHOP_TOKEN), &deployed(SHA, "success")).await;
    assert_eq!(reply["deployment"]["state"], "verifying");
    assert_eq!(reply["approval_requests"], json!([]));
    app.state
        .engine
        .run_due_verifications()
        .await
        .expect("verify");
    let (_, production) = read_api(&app, "/api/v1/apps/shop/environments/production").await;
    assert_eq!(production["pending_approval"]["sha"], SHA);
    let (_, staging_status) = read_api(&app, "/api/v1/apps/shop/environments/staging").await;
    assert_eq!(staging_status["current"]["state"], "healthy");
    assert_eq!(staging_status["current"]["smoke"][0]["status"], "passed");
    app.teardown().await;

    // Failing checks: faulty, not promotable, with the check's detail.
    let app = start(&smoke("/broken")).await;
    ci::post(&app, Some(SHOP_TOKEN), &build(SHA)).await;
    ci::post(&app, Some(SHOP_TOKEN), &deployed(SHA, "success")).await;
    app.state
        .engine
        .run_due_verifications()
        .await
        .expect("verify");
    let (_, staging_status) = read_api(&app, "/api/v1/apps/shop/environments/staging").await;
    assert_eq!(staging_status["current"]["state"], "faulty");
    let detail = staging_status["current"]["smoke"][0]["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(detail.contains("database"), "{detail}");
    let (_, production) = read_api(&app, "/api/v1/apps/shop/environments/production").await;
    assert_eq!(production["pending_approval"], Value::Null);
    app.teardown().await;
}

#[tokio::test]
async fn read_apis_need_the_api_token() {
    let app = start("").await;
    for path in [
        "/api/v1/releases",
        "/api/v1/apps/shop/environments/production",
    ] {
        let anonymous = app.get(path).await;
        assert_eq!(anonymous.status(), 401, "{path}");
        let wrong = app
            .client
            .get(app.url(path))
            .bearer_auth("nope")
            .send()
            .await
            .expect("request");
        assert_eq!(wrong.status(), 401, "{path}");
    }
    let (status, _) = read_api(&app, "/api/v1/releases?limit=0").await;
    assert_eq!(status, 422);
    let (status, _) = read_api(&app, "/api/v1/apps/shop/environments/qa").await;
    assert_eq!(status, 404);
    let (status, body) = read_api(&app, "/api/v1/releases").await;
    assert_eq!((status, body), (200, json!({"releases": []})));
    app.teardown().await;

    // Without an api_token configured the API is off and says how to turn it on.
    let app = greenlight_tests::spawn_app().await;
    let response = app.get("/api/v1/releases").await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("JSON");
    assert!(body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("server.api_token")));
    app.teardown().await;
}

#[tokio::test]
async fn a_refused_webhook_delivery_is_not_remembered_as_applied() {
    use greenlight::engine::{Dedup, DeploymentReport, IntakeError, ReportedStatus};
    use greenlight_commands::{AppName, CommitSha, EnvironmentName};

    let app = start("").await;
    let report = DeploymentReport {
        app: AppName::parse("shop").expect("app"),
        environment: EnvironmentName::parse("staging").expect("env"),
        sha: CommitSha::parse(SHA).expect("sha"),
        status: ReportedStatus::Success,
        image: None,
        smoke: None,
        deployment_id: None,
        url: None,
        detail: None,
        actor: "github:octocat".to_owned(),
    };
    let delivery = || Dedup::Delivery {
        source: "github",
        id: "delivery-1".to_owned(),
    };
    let refused = app
        .state
        .engine
        .record_deployment(report.clone(), delivery())
        .await;
    assert!(
        matches!(refused, Err(IntakeError::UnknownRelease { .. })),
        "{refused:?}"
    );

    // Once the build is known, the same delivery (redelivered from GitHub's UI) applies.
    ci::post(&app, Some(SHOP_TOKEN), &build(SHA)).await;
    let applied = app
        .state
        .engine
        .record_deployment(report.clone(), delivery())
        .await
        .expect("applied");
    assert!(!applied.duplicate);
    assert_eq!(applied.body["deployment"]["state"], "healthy");
    let again = app
        .state
        .engine
        .record_deployment(report, delivery())
        .await
        .expect("duplicate");
    assert!(again.duplicate);
    app.teardown().await;
}
