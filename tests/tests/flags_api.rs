//! Applications read their flags with an environment's `flags_token`: the JSON API with ETags,
//! OFREP v0.3 single and bulk evaluation, and a real OpenFeature client through the OFREP
//! provider.

use chrono::Utc;
use greenlight_commands::{AppName, EnvironmentName};
use greenlight_storage::FlagTarget;
use greenlight_tests::{spawn_app_with, TestApp};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

const STAGING_TOKEN: &str = "shop-staging-flags-token";
const PRODUCTION_TOKEN: &str = "shop-production-flags-token";
const WEB_TOKEN: &str = "web-staging-flags-token";

const CONFIG: &str = r#"
[people]
alice = { slack = "U012AB3CD" }

[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "${SHOP_CI_TOKEN}"
operators = ["alice"]

[apps.shop.environments.staging]
flags_token = "${SHOP_STAGING_FLAGS_TOKEN}"

[apps.shop.environments.production]
flags_token = "${SHOP_PROD_FLAGS_TOKEN}"

[apps.web]
image = "ghcr.io/acme/web"
ci_token = "${WEB_CI_TOKEN}"

[apps.web.environments.staging]
flags_token = "${WEB_STAGING_FLAGS_TOKEN}"

[apps.web.environments.production]
"#;

async fn start() -> TestApp {
    spawn_app_with(
        CONFIG,
        &[
            ("SHOP_CI_TOKEN", "shop-ci-token"),
            ("WEB_CI_TOKEN", "web-ci-token"),
            ("SHOP_STAGING_FLAGS_TOKEN", STAGING_TOKEN),
            ("SHOP_PROD_FLAGS_TOKEN", PRODUCTION_TOKEN),
            ("WEB_STAGING_FLAGS_TOKEN", WEB_TOKEN),
        ],
    )
    .await
}

fn target(app: &str, environment: &str, key: &str) -> FlagTarget {
    FlagTarget {
        app: AppName::parse(app).expect("app name"),
        environment: EnvironmentName::parse(environment).expect("environment name"),
        key: key.to_owned(),
        actor: "alice".to_owned(),
        reason: Some("test".to_owned()),
        at: Utc::now(),
    }
}

/// Sets a flag straight in the database, as another replica would, and runs the app's version
/// check, which every replica runs in the background.
async fn switch(app: &TestApp, environment: &str, key: &str, enabled: bool) {
    app.storage()
        .set_flag_enabled(target("shop", environment, key), enabled)
        .await
        .expect("set flag");
    app.state.flags.refresh_now().await.expect("version check");
}

async fn roll_out(app: &TestApp, environment: &str, key: &str, rollout: u8) {
    app.storage()
        .set_flag_rollout(target("shop", environment, key), rollout)
        .await
        .expect("set rollout");
    app.state.flags.refresh_now().await.expect("version check");
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {:?}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|value| value.to_str().expect("ASCII header"))
    }

    fn etag(&self) -> String {
        self.header("etag").expect("an ETag").to_owned()
    }
}

async fn reply(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request");
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.expect("body"),
    }
}

/// `request` with `token` as its bearer token and `If-None-Match: etag`, where given.
fn conditional(
    mut request: reqwest::RequestBuilder,
    token: Option<&str>,
    if_none_match: Option<&str>,
) -> reqwest::RequestBuilder {
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(etag) = if_none_match {
        request = request.header("if-none-match", etag);
    }
    request
}

async fn get_flags(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    if_none_match: Option<&str>,
) -> Reply {
    reply(conditional(
        app.client.get(app.url(path)),
        token,
        if_none_match,
    ))
    .await
}

/// POSTs `body` (as given, so tests can send broken JSON) to an OFREP route.
async fn ofrep(app: &TestApp, path: &str, token: Option<&str>, body: &str) -> Reply {
    ofrep_with(app, path, token, body, None).await
}

async fn ofrep_with(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    body: &str,
    if_none_match: Option<&str>,
) -> Reply {
    let request = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    reply(conditional(request, token, if_none_match)).await
}

/// OFREP bulk evaluation with the staging token, for a client that has `etag`.
async fn bulk_since(app: &TestApp, body: &str, etag: &str) -> Reply {
    let path = "/ofrep/v1/evaluate/flags";
    ofrep_with(app, path, Some(STAGING_TOKEN), body, Some(etag)).await
}

/// OFREP single-flag evaluation with the staging token.
async fn evaluate_one(app: &TestApp, key: &str, body: &str) -> Reply {
    let path = format!("/ofrep/v1/evaluate/flags/{key}");
    ofrep(app, &path, Some(STAGING_TOKEN), body).await
}

fn context(targeting_key: &str) -> String {
    json!({"context": {"targetingKey": targeting_key, "plan": "pro"}}).to_string()
}

/// A targeting key that flag `key` at `rollout`% turns on (`want = true`) or leaves off.
fn user_with(key: &str, rollout: u8, want: bool) -> String {
    (0..)
        .map(|i| format!("user-{i}"))
        .find(|user| greenlight::flags::in_rollout(key, user, rollout) == want)
        .expect("some user")
}

// ---------------------------------------------------------------------------------------------
// JSON API

#[tokio::test]
async fn the_json_api_lists_flags_with_an_etag_and_answers_304_until_a_flag_changes() {
    let app = start().await;
    let path = "/api/v1/flags/shop/staging";

    let empty = get_flags(&app, path, Some(STAGING_TOKEN), None).await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert_eq!(empty.json(), json!({"flags": {}}));

    switch(&app, "staging", "new_checkout", true).await;
    roll_out(&app, "staging", "dark_mode", 25).await;
    switch(&app, "production", "only_in_production", true).await;

    let listed = get_flags(&app, path, Some(STAGING_TOKEN), None).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(
        listed.json(),
        json!({"flags": {
            "dark_mode": {"enabled": true, "rollout": 25},
            "new_checkout": {"enabled": true, "rollout": 100},
        }})
    );
    let etag = listed.etag();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong, quoted ETag: {etag}"
    );
    assert_ne!(etag, empty.etag());
    assert_eq!(listed.header("cache-control"), Some("no-cache"));
    assert_eq!(listed.header("content-type"), Some("application/json"));

    // Same state, same ETag; If-None-Match → 304 with the ETag and no body.
    let again = get_flags(&app, path, Some(STAGING_TOKEN), None).await;
    assert_eq!(again.etag(), etag);
    let not_modified = get_flags(&app, path, Some(STAGING_TOKEN), Some(&etag)).await;
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.etag(), etag);
    assert_eq!(not_modified.header("cache-control"), Some("no-cache"));
    assert!(not_modified.text.is_empty());
    let listed_among_others = format!("\"nope\", W/{etag}");
    let weak = get_flags(&app, path, Some(STAGING_TOKEN), Some(&listed_among_others)).await;
    assert_eq!(weak.status, 304);

    // A change → 200 with the new values and a new ETag, even with the old one sent.
    switch(&app, "staging", "new_checkout", false).await;
    let changed = get_flags(&app, path, Some(STAGING_TOKEN), Some(&etag)).await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(
        changed.json()["flags"]["new_checkout"],
        json!({"enabled": false, "rollout": 100})
    );
    assert_ne!(changed.etag(), etag);

    // The other environment's token sees only its own flags.
    let production = get_flags(
        &app,
        "/api/v1/flags/shop/production",
        Some(PRODUCTION_TOKEN),
        None,
    )
    .await;
    assert_eq!(
        production.json(),
        json!({"flags": {"only_in_production": {"enabled": true, "rollout": 100}}})
    );
    app.teardown().await;
}

#[tokio::test]
async fn missing_wrong_and_other_environments_tokens_are_refused() {
    let app = start().await;
    switch(&app, "staging", "new_checkout", true).await;
    let path = "/api/v1/flags/shop/staging";

    let missing = get_flags(&app, path, None, None).await;
    assert_eq!(missing.status, 401, "{}", missing.text);
    assert_eq!(missing.json()["error"], "unauthorized");
    let wrong = get_flags(&app, path, Some("not-a-token"), None).await;
    assert_eq!(wrong.status, 401, "{}", wrong.text);
    let basic = reply(
        app.client
            .get(app.url(path))
            .basic_auth("shop", Some(STAGING_TOKEN)),
    )
    .await;
    assert_eq!(basic.status, 401);

    // A valid token of another environment or app: 403, never that environment's flags.
    for (token, path) in [
        (PRODUCTION_TOKEN, "/api/v1/flags/shop/staging"),
        (STAGING_TOKEN, "/api/v1/flags/shop/production"),
        (WEB_TOKEN, "/api/v1/flags/shop/staging"),
        (STAGING_TOKEN, "/api/v1/flags/web/staging"),
        (STAGING_TOKEN, "/api/v1/flags/web/production"),
        (STAGING_TOKEN, "/api/v1/flags/nope/staging"),
    ] {
        let refused = get_flags(&app, path, Some(token), None).await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.text);
        assert_eq!(refused.json()["error"], "forbidden");
        assert!(!refused.text.contains("new_checkout"));
        assert!(!refused.text.contains(token));
    }

    // OFREP: the token alone decides app and environment; without a valid one, 401.
    for path in [
        "/ofrep/v1/evaluate/flags/new_checkout",
        "/ofrep/v1/evaluate/flags",
    ] {
        for token in [None, Some("not-a-token"), Some("")] {
            let refused = ofrep(&app, path, token, &context("user-1")).await;
            assert_eq!(refused.status, 401, "{path} {token:?}: {}", refused.text);
            assert!(refused.json()["errorDetails"].is_string());
        }
    }

    // X-API-Key, OFREP's other scheme, carries the same token.
    let api_key = reply(
        app.client
            .post(app.url("/ofrep/v1/evaluate/flags/new_checkout"))
            .header("x-api-key", STAGING_TOKEN)
            .body("{}"),
    )
    .await;
    assert_eq!(api_key.status, 200, "{}", api_key.text);
    assert_eq!(api_key.json()["value"], true);

    // The production token evaluates production, where the staging flag does not exist.
    let production = ofrep(
        &app,
        "/ofrep/v1/evaluate/flags/new_checkout",
        Some(PRODUCTION_TOKEN),
        "{}",
    )
    .await;
    assert_eq!(production.status, 404, "{}", production.text);
    assert_eq!(production.json()["errorCode"], "FLAG_NOT_FOUND");
    app.teardown().await;
}

// ---------------------------------------------------------------------------------------------
// OFREP single flag

#[tokio::test]
async fn ofrep_evaluates_static_disabled_and_split_flags() {
    let app = start().await;
    switch(&app, "staging", "new_checkout", true).await;
    switch(&app, "staging", "old_banner", false).await;
    roll_out(&app, "staging", "nobody_yet", 0).await;
    roll_out(&app, "staging", "dark_mode", 25).await;

    let on = evaluate_one(&app, "new_checkout", &context("u")).await;
    assert_eq!(on.status, 200, "{}", on.text);
    assert_eq!(
        on.json(),
        json!({"key": "new_checkout", "value": true, "reason": "STATIC", "variant": "on", "metadata": {}})
    );
    // A static flag needs no context at all: no body, `{}`, an empty context.
    for body in ["", "{}", r#"{"context":{}}"#] {
        let reply = evaluate_one(&app, "new_checkout", body).await;
        assert_eq!(reply.status, 200, "{body}: {}", reply.text);
        assert_eq!(reply.json()["value"], true);
    }

    let zero = evaluate_one(&app, "nobody_yet", "{}").await;
    assert_eq!(
        zero.json(),
        json!({"key": "nobody_yet", "value": false, "reason": "STATIC", "variant": "off", "metadata": {}})
    );

    let disabled = evaluate_one(&app, "old_banner", "{}").await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    assert_eq!(
        disabled.json(),
        json!({"key": "old_banner", "value": false, "reason": "DISABLED", "variant": "off", "metadata": {}})
    );

    for want in [true, false] {
        let user = user_with("dark_mode", 25, want);
        let split = evaluate_one(&app, "dark_mode", &context(&user)).await;
        assert_eq!(split.status, 200, "{}", split.text);
        assert_eq!(
            split.json(),
            json!({"key": "dark_mode", "value": want, "reason": "SPLIT",
                   "variant": if want { "on" } else { "off" }, "metadata": {}})
        );
        // The same user gets the same answer every time.
        let again = evaluate_one(&app, "dark_mode", &context(&user)).await;
        assert_eq!(again.json()["value"], want);
    }

    for body in [
        "{}",
        "",
        r#"{"context":{"plan":"pro"}}"#,
        r#"{"context":{"targetingKey":""}}"#,
    ] {
        let missing = evaluate_one(&app, "dark_mode", body).await;
        assert_eq!(missing.status, 400, "{body}: {}", missing.text);
        let missing = missing.json();
        assert_eq!(missing["key"], "dark_mode");
        assert_eq!(missing["errorCode"], "TARGETING_KEY_MISSING");
        assert!(missing["errorDetails"].is_string());
        assert!(missing.get("value").is_none());
    }

    let unknown = evaluate_one(&app, "no_such_flag", &context("u")).await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    let unknown = unknown.json();
    assert_eq!(unknown["key"], "no_such_flag");
    assert_eq!(unknown["errorCode"], "FLAG_NOT_FOUND");
    assert!(unknown["errorDetails"].is_string());
    app.teardown().await;
}

#[tokio::test]
async fn malformed_ofrep_bodies_get_ofrep_errors_and_never_a_5xx() {
    let app = start().await;
    switch(&app, "staging", "new_checkout", true).await;
    let single = "/ofrep/v1/evaluate/flags/new_checkout";
    let bulk = "/ofrep/v1/evaluate/flags";

    let cases = [
        ("{", "PARSE_ERROR"),
        ("not json", "PARSE_ERROR"),
        (r#"{"context": {"targetingKey": "u"}"#, "PARSE_ERROR"),
        ("[1, 2]", "PARSE_ERROR"),
        ("\"context\"", "PARSE_ERROR"),
        (r#"{"context": "user-1"}"#, "INVALID_CONTEXT"),
        (r#"{"context": [1]}"#, "INVALID_CONTEXT"),
        (r#"{"context": {"targetingKey": 42}}"#, "INVALID_CONTEXT"),
        (
            r#"{"context": {"targetingKey": {"id": "u"}}}"#,
            "INVALID_CONTEXT",
        ),
    ];
    for (body, code) in cases {
        let one = ofrep(&app, single, Some(STAGING_TOKEN), body).await;
        assert_eq!(one.status, 400, "{body}: {}", one.text);
        let one = one.json();
        assert_eq!(one["key"], "new_checkout", "{body}");
        assert_eq!(one["errorCode"], code, "{body}");
        assert!(one["errorDetails"].is_string());

        // Bulk: a whole-request failure, `{"errorCode","errorDetails"}`.
        let all = ofrep(&app, bulk, Some(STAGING_TOKEN), body).await;
        assert_eq!(all.status, 400, "{body}: {}", all.text);
        let all = all.json();
        assert_eq!(all["errorCode"], code, "{body}");
        assert!(all["errorDetails"].is_string());
        assert!(all.get("key").is_none());
    }

    // Wrong content: a form post, bytes that are not UTF-8.
    let form = reply(
        app.client
            .post(app.url(single))
            .bearer_auth(STAGING_TOKEN)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("context=user-1"),
    )
    .await;
    assert_eq!(form.status, 400, "{}", form.text);
    assert_eq!(form.json()["errorCode"], "PARSE_ERROR");
    let binary = reply(
        app.client
            .post(app.url(bulk))
            .bearer_auth(STAGING_TOKEN)
            .body(vec![0xff, 0xfe, 0x00, 0x7b]),
    )
    .await;
    assert_eq!(binary.status, 400, "{}", binary.text);
    assert_eq!(binary.json()["errorCode"], "PARSE_ERROR");

    // Over the 1 MB limit: 413, still an OFREP body.
    let huge = format!(
        r#"{{"context": {{"targetingKey": "u", "pad": "{}"}}}}"#,
        "x".repeat(1024 * 1024)
    );
    for path in [single, bulk] {
        let too_large = ofrep(&app, path, Some(STAGING_TOKEN), &huge).await;
        assert_eq!(too_large.status, 413, "{path}");
        assert_eq!(too_large.json()["errorCode"], "PARSE_ERROR");
    }

    // Odd keys in the path are just unknown flags.
    for key in ["..", "%20", "a%2Fb", &"x".repeat(2_000)] {
        let odd = ofrep(
            &app,
            &format!("/ofrep/v1/evaluate/flags/{key}"),
            Some(STAGING_TOKEN),
            "{}",
        )
        .await;
        assert!(odd.status < 500, "{key}: {}", odd.status);
    }
    app.teardown().await;
}

// ---------------------------------------------------------------------------------------------
// OFREP bulk

#[tokio::test]
async fn ofrep_bulk_evaluates_every_flag_with_an_etag_and_304() {
    let app = start().await;
    let bulk = "/ofrep/v1/evaluate/flags";

    let empty = ofrep(&app, bulk, Some(STAGING_TOKEN), "{}").await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert_eq!(empty.json(), json!({"flags": []}));

    switch(&app, "staging", "new_checkout", true).await;
    switch(&app, "staging", "old_banner", false).await;
    roll_out(&app, "staging", "dark_mode", 25).await;
    let user = user_with("dark_mode", 25, true);

    let all = ofrep(&app, bulk, Some(STAGING_TOKEN), &context(&user)).await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(
        all.json(),
        json!({"flags": [
            {"key": "dark_mode", "value": true, "reason": "SPLIT", "variant": "on", "metadata": {}},
            {"key": "new_checkout", "value": true, "reason": "STATIC", "variant": "on", "metadata": {}},
            {"key": "old_banner", "value": false, "reason": "DISABLED", "variant": "off", "metadata": {}},
        ]})
    );
    let etag = all.etag();
    assert!(etag.starts_with('"'), "{etag}");
    assert_eq!(all.header("content-type"), Some("application/json"));

    let user_context = context(&user);
    let not_modified = bulk_since(&app, &user_context, &etag).await;
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.etag(), etag);
    assert!(not_modified.text.is_empty());

    // Without a targeting key the split flag fails on its own; the others still evaluate.
    let anonymous = bulk_since(&app, "{}", &etag).await;
    assert_eq!(anonymous.status, 200, "{}", anonymous.text);
    let anonymous_body = anonymous.json();
    let items = anonymous_body["flags"].as_array().expect("flags");
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["key"], "dark_mode");
    assert_eq!(items[0]["errorCode"], "TARGETING_KEY_MISSING");
    assert!(items[0]["errorDetails"].is_string());
    assert!(items[0].get("value").is_none());
    assert_eq!(items[1]["value"], true);
    assert_ne!(anonymous.etag(), etag);

    // A change makes the old ETag stale.
    switch(&app, "staging", "old_banner", true).await;
    let changed = bulk_since(&app, &user_context, &etag).await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_ne!(changed.etag(), etag);
    assert_eq!(changed.json()["flags"][2]["value"], true);

    // The production token evaluates production's (empty) flags.
    let production = ofrep(&app, bulk, Some(PRODUCTION_TOKEN), &context(&user)).await;
    assert_eq!(production.json(), json!({"flags": []}));
    app.teardown().await;
}

// ---------------------------------------------------------------------------------------------
// A real OpenFeature client

#[tokio::test]
async fn an_openfeature_client_with_the_ofrep_provider_sees_flag_changes() {
    use open_feature::{EvaluationContext, EvaluationErrorCode, OpenFeature};
    use open_feature_ofrep::{OfrepOptions, OfrepProvider};

    let app = start().await;
    switch(&app, "staging", "new_checkout", true).await;

    let provider = |token: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
        );
        OfrepProvider::new(OfrepOptions {
            base_url: app.url(""),
            headers,
            ..OfrepOptions::default()
        })
    };
    let mut api = OpenFeature::singleton_mut().await;
    api.set_provider(provider(STAGING_TOKEN).await.expect("provider"))
        .await;
    api.set_named_provider(
        "wrong-token",
        provider("not-a-token").await.expect("provider"),
    )
    .await;
    let client = api.create_client();
    let refused_client = api.create_named_client("wrong-token");
    drop(api);
    let user = EvaluationContext::default()
        .with_targeting_key("user-123")
        .with_custom_field("plan", "pro");

    let details = client
        .get_bool_details("new_checkout", Some(&user), None)
        .await
        .expect("evaluates");
    assert!(details.value);
    assert_eq!(details.variant.as_deref(), Some("on"));

    // Off in storage → off for the application once the version check ran.
    switch(&app, "staging", "new_checkout", false).await;
    let value = client
        .get_bool_value("new_checkout", Some(&user), None)
        .await
        .expect("evaluates");
    assert!(!value);
    switch(&app, "staging", "new_checkout", true).await;
    assert!(client
        .get_bool_value("new_checkout", Some(&user), None)
        .await
        .expect("evaluates"));

    // A rollout: the client's answer is the documented bucket of this user.
    roll_out(&app, "staging", "dark_mode", 25).await;
    let expected = greenlight::flags::in_rollout("dark_mode", "user-123", 25);
    assert_eq!(
        client
            .get_bool_value("dark_mode", Some(&user), None)
            .await
            .expect("evaluates"),
        expected
    );
    roll_out(&app, "staging", "dark_mode", 100).await;
    assert!(client
        .get_bool_value("dark_mode", Some(&user), None)
        .await
        .expect("evaluates"));

    let unknown = client
        .get_bool_value("no_such_flag", Some(&user), None)
        .await
        .expect_err("not found");
    assert_eq!(unknown.code, EvaluationErrorCode::FlagNotFound);

    let refused = refused_client
        .get_bool_value("new_checkout", Some(&user), None)
        .await
        .expect_err("wrong token");
    assert!(
        matches!(refused.code, EvaluationErrorCode::General(_)),
        "{refused:?}"
    );
    app.teardown().await;
}
