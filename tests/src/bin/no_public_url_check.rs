//! The "works from a laptop" check of SPEC §12, with the shipped binary: starts a fake Slack
//! (Web API and Socket Mode) and a fake Discord (REST API and Gateway) on 127.0.0.1, runs
//! `greenlight serve` on a config with Slack's `app_token`, Discord's `gateway = true`, no
//! `signing_secret`, no `public_key` and no `public_url`, and talks to it only over the
//! connections Greenlight opened: slash commands over both, an operator's `/lock` (announced
//! in the Slack channel through the Web API), then SIGTERM. Prints what it saw; exits 1 on a
//! mismatch.
//!
//! `cargo build --bin greenlight && cargo run -p greenlight-tests --bin no_public_url_check`
//! (`GREENLIGHT_BIN` names another binary, e.g. a release build).

use std::process::Stdio;
use std::time::Duration;

use greenlight_tests::config::{discord_gateway_section, slack_socket_mode_section};
use greenlight_tests::fakes::{FakeDiscord, FakeSlack, FakeSocketMode};
use greenlight_tests::inbound::discord::{callback, slash_command};
use greenlight_tests::inbound::slack::command_fields;

const CHANNEL: &str = "C0DEPLOYS";
const ALICE: &str = "U0ALICE01";
const ALICE_ON_DISCORD: &str = "80351110224678912";
const DISCORD_CHANNEL: &str = "1100000000000000000";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let binary = std::env::var("GREENLIGHT_BIN").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/greenlight").to_owned()
    });
    let slack = FakeSlack::start().await;
    let socket = FakeSocketMode::start(&slack).await;
    let discord = FakeDiscord::start().await;
    let gateway = discord.start_gateway().await;
    let dir = tempfile::tempdir()?;
    let config = format!(
        r#"{slack}
{discord}
[server]
listen = "127.0.0.1:0"

[database]
url = "sqlite://{db}"

[people]
alice = {{ slack = "{ALICE}", discord = "{ALICE_ON_DISCORD}" }}

[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "shop-ci"
channels = {{ slack = "{CHANNEL}", discord = "{DISCORD_CHANNEL}" }}
operators = ["alice"]

[apps.shop.environments.staging]

[apps.shop.environments.production]
after = "staging"
reviewers = ["alice"]
"#,
        slack = slack_socket_mode_section(&slack),
        discord = discord_gateway_section(&discord.api_url()),
        db = dir.path().join("greenlight.db").display(),
    );
    let path = dir.path().join("greenlight.toml");
    std::fs::write(&path, config)?;
    println!(
        "config: {} (no signing_secret, no public_key, no public_url)",
        path.display()
    );

    let mut server = tokio::process::Command::new(&binary)
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| anyhow::anyhow!("starting {binary}: {error}"))?;

    socket.connected(1).await;
    println!(
        "greenlight connected over Socket Mode ({} hello)",
        socket.hellos()
    );
    gateway.wait_connected().await;
    let intents = gateway
        .identifies()
        .first()
        .map(|identify| identify.intents);
    println!("greenlight connected to the Gateway (IDENTIFY with intents {intents:?})");

    let command = slash_command(
        ALICE_ON_DISCORD,
        DISCORD_CHANNEL,
        "releases",
        serde_json::json!([]),
    );
    gateway.dispatch_interaction(&command).await;
    let answer = callback(discord.inbox(), &command).await;
    let content = answer.body["data"]["content"].as_str().unwrap_or_default();
    println!("Discord /releases answered through the interaction callback: {content:?}");
    anyhow::ensure!(content.contains("No releases"), "unexpected Discord answer");

    let releases = socket
        .command(command_fields(ALICE, CHANNEL, "/releases", ""))
        .await;
    println!(
        "/releases acknowledged after {:?}: {}",
        releases.after,
        releases.payload.clone().unwrap_or_default()["text"]
    );
    let lock = socket
        .command(command_fields(
            ALICE,
            CHANNEL,
            "/lock",
            "production trying Socket Mode",
        ))
        .await;
    let reply = lock.payload.unwrap_or_default()["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    println!("/lock acknowledged after {:?}: {reply}", lock.after);
    anyhow::ensure!(
        reply.starts_with("Locked shop production"),
        "unexpected /lock reply"
    );
    let announced = slack.next_call("chat.postMessage", CHANNEL).await;
    println!("channel told: {}", announced.text());

    let pid = server.id().ok_or_else(|| anyhow::anyhow!("no pid"))?;
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    let status = tokio::time::timeout(Duration::from_secs(20), server.wait()).await??;
    println!("greenlight stopped on SIGTERM: {status}");
    anyhow::ensure!(status.success(), "greenlight did not exit cleanly");
    println!("OK: served Slack over Socket Mode and Discord over the Gateway with no public URL");
    Ok(())
}
