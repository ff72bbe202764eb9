//! The whole flag loop: an operator flips a flag with a signed Slack `/flag`, and applications
//! see it at once through OFREP (a real OpenFeature client) and the JSON API (a new ETag).

use greenlight_tests::config::{slack_section, SLACK_SIGNING_SECRET as SECRET};
use greenlight_tests::fakes::FakeSlack;
use greenlight_tests::inbound::slack as from_slack;
use greenlight_tests::{spawn_app_with, TestApp};
use reqwest::header::{HeaderMap, HeaderValue};

const FLAGS_TOKEN: &str = "shop-production-flags-token";
const CHANNEL: &str = "C0DEPLOYS";

async fn start(slack: &FakeSlack) -> TestApp {
    let config = format!(
        r#"
{slack}
[people]
alice = {{ slack = "U0ALICE01" }}

[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "shop-ci"
channels = {{ slack = "{CHANNEL}" }}
operators = ["alice"]

[apps.shop.environments.production]
flags_token = "{FLAGS_TOKEN}"
"#,
        slack = slack_section(slack),
    );
    spawn_app_with(&config, &[]).await
}

async fn slack_flag(app: &TestApp, text: &str) -> String {
    let (_, reply) = from_slack::command(app, SECRET, "U0ALICE01", CHANNEL, "/flag", text).await;
    reply["text"].as_str().unwrap_or_default().to_owned()
}

async fn etag(app: &TestApp) -> (String, serde_json::Value) {
    let response = app
        .client
        .get(app.url("/api/v1/flags/shop/production"))
        .bearer_auth(FLAGS_TOKEN)
        .send()
        .await
        .expect("flags");
    assert_eq!(response.status(), 200);
    let tag = response.headers()["etag"]
        .to_str()
        .expect("ascii")
        .to_owned();
    (tag, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn a_flag_flipped_in_slack_is_what_applications_read() {
    use open_feature::{EvaluationContext, OpenFeature};
    use open_feature_ofrep::{OfrepOptions, OfrepProvider};

    let slack = FakeSlack::start().await;
    let app = start(&slack).await;
    assert!(slack_flag(&app, "production new_checkout on launch")
        .await
        .contains("now on"));
    slack.next_call("chat.postMessage", CHANNEL).await;
    let (before, flags) = etag(&app).await;
    assert_eq!(flags["flags"]["new_checkout"]["enabled"], true);

    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {FLAGS_TOKEN}")).expect("header"),
    );
    let provider = OfrepProvider::new(OfrepOptions {
        base_url: app.url(""),
        headers,
        ..OfrepOptions::default()
    })
    .await
    .expect("provider");
    let mut api = OpenFeature::singleton_mut().await;
    api.set_provider(provider).await;
    let client = api.create_client();
    drop(api);
    let user = EvaluationContext::default().with_targeting_key("user-42");
    assert!(client
        .get_bool_value("new_checkout", Some(&user), None)
        .await
        .expect("evaluates"));

    // The fastest rollback: off from Slack, off for the application, a new ETag for pollers.
    assert!(
        slack_flag(&app, "production new_checkout off payments failing")
            .await
            .contains("now off")
    );
    slack.next_call("chat.postMessage", CHANNEL).await;
    assert!(!client
        .get_bool_value("new_checkout", Some(&user), None)
        .await
        .expect("evaluates"));
    let (after, flags) = etag(&app).await;
    assert_eq!(flags["flags"]["new_checkout"]["enabled"], false);
    assert_ne!(before, after, "a change gets a new ETag");
    app.teardown().await;
}
