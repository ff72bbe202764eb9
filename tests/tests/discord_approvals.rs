//! The approval gate in Discord, end to end: the card appears in the app's channel, people click
//! Approve (and confirm) or Reject (and give a reason), and only the right clicks count; with
//! both platforms configured, one request has one card on each and decisions on either count
//! together. Everything runs through the real app against fake Discord and Slack servers, with
//! a manual clock; the flows run twice, with interactions signed as Discord signs them and
//! with interactions dispatched on the (fake) Gateway, answered through the callback.

use greenlight_tests::approvals::{self, card_texts, shop_config, STANDARD_POLICY};
use greenlight_tests::clock::manual_clock;
use greenlight_tests::config::{slack_section, SLACK_SIGNING_SECRET};
use greenlight_tests::fakes::discord::{has_buttons, Hiccup};
use greenlight_tests::fakes::{FakeDiscord, FakeSlack, Recorded};
use greenlight_tests::inbound::discord::{self as from_discord, post, Transport, Via};
use greenlight_tests::inbound::slack as from_slack;
use greenlight_tests::signing::{discord_interaction_id, DiscordSigner};
use greenlight_tests::{fixtures, over_both_transports, spawn_app_with_clock, TestApp};
use serde_json::{json, Value};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const CHANNEL: &str = "1100000000000000000";
const APPLICATION_ID: &str = greenlight_tests::config::DISCORD_APPLICATION_ID;
const ALICE: &str = "100000000000000001";
const BOB: &str = "100000000000000002";
const CAROL: &str = "100000000000000003";
const DAVE: &str = "100000000000000004";
const NOBODY: &str = "100000000000000099";

const SLACK_CHANNEL: &str = "C0DEPLOYS";
const SLACK_BOB: &str = "U0BOB0001";
const SLACK_ALICE: &str = "U0ALICE01";

/// Greenlight with Discord over `via` (and, when `slack` is given, Slack as well) and one
/// gated app.
async fn start(discord: &FakeDiscord, via: &Via, slack: Option<&FakeSlack>) -> TestApp {
    let slack_section = slack.map(slack_section).unwrap_or_default();
    let channels = if slack.is_some() {
        format!("{{ slack = \"{SLACK_CHANNEL}\", discord = \"{CHANNEL}\" }}")
    } else {
        format!("{{ discord = \"{CHANNEL}\" }}")
    };
    let config = format!(
        r#"
{discord_section}
{slack_section}

[people]
alice = {{ discord = "{ALICE}", slack = "{SLACK_ALICE}", github = "alice" }}
bob = {{ discord = "{BOB}", slack = "{SLACK_BOB}", github = "bob-gh" }}
carol = {{ discord = "{CAROL}", github = "carol" }}
dave = {{ discord = "{DAVE}", github = "dave" }}

{shop}"#,
        discord_section = via.section(discord),
        shop = shop_config(&channels, STANDARD_POLICY),
    );
    spawn_app_with_clock(&config, &[], manual_clock()).await
}

/// Discord alone over `transport`, and a request by alice whose card was posted.
async fn card_posted(transport: Transport) -> (FakeDiscord, Via, TestApp, i64) {
    let discord = FakeDiscord::start().await;
    let via = Via::new(transport, &discord).await;
    let app = start(&discord, &via, None).await;
    let request = staging_healthy(&app, "alice").await;
    discord.next_post(CHANNEL).await;
    (discord, via, app, request)
}

/// Greenlight with Discord over HTTP, and the key its interactions are signed with.
async fn start_http(discord: &FakeDiscord) -> (DiscordSigner, TestApp) {
    let via = Via::new(Transport::Http, discord).await;
    let app = start(discord, &via, None).await;
    let Via::Http(signer) = via else {
        unreachable!("HTTP was asked for")
    };
    (signer, app)
}

/// CI reports a build by `author` and its healthy staging deploy; returns the request id.
async fn staging_healthy(app: &TestApp, author: &str) -> i64 {
    approvals::staging_healthy(app, SHA, author).await
}

/// Opens approvals (the 5-minute wait timer) and reads the card's refresh that comes with it.
async fn open_approvals(app: &TestApp, discord: &FakeDiscord) -> Recorded {
    app.outbox_pass_after(chrono::Duration::minutes(5)).await;
    discord.next_edit(CHANNEL).await
}

/// A button click built from Discord's documented component interaction.
fn click(user: &str, custom_id: &str) -> Value {
    from_discord::click(user, CHANNEL, custom_id)
}

/// The reject-reason modal's submission, as Discord sends it.
fn reject_submission(user: &str, request_id: i64, reason: &str) -> Value {
    json!({
        "id": discord_interaction_id(), "type": 5, "token": "modal-token", "version": 1,
        "application_id": APPLICATION_ID, "channel_id": CHANNEL, "guild_id": "290926798626357999",
        "member": {"user": {"id": user, "username": "someone"}, "roles": []},
        "data": {"custom_id": format!("reject_reason:{request_id}"), "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": "reason", "value": reason}]}]},
        "locale": "en-US", "app_permissions": "442368", "attachment_size_limit": 26214400,
    })
}

/// An answer only the clicker sees; returns its text.
fn ephemeral_text(answer: &Value) -> String {
    assert_eq!(answer["type"], 4, "{answer}");
    assert_eq!(answer["data"]["flags"], 64, "not ephemeral: {answer}");
    answer["data"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// An answer that replaces the clicked (confirmation) message; returns its text.
fn updated_text(answer: &Value) -> String {
    assert_eq!(answer["type"], 7, "{answer}");
    assert_eq!(
        answer["data"]["components"],
        json!([]),
        "buttons left: {answer}"
    );
    answer["data"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Clicks Approve and then "Confirm approve"; returns the confirmation's final text.
async fn approve(app: &TestApp, via: &Via, user: &str, request: i64) -> String {
    let (status, prompt) = via
        .interact(app, &click(user, &format!("approve:{request}")))
        .await;
    assert_eq!(status, 200);
    let question = ephemeral_text(&prompt);
    assert!(question.starts_with("Approve deploying"), "{question}");
    let confirm = prompt["data"]["components"][0]["components"][0]["custom_id"]
        .as_str()
        .expect("confirm button")
        .to_owned();
    let (status, answer) = via.interact(app, &click(user, &confirm)).await;
    assert_eq!(status, 200);
    updated_text(&answer)
}

fn embed_text(message: &Value) -> String {
    message["embeds"].to_string()
}

/// A request Discord's security checks might send: (case, body, signature, timestamp).
type Probe<'a> = (&'a str, &'a [u8], Option<String>, Option<&'a str>);

#[tokio::test]
async fn signatures_are_checked_before_anything_else() {
    let discord = FakeDiscord::start().await;
    let (signer, app) = start_http(&discord).await;
    let ping = json!({"id": discord_interaction_id(), "type": 1, "application_id": APPLICATION_ID,
        "token": "ping-token", "version": 1})
    .to_string();
    let timestamp = app.clock.now().timestamp().to_string();
    let good = signer.sign(&timestamp, ping.as_bytes());

    let response = post(&app, ping.as_bytes(), Some(good.clone()), Some(&timestamp)).await;
    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json")));
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        json!({"type": 1})
    );

    let other_key = DiscordSigner::from_seed([9; 32]).sign(&timestamp, ping.as_bytes());
    let mut zeroed = "0".repeat(128);
    zeroed.replace_range(0..1, "1");
    let tampered = ping.replace("ping-token", "pong-token");
    let cases: Vec<Probe<'_>> = vec![
        (
            "wrong key",
            ping.as_bytes(),
            Some(other_key),
            Some(&timestamp),
        ),
        (
            "bad signature",
            ping.as_bytes(),
            Some(zeroed),
            Some(&timestamp),
        ),
        (
            "not hex",
            ping.as_bytes(),
            Some("zz".repeat(64)),
            Some(&timestamp),
        ),
        (
            "tampered body",
            tampered.as_bytes(),
            Some(good.clone()),
            Some(&timestamp),
        ),
        (
            "other timestamp",
            ping.as_bytes(),
            Some(good.clone()),
            Some("1700000000"),
        ),
        ("no signature", ping.as_bytes(), None, Some(&timestamp)),
        ("no timestamp", ping.as_bytes(), Some(good.clone()), None),
        ("no headers", ping.as_bytes(), None, None),
        ("empty body", b"", Some(good), Some(&timestamp)),
    ];
    for (case, body, signature, timestamp) in cases {
        let response = post(&app, body, signature, timestamp).await;
        assert_eq!(response.status(), 401, "{case}");
        let error: Value = response.json().await.expect("JSON error");
        assert_eq!(error["error"], "unauthorized", "{case}");
    }
    discord.assert_all_read();
    app.teardown().await;
}

#[tokio::test]
async fn without_a_discord_section_the_route_is_404() {
    let app = spawn_app_with_clock("", &[], manual_clock()).await;
    let response = app
        .client
        .post(app.url("/discord/interactions"))
        .body(r#"{"type":1}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
    app.teardown().await;
}

#[tokio::test]
async fn every_discord_fixture_is_answered_without_a_server_error() {
    let discord = FakeDiscord::start().await;
    let (signer, app) = start_http(&discord).await;
    let fixtures = fixtures::all_under("discord");
    assert!(fixtures.len() >= 5, "{fixtures:?}");
    for (name, body) in fixtures {
        let timestamp = app.clock.now().timestamp().to_string();
        let signature = signer.sign(&timestamp, &body);
        let response = post(&app, &body, Some(signature), Some(&timestamp)).await;
        let status = response.status();
        assert_eq!(status, 200, "{name}");
        let answer: Value = response.json().await.expect("JSON");
        // Foreign buttons and commands Greenlight does not own get a short private note.
        let text = ephemeral_text(&answer);
        assert!(!text.is_empty(), "{name}: {answer}");
    }
    // The same payload twice is fine too.
    let body = fixtures::read("discord/component_interaction_select.json");
    let timestamp = app.clock.now().timestamp().to_string();
    let signature = signer.sign(&timestamp, &body);
    let response = post(&app, &body, Some(signature), Some(&timestamp)).await;
    assert_eq!(response.status(), 200);
    // Malformed JSON, properly signed, is the client's fault.
    let body = br#"{"type": "component"}"#;
    let signature = signer.sign(&timestamp, body);
    let response = post(&app, body, Some(signature), Some(&timestamp)).await;
    assert_eq!(response.status(), 400);
    discord.assert_all_read();
    app.teardown().await;
}

#[tokio::test]
async fn the_card_is_posted_once_with_approve_and_reject() {
    let discord = FakeDiscord::start().await;
    let (_, app) = start_http(&discord).await;
    let request = staging_healthy(&app, "alice").await;

    let post = discord.next_post(CHANNEL).await;
    assert_eq!(post.header("authorization"), Some("Bot discord-bot-token"));
    let card = embed_text(&post.body);
    let markdown_escaped = r"Details \\*\\*here\\*\\*".to_owned();
    for needle in ["shop → production".to_owned(), markdown_escaped]
        .into_iter()
        .chain(card_texts(SHA))
    {
        assert!(card.contains(&needle), "card lacks {needle:?}: {card}");
    }
    assert_eq!(
        post.body["components"],
        json!([{"type": 1, "components": [
            {"type": 2, "style": 3, "label": "Approve", "custom_id": format!("approve:{request}")},
            {"type": 2, "style": 4, "label": "Reject", "custom_id": format!("reject:{request}")}]}])
    );
    assert_eq!(post.body["allowed_mentions"], json!({"parse": []}));

    // The same staging report again posts nothing more.
    staging_healthy(&app, "alice").await;
    app.deliver_due().await;
    assert_eq!(discord.api_requests(), 1);
    let stored = app
        .storage()
        .chat_messages(&format!("approval:{request}"))
        .await
        .expect("chat messages");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].channel, CHANNEL);
    discord.assert_all_read();
    app.teardown().await;
}

async fn refused_clicks_are_private_and_say_why(transport: Transport) {
    let (discord, via, app, request) = card_posted(transport).await;

    let cases = [
        (NOBODY, "is not linked to a person"),
        (DAVE, "not a reviewer"),
        (ALICE, "self-review is blocked"),
        (BOB, "Approvals open at 12:05 UTC"),
    ];
    for (user, why) in cases {
        let (status, answer) = via
            .interact(&app, &click(user, &format!("approve:{request}")))
            .await;
        assert_eq!(status, 200, "Discord always gets its answer");
        let text = ephemeral_text(&answer);
        assert!(text.contains(why), "{user}: {text:?} lacks {why:?}");
        assert!(
            answer["data"]["components"] == json!([]),
            "no confirmation for a refused click: {answer}"
        );
    }
    assert_eq!(app.request_state(request).await, "waiting");
    assert_eq!(app.approver_count(request).await, 0);
    assert_eq!(
        app.refusal_reasons(request).await,
        ["unknown_user", "not_reviewer", "self_review", "too_early"]
    );
    // Refusals are told in the answer only; nothing is posted in the channel.
    app.outbox_idle().await;
    discord.assert_all_read();
    app.teardown().await;
}

async fn two_reviewers_confirm_and_the_card_loses_its_buttons(transport: Transport) {
    let (discord, via, app, request) = card_posted(transport).await;
    let opened = open_approvals(&app, &discord).await;
    assert!(
        !embed_text(&opened.body).contains("opens 12:05"),
        "{}",
        opened.body
    );
    assert!(has_buttons(&opened.body));

    // Approve asks first; Cancel changes nothing.
    let (_, prompt) = via
        .interact(&app, &click(BOB, &format!("approve:{request}")))
        .await;
    assert!(ephemeral_text(&prompt).contains("shop 0123456 → production"));
    let cancel = prompt["data"]["components"][0]["components"][1]["custom_id"]
        .as_str()
        .expect("cancel button");
    assert_eq!(cancel, format!("cancel:{request}"));
    let (_, cancelled) = via.interact(&app, &click(BOB, cancel)).await;
    assert!(updated_text(&cancelled).contains("nothing changed"));
    assert_eq!(app.decision_count(request).await, 0);

    let answer = approve(&app, &via, BOB, request).await;
    assert!(answer.contains("1 more approval is needed"), "{answer}");
    let edit = discord.next_edit(CHANNEL).await;
    assert!(
        embed_text(&edit.body).contains("**bob** approved on Discord"),
        "{}",
        edit.body
    );
    assert!(
        has_buttons(&edit.body),
        "one approval of two: still waiting"
    );

    // Bob again: counts once.
    let again = approve(&app, &via, BOB, request).await;
    assert!(again.contains("counts once"), "{again}");
    assert_eq!(app.request_state(request).await, "waiting");

    let answer = approve(&app, &via, CAROL, request).await;
    assert!(answer.contains("Approved"), "{answer}");
    assert_eq!(app.request_state(request).await, "approved");
    let approved = discord.next_final_edit(CHANNEL).await;
    assert_eq!(approved.body["components"], json!([]));
    let card = embed_text(&approved.body);
    assert!(
        card.contains("**bob**") && card.contains("**carol**"),
        "{card}"
    );
    assert!(card.contains("approved"), "{card}");
    // The outcome is announced in the channel.
    let announcement = discord.next_post(CHANNEL).await;
    assert!(
        announcement.text().contains("approved"),
        "{}",
        announcement.body
    );

    // A late click on the final card changes nothing and says so, without asking to confirm.
    let (_, late) = via
        .interact(&app, &click(ALICE, &format!("approve:{request}")))
        .await;
    assert!(ephemeral_text(&late).contains("Already approved"), "{late}");
    assert_eq!(app.approver_count(request).await, 2);
    app.teardown().await;
}

async fn rejecting_asks_for_a_reason_in_a_modal(transport: Transport) {
    let (discord, via, app, request) = card_posted(transport).await;

    // A non-reviewer's Reject is refused at once, without a modal.
    let (_, refused) = via
        .interact(&app, &click(DAVE, &format!("reject:{request}")))
        .await;
    assert!(
        ephemeral_text(&refused).contains("not a reviewer"),
        "{refused}"
    );

    // A reviewer's Reject opens the reason modal (rejecting before the wait timer is allowed).
    let (_, modal) = via
        .interact(&app, &click(CAROL, &format!("reject:{request}")))
        .await;
    assert_eq!(modal["type"], 9, "{modal}");
    assert_eq!(
        modal["data"]["custom_id"],
        format!("reject_reason:{request}")
    );
    let input = &modal["data"]["components"][0]["components"][0];
    assert_eq!(input["type"], 4);
    assert_eq!(input["custom_id"], "reason");
    assert_eq!(input["style"], 2);
    assert_eq!(input["required"], true);

    // A blank reason is refused.
    let (_, blank) = via
        .interact(&app, &reject_submission(CAROL, request, "   "))
        .await;
    assert!(ephemeral_text(&blank).contains("needs a reason"), "{blank}");
    assert_eq!(app.request_state(request).await, "waiting");

    let (status, done) = via
        .interact(
            &app,
            &reject_submission(CAROL, request, "the migration locks the **orders** table"),
        )
        .await;
    assert_eq!(status, 200);
    assert!(ephemeral_text(&done).contains("Rejected"), "{done}");
    assert_eq!(app.request_state(request).await, "rejected");
    let edit = discord.next_final_edit(CHANNEL).await;
    let card = embed_text(&edit.body);
    assert!(
        card.contains(r"the migration locks the \\*\\*orders\\*\\* table"),
        "{card}"
    );
    assert!(card.contains("rejected"), "{card}");
    let announcement = discord.next_post(CHANNEL).await;
    assert!(
        announcement
            .text()
            .contains("rejected for production by carol"),
        "{}",
        announcement.body
    );
    app.teardown().await;
}

#[tokio::test]
async fn an_unanswered_request_expires_and_reminds_under_the_card() {
    let discord = FakeDiscord::start().await;
    let (_, app) = start_http(&discord).await;
    let request = staging_healthy(&app, "alice").await;
    let card = discord.next_post(CHANNEL).await;
    app.outbox_idle().await;
    let card_id = app
        .storage()
        .chat_messages(&format!("approval:{request}"))
        .await
        .expect("chat messages")[0]
        .message_ref
        .clone();
    assert!(card.body["embeds"].is_array());

    // The background timer task may get there first; either way the reminder is sent once.
    app.run_timers_after(chrono::Duration::minutes(20)).await;
    // The wait-timer refresh and the reminder, a reply to the card.
    discord.next_edit(CHANNEL).await;
    let reminder = discord.next_post(CHANNEL).await;
    assert_eq!(reminder.body["message_reference"]["message_id"], card_id);
    assert!(reminder.text().contains("still waits"), "{}", reminder.body);

    app.run_timers_after(chrono::Duration::minutes(41)).await;
    assert_eq!(app.request_state(request).await, "expired");
    let edit = discord.next_final_edit(CHANNEL).await;
    assert!(embed_text(&edit.body).contains("expired"), "{}", edit.body);
    app.teardown().await;
}

async fn a_redelivered_interaction_changes_nothing(transport: Transport) {
    let (discord, via, app, request) = card_posted(transport).await;

    // A refused click, delivered twice, is recorded once.
    let refused = click(DAVE, &format!("approve:{request}"));
    let (_, first) = via.interact(&app, &refused).await;
    assert!(ephemeral_text(&first).contains("not a reviewer"));
    let (status, second) = via.interact(&app, &refused).await;
    assert_eq!(status, 200);
    assert!(
        ephemeral_text(&second).contains("already handled"),
        "{second}"
    );
    assert_eq!(app.decision_count(request).await, 1);

    open_approvals(&app, &discord).await;
    let confirm = click(BOB, &format!("confirm:{request}"));
    let (_, first) = via.interact(&app, &confirm).await;
    assert!(
        updated_text(&first).contains("Approval recorded"),
        "{first}"
    );
    let (_, again) = via.interact(&app, &confirm).await;
    assert!(updated_text(&again).contains("already handled"), "{again}");
    let decisions = app.storage().decisions(request).await.expect("decisions");
    assert_eq!(decisions.len(), 2, "{decisions:?}");
    assert_eq!(app.approver_count(request).await, 1);
    // One edit for the one approval.
    discord.next_edit(CHANNEL).await;
    app.outbox_idle().await;
    discord.assert_all_read();
    app.teardown().await;
}

#[tokio::test]
async fn a_discord_outage_delays_the_card_but_loses_nothing() {
    let discord = FakeDiscord::start().await;
    discord.hiccup(Hiccup::outage());
    let (_, app) = start_http(&discord).await;
    staging_healthy(&app, "alice").await;
    app.retry_outbox(10).await;
    discord.next_post(CHANNEL).await;
    discord.next_edit(CHANNEL).await;
    assert_eq!(
        discord.api_requests(),
        5,
        "three failures, one post, one edit"
    );
    discord.assert_all_read();
    app.teardown().await;
}

// --- Slack and Discord together -------------------------------------------------------------

async fn slack_click(app: &TestApp, slack: &FakeSlack, user: &str, request: i64) {
    let response_url = slack.response_url(&format!("{user}-approve"));
    let payload = from_slack::click(
        user,
        SLACK_CHANNEL,
        "approve",
        &request.to_string(),
        &response_url,
    );
    let response = from_slack::interact(app, SLACK_SIGNING_SECRET, &payload).await;
    assert_eq!(response.status(), 200);
}

/// Discord (over `transport`) and Slack both configured.
async fn both_platforms(transport: Transport) -> (FakeDiscord, FakeSlack, Via, TestApp) {
    let discord = FakeDiscord::start().await;
    let slack = FakeSlack::start().await;
    let via = Via::new(transport, &discord).await;
    let app = start(&discord, &via, Some(&slack)).await;
    (discord, slack, via, app)
}

/// The card's decision lines and outcome, whatever the platform's markup.
fn normalized(text: &str) -> String {
    text.replace(['*', '\\'], "")
}

async fn a_decision_on_either_platform_counts_and_updates_both_cards(transport: Transport) {
    let (discord, slack, via, app) = both_platforms(transport).await;
    let request = staging_healthy(&app, "dave").await;
    let discord_card = discord.next_post(CHANNEL).await;
    let slack_card = slack.next_call("chat.postMessage", SLACK_CHANNEL).await;
    assert!(has_buttons(&discord_card.body));
    assert!(slack_card.body["blocks"].to_string().contains("approve"));
    open_approvals(&app, &discord).await;
    slack.next_call("chat.update", SLACK_CHANNEL).await;

    // Bob on Slack, carol on Discord: two people, two approvals.
    slack_click(&app, &slack, SLACK_BOB, request).await;
    discord.next_edit(CHANNEL).await;
    slack.next_call("chat.update", SLACK_CHANNEL).await;
    let answer = approve(&app, &via, CAROL, request).await;
    assert!(answer.contains("Approved"), "{answer}");
    assert_eq!(app.request_state(request).await, "approved");
    assert_eq!(app.approver_count(request).await, 2);

    let discord_final = discord.next_final_edit(CHANNEL).await;
    let slack_final = slack.next_final_update(SLACK_CHANNEL).await;
    let discord_text = normalized(&embed_text(&discord_final.body));
    let slack_text = normalized(&slack_final.body["blocks"].to_string());
    for same in [
        "shop → production: approved",
        "bob approved on Slack",
        "carol approved on Discord",
        "Fix checkout rounding",
        &SHA[..7],
    ] {
        assert!(
            discord_text.contains(same),
            "Discord card lacks {same:?}: {discord_text}"
        );
        assert!(
            slack_text.contains(same),
            "Slack card lacks {same:?}: {slack_text}"
        );
    }
    // Both channels hear the outcome.
    discord.next_post(CHANNEL).await;
    slack.next_call("chat.postMessage", SLACK_CHANNEL).await;
    app.teardown().await;
}

async fn one_person_on_both_platforms_counts_once(transport: Transport) {
    let (discord, slack, via, app) = both_platforms(transport).await;
    let request = staging_healthy(&app, "dave").await;
    discord.next_post(CHANNEL).await;
    slack.next_call("chat.postMessage", SLACK_CHANNEL).await;
    open_approvals(&app, &discord).await;
    slack.next_call("chat.update", SLACK_CHANNEL).await;

    slack_click(&app, &slack, SLACK_ALICE, request).await;
    let edit = discord.next_edit(CHANNEL).await;
    assert!(
        normalized(&embed_text(&edit.body)).contains("alice approved on Slack"),
        "{}",
        edit.body
    );
    slack.next_call("chat.update", SLACK_CHANNEL).await;
    let answer = approve(&app, &via, ALICE, request).await;
    assert!(answer.contains("counts once"), "{answer}");
    assert_eq!(app.request_state(request).await, "waiting");
    let approvers = app.storage().approvers(request).await.expect("approvers");
    assert_eq!(approvers.len(), 1, "{approvers:?}");
    app.teardown().await;
}

over_both_transports!(
    refused_clicks_are_private_and_say_why,
    two_reviewers_confirm_and_the_card_loses_its_buttons,
    rejecting_asks_for_a_reason_in_a_modal,
    a_redelivered_interaction_changes_nothing,
    a_decision_on_either_platform_counts_and_updates_both_cards,
    one_person_on_both_platforms_counts_once,
);
