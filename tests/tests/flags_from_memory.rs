//! Flags are served from memory (SPEC §7, §11): a change through `/flag` is served on the next
//! OFREP request, a change by another replica once the version check ran, an unchanged
//! environment keeps its ETag, and the prepared answers are what evaluation says.

use chrono::Utc;
use greenlight_commands::{AppName, EnvironmentName};
use greenlight_storage::{FlagTarget, Storage};
use greenlight_tests::config::{slack_section, SLACK_SIGNING_SECRET as SECRET};
use greenlight_tests::database::SharedDatabase;
use greenlight_tests::fakes::FakeSlack;
use greenlight_tests::inbound::slack as from_slack;
use greenlight_tests::{spawn_app_on, spawn_app_with, TestApp};
use serde_json::{json, Value};

const STAGING_TOKEN: &str = "shop-staging-flags-token";
const PRODUCTION_TOKEN: &str = "shop-production-flags-token";
const CHANNEL: &str = "C0DEPLOYS";
const BULK: &str = "/ofrep/v1/evaluate/flags";

/// The shop app; with Slack when `slack` is its config section.
fn config(slack: &str) -> String {
    let channels = if slack.is_empty() {
        String::new()
    } else {
        format!("channels = {{ slack = \"{CHANNEL}\" }}")
    };
    format!(
        r#"
{slack}
[people]
alice = {{ slack = "U0ALICE01" }}

[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "shop-ci"
{channels}
operators = ["alice"]

[apps.shop.environments.staging]
flags_token = "{STAGING_TOKEN}"

[apps.shop.environments.production]
flags_token = "{PRODUCTION_TOKEN}"
"#
    )
}

fn target(environment: &str, key: &str) -> FlagTarget {
    FlagTarget {
        app: AppName::parse("shop").expect("app"),
        environment: EnvironmentName::parse(environment).expect("environment"),
        key: key.to_owned(),
        actor: "alice".to_owned(),
        reason: None,
        at: Utc::now(),
    }
}

struct Answer {
    status: u16,
    etag: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn etag(&self) -> String {
        self.etag.clone().expect("an ETag")
    }

    /// The value each flag has, by key.
    fn values(&self) -> Vec<(String, Value)> {
        self.json()["flags"]
            .as_array()
            .expect("flags")
            .iter()
            .map(|item| {
                (
                    item["key"].as_str().expect("key").to_owned(),
                    item["value"].clone(),
                )
            })
            .collect()
    }
}

async fn post(app: &TestApp, path: &str, token: &str, body: &str, etag: Option<&str>) -> Answer {
    let mut request = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(etag) = etag {
        request = request.header("if-none-match", etag);
    }
    let response = request.send().await.expect("request");
    Answer {
        status: response.status().as_u16(),
        etag: response
            .headers()
            .get("etag")
            .map(|value| value.to_str().expect("ascii").to_owned()),
        body: response.text().await.expect("body"),
    }
}

fn context(targeting_key: &str) -> String {
    json!({"context": {"targetingKey": targeting_key}}).to_string()
}

fn pairs(expected: &[(&str, Value)]) -> Vec<(String, Value)> {
    expected
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.clone()))
        .collect()
}

async fn slack_flag(app: &TestApp, slack: &FakeSlack, text: &str) -> String {
    let (_, reply) = from_slack::command(app, SECRET, "U0ALICE01", CHANNEL, "/flag", text).await;
    slack.next_call("chat.postMessage", CHANNEL).await;
    reply["text"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_flag_flipped_with_slash_flag_is_served_on_the_next_ofrep_request() {
    let slack = FakeSlack::start().await;
    let app = spawn_app_with(&config(&slack_section(&slack)), &[]).await;
    let reply = slack_flag(&app, &slack, "staging new_checkout on launch").await;
    assert!(reply.contains("now on"), "{reply}");
    let on = post(&app, BULK, STAGING_TOKEN, &context("user-1"), None).await;
    assert_eq!(on.status, 200, "{}", on.body);
    assert_eq!(on.values(), pairs(&[("new_checkout", json!(true))]));
    // Served from memory now: the same answer again is a 304.
    let again = post(
        &app,
        BULK,
        STAGING_TOKEN,
        &context("user-1"),
        Some(&on.etag()),
    )
    .await;
    assert_eq!(again.status, 304);

    let reply = slack_flag(&app, &slack, "staging new_checkout off payments failing").await;
    assert!(reply.contains("now off"), "{reply}");
    let off = post(
        &app,
        BULK,
        STAGING_TOKEN,
        &context("user-1"),
        Some(&on.etag()),
    )
    .await;
    assert_eq!(off.status, 200, "the old ETag is stale: {}", off.body);
    assert_eq!(off.values(), pairs(&[("new_checkout", json!(false))]));
    assert_ne!(off.etag(), on.etag());
    let single = post(
        &app,
        &format!("{BULK}/new_checkout"),
        STAGING_TOKEN,
        "{}",
        None,
    )
    .await;
    assert_eq!(single.json()["reason"], "DISABLED");

    // A rollout from Slack too, and a flag created by it.
    slack_flag(&app, &slack, "staging dark_mode rollout 100").await;
    let rolled = post(
        &app,
        BULK,
        STAGING_TOKEN,
        &context("user-1"),
        Some(&off.etag()),
    )
    .await;
    assert_eq!(rolled.status, 200);
    assert_eq!(
        rolled.values(),
        pairs(&[("dark_mode", json!(true)), ("new_checkout", json!(false))])
    );
    app.teardown().await;
}

#[tokio::test]
async fn a_flag_changed_by_another_replica_is_served_after_the_version_check() {
    let database = SharedDatabase::create().await;
    let app = spawn_app_on(&config(""), &[], &database.url).await;
    // Another replica: its own connections and writer on the same database.
    let replica = Storage::connect(&database.url)
        .await
        .expect("second handle");
    replica
        .set_flag_enabled(target("staging", "new_checkout"), true)
        .await
        .expect("set");
    replica
        .set_flag_enabled(target("production", "banner"), true)
        .await
        .expect("set");

    let staging = post(&app, BULK, STAGING_TOKEN, &context("user-1"), None).await;
    assert_eq!(staging.values(), pairs(&[("new_checkout", json!(true))]));
    let production = post(&app, BULK, PRODUCTION_TOKEN, "{}", None).await;
    assert_eq!(production.values(), pairs(&[("banner", json!(true))]));

    replica
        .set_flag_enabled(target("staging", "new_checkout"), false)
        .await
        .expect("set");
    replica
        .set_flag_rollout(target("staging", "dark_mode"), 100)
        .await
        .expect("set");
    // The check the app runs every 250 ms in the background, run now so the test need not wait.
    app.state.flags.refresh_now().await.expect("version check");

    let changed = post(
        &app,
        BULK,
        STAGING_TOKEN,
        &context("user-1"),
        Some(&staging.etag()),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(
        changed.values(),
        pairs(&[("dark_mode", json!(true)), ("new_checkout", json!(false))])
    );
    assert_ne!(changed.etag(), staging.etag());
    let listing = app
        .client
        .get(app.url("/api/v1/flags/shop/staging"))
        .bearer_auth(STAGING_TOKEN)
        .send()
        .await
        .expect("listing");
    let listing: Value = listing.json().await.expect("JSON");
    assert_eq!(listing["flags"]["new_checkout"]["enabled"], false);

    // Production's flags did not change: its ETag stays, through the reload of staging.
    let unchanged = post(&app, BULK, PRODUCTION_TOKEN, "{}", Some(&production.etag())).await;
    assert_eq!(unchanged.status, 304, "{}", unchanged.body);
    assert_eq!(unchanged.etag(), production.etag());

    replica.close().await;
    let postgres = database.is_postgres();
    app.teardown().await;
    database.remove().await;
    if !postgres {
        eprintln!("note: GREENLIGHT_TEST_POSTGRES_URL is not set; replicas shared SQLite only");
    }
}

/// What OFREP answers for flag `key` with these settings, by the documented rules: the
/// expected item, built here without Greenlight's evaluation code.
fn expected_item(key: &str, enabled: bool, rollout: u8, targeting_key: Option<&str>) -> Value {
    let success = |value: bool, reason: &str| {
        json!({"key": key, "value": value, "reason": reason,
               "variant": if value { "on" } else { "off" }, "metadata": {}})
    };
    match (enabled, rollout, targeting_key) {
        (false, _, _) => success(false, "DISABLED"),
        (true, 0, _) => success(false, "STATIC"),
        (true, 100, _) => success(true, "STATIC"),
        (true, rollout, Some(user)) => {
            success(greenlight::flags::in_rollout(key, user, rollout), "SPLIT")
        }
        (true, rollout, None) => json!({
            "key": key,
            "errorCode": "TARGETING_KEY_MISSING",
            "errorDetails": format!(
                "this flag is rolled out to {rollout}% of targeting keys; send \
                 context.targetingKey to evaluate it"
            ),
        }),
    }
}

#[tokio::test]
async fn a_bulk_answer_of_fifty_flags_is_each_flags_evaluation_in_key_order() {
    let app = spawn_app_with(&config(""), &[]).await;
    let storage = app.storage();
    // Every kind of flag: switched off, on at 0 %, rolled out part way, on.
    let flags: Vec<(String, bool, u8)> = (0..50u8)
        .map(|i| {
            let (enabled, rollout) = match i % 5 {
                0 => (false, 30),
                1 => (true, 0),
                2 => (true, 1 + i),
                _ => (true, 100),
            };
            (format!("flag_{:02}", 49 - i), enabled, rollout)
        })
        .collect();
    for (key, enabled, rollout) in &flags {
        storage
            .set_flag_rollout(target("staging", key), *rollout)
            .await
            .expect("rollout");
        storage
            .set_flag_enabled(target("staging", key), *enabled)
            .await
            .expect("switch");
    }
    app.state.flags.refresh_now().await.expect("version check");
    let mut by_key = flags.clone();
    by_key.sort();

    for user in [Some("user-7"), Some("user-8"), None] {
        let body = user.map_or_else(|| "{}".to_owned(), context);
        let answer = post(&app, BULK, STAGING_TOKEN, &body, None).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let expected: Vec<Value> = by_key
            .iter()
            .map(|(key, enabled, rollout)| expected_item(key, *enabled, *rollout, user))
            .collect();
        assert_eq!(answer.json(), json!({ "flags": expected }), "{user:?}");

        // The single-flag route answers each flag the same way.
        for (key, enabled, rollout) in by_key.iter().step_by(3) {
            let one = post(&app, &format!("{BULK}/{key}"), STAGING_TOKEN, &body, None).await;
            let item = expected_item(key, *enabled, *rollout, user);
            let status = if item.get("errorCode").is_some() {
                400
            } else {
                200
            };
            assert_eq!((one.status, one.json()), (status, item), "{key} {user:?}");
        }
    }
    // Field order as OFREP's examples and earlier releases wrote it.
    let first = post(&app, BULK, STAGING_TOKEN, &context("user-7"), None).await;
    assert!(
        first.body.starts_with(
            r#"{"flags":[{"key":"flag_00","value":true,"reason":"STATIC","variant":"on","metadata":{}},"#
        ),
        "{}",
        first.body
    );
    app.teardown().await;
}
