//! A platform's rate limits are shared by every outbox item (SPEC §13, issue 12): a pause the
//! platform asks for holds every call of that kind, and only that kind; a paused item waits for
//! the pause without using its attempts; posts to one channel are spaced. The real app against
//! fake Slack and Discord servers, on a manual clock, driven pass by pass.

use greenlight::cards::CardKey;
use greenlight::chat::ChatEffect;
use greenlight::outbox::RetryPolicy;
use greenlight_commands::Platform;
use greenlight_storage::{OutboxItem, OutboxState};
use greenlight_tests::approvals::{self, shop_config, STANDARD_POLICY};
use greenlight_tests::clock::manual_clock;
use greenlight_tests::config::{discord_section, slack_section};
use greenlight_tests::fakes::slack::Hiccup;
use greenlight_tests::fakes::{FakeDiscord, FakeSlack};
use greenlight_tests::signing::DiscordSigner;
use greenlight_tests::{spawn_app_with_clock, TestApp};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const SLACK_CHANNEL: &str = "C0DEPLOYS";
const DISCORD_CHANNEL: &str = "1100000000000000000";

/// Greenlight with shop posting to `channels`; nothing happened yet.
async fn start(platform_sections: &str, channels: &str) -> TestApp {
    let config = format!(
        "{platform_sections}\n[people]\nalice = {{ github = \"alice\" }}\n\
         bob = {{ github = \"bob-gh\" }}\ncarol = {{ github = \"carol\" }}\n\n{}",
        shop_config(channels, STANDARD_POLICY)
    );
    spawn_app_with_clock(&config, &[], manual_clock()).await
}

/// As [`start`], and the approval card for `SHA` was posted.
async fn card_posted(platform_sections: &str, channels: &str) -> (TestApp, i64) {
    let app = start(platform_sections, channels).await;
    let request = approvals::staging_healthy(&app, SHA, "alice").await;
    (app, request)
}

async fn slack_app() -> (FakeSlack, TestApp) {
    let slack = FakeSlack::start().await;
    let channels = format!("{{ slack = \"{SLACK_CHANNEL}\" }}");
    let app = start(&slack_section(&slack), &channels).await;
    (slack, app)
}

async fn slack_card_posted() -> (FakeSlack, TestApp, i64) {
    let slack = FakeSlack::start().await;
    let channels = format!("{{ slack = \"{SLACK_CHANNEL}\" }}");
    let (app, request) = card_posted(&slack_section(&slack), &channels).await;
    slack.next_call("chat.postMessage", SLACK_CHANNEL).await;
    (slack, app, request)
}

/// Discord, and the card posted; `hiccup` answers the card's post.
async fn discord_card_posted(hiccup: Option<Hiccup>) -> (FakeDiscord, TestApp, i64) {
    let discord = FakeDiscord::start().await;
    discord.hiccup(hiccup);
    let section = discord_section(&DiscordSigner::new().public_key_hex(), &discord.api_url());
    let channels = format!("{{ discord = \"{DISCORD_CHANNEL}\" }}");
    let (app, request) = card_posted(&section, &channels).await;
    app.deliver_due().await;
    discord.next_post(DISCORD_CHANNEL).await;
    (discord, app, request)
}

/// Puts `effect` in the outbox as its own item (as the engine does for each effect) and runs
/// the outbox until nothing more is due now.
async fn deliver(app: &TestApp, platform: Platform, effect: ChatEffect, key: &str) -> i64 {
    let item = effect.outbox_item(platform, key, app.clock.now());
    let id = app
        .storage()
        .enqueue_outbox(item)
        .await
        .expect("enqueue")
        .into_inner()
        .id;
    app.deliver_due().await;
    id
}

fn announcement(channel: &str, text: &str) -> ChatEffect {
    ChatEffect::Message {
        channel: channel.to_owned(),
        text: text.to_owned(),
        marker: None,
    }
}

fn edit(request: i64) -> ChatEffect {
    ChatEffect::UpdateCard {
        card: CardKey::Approval(request),
    }
}

async fn item(app: &TestApp, id: i64) -> OutboxItem {
    app.storage().outbox_item(id).await.expect("outbox item")
}

/// Lets `secs` pass and delivers what came due.
async fn after(app: &TestApp, secs: i64) {
    app.outbox_pass_after(chrono::Duration::seconds(secs)).await;
    app.deliver_due().await;
}

#[tokio::test]
async fn a_retry_after_on_one_method_does_not_delay_another() {
    let (slack, app, request) = slack_card_posted().await;

    // Slack throttles the first chat.update: 429, Retry-After: 60.
    slack.hiccup([Hiccup::RateLimited {
        retry_after_secs: 60,
    }]);
    let throttled = deliver(&app, Platform::Slack, edit(request), "edit:1").await;
    let calls = slack.api_requests();
    let first = item(&app, throttled).await;
    assert_eq!(
        (first.state, first.attempts, first.deferrals),
        (OutboxState::Pending, 0, 1),
        "deferred to the pause's end without using an attempt"
    );
    assert_eq!(
        first.next_attempt_at,
        app.clock.now() + chrono::Duration::seconds(60)
    );

    // Another item's chat.update waits for the same pause without calling Slack...
    let waiting = deliver(&app, Platform::Slack, edit(request), "edit:2").await;
    assert_eq!(slack.api_requests(), calls, "no call during the pause");
    assert_eq!(item(&app, waiting).await.deferrals, 1);

    // ...while chat.postMessage, another method, goes out at once.
    let text = "shop: payments maintenance at 14:00";
    let posted = deliver(
        &app,
        Platform::Slack,
        announcement(SLACK_CHANNEL, text),
        "announce:1",
    )
    .await;
    let post = slack
        .next_call_mentioning("chat.postMessage", SLACK_CHANNEL, text)
        .await;
    assert_eq!(post.body["channel"], SLACK_CHANNEL);
    assert_eq!(item(&app, posted).await.state, OutboxState::Delivered);
    assert_eq!(slack.api_requests(), calls + 1);

    // Still paused a second before the end; both edits go once it is over.
    after(&app, 59).await;
    assert_eq!(slack.api_requests(), calls + 1);
    after(&app, 1).await;
    for _ in 0..2 {
        slack.next_call("chat.update", SLACK_CHANNEL).await;
    }
    for id in [throttled, waiting] {
        let done = item(&app, id).await;
        assert_eq!(
            (done.state, done.attempts, done.deferrals),
            (OutboxState::Delivered, 1, 1)
        );
    }
    assert_eq!(slack.api_requests(), calls + 3);
    app.teardown().await;
}

#[tokio::test]
async fn an_item_paused_longer_than_its_whole_retry_budget_is_still_delivered() {
    // No approval request, so no card, reminder or expiry calls Slack while hours pass.
    let (slack, app) = slack_app().await;
    // Slack throttles every try for more tries than an item has attempts.
    let budget = RetryPolicy::default().max_attempts;
    slack.hiccup((0..=budget).map(|_| Hiccup::RateLimited {
        retry_after_secs: 60,
    }));
    let text = "shop: payments maintenance at 14:00";
    let id = deliver(
        &app,
        Platform::Slack,
        announcement(SLACK_CHANNEL, text),
        "announce:1",
    )
    .await;
    for _ in 0..budget {
        after(&app, 60).await;
    }
    let paused = item(&app, id).await;
    assert_eq!(
        (paused.state, paused.attempts, paused.deferrals),
        (OutboxState::Pending, 0, budget + 1),
        "{paused:?}"
    );
    after(&app, 60).await;
    slack
        .next_call_mentioning("chat.postMessage", SLACK_CHANNEL, text)
        .await;
    let done = item(&app, id).await;
    assert_eq!((done.state, done.attempts), (OutboxState::Delivered, 1));
    app.teardown().await;
}

#[tokio::test]
async fn a_burst_of_posts_to_one_channel_is_spaced() {
    let (slack, app, _) = slack_card_posted().await;
    // The card's post was the first of the burst; the rest of it goes at once, then one post a
    // second.
    let burst = usize::try_from(greenlight::slack::POSTS_PER_CHANNEL_BURST).expect("small");
    for n in 0..burst + 2 {
        let effect = announcement(SLACK_CHANNEL, &format!("notice {n}"));
        deliver(&app, Platform::Slack, effect, &format!("notice:{n}")).await;
    }
    let posted = |slack: &FakeSlack| {
        slack
            .inbox()
            .take_all()
            .into_iter()
            .filter(|call| call.path == "/api/chat.postMessage")
            .count()
    };
    assert_eq!(posted(&slack), burst - 1);
    for _ in 0..3 {
        after(&app, 1).await;
        assert_eq!(posted(&slack), 1);
    }
    after(&app, 1).await;
    assert_eq!(posted(&slack), 0, "every notice was posted");
    app.teardown().await;
}

#[tokio::test]
async fn a_discord_bucket_with_no_calls_left_holds_its_route_while_another_goes_ahead() {
    // The card's post leaves the channel's create-message bucket empty for 30 s.
    let (discord, app, request) = discord_card_posted(Some(Hiccup::BucketExhausted {
        reset_after_secs: 30,
    }))
    .await;
    let calls = discord.api_requests();

    let text = "shop: payments maintenance at 14:00";
    let post = deliver(
        &app,
        Platform::Discord,
        announcement(DISCORD_CHANNEL, text),
        "announce:1",
    )
    .await;
    assert_eq!(
        discord.api_requests(),
        calls,
        "the post waits for the bucket"
    );
    assert_eq!(item(&app, post).await.deferrals, 1);

    // Editing a message is another route with its own bucket: it goes at once.
    let edited = deliver(&app, Platform::Discord, edit(request), "edit:1").await;
    discord.next_edit(DISCORD_CHANNEL).await;
    assert_eq!(item(&app, edited).await.state, OutboxState::Delivered);

    after(&app, 29).await;
    assert_eq!(discord.api_requests(), calls + 1);
    after(&app, 1).await;
    let posted = discord.next_post(DISCORD_CHANNEL).await;
    assert!(posted.text().contains(text), "{}", posted.body);
    let done = item(&app, post).await;
    assert_eq!((done.state, done.attempts), (OutboxState::Delivered, 1));
    app.teardown().await;
}

#[tokio::test]
async fn a_global_discord_429_pauses_every_call() {
    let (discord, app, request) = discord_card_posted(None).await;
    discord.hiccup([Hiccup::GlobalRateLimited {
        retry_after_secs: 20,
    }]);
    let edited = deliver(&app, Platform::Discord, edit(request), "edit:1").await;
    let calls = discord.api_requests();
    assert_eq!(item(&app, edited).await.deferrals, 1);

    // A post, on another route and bucket, waits too.
    let text = "shop: payments maintenance at 14:00";
    let post = deliver(
        &app,
        Platform::Discord,
        announcement(DISCORD_CHANNEL, text),
        "announce:1",
    )
    .await;
    assert_eq!(
        discord.api_requests(),
        calls,
        "no call during a global pause"
    );
    assert_eq!(item(&app, post).await.deferrals, 1);

    after(&app, 20).await;
    discord.next_edit(DISCORD_CHANNEL).await;
    let posted = discord.next_post(DISCORD_CHANNEL).await;
    assert!(posted.text().contains(text), "{}", posted.body);
    for id in [edited, post] {
        let done = item(&app, id).await;
        assert_eq!((done.state, done.attempts), (OutboxState::Delivered, 1));
    }
    app.teardown().await;
}
