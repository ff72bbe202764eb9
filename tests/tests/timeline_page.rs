//! The release timeline page (SPEC §14): sign-in with the api_token or the one-time link,
//! what runs where, a waiting approval with its decisions, the timeline newest first and
//! paginated, the unknown-app page, and escaping of what CI sends.

use greenlight_commands::{DecisionVerdict, PersonName, Platform};
use greenlight_storage::NewDecision;
use greenlight_tests::approvals::{shop_config, staging_healthy, CI_TOKEN, STANDARD_POLICY};
use greenlight_tests::ci::{self, Fields};
use greenlight_tests::clock::manual_clock;
use greenlight_tests::{spawn_app_with, spawn_app_with_clock, TestApp};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::Response;
use serde_json::json;

const API_TOKEN: &str = "page-api-token";

fn config(server: &str) -> String {
    format!(
        "[server]\n{server}\n\n\
         [slack]\nbot_token = \"xoxb-unused\"\nsigning_secret = \"unused\"\n\
         api_url = \"http://127.0.0.1:9/api\"\n\n\
         [people]\nalice = {{ slack = \"U0ALICE01\" }}\nbob = {{ slack = \"U0BOB0001\" }}\ncarol = {{ slack = \"U0CAROL01\" }}\n\n{}",
        shop_config(r#"{ slack = "C0DEPLOYS" }"#, STANDARD_POLICY)
    )
}

async fn start() -> TestApp {
    spawn_app_with_clock(
        &config("api_token = \"${API_TOKEN}\""),
        &[("API_TOKEN", API_TOKEN)],
        manual_clock(),
    )
    .await
}

/// A browser that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("HTTP client")
}

async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> Response {
    let mut request = browser().get(app.url(path));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.send().await.expect("GET")
}

async fn sign_in(app: &TestApp, token: &str) -> Response {
    browser()
        .post(app.url("/sign-in"))
        .form(&[("token", token)])
        .send()
        .await
        .expect("POST /sign-in")
}

fn set_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get(SET_COOKIE)
        .map(|value| value.to_str().expect("ASCII").to_owned())
}

fn location(response: &Response) -> String {
    response.headers()[LOCATION]
        .to_str()
        .expect("ASCII")
        .to_owned()
}

/// Signs in with the api_token and returns the `Cookie` header to send.
async fn session(app: &TestApp) -> String {
    let response = sign_in(app, API_TOKEN).await;
    let cookie = set_cookie(&response).expect("a session cookie");
    cookie.split(';').next().expect("name=value").to_owned()
}

async fn page(app: &TestApp, path: &str, cookie: &str) -> String {
    let response = get(app, path, Some(cookie)).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.text().await.expect("a page")
}

fn sha(n: u32) -> String {
    format!("{n:07x}{}", "a".repeat(33))
}

#[tokio::test]
async fn the_page_asks_for_the_token_and_signs_in_with_a_signed_cookie() {
    let app = start().await;

    let response = get(&app, "/", None).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/sign-in");
    let response = get(&app, "/apps/shop", None).await;
    assert_eq!(response.status(), 303);

    let form = get(&app, "/sign-in", None)
        .await
        .text()
        .await
        .expect("form");
    assert!(form.contains("API token"), "{form}");
    assert!(form.contains(r#"type="password""#), "{form}");

    let wrong = sign_in(&app, "not-the-token").await;
    assert_eq!(wrong.status(), 401);
    assert!(set_cookie(&wrong).is_none());
    assert!(wrong.text().await.expect("form").contains("not accepted"));
    // The configured token never travels in a URL.
    let linked = get(&app, &format!("/sign-in?token={API_TOKEN}"), None).await;
    assert_eq!(linked.status(), 401);
    assert!(set_cookie(&linked).is_none());

    let right = sign_in(&app, API_TOKEN).await;
    assert_eq!(right.status(), 303);
    assert_eq!(location(&right), "/");
    let cookie = set_cookie(&right).expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "http public_url: {cookie}");
    let session = cookie.split(';').next().expect("name=value");
    assert!(page(&app, "/", session).await.contains("Timeline"));

    // Tampered: a later expiry under the old signature; forged: no signature at all.
    let (name, value) = session.split_once('=').expect("name=value");
    let mut parts: Vec<&str> = value.split('.').collect();
    let later = (chrono::Utc::now().timestamp() + 86_400 * 365).to_string();
    parts[1] = &later;
    for cookie in [
        format!("{name}={}", parts.join(".")),
        format!("{name}=v1.{later}"),
        format!("{name}=garbage"),
    ] {
        assert_eq!(
            get(&app, "/", Some(&cookie)).await.status(),
            303,
            "{cookie}"
        );
    }

    // Twelve hours later the session is over.
    app.clock.advance(chrono::Duration::hours(13));
    assert_eq!(get(&app, "/", Some(session)).await.status(), 303);
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_public_url_is_https() {
    let app = spawn_app_with(
        &config("api_token = \"${API_TOKEN}\"\npublic_url = \"https://greenlight.example\""),
        &[("API_TOKEN", API_TOKEN)],
    )
    .await;
    let cookie = set_cookie(&sign_in(&app, API_TOKEN).await).expect("a cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn without_an_api_token_the_printed_link_signs_in_once_per_process() {
    let app = spawn_app_with(&config(""), &[]).await;
    let link = app.sign_in_link.clone().expect("a sign-in link");
    assert!(
        link.starts_with("http://localhost:8080/sign-in?token="),
        "{link}"
    );
    let path = &link["http://localhost:8080".len()..];

    assert_eq!(get(&app, "/", None).await.status(), 303);
    assert_eq!(
        get(&app, "/sign-in?token=guessed", None).await.status(),
        401
    );
    let response = get(&app, path, None).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/");
    let cookie = set_cookie(&response).expect("a session cookie");
    let session = cookie.split(';').next().expect("name=value");
    assert!(page(&app, "/", session).await.contains("shop"));

    // Another process has another token and key.
    let other = spawn_app_with(&config(""), &[]).await;
    assert_ne!(other.sign_in_link, app.sign_in_link);
    assert_eq!(get(&other, "/", Some(session)).await.status(), 303);
}

#[tokio::test]
async fn the_page_shows_what_runs_where_and_a_waiting_approval_with_its_decisions() {
    let app = start().await;
    let cookie = session(&app).await;
    let a = sha(0xa1);
    let request = staging_healthy(&app, &a, "dave").await;
    app.storage()
        .record_decision(NewDecision {
            request_id: request,
            person: Some(PersonName::parse("alice").expect("name")),
            platform: Platform::Slack,
            platform_user: "U0ALICE01".to_owned(),
            verdict: DecisionVerdict::Approve,
            comment: Some("looks good".to_owned()),
            refused_reason: None,
            at: app.clock.now(),
        })
        .await
        .expect("a decision");

    let html = page(&app, "/", &cookie).await;
    for text in [
        "staging",
        &a[..7],
        "healthy",
        "production",
        "nothing deployed yet",
        "Waiting for approval",
        "1 of 2 approvals",
        "alice approved",
        "looks good",
        "Expires",
        "Fix checkout rounding",
        "smoke health",
        "200 OK",
        "approval requested",
        "dave",
        "Deployments to production per day",
        "Lead time per deploy",
    ] {
        assert!(
            html.contains(text),
            "{text:?} missing from the page:\n{html}"
        );
    }
    assert!(html.contains(r#"href="/apps/shop""#));
    let one = page(&app, "/apps/shop", &cookie).await;
    assert!(one.contains("Waiting for approval"));
}

#[tokio::test]
async fn the_timeline_is_newest_first_and_pages_back_with_a_cursor() {
    let app = start().await;
    let cookie = session(&app).await;
    for n in 1..=12 {
        let build = ci::build(&sha(n)).with(json!({"message": format!("change number {n:02}")}));
        ci::report(&app, CI_TOKEN, build).await;
        app.clock.advance(chrono::Duration::minutes(1));
    }
    let html = page(&app, "/", &cookie).await;
    let at = |html: &str, n: u32| html.find(&format!("change number {n:02}"));
    assert!(at(&html, 12) < at(&html, 11) && at(&html, 11).is_some());
    assert!(at(&html, 3).is_some());
    assert!(at(&html, 2).is_none(), "ten releases a page");
    let older = html
        .split("href=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().expect("closed"))
        .find(|href| href.contains("before="))
        .expect("a link to older releases")
        .to_owned();
    assert!(html.contains("Older releases"));

    let page_two = page(&app, &older, &cookie).await;
    assert!(at(&page_two, 2) < at(&page_two, 1) && at(&page_two, 2).is_some());
    assert!(at(&page_two, 3).is_none());
    assert!(page_two.contains("Newest"));
    assert!(!page_two.contains("Older releases"));
}

#[tokio::test]
async fn an_unknown_app_is_a_not_found_page() {
    let app = start().await;
    let cookie = session(&app).await;
    let response = get(&app, "/apps/nope", Some(&cookie)).await;
    assert_eq!(response.status(), 404);
    let html = response.text().await.expect("a page");
    assert!(html.contains("No app named"), "{html}");
}

#[tokio::test]
async fn what_ci_sends_is_shown_as_text_never_as_markup() {
    let app = start().await;
    let cookie = session(&app).await;
    let hostile = "<script>alert('owned')</script> & <b>bold</b>";
    let build = ci::build(&sha(0xbad))
        .with(json!({"message": hostile, "author": "<img src=x onerror=alert(1)>"}));
    ci::report(&app, CI_TOKEN, build).await;
    let html = page(&app, "/", &cookie).await;
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(!html.contains("<b>bold"), "{html}");
    assert!(html.contains("&lt;script&gt;alert"), "{html}");
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
}

#[tokio::test]
async fn a_faulty_release_its_rollback_and_the_lock_are_in_the_timeline_with_who_and_when() {
    use greenlight_commands::{
        AppName, CommitSha, DeploymentKind, DeploymentState, EnvironmentName,
    };
    use greenlight_storage::NewDeployment;
    let app = start().await;
    let cookie = session(&app).await;
    let (good, bad) = (sha(0x600d), sha(0xbadbad));
    ci::report(&app, CI_TOKEN, ci::build(&good)).await;
    ci::report(&app, CI_TOKEN, ci::deployed("production", &good, "success")).await;
    app.clock.advance(chrono::Duration::hours(1));
    ci::report(&app, CI_TOKEN, ci::build(&bad)).await;
    let smoke_failed = json!({ "smoke": ci::smoke_failed() });
    let faulty = ci::deployed("production", &bad, "success").with(smoke_failed);
    ci::report(&app, CI_TOKEN, faulty).await;
    app.clock.advance(chrono::Duration::minutes(10));
    let shop = AppName::parse("shop").expect("app");
    let production = EnvironmentName::parse("production").expect("environment");
    let release = app
        .storage()
        .release(&shop, &CommitSha::parse(&good).expect("sha"))
        .await
        .expect("release");
    app.storage()
        .insert_deployment(NewDeployment {
            release_id: release.id,
            environment: production.clone(),
            kind: DeploymentKind::Rollback,
            state: DeploymentState::Healthy,
            previous_sha: Some(CommitSha::parse(&bad).expect("sha")),
            deployer: None,
            deployer_ref: None,
            triggered_by: Some("alice".to_owned()),
            smoke: Vec::new(),
            detail: None,
            approved: true,
            at: app.clock.now(),
        })
        .await
        .expect("rollback");
    // Greenlight locked production when B turned faulty; bob releases it after the rollback.
    let html = page(&app, "/apps/shop", &cookie).await;
    assert!(html.contains("by greenlight: 0badbad is faulty"), "{html}");
    app.clock.advance(chrono::Duration::minutes(5));
    app.storage()
        .release_lock(&shop, &production, "bob", app.clock.now())
        .await
        .expect("unlock");

    let html = page(&app, "/apps/shop", &cookie).await;
    for text in [
        "faulty",
        "smoke checkout",
        "503 Service Unavailable",
        "deployed without approval",
        &format!("rollback from {} to this release", &bad[..7]),
        "— alice",
        "locked automatically",
        "— greenlight",
        "unlocked — bob",
        "1 faulty",
        "(1 sample)",
    ] {
        assert!(
            html.contains(text),
            "{text:?} missing from the page:\n{html}"
        );
    }
}
