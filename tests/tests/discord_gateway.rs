//! Discord over the Gateway (SPEC §12), end to end against a fake Gateway that speaks the real
//! protocol: what Greenlight identifies with, what the status shows, answers within Discord's
//! 3 seconds while the database is slow, and a RECONNECT or a dropped socket in the middle of
//! an approval losing no click and applying none twice. The approval flows and the slash
//! commands themselves run over the Gateway in `discord_approvals.rs` and `discord_commands.rs`.

use std::time::{Duration, Instant};

use greenlight_tests::approvals::{self, shop_config, STANDARD_POLICY};
use greenlight_tests::clock::manual_clock;
use greenlight_tests::config::{discord_gateway_section, http_deploy, DISCORD_BOT_TOKEN};
use greenlight_tests::fakes::discord::has_buttons;
use greenlight_tests::fakes::discord_gateway::as_delivered;
use greenlight_tests::fakes::{DeployHook, FakeDiscord, FakeGateway};
use greenlight_tests::inbound::discord::{self as from_discord, callback, slash_command};
use greenlight_tests::inbound::discord::{Transport, Via};
use greenlight_tests::signing::discord_interaction_id;
use greenlight_tests::{fixtures, over_both_transports, spawn_app_with_clock, TestApp};
use serde_json::{json, Value};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const CHANNEL: &str = "1100000000000000000";
const ALICE: &str = "100000000000000001";
const BOB: &str = "100000000000000002";
const CAROL: &str = "100000000000000003";

/// Greenlight with `discord` (any TOML) and shop gated by the standard policy.
async fn start_with(discord: &str) -> TestApp {
    start_deploying(discord, "").await
}

/// As [`start_with`], production deployed by `deploy` (TOML) signed with `${HOOK_SECRET}`.
async fn start_deploying(discord: &str, deploy: &str) -> TestApp {
    let config = format!(
        r#"
{discord}
[people]
alice = {{ discord = "{ALICE}", github = "alice" }}
bob = {{ discord = "{BOB}", github = "bob-gh" }}
carol = {{ discord = "{CAROL}", github = "carol" }}

{shop}"#,
        // alice runs shop's commands (`operators` goes with the channels, in shop's table).
        shop = shop_config(
            &format!("{{ discord = \"{CHANNEL}\" }}\noperators = [\"alice\"]"),
            &format!("{STANDARD_POLICY}\n{deploy}"),
        ),
    );
    spawn_app_with_clock(&config, &[("HOOK_SECRET", HOOK_SECRET)], manual_clock()).await
}

/// The secret the deploy hook and Greenlight share.
const HOOK_SECRET: &str = "deploy-hook-secret";

/// Discord over the Gateway, connected.
async fn connected() -> (FakeDiscord, Via, TestApp) {
    let discord = FakeDiscord::start().await;
    let via = Via::new(Transport::Gateway, &discord).await;
    let app = start_with(&via.section(&discord)).await;
    gateway(&via).wait_connected().await;
    (discord, via, app)
}

fn gateway(via: &Via) -> &FakeGateway {
    via.gateway().expect("over the Gateway")
}

/// What `GET /api/v1/status` says about Discord.
async fn discord_status(app: &TestApp) -> String {
    let status: Value = app
        .get("/api/v1/status")
        .await
        .json()
        .await
        .expect("status is JSON");
    status["discord"].as_str().unwrap_or_default().to_owned()
}

/// Waits (up to 15 s) until the status shows `expected` for Discord.
async fn status_shows(app: &TestApp, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let shown = discord_status(app).await;
        if shown == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the status shows {shown:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `greenlight_chat_reconnects_total{transport="discord_gateway"}` as `/metrics` shows it.
async fn gateway_reconnects(app: &TestApp) -> u64 {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    text.lines()
        .find(|line| {
            line.starts_with("greenlight_chat_reconnects_total")
                && line.contains("transport=\"discord_gateway\"")
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

/// Waits (up to 15 s) until the Gateway's reconnect counter reaches `at_least`.
async fn reconnects_reach(app: &TestApp, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let counted = gateway_reconnects(app).await;
        if counted >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{counted} Gateway reconnects counted, not {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn click(user: &str, custom_id: &str) -> Value {
    from_discord::click(user, CHANNEL, custom_id)
}

#[tokio::test]
async fn greenlight_identifies_with_its_token_and_no_intents_and_the_status_shows_it() {
    let (discord, via, app) = connected().await;
    let identifies = gateway(&via).identifies();
    assert_eq!(identifies.len(), 1, "{identifies:?}");
    assert_eq!(
        identifies[0].token,
        format!("Bot {DISCORD_BOT_TOKEN}"),
        "the bot token"
    );
    assert_eq!(
        identifies[0].intents, 0,
        "interactions need no intents, privileged or not"
    );
    status_shows(&app, "gateway: connected, shard 0").await;
    // Heartbeats keep it: a missed ACK would make serenity reconnect.
    gateway(&via).wait_heartbeats(2).await;
    assert_eq!(gateway(&via).connections(), 1, "still the first connection");
    // The HTTP endpoint is off without a public key: it accepts nothing, signed or not.
    let response = app
        .client
        .post(app.url("/discord/interactions"))
        .header("x-signature-ed25519", "00".repeat(64))
        .header("x-signature-timestamp", "1700000000")
        .body(r#"{"id":"1","type":1}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.expect("JSON error");
    assert!(
        error["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Gateway"),
        "{error}"
    );
    discord.assert_all_read();
    app.teardown().await;
}

#[tokio::test]
async fn a_refused_bot_token_stops_with_a_clear_status_instead_of_looping() {
    let discord = FakeDiscord::start().await;
    let gateway = discord.start_gateway().await;
    let section =
        discord_gateway_section(&discord.api_url()).replace(DISCORD_BOT_TOKEN, "revoked-token");
    let app = start_with(&section).await;
    let identifies = gateway.wait_identifies(1).await;
    assert_eq!(identifies[0].token, "Bot revoked-token");
    status_shows(
        &app,
        "gateway: stopped: Discord refused the bot token (close code 4004); check discord.bot_token",
    )
    .await;
    assert_eq!(gateway.connections(), 1, "no retry with a refused token");
    assert_eq!(gateway.identifies().len(), 1);
    app.teardown().await;
}

#[tokio::test]
async fn payloads_serenity_cannot_read_are_still_answered() {
    let (discord, via, app) = connected().await;
    // The documentation's examples lack `member.flags` and `attachment_size_limit`, so
    // serenity reads none of them; Greenlight reads them from the raw event.
    for (name, body) in fixtures::all_under("discord") {
        let payload: Value = serde_json::from_slice(&body).expect("JSON fixture");
        gateway(&via)
            .dispatch_raw_interaction(payload.clone())
            .await;
        let answer = callback(discord.inbox(), &payload).await.body;
        assert_eq!(answer["type"], 4, "{name}: {answer}");
        assert_eq!(answer["data"]["flags"], 64, "{name}: {answer}");
    }
    app.teardown().await;
}

/// Holds SQLite's write lock from another connection, as a long write elsewhere would:
/// every write of the app waits (up to its 5 s busy timeout) until it is dropped.
async fn an_answer_comes_within_3_seconds_while_the_database_is_slow(transport: Transport) {
    let discord = FakeDiscord::start().await;
    let via = Via::new(transport, &discord).await;
    let app = start_with(&via.section(&discord)).await;
    if let Some(gateway) = via.gateway() {
        gateway.wait_connected().await;
    }
    let lock = app.hold_writes().await;
    let options = json!([{"name": "environment", "type": 3, "value": "production"},
        {"name": "reason", "type": 3, "value": "incident 7"}]);
    let started = Instant::now();
    let (status, answer) = via
        .interact(&app, &slash_command(ALICE, CHANNEL, "lock", options))
        .await;
    let took = started.elapsed();
    assert_eq!(status, 200);
    assert!(
        took < Duration::from_secs(3),
        "answered after {took:?}, past Discord's 3 s"
    );
    let text = answer["data"]["content"].as_str().unwrap_or_default();
    assert!(text.contains("still being applied"), "{answer}");
    lock.release().await;
    // The command went on and did its work.
    let announcement = discord.next_post(CHANNEL).await;
    assert!(
        announcement.text().contains("incident 7"),
        "{}",
        announcement.body
    );
    app.teardown().await;
}

over_both_transports!(an_answer_comes_within_3_seconds_while_the_database_is_slow);

/// An answer's text.
fn text(answer: &Value) -> &str {
    answer["data"]["content"].as_str().unwrap_or_default()
}

/// The custom id of the confirm button of an Approve prompt.
fn confirm_button(prompt: &Value) -> String {
    prompt["data"]["components"][0]["components"][0]["custom_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a confirm button: {prompt}"))
        .to_owned()
}

/// Clicks Approve, then the confirmation's button; returns the confirmation's final answer.
async fn approve(app: &TestApp, via: &Via, user: &str, request: i64) -> Value {
    let (_, prompt) = via
        .interact(app, &click(user, &format!("approve:{request}")))
        .await;
    via.interact(app, &click(user, &confirm_button(&prompt)))
        .await
        .1
}

#[tokio::test]
async fn reconnects_and_dropped_sockets_lose_no_click_and_apply_none_twice() {
    let (discord, via, app) = connected().await;
    let gateway = gateway(&via);
    status_shows(&app, "gateway: connected, shard 0").await;
    let reconnects_before = gateway_reconnects(&app).await;
    let request = approvals::staging_healthy(&app, SHA, "alice").await;
    discord.next_post(CHANNEL).await;
    app.outbox_pass_after(chrono::Duration::minutes(5)).await;
    discord.next_edit(CHANNEL).await;

    // Bob clicks Approve; Discord asks for a reconnect (op 7) before he confirms. His
    // confirmation, sent meanwhile, is replayed on the resumed session and answered once.
    let (_, prompt) = via
        .interact(&app, &click(BOB, &format!("approve:{request}")))
        .await;
    assert!(text(&prompt).starts_with("Approve deploying"), "{prompt}");
    gateway.reconnect();
    let (_, answer) = via
        .interact(&app, &click(BOB, &confirm_button(&prompt)))
        .await;
    assert!(
        text(&answer).contains("1 more approval is needed"),
        "{answer}"
    );
    gateway.wait_resumed(1).await;
    assert_eq!(
        gateway.sessions_started(),
        1,
        "resumed, not identified again"
    );
    assert_eq!(gateway.resumes()[0].session_id, "fake-session-1");
    discord.next_edit(CHANNEL).await;

    // Carol clicks Approve; the TCP connection drops without a close frame before she
    // confirms. Her confirmation waits for the resume.
    let (_, prompt) = via
        .interact(&app, &click(CAROL, &format!("approve:{request}")))
        .await;
    gateway.drop_connection();
    let (_, answer) = via
        .interact(&app, &click(CAROL, &confirm_button(&prompt)))
        .await;
    assert!(text(&answer).contains("Approved"), "{answer}");
    gateway.wait_resumed(2).await;
    assert_eq!(gateway.sessions_started(), 1);
    assert_eq!(app.request_state(request).await, "approved");
    assert_eq!(app.approver_count(request).await, 2, "each approval once");
    let card = discord.next_final_edit(CHANNEL).await;
    assert!(!has_buttons(&card.body));
    discord.next_post(CHANNEL).await;

    status_shows(&app, "gateway: connected, shard 0").await;
    // Both counted (the counter is the process's, shared with other tests: at least).
    reconnects_reach(&app, reconnects_before + 2).await;
    discord.assert_all_read();
    app.teardown().await;
}

#[tokio::test]
async fn the_same_event_delivered_twice_changes_nothing() {
    let (discord, via, app) = connected().await;
    let gateway = gateway(&via);
    let request = approvals::staging_healthy(&app, SHA, "alice").await;
    discord.next_post(CHANNEL).await;
    app.outbox_pass_after(chrono::Duration::minutes(5)).await;
    discord.next_edit(CHANNEL).await;
    let confirm = click(BOB, &format!("confirm:{request}"));
    let (_, first) = via.interact(&app, &confirm).await;
    assert!(
        first["data"]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("Approval recorded"),
        "{first}"
    );
    discord.next_edit(CHANNEL).await;
    // The same event again, as a replay that overlaps what was delivered would bring it.
    gateway.dispatch_interaction(&confirm).await;
    let again = callback(discord.inbox(), &confirm).await.body;
    assert!(
        again["data"]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("already handled"),
        "{again}"
    );
    assert_eq!(app.approver_count(request).await, 1);
    app.outbox_idle().await;
    discord.assert_all_read();
    app.teardown().await;
}

#[tokio::test]
async fn check_config_accepts_the_gateway_without_a_public_key_and_names_the_field_otherwise() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("greenlight.toml");
    let check = |text: &str| {
        std::fs::write(&file, text).expect("config");
        let result = greenlight::config::Config::load(&file, &|_| None);
        (
            result.is_ok(),
            greenlight::config::check_config_report(&result),
        )
    };
    let gateway = discord_gateway_section("https://discord.com");
    let (ok, report) = check(&gateway);
    assert!(ok, "{report}");
    let neither = gateway.replace("gateway = true\n", "");
    let (ok, report) = check(&neither);
    assert!(!ok);
    assert!(
        report.contains("discord.public_key: missing") && report.contains("gateway = true"),
        "{report}"
    );
}

#[tokio::test]
async fn an_invalidated_session_identifies_again_and_answers_on_the_new_one() {
    let (discord, via, app) = connected().await;
    let gateway = gateway(&via);
    status_shows(&app, "gateway: connected, shard 0").await;
    let reconnects_before = gateway_reconnects(&app).await;
    // op 9 with `d: false`: the session cannot be resumed.
    gateway.invalidate_session(false);
    gateway.wait_identifies(2).await;
    gateway.wait_connected().await;
    assert_eq!(gateway.sessions_started(), 2);
    let (_, answer) = via
        .interact(&app, &slash_command(ALICE, CHANNEL, "releases", json!([])))
        .await;
    assert!(
        answer["data"]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("No releases"),
        "{answer}"
    );
    status_shows(&app, "gateway: connected, shard 0").await;
    reconnects_reach(&app, reconnects_before + 1).await;
    discord.assert_all_read();
    app.teardown().await;
}

/// The fake completes payloads as Discord's Gateway sends them, so serenity reads them and the
/// suites exercise its models and Greenlight's re-encoding of them; the documentation's bare
/// examples take the other path (an unknown event with the raw payload), covered above.
#[test]
fn the_fakes_deliveries_are_interactions_serenity_reads() {
    let modal = json!({
        "id": discord_interaction_id(), "type": 5, "token": "modal-token",
        "channel_id": CHANNEL, "guild_id": "290926798626357999",
        "member": {"user": {"id": CAROL, "username": "carol"}, "roles": []},
        "data": {"custom_id": "reject_reason:1", "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": "reason", "value": "no"}]}]},
    });
    let options = json!([{"name": "environment", "type": 3, "value": "production"}]);
    for (what, payload) in [
        ("a button", click(BOB, "approve:1")),
        ("a modal", modal),
        (
            "a slash command",
            slash_command(ALICE, CHANNEL, "lock", options),
        ),
    ] {
        let delivered = as_delivered(&payload);
        if let Err(error) = serde_json::from_value::<serenity::all::Interaction>(delivered) {
            panic!("serenity cannot read {what} as the fake delivers it: {error}");
        }
    }
    let bare = fixtures::read_json("discord/component_interaction_button.json");
    assert!(serde_json::from_value::<serenity::all::Interaction>(bare).is_err());
}

#[tokio::test]
async fn two_approvals_over_the_gateway_start_the_production_deploy() {
    let discord = FakeDiscord::start().await;
    let via = Via::new(Transport::Gateway, &discord).await;
    let hook = DeployHook::start(HOOK_SECRET, 1).await;
    let app = start_deploying(&via.section(&discord), &http_deploy(&hook)).await;
    let request = approvals::staging_healthy(&app, SHA, "alice").await;
    discord.next_post(CHANNEL).await;
    app.outbox_pass_after(chrono::Duration::minutes(5)).await;
    discord.next_edit(CHANNEL).await;

    approve(&app, &via, BOB, request).await;
    discord.next_edit(CHANNEL).await;
    let answer = approve(&app, &via, CAROL, request).await;
    assert!(
        answer["data"]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("Approved"),
        "{answer}"
    );
    let deploy = hook.next_request().await;
    assert_eq!(deploy.body["sha"], SHA, "{}", deploy.body);
    assert_eq!(deploy.body["environment"], "production");
    assert_eq!(deploy.body["kind"], "deploy");
    let card = discord.next_final_edit(CHANNEL).await;
    assert!(!has_buttons(&card.body));
    discord
        .inbox()
        .allow_unread("the deploy's own announcements are the deploy suite's subject");
    app.teardown().await;
}

#[tokio::test]
async fn a_gateway_url_discord_does_not_give_is_a_visible_retry_not_a_fallback() {
    // No fake Gateway: `GET /api/v10/gateway` answers 404. serenity alone would connect to
    // the real Discord instead, saying nothing.
    let discord = FakeDiscord::start().await;
    let app = start_with(&discord_gateway_section(&discord.api_url())).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let shown = loop {
        let shown = discord_status(&app).await;
        if shown.starts_with("gateway: reconnecting: GET /api/v10/gateway") {
            break shown;
        }
        assert!(Instant::now() < deadline, "the status shows {shown:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(shown.contains(&discord.api_url()), "{shown}");
    reconnects_reach(&app, 1).await;
    app.teardown().await;
}

/// The next text frame from `socket`, as JSON.
async fn next_frame<S>(socket: &mut S) -> Value
where
    S: futures::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    use futures::StreamExt;
    match socket.next().await {
        Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
            serde_json::from_str(&text).expect("a JSON frame")
        }
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn the_fake_gateway_closes_as_discord_does_for_a_bad_token_or_privileged_intents() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let gateway = FakeGateway::start().await;
    let good = format!("Bot {DISCORD_BOT_TOKEN}");
    for (token, intents, code) in [("Bot revoked", 0, 4004), (good.as_str(), 1 << 15, 4014)] {
        let url = format!("{}/?v=10", gateway.url());
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("connect to the fake gateway");
        let hello = next_frame(&mut socket).await;
        assert_eq!(hello["op"], 10, "{hello}");
        assert!(
            hello["d"]["heartbeat_interval"].as_u64() > Some(0),
            "{hello}"
        );
        let identify = json!({"op": 2, "d": {"token": token, "intents": intents,
            "properties": {"os": "linux", "browser": "test", "device": "test"}}});
        socket
            .send(Message::text(identify.to_string()))
            .await
            .expect("IDENTIFY");
        match socket.next().await {
            Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), code),
            other => panic!("expected close code {code}, got {other:?}"),
        }
    }
    assert_eq!(gateway.sessions_started(), 0);
}
