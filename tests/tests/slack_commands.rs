//! Slash commands from Slack: signed form posts to `/slack/commands`, one grammar for every
//! command, operators-only changes, helpful errors for garbled text. Every command runs twice:
//! over signed HTTP and over Socket Mode (SPEC §12).

use greenlight_tests::ci::{self, Fields};
use greenlight_tests::clock::manual_clock;
use greenlight_tests::config::{
    shop_app, slack_section_signed_with, SLACK_SIGNING_SECRET as SECRET,
};
use greenlight_tests::fakes::FakeSlack;
use greenlight_tests::inbound::slack::{self as from_slack, Transport, Via};
use greenlight_tests::over_http_and_socket_mode;
use greenlight_tests::shop::{production, shop};
use greenlight_tests::{spawn_app_with_clock, TestApp};
use serde_json::{json, Value};

const CHANNEL: &str = "C0DEPLOYS";
const ALICE: &str = "U0ALICE01";
const DAVE: &str = "U0DAVE001";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

over_http_and_socket_mode!(
    operators_change_flags_and_the_channel_is_told,
    non_operators_and_strangers_are_refused_and_logged,
    releases_lists_the_log,
    garbled_text_gets_a_helpful_error_never_a_5xx,
    operators_lock_and_unlock_and_a_held_lock_says_who,
    rollback_asks_to_confirm_and_deploys_the_previous_image_once,
);

async fn start(slack: &FakeSlack, via: &Via) -> TestApp {
    start_with(slack, via, "").await
}

async fn start_with(slack: &FakeSlack, via: &Via, production_extra: &str) -> TestApp {
    let config = format!(
        r#"
{slack}
[people]
alice = {{ slack = "{ALICE}" }}
bob = {{ slack = "U0BOB0001" }}
dave = {{ slack = "{DAVE}" }}

[groups]
sre = ["alice", "bob"]

{shop}"#,
        slack = via.section(
            slack,
            slack_section_signed_with(slack, r#""${SLACK_SIGNING_SECRET}""#)
        ),
        shop = shop_app(
            &format!(
                "ci_token = \"shop-ci\"\nchannels = {{ slack = \"{CHANNEL}\" }}\n\
                 operators = [\"group:sre\"]"
            ),
            "",
            &format!("reviewers = [\"group:sre\"]\n{production_extra}"),
        ),
    );
    let app =
        spawn_app_with_clock(&config, &[("SLACK_SIGNING_SECRET", SECRET)], manual_clock()).await;
    via.ready().await;
    app
}

/// A slash command as Slack sends it: the documented example body with our fields swapped in.
async fn command(via: &Via, app: &TestApp, user: &str, name: &str, text: &str) -> (u16, Value) {
    via.command(app, user, CHANNEL, name, text).await
}

fn text(reply: &Value) -> &str {
    reply["text"].as_str().unwrap_or_default()
}

async fn operators_change_flags_and_the_channel_is_told(transport: Transport) {
    let slack = FakeSlack::start().await;
    let via = transport.via(&slack, SECRET).await;
    let app = start(&slack, &via).await;
    let (status, reply) = command(
        &via,
        &app,
        ALICE,
        "/flag",
        "production new_checkout off payments failing",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply["response_type"], "ephemeral");
    assert!(text(&reply).contains("now off"), "{reply}");
    assert!(text(&reply).contains("new flag"), "{reply}");

    let announcement = slack.next_call("chat.postMessage", CHANNEL).await;
    let said = announcement.text();
    assert!(
        said.contains("alice")
            && said.contains("new_checkout")
            && said.contains("payments failing"),
        "{said}"
    );
    let flag = app
        .storage()
        .flag(&shop(), &production(), "new_checkout")
        .await
        .expect("read")
        .expect("created");
    assert!(!flag.enabled);

    let (_, reply) = command(
        &via,
        &app,
        ALICE,
        "/flag",
        "production new_checkout rollout 25",
    )
    .await;
    assert!(
        text(&reply).contains("on") || text(&reply).contains("off"),
        "{reply}"
    );
    slack.next_call("chat.postMessage", CHANNEL).await;
    let (_, listed) = command(&via, &app, DAVE, "/flag", "production list").await;
    assert!(text(&listed).contains("new_checkout"), "{listed}");
    app.teardown().await;
}

async fn non_operators_and_strangers_are_refused_and_logged(transport: Transport) {
    let slack = FakeSlack::start().await;
    let via = transport.via(&slack, SECRET).await;
    let app = start(&slack, &via).await;
    let (status, reply) = command(&via, &app, DAVE, "/flag", "production new_checkout on").await;
    assert_eq!(status, 200);
    assert!(
        text(&reply).contains("only operators of shop (sre)"),
        "{reply}"
    );
    let (_, reply) = command(
        &via,
        &app,
        "U0NOBODY1",
        "/flag",
        "production new_checkout on",
    )
    .await;
    assert!(text(&reply).contains("not linked"), "{reply}");
    let refused = app.audit("command_refused").await.len();
    assert_eq!(refused, 2);
    let flags = app
        .storage()
        .list_flags(&shop(), &production())
        .await
        .expect("flags");
    assert!(flags.is_empty(), "nothing changed");
    slack.assert_all_read();
    app.teardown().await;
}

async fn releases_lists_the_log(transport: Transport) {
    let slack = FakeSlack::start().await;
    let via = transport.via(&slack, SECRET).await;
    let app = start(&slack, &via).await;
    ci::report(
        &app,
        "shop-ci",
        ci::build(SHA).with(json!({"author": "alice", "message": "Fix checkout"})),
    )
    .await;
    let (_, reply) = command(&via, &app, DAVE, "/releases", "").await;
    assert!(
        text(&reply).contains(&SHA[..7]) && text(&reply).contains("Fix checkout"),
        "{reply}"
    );
    app.teardown().await;
}

async fn garbled_text_gets_a_helpful_error_never_a_5xx(transport: Transport) {
    let slack = FakeSlack::start().await;
    let via = transport.via(&slack, SECRET).await;
    let app = start(&slack, &via).await;
    let cases = [
        ("/flag", "", "Which environment"),
        ("/flag", "prodution list", "Did you mean `production`?"),
        ("/flag", "production 💥💥 on", "not a flag name"),
        ("/releases", "shop staging 9999", "not a number"),
        ("/rollbak", "", "Did you mean `/rollback`?"),
        ("/lock", "production", "needs a reason"),
        ("/flag", &"x ".repeat(2000), "has no environment"),
    ];
    for (name, words, needle) in cases {
        let (status, reply) = command(&via, &app, ALICE, name, words).await;
        assert_eq!(status, 200, "{name} {words}");
        assert!(text(&reply).contains(needle), "{name}: {reply}");
    }
    let (_, help) = command(&via, &app, DAVE, "/flag", "help").await;
    assert!(text(&help).contains("rollout"), "{help}");
    app.teardown().await;
}

#[tokio::test]
async fn ssl_checks_and_unsigned_commands() {
    let slack = FakeSlack::start().await;
    let via = Via::http(SECRET);
    let app = start(&slack, &via).await;
    let body = b"ssl_check=1&token=x".to_vec();
    let response = from_slack::post_signed(&app, "/slack/commands", body, SECRET, 0).await;
    assert_eq!(response.status(), 200);
    let unsigned = app
        .client
        .post(app.url("/slack/commands"))
        .body("command=%2Fflag&text=production+x+on&user_id=U0ALICE01")
        .send()
        .await
        .expect("request");
    assert_eq!(unsigned.status(), 401);
    app.teardown().await;
}

async fn operators_lock_and_unlock_and_a_held_lock_says_who(transport: Transport) {
    let slack = FakeSlack::start().await;
    let via = transport.via(&slack, SECRET).await;
    let app = start(&slack, &via).await;
    let (_, reply) = command(
        &via,
        &app,
        ALICE,
        "/lock",
        "production db migration running",
    )
    .await;
    assert!(
        text(&reply).starts_with("Locked shop production"),
        "{reply}"
    );
    let announcement = slack.next_call("chat.postMessage", CHANNEL).await;
    assert!(
        announcement.text().contains("db migration running"),
        "{}",
        announcement.body
    );
    let (_, again) = command(
        &via,
        &app,
        "U0BOB0001",
        "/lock",
        "production another reason",
    )
    .await;
    assert!(text(&again).contains("already locked by alice"), "{again}");
    let (_, refused) = command(&via, &app, DAVE, "/unlock", "production").await;
    assert!(text(&refused).contains("only operators"), "{refused}");
    let status = app
        .storage()
        .environment_status(&shop(), &production())
        .await
        .expect("status");
    assert_eq!(
        status.lock.expect("still locked").reason,
        "db migration running"
    );
    let (_, unlocked) = command(&via, &app, ALICE, "/unlock", "production").await;
    assert!(
        text(&unlocked).starts_with("Unlocked shop production"),
        "{unlocked}"
    );
    slack.next_call("chat.postMessage", CHANNEL).await;
    app.teardown().await;
}

const OLDER: &str = "fedcba9876543210fedcba9876543210fedcba98";

/// `sha` went through the gate and runs healthy in production (seeded history).
async fn deployed_to_production(app: &TestApp, sha: &str) {
    ci::report(
        app,
        "shop-ci",
        ci::build(sha).with(json!({"author": "bob"})),
    )
    .await;
    app.seed_approved_healthy("shop", "production", sha).await;
}

async fn rollback_asks_to_confirm_and_deploys_the_previous_image_once(transport: Transport) {
    use wiremock::matchers::{body_partial_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .and(body_partial_json(json!({"kind": "rollback", "sha": OLDER,
            "image": format!("ghcr.io/acme/shop:{OLDER}")})))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&hook)
        .await;
    let slack = FakeSlack::start().await;
    let deploy = format!(
        "deploy = {{ kind = \"http\", url = \"{}/hook\", secret = \"hook-secret\" }}",
        hook.uri()
    );
    let via = transport.via(&slack, SECRET).await;
    let app = start_with(&slack, &via, &deploy).await;
    deployed_to_production(&app, OLDER).await;
    deployed_to_production(&app, SHA).await;

    let (_, refused) = command(&via, &app, DAVE, "/rollback", "").await;
    assert!(text(&refused).contains("only operators"), "{refused}");

    let (_, plan) = command(&via, &app, ALICE, "/rollback", "").await;
    assert!(
        text(&plan).contains(&OLDER[..7]) && text(&plan).contains(&SHA[..7]),
        "{plan}"
    );
    let confirm = plan["blocks"]
        .as_array()
        .and_then(|blocks| blocks.iter().find(|b| b["type"] == "actions"))
        .map(|actions| actions["elements"][0].clone())
        .expect("a confirm button");
    assert_eq!(confirm["action_id"], "rollback_confirm");
    let reference = confirm["value"].as_str().expect("value").to_owned();

    // A non-operator clicking the (forwarded) button is refused; the operator's click, twice,
    // rolls back once.
    for user in [DAVE, ALICE, ALICE] {
        click_confirm(&via, &app, &slack, user, &reference).await;
    }
    // Answers come back through the outbox in whatever order the clicks were handled.
    let mut replies: Vec<String> = futures_replies(&slack, 3).await;
    replies.sort();
    assert!(replies[2].contains("only operators"), "{replies:?}");
    assert!(
        replies[0].contains(&format!("Rolling back shop production to {}", &OLDER[..7])),
        "{replies:?}"
    );
    assert_eq!(
        replies[0], replies[1],
        "the same confirmation answers the same"
    );
    app.deliver_due().await;
    hook.verify().await;
    let told = slack
        .next_call_mentioning("chat.postMessage", CHANNEL, "is rolling back")
        .await;
    assert!(
        told.text()
            .contains("alice is rolling back shop production"),
        "{}",
        told.body
    );
    app.teardown().await;
}

async fn click_confirm(via: &Via, app: &TestApp, slack: &FakeSlack, user: &str, reference: &str) {
    let response_url = slack.response_url(&format!("rb-{user}"));
    let payload = from_slack::click(user, CHANNEL, "rollback_confirm", reference, &response_url);
    let answer = via.interact(app, &payload).await;
    assert_eq!(answer.status, 200);
}

async fn futures_replies(slack: &FakeSlack, count: usize) -> Vec<String> {
    let mut replies = Vec::new();
    for _ in 0..count {
        let reply = slack.next_response_url_post().await;
        replies.push(reply.text().to_owned());
    }
    replies
}
