//! The commits on the approval card (SPEC §14, "Card context"), end to end: the card is posted
//! at once without them, a `github.card_commits` outbox item asks GitHub's compare API (a fake
//! that checks the token and answers GitHub's documented shape), and the card is edited with
//! the list. A refused compare, a rate limit or a `[github]` without access leaves the card
//! with its compare link only.

use greenlight_tests::ci::{self, Fields};
use greenlight_tests::clock::manual_clock;
use greenlight_tests::config::{discord_section, shop_app, slack_section};
use greenlight_tests::fakes::github::{private_key_file, CompareFault, FakeCommit, APP_ID};
use greenlight_tests::fakes::{FakeDiscord, FakeGithub, FakeSlack};
use greenlight_tests::signing::DiscordSigner;
use greenlight_tests::{spawn_app_with_clock, TestApp};
use serde_json::Value;

const CI_TOKEN: &str = "shop-ci-token";
const CHANNEL: &str = "C0DEPLOYS";
const DISCORD_CHANNEL: &str = "1200000000000000001";
const RUNNING: &str = "1111111111111111111111111111111111111111";
const RELEASE: &str = "2222222222222222222222222222222222222222";
const PERSONAL_TOKEN: &str = "ghp_cardcommitsreader";

/// How `[github]` lets Greenlight read.
enum Access {
    App,
    Token,
    /// A webhook secret only: no way to call GitHub's API.
    None,
}

struct Bot {
    app: TestApp,
    github: FakeGithub,
    slack: FakeSlack,
    discord: Option<FakeDiscord>,
}

impl Bot {
    async fn start(access: Access, with_discord: bool) -> Self {
        let clock = manual_clock();
        let github = FakeGithub::start(clock.clone()).await;
        let slack = FakeSlack::start().await;
        let discord = if with_discord {
            Some(FakeDiscord::start().await)
        } else {
            None
        };
        let access = match access {
            Access::App => format!(
                "app_id = {APP_ID}\nprivate_key_file = \"{}\"",
                private_key_file().display()
            ),
            Access::Token => {
                github.accept_token(PERSONAL_TOKEN);
                format!("token = \"{PERSONAL_TOKEN}\"")
            }
            Access::None => String::new(),
        };
        let (discord_config, discord_channel) = match &discord {
            Some(discord) => (
                discord_section(&DiscordSigner::new().public_key_hex(), &discord.api_url()),
                format!(", discord = \"{DISCORD_CHANNEL}\""),
            ),
            None => (String::new(), String::new()),
        };
        let config = format!(
            r#"
{slack}
{discord_config}
[github]
webhook_secret = "github-webhook-secret"
api_url = "{github_url}"
{access}

[people]
alice = {{ slack = "U0ALICE", github = "alice" }}
carol = {{ slack = "U0CAROL", github = "carol" }}

{shop}"#,
            slack = slack_section(&slack),
            github_url = github.api_url(),
            shop = shop_app(
                &format!(
                    "repository = \"acme/shop\"\nci_token = \"{CI_TOKEN}\"\n\
                     channels = {{ slack = \"{CHANNEL}\"{discord_channel} }}"
                ),
                "",
                r#"reviewers = ["carol"]"#,
            ),
        );
        let app = spawn_app_with_clock(&config, &[], clock).await;
        Self {
            app,
            github,
            slack,
            discord,
        }
    }

    async fn build(&self, sha: &str) {
        ci::report(
            &self.app,
            CI_TOKEN,
            ci::build(sha).with(serde_json::json!({"author": "alice", "message": "Checkout"})),
        )
        .await;
    }

    /// `RUNNING` runs in production; `RELEASE` turns healthy in staging and asks for
    /// production: the request whose card lists the commits between them.
    async fn release_waiting(&self) -> i64 {
        self.build(RUNNING).await;
        self.app
            .seed_approved_healthy("shop", "production", RUNNING)
            .await;
        self.build(RELEASE).await;
        let answer = ci::report(
            &self.app,
            CI_TOKEN,
            ci::deployed("staging", RELEASE, "success"),
        )
        .await;
        ci::opened_request(&answer)
    }

    async fn teardown(self) {
        self.app.teardown().await;
    }
}

fn text_of(message: &Value) -> String {
    message.to_string()
}

const LIST_TITLE: &str = "13 commits since what runs in production";

#[tokio::test]
async fn the_card_is_posted_at_once_then_edited_with_the_commits() {
    let bot = Bot::start(Access::App, true).await;
    bot.github
        .set_compare_commits((0..13).map(FakeCommit::numbered).collect());
    // GitHub's rate limit holds the list back for a minute; the card does not wait for it.
    bot.github
        .compare_faults([CompareFault::RateLimited { seconds: 60 }]);
    bot.release_waiting().await;

    let posted = bot.slack.next_call("chat.postMessage", CHANNEL).await;
    let text = text_of(&posted.body);
    assert!(!text.contains("since what runs in production*"), "{text}");
    assert!(
        text.contains(&format!("compare/{RUNNING}...{RELEASE}")),
        "the compare link is there from the start: {text}"
    );
    let discord = bot.discord.as_ref().expect("discord");
    let first = discord.next_post(DISCORD_CHANNEL).await;
    assert!(!text_of(&first.body).contains(LIST_TITLE));

    bot.app.deliver_due().await;
    assert_eq!(
        bot.github.compare_requests(),
        1,
        "{:?}",
        bot.github.compare_log()
    );
    assert!(bot.github.compare_log()[0].starts_with("403 "));

    // After the reset the outbox tries again, and the card is edited with the list.
    bot.app
        .outbox_pass_after(chrono::Duration::seconds(61))
        .await;
    bot.app.deliver_due().await;
    let log = bot.github.compare_log();
    assert_eq!(log.len(), 2, "{log:?}");
    let token = bot.github.issued_tokens().last().cloned().expect("a token");
    assert_eq!(
        log[1],
        format!(
            "200 /repos/acme/shop/compare/{RUNNING}...{RELEASE}?per_page=10&page=1 Bearer {token}"
        )
    );

    let edited = bot.slack.next_call("chat.update", CHANNEL).await;
    let blocks = edited.body["blocks"].as_array().expect("blocks");
    let commits = blocks
        .iter()
        .find(|block| {
            block["block_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("commits-"))
        })
        .expect("a commits section");
    let mut expected = vec![format!("*{LIST_TITLE}*")];
    expected.extend((0..10).map(|n| format!("{n:07x} octocat: Change {n}")));
    expected.push("and 3 more".to_owned());
    assert_eq!(commits["text"]["text"], expected.join("\n"));
    assert!(text_of(&edited.body).contains(&format!("compare/{RUNNING}...{RELEASE}")));

    let edited = discord.next_edit(DISCORD_CHANNEL).await;
    let fields = edited.body["embeds"][0]["fields"]
        .as_array()
        .expect("fields");
    let field = fields
        .iter()
        .find(|field| field["name"] == LIST_TITLE)
        .unwrap_or_else(|| panic!("no commits field in {fields:?}"));
    assert_eq!(field["value"], expected[1..].join("\n"));

    let counts = bot.app.storage().outbox_counts().await.expect("counts");
    assert_eq!(counts.dead, 0);
    bot.teardown().await;
}

#[tokio::test]
async fn a_refused_compare_leaves_the_link_only_and_one_dead_item() {
    let bot = Bot::start(Access::Token, false).await;
    bot.github.compare_faults([CompareFault::Status(404)]);
    let request = bot.release_waiting().await;

    let posted = bot.slack.next_call("chat.postMessage", CHANNEL).await;
    assert!(text_of(&posted.body).contains(&format!("compare/{RUNNING}...{RELEASE}")));
    bot.app.deliver_due().await;
    bot.app.retry_outbox(3).await;

    let log = bot.github.compare_log();
    assert_eq!(log.len(), 1, "a refusal is not retried: {log:?}");
    assert!(
        log[0].starts_with(&format!(
            "404 /repos/acme/shop/compare/{RUNNING}...{RELEASE}"
        )) && log[0].ends_with(&format!("Bearer {PERSONAL_TOKEN}")),
        "{log:?}"
    );
    let dead = bot
        .app
        .storage()
        .dead_outbox_items(10)
        .await
        .expect("dead items");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].kind, "github.card_commits");
    assert_eq!(dead[0].payload, serde_json::json!({ "request": request }));
    assert_eq!(
        bot.app.storage().card_commits(request).await.expect("read"),
        None
    );
    // No edit: the card as posted already shows the link.
    let unread = bot.slack.inbox().pending();
    assert!(unread.is_empty(), "{unread:?}");
    bot.teardown().await;
}

#[tokio::test]
async fn without_github_access_nothing_asks_github() {
    let bot = Bot::start(Access::None, false).await;
    bot.github
        .set_compare_commits((0..3).map(FakeCommit::numbered).collect());
    bot.release_waiting().await;
    let posted = bot.slack.next_call("chat.postMessage", CHANNEL).await;
    assert!(text_of(&posted.body).contains(&format!("compare/{RUNNING}...{RELEASE}")));
    bot.app.deliver_due().await;
    bot.app.retry_outbox(2).await;
    assert_eq!(bot.github.compare_requests(), 0);
    assert!(bot.github.issued_tokens().is_empty());
    let counts = bot.app.storage().outbox_counts().await.expect("counts");
    assert_eq!((counts.pending, counts.dead), (0, 0));
    bot.teardown().await;
}

#[tokio::test]
async fn without_anything_in_production_there_is_no_base_and_no_compare() {
    let bot = Bot::start(Access::App, false).await;
    bot.build(RELEASE).await;
    ci::report(
        &bot.app,
        CI_TOKEN,
        ci::deployed("staging", RELEASE, "success"),
    )
    .await;
    bot.slack.next_call("chat.postMessage", CHANNEL).await;
    bot.app.deliver_due().await;
    assert_eq!(bot.github.compare_requests(), 0);
    bot.teardown().await;
}
