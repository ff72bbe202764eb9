//! Malformed bodies through the real app (SPEC §5): authenticated or signed as the platforms
//! sign, posted to every inbound route. Never a 5xx; every refusal is a 4xx whose body is JSON
//! with `error` and `detail`; Slack's and Discord's 200s are JSON (an ephemeral message, a pong)
//! or empty (Slack's plain acknowledgement). Bodies are the fuzz harness's seeds with its
//! mutations, arbitrary bytes and JSON-token soup; 32 cases per route keep this quick.

use greenlight_tests::config::{discord_section, SLACK_SIGNING_SECRET as SLACK_SECRET};
use greenlight_tests::fuzz::{self, Rng};
use greenlight_tests::inbound::github::{self as from_github, delivery_id};
use greenlight_tests::inbound::{discord as from_discord, slack as from_slack};
use greenlight_tests::signing::{github_signature, DiscordSigner};
use greenlight_tests::{fixtures, spawn_app_with, TestApp};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::Value;

const CI_TOKEN: &str = "shop-ci-token";
const GITHUB_SECRET: &str = "github-webhook-secret";

fn config(discord_public_key: &str) -> String {
    format!(
        r#"
[slack]
bot_token = "xoxb-test"
signing_secret = "${{SLACK_SIGNING_SECRET}}"
api_url = "http://127.0.0.1:9/api"

{discord}
[github]
webhook_secret = "${{GITHUB_WEBHOOK_SECRET}}"

[people]
alice = {{ slack = "U0ALICE01", discord = "100000000000000001", github = "alice" }}

[apps.shop]
repository = "Codertocat/Hello-World"
image = "ghcr.io/acme/shop"
ci_token = "${{SHOP_CI_TOKEN}}"
operators = ["alice"]

[apps.shop.environments.staging]

[apps.shop.environments.production]
"#,
        discord = discord_section(discord_public_key, "http://127.0.0.1:9"),
    )
}

/// A seed of `parser` mutated by the harness's mutator, arbitrary bytes, or JSON-token soup.
fn body(parser: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = fuzz::target(parser, &fixtures::dir())
        .expect("a parser of the harness")
        .seeds;
    let count = seeds.len();
    prop_oneof![
        3 => (0..count, any::<u64>(), 0..4u8).prop_map(move |(index, seed, rounds)| {
            let mut rng = Rng::new(seed);
            let mut input = seeds[index].clone();
            for _ in 0..rounds {
                fuzz::mutate(&mut rng, &mut input, &seeds);
            }
            input
        }),
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => prop::collection::vec(
            prop::sample::select(vec!["{", "}", "[", "]", "\"", ":", ",", "\"id\"", "\"type\"",
                "1", "null", "payload=", "&", "=", "%7B", "command=", "user_id="]),
            0..30,
        )
        .prop_map(|parts| parts.concat().into_bytes()),
    ]
}

/// Status and body of one answer, checked against SPEC §5.
async fn check_answer(response: reqwest::Response, route: &str) -> Result<(), TestCaseError> {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    let text = String::from_utf8_lossy(&bytes);
    prop_assert!(status < 500, "{route} answered {status}: {text}");
    if status >= 400 {
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|_| TestCaseError::fail(format!("{route} {status} is not JSON: {text}")))?;
        prop_assert!(body["error"].is_string(), "{route} {status}: {text}");
        prop_assert!(
            body["detail"]
                .as_str()
                .is_some_and(|detail| !detail.is_empty()),
            "{route} {status}: {text}"
        );
    } else if !bytes.is_empty() {
        prop_assert!(
            serde_json::from_slice::<Value>(&bytes).is_ok(),
            "{route} {status} answered something that is not JSON: {text}"
        );
    }
    Ok(())
}

#[test]
fn malformed_bodies_are_refused_with_4xx_json_and_never_5xx() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let signer = DiscordSigner::new();
    let app: TestApp = runtime.block_on(spawn_app_with(
        &config(&signer.public_key_hex()),
        &[
            ("SLACK_SIGNING_SECRET", SLACK_SECRET),
            ("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET),
            ("SHOP_CI_TOKEN", CI_TOKEN),
        ],
    ));
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let (app_ref, signer) = (&app, &signer);

    runner
        .run(&body("ci_event"), |body| {
            runtime.block_on(async {
                let response = app_ref
                    .client
                    .post(app_ref.url("/api/v1/events"))
                    .bearer_auth(CI_TOKEN)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("request");
                check_answer(response, "/api/v1/events").await
            })
        })
        .expect("CI events");

    runner
        .run(&body("github_webhook"), |input| {
            let (selector, body) = input.split_first().map_or((0, &[][..]), |(s, b)| (*s, b));
            let event = [
                "ping",
                "deployment_status",
                "workflow_run",
                "deployment_protection_rule",
                "push",
            ][usize::from(selector) % 5];
            let content_type = if selector & 4 == 0 {
                "application/json"
            } else {
                "application/x-www-form-urlencoded"
            };
            let signature = github_signature(GITHUB_SECRET, body);
            let headers = [
                ("x-github-event", event),
                ("x-github-delivery", &delivery_id()),
                ("x-hub-signature-256", &signature),
                ("content-type", content_type),
            ];
            runtime.block_on(async {
                let response = from_github::post(app_ref, &headers, body.to_vec()).await;
                check_answer(response, "/webhooks/github").await
            })
        })
        .expect("GitHub webhooks");

    for (parser, route) in [
        ("slack_interaction", "/slack/interactions"),
        ("slack_command", "/slack/commands"),
    ] {
        runner
            .run(&body(parser), |body| {
                runtime.block_on(async {
                    let response =
                        from_slack::post_signed(app_ref, route, body, SLACK_SECRET, 0).await;
                    check_answer(response, route).await
                })
            })
            .expect(route);
    }

    runner
        .run(&body("discord_interaction"), |body| {
            runtime.block_on(async {
                let now = app_ref.clock.now().timestamp();
                let response = from_discord::post_signed_at(app_ref, signer, &body, now).await;
                check_answer(response, "/discord/interactions").await
            })
        })
        .expect("Discord interactions");
    runtime.block_on(app.teardown());
}
