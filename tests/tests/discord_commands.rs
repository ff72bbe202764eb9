//! Discord slash commands: registered from the command table with one bulk overwrite, and run
//! with the options Discord sends through the same grammar, authorization and executor as Slack,
//! whether they arrive on the HTTP endpoint or over the Gateway.

use std::path::Path;

use clap::Parser;
use greenlight::cli::Cli;
use greenlight_tests::clock::manual_clock;
use greenlight_tests::config::{
    discord_section, shop_app, DISCORD_APPLICATION_ID as APPLICATION_ID,
};
use greenlight_tests::fakes::FakeDiscord;
use greenlight_tests::inbound::discord::{post_signed_at, slash_command, Transport, Via};
use greenlight_tests::shop;
use greenlight_tests::signing::DiscordSigner;
use greenlight_tests::{over_both_transports, spawn_app_with_clock, TestApp};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CHANNEL: &str = "1100000000000000000";
const ALICE: &str = "100000000000000001";
const DAVE: &str = "100000000000000004";

fn config(api_url: &str, public_key: &str) -> String {
    config_with(&discord_section(public_key, api_url))
}

/// Shop, alice (an operator) and dave, with `discord` as the `[discord]` section.
fn config_with(discord: &str) -> String {
    format!(
        r#"
{discord}
[people]
alice = {{ discord = "{ALICE}" }}
dave = {{ discord = "{DAVE}" }}

{shop}"#,
        shop = shop_app(
            &format!(
                "ci_token = \"shop-ci\"\nchannels = {{ discord = \"{CHANNEL}\" }}\n\
                 operators = [\"alice\"]"
            ),
            "",
            r#"reviewers = ["alice"]"#,
        ),
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
        manual_clock(),
    )
    .await
}

/// Greenlight with Discord over `transport`.
async fn start_via(transport: Transport) -> (FakeDiscord, Via, TestApp) {
    let discord = FakeDiscord::start().await;
    let via = Via::new(transport, &discord).await;
    let app = spawn_app_with_clock(&config_with(&via.section(&discord)), &[], manual_clock()).await;
    (discord, via, app)
}

/// A slash command interaction as Discord sends it, over `via`.
async fn slash(app: &TestApp, via: &Via, user: &str, name: &str, options: Value) -> Value {
    let payload = slash_command(user, CHANNEL, name, options);
    let (status, answer) = via.interact(app, &payload).await;
    assert_eq!(status, 200);
    assert_eq!(answer["type"], 4, "{answer}");
    assert_eq!(answer["data"]["flags"], 64, "private reply: {answer}");
    answer
}

/// `/lock production <reason>` by alice.
async fn lock(app: &TestApp, via: &Via, reason: &str) -> Value {
    let options = json!([{"name": "environment", "type": 3, "value": "production"},
        {"name": "reason", "type": 3, "value": reason}]);
    slash(app, via, ALICE, "lock", options).await
}

fn content(answer: &Value) -> &str {
    answer["data"]["content"].as_str().unwrap_or_default()
}

async fn commands_run_with_discords_typed_options(transport: Transport) {
    let (discord, via, app) = start_via(transport).await;

    let options = json!([
        {"name": "environment", "type": 3, "value": "production"},
        {"name": "action", "type": 3, "value": "new_checkout on payments fixed"},
    ]);
    let answer = slash(&app, &via, ALICE, "flag", options.clone()).await;
    assert!(content(&answer).contains("now on"), "{answer}");
    let announcement = discord.next_post(CHANNEL).await;
    let said = announcement.text();
    // Discord markdown is escaped in what users typed (`new\_checkout`).
    assert!(
        said.contains("alice set flag") && said.contains("payments fixed"),
        "{said}"
    );

    let refused = slash(&app, &via, DAVE, "flag", options).await;
    assert!(
        content(&refused).contains("only operators of shop"),
        "{refused}"
    );

    let listed = slash(
        &app,
        &via,
        DAVE,
        "flag",
        json!([{"name": "environment", "type": 3, "value": "production"},
               {"name": "action", "type": 3, "value": "list"}]),
    )
    .await;
    assert!(content(&listed).contains("new_checkout"), "{listed}");

    let releases = slash(
        &app,
        &via,
        DAVE,
        "releases",
        json!([{"name": "limit", "type": 4, "value": 5}]),
    )
    .await;
    assert!(content(&releases).contains("No releases"), "{releases}");

    let garbled = slash(
        &app,
        &via,
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

async fn lock_unlock_and_rollback_run_from_discord(transport: Transport) {
    let (discord, via, app) = start_via(transport).await;
    let production = json!({"name": "environment", "type": 3, "value": "production"});

    let locked = lock(&app, &via, "incident 42").await;
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
    let refused = slash(&app, &via, DAVE, "unlock", json!([production])).await;
    assert!(content(&refused).contains("only operators"), "{refused}");
    let unlocked = slash(&app, &via, ALICE, "unlock", json!([production])).await;
    assert!(
        content(&unlocked).starts_with("Unlocked shop production"),
        "{unlocked}"
    );
    discord.next_post(CHANNEL).await;

    // Production here is deployed by CI, so Greenlight explains why it cannot roll it back.
    let rollback = slash(&app, &via, ALICE, "rollback", json!([])).await;
    assert!(
        content(&rollback).contains("Cannot roll back"),
        "{rollback}"
    );
    discord.assert_all_read();
    app.teardown().await;
}

/// Posts `body` signed at `timestamp`; returns the status and the JSON answer.
async fn replay_at(
    app: &TestApp,
    signer: &DiscordSigner,
    body: &str,
    timestamp: i64,
) -> (u16, Value) {
    let response = post_signed_at(app, signer, body.as_bytes(), timestamp).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_replayed_unlock_does_nothing_and_old_interactions_are_refused() {
    let discord = FakeDiscord::start().await;
    let signer = DiscordSigner::new();
    let app = start(&discord, &signer).await;
    let via = Via::Http(signer);
    let Via::Http(signer) = &via else {
        unreachable!("HTTP")
    };
    let production = json!({"name": "environment", "type": 3, "value": "production"});
    lock(&app, &via, "incident 42").await;
    discord.next_post(CHANNEL).await;

    // A captured `/unlock`, sent again a minute later with its original signature.
    let unlock = slash_command(ALICE, CHANNEL, "unlock", json!([production])).to_string();
    let signed_at = app.clock.now().timestamp();
    let (status, first) = replay_at(&app, signer, &unlock, signed_at).await;
    assert_eq!(status, 200);
    assert!(
        content(&first).starts_with("Unlocked shop production"),
        "{first}"
    );
    discord.next_post(CHANNEL).await;

    lock(&app, &via, "incident 43").await;
    discord.next_post(CHANNEL).await;
    app.clock.advance(chrono::Duration::minutes(1));
    let (status, replay) = replay_at(&app, signer, &unlock, signed_at).await;
    assert_eq!(status, 200);
    assert!(content(&replay).contains("already handled"), "{replay}");
    let status = app
        .storage()
        .environment_status(&shop::shop(), &shop::production())
        .await
        .expect("status");
    assert_eq!(
        status.lock.expect("still locked").reason,
        "incident 43",
        "the replay did not unlock"
    );

    // Past five minutes the signature itself is refused, as stale.
    app.clock.advance(chrono::Duration::minutes(5));
    let (status, stale) = replay_at(&app, signer, &unlock, signed_at).await;
    assert_eq!(status, 401, "{stale}");
    // And so is a timestamp from the future.
    let ahead = app.clock.now().timestamp() + 301;
    let fresh_id = unlock.replace("\"id\":\"9", "\"id\":\"8");
    let (status, _) = replay_at(&app, signer, &fresh_id, ahead).await;
    assert_eq!(status, 401);
    discord.assert_all_read();
    app.teardown().await;
}

over_both_transports!(
    commands_run_with_discords_typed_options,
    lock_unlock_and_rollback_run_from_discord,
);
