//! Discord slash commands: registered from the command table with one bulk overwrite, and run
//! with the options Discord sends through the same grammar, authorization and executor as Slack.

use std::path::Path;

use chrono::{TimeZone, Utc};
use clap::Parser;
use greenlight::cli::Cli;
use greenlight::clock::Clock;
use greenlight_tests::fakes::FakeDiscord;
use greenlight_tests::signing::DiscordSigner;
use greenlight_tests::{spawn_app_with_clock, TestApp};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const APPLICATION_ID: &str = "1100000000000000001";
const CHANNEL: &str = "1100000000000000000";
const ALICE: &str = "100000000000000001";
const DAVE: &str = "100000000000000004";

fn config(api_url: &str, public_key: &str) -> String {
    format!(
        r#"
[discord]
application_id = "{APPLICATION_ID}"
public_key = "{public_key}"
bot_token = "discord-bot-token"
api_url = "{api_url}"

[people]
alice = {{ discord = "{ALICE}" }}
dave = {{ discord = "{DAVE}" }}

[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "shop-ci"
channels = {{ discord = "{CHANNEL}" }}
operators = ["alice"]

[apps.shop.environments.staging]

[apps.shop.environments.production]
after = "staging"
reviewers = ["alice"]
"#
    )
}

#[tokio::test]
async fn register_commands_sends_one_put_with_the_full_list() {
    let discord = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(format!(
            "/api/v10/applications/{APPLICATION_ID}/guilds/42/commands"
        )))
        .and(header("authorization", "Bot discord-bot-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&discord)
        .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("greenlight.toml");
    let signer = DiscordSigner::new();
    std::fs::write(&file, config(&discord.uri(), &signer.public_key_hex())).expect("config");

    let cli = Cli::parse_from([
        "greenlight",
        "--config",
        path_str(&file),
        "discord",
        "register-commands",
        "--guild",
        "42",
    ]);
    let code = greenlight::cli::run(cli, &|_| None)
        .await
        .expect("registered");
    assert_eq!(code, std::process::ExitCode::SUCCESS);

    let requests = discord.received_requests().await.expect("recorded");
    let body: Value = serde_json::from_slice(&requests[0].body).expect("JSON");
    let names: Vec<&str> = body
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|command| command["name"].as_str())
        .collect();
    assert_eq!(names, ["rollback", "lock", "unlock", "releases", "flag"]);
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

async fn start(discord: &FakeDiscord, signer: &DiscordSigner) -> TestApp {
    spawn_app_with_clock(
        &config(&discord.api_url(), &signer.public_key_hex()),
        &[],
        Clock::manual(
            Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
                .single()
                .expect("time"),
        ),
    )
    .await
}

/// A slash command interaction as Discord sends it, signed.
async fn slash(
    app: &TestApp,
    signer: &DiscordSigner,
    user: &str,
    name: &str,
    options: Value,
) -> Value {
    let payload = json!({
        "id": greenlight_tests::signing::discord_interaction_id(),
        "application_id": APPLICATION_ID, "type": 2, "token": "interaction-token",
        "version": 1, "guild_id": "290926798626357999", "channel_id": CHANNEL,
        "member": {"user": {"id": user, "username": "someone"}, "roles": []},
        "data": {"id": "771825006014889984", "name": name, "type": 1, "options": options},
    });
    let body = payload.to_string();
    let timestamp = app.clock.now().timestamp().to_string();
    let response = app
        .client
        .post(app.url("/discord/interactions"))
        .header(
            "x-signature-ed25519",
            signer.sign(&timestamp, body.as_bytes()),
        )
        .header("x-signature-timestamp", &timestamp)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(answer["type"], 4, "{answer}");
    assert_eq!(answer["data"]["flags"], 64, "private reply: {answer}");
    answer
}

fn content(answer: &Value) -> &str {
    answer["data"]["content"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn commands_run_with_discords_typed_options() {
    let discord = FakeDiscord::start().await;
    let signer = DiscordSigner::new();
    let app = start(&discord, &signer).await;

    let options = json!([
        {"name": "environment", "type": 3, "value": "production"},
        {"name": "action", "type": 3, "value": "new_checkout on payments fixed"},
    ]);
    let answer = slash(&app, &signer, ALICE, "flag", options.clone()).await;
    assert!(content(&answer).contains("now on"), "{answer}");
    let announcement = discord.next_post(CHANNEL).await;
    let said = announcement.text();
    // Discord markdown is escaped in what users typed (`new\_checkout`).
    assert!(
        said.contains("alice set flag") && said.contains("payments fixed"),
        "{said}"
    );

    let refused = slash(&app, &signer, DAVE, "flag", options).await;
    assert!(
        content(&refused).contains("only operators of shop"),
        "{refused}"
    );

    let listed = slash(
        &app,
        &signer,
        DAVE,
        "flag",
        json!([{"name": "environment", "type": 3, "value": "production"},
               {"name": "action", "type": 3, "value": "list"}]),
    )
    .await;
    assert!(content(&listed).contains("new_checkout"), "{listed}");

    let releases = slash(
        &app,
        &signer,
        DAVE,
        "releases",
        json!([{"name": "limit", "type": 4, "value": 5}]),
    )
    .await;
    assert!(content(&releases).contains("No releases"), "{releases}");

    let garbled = slash(
        &app,
        &signer,
        ALICE,
        "lock",
        json!([{"name": "environment", "type": 3, "value": "prodution"}]),
    )
    .await;
    assert!(
        content(&garbled).contains("Did you mean `production`?"),
        "{garbled}"
    );
    discord.assert_all_read();
    app.teardown().await;
}

#[tokio::test]
async fn lock_unlock_and_rollback_run_from_discord() {
    let discord = FakeDiscord::start().await;
    let signer = DiscordSigner::new();
    let app = start(&discord, &signer).await;
    let production = json!({"name": "environment", "type": 3, "value": "production"});

    let locked = slash(
        &app,
        &signer,
        ALICE,
        "lock",
        json!([production, {"name": "reason", "type": 3, "value": "incident 42"}]),
    )
    .await;
    assert!(
        content(&locked).starts_with("Locked shop production"),
        "{locked}"
    );
    let announcement = discord.next_post(CHANNEL).await;
    assert!(
        announcement.text().contains("incident 42"),
        "{}",
        announcement.body
    );
    let refused = slash(&app, &signer, DAVE, "unlock", json!([production])).await;
    assert!(content(&refused).contains("only operators"), "{refused}");
    let unlocked = slash(&app, &signer, ALICE, "unlock", json!([production])).await;
    assert!(
        content(&unlocked).starts_with("Unlocked shop production"),
        "{unlocked}"
    );
    discord.next_post(CHANNEL).await;

    // Production here is deployed by CI, so Greenlight explains why it cannot roll it back.
    let rollback = slash(&app, &signer, ALICE, "rollback", json!([])).await;
    assert!(
        content(&rollback).contains("Cannot roll back"),
        "{rollback}"
    );
    discord.assert_all_read();
    app.teardown().await;
}

/// Posts `body` signed at `timestamp`; returns the status and the JSON answer.
async fn post_signed_at(
    app: &TestApp,
    signer: &DiscordSigner,
    body: &str,
    timestamp: i64,
) -> (u16, Value) {
    let timestamp = timestamp.to_string();
    let response = app
        .client
        .post(app.url("/discord/interactions"))
        .header(
            "x-signature-ed25519",
            signer.sign(&timestamp, body.as_bytes()),
        )
        .header("x-signature-timestamp", &timestamp)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_replayed_unlock_does_nothing_and_old_interactions_are_refused() {
    let discord = FakeDiscord::start().await;
    let signer = DiscordSigner::new();
    let app = start(&discord, &signer).await;
    let production = json!({"name": "environment", "type": 3, "value": "production"});
    slash(
        &app,
        &signer,
        ALICE,
        "lock",
        json!([production, {"name": "reason", "type": 3, "value": "incident 42"}]),
    )
    .await;
    discord.next_post(CHANNEL).await;

    // A captured `/unlock`, sent again a minute later with its original signature.
    let unlock = json!({
        "id": greenlight_tests::signing::discord_interaction_id(),
        "application_id": APPLICATION_ID, "type": 2, "token": "interaction-token",
        "version": 1, "guild_id": "290926798626357999", "channel_id": CHANNEL,
        "member": {"user": {"id": ALICE, "username": "alice"}, "roles": []},
        "data": {"id": "771825006014889984", "name": "unlock", "type": 1,
            "options": [production]},
    })
    .to_string();
    let signed_at = app.clock.now().timestamp();
    let (status, first) = post_signed_at(&app, &signer, &unlock, signed_at).await;
    assert_eq!(status, 200);
    assert!(
        content(&first).starts_with("Unlocked shop production"),
        "{first}"
    );
    discord.next_post(CHANNEL).await;

    slash(
        &app,
        &signer,
        ALICE,
        "lock",
        json!([production, {"name": "reason", "type": 3, "value": "incident 43"}]),
    )
    .await;
    discord.next_post(CHANNEL).await;
    app.clock.advance(chrono::Duration::minutes(1));
    let (status, replay) = post_signed_at(&app, &signer, &unlock, signed_at).await;
    assert_eq!(status, 200);
    assert!(content(&replay).contains("already handled"), "{replay}");
    let status = app
        .storage()
        .environment_status(
            &greenlight_commands::AppName::parse("shop").expect("app"),
            &greenlight_commands::EnvironmentName::parse("production").expect("env"),
        )
        .await
        .expect("status");
    assert_eq!(
        status.lock.expect("still locked").reason,
        "incident 43",
        "the replay did not unlock"
    );

    // Past five minutes the signature itself is refused, as stale.
    app.clock.advance(chrono::Duration::minutes(5));
    let (status, stale) = post_signed_at(&app, &signer, &unlock, signed_at).await;
    assert_eq!(status, 401, "{stale}");
    // And so is a timestamp from the future.
    let ahead = app.clock.now().timestamp() + 301;
    let fresh_id = unlock.replace("\"id\":\"9", "\"id\":\"8");
    let (status, _) = post_signed_at(&app, &signer, &fresh_id, ahead).await;
    assert_eq!(status, 401);
    discord.assert_all_read();
    app.teardown().await;
}
