//! The approval gate in Slack, end to end: CI reports staging healthy, the card appears, people
//! click, and only the right clicks count. Everything runs through the real app against a fake
//! Slack, with requests signed as Slack signs them and a manual clock. The tests of clicks and
//! the reason modal run twice: over signed HTTP requests and over Socket Mode (SPEC §12),
//! where the app has no signing secret at all.

use greenlight_tests::approvals::{
    self, card_texts, healthy_in_staging, shop_config, CI_TOKEN, STANDARD_POLICY,
};
use greenlight_tests::ci::{self, Fields};
use greenlight_tests::clock::manual_clock;
use greenlight_tests::config::{slack_section_signed_with, SLACK_SIGNING_SECRET as SIGNING_SECRET};
use greenlight_tests::fakes::slack::{has_buttons, Hiccup};
use greenlight_tests::fakes::FakeSlack;
use greenlight_tests::inbound::slack::{
    self as from_slack, interaction_body, Answer, Transport, Via,
};
use greenlight_tests::over_http_and_socket_mode;
use greenlight_tests::signing::slack_signature;
use greenlight_tests::{spawn_app_with_clock, TestApp};
use serde_json::{json, Value};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const NEWER: &str = "89abcdef0123456789abcdef0123456789abcdef";
const CHANNEL: &str = "C0DEPLOYS";
const ALICE: &str = "U0ALICE01";
const BOB: &str = "U0BOB0001";
const CAROL: &str = "U0CAROL01";
const DAVE: &str = "U0DAVE001";

over_http_and_socket_mode!(
    refused_clicks_say_why_and_change_nothing,
    two_reviewers_approve_and_the_card_shows_both_without_buttons,
    rejecting_asks_for_a_reason_and_rejects,
    fifty_concurrent_approvals_make_one_approval_and_one_deploy,
    a_replayed_click_counts_once_and_foreign_response_urls_are_not_followed,
);

fn config(slack: &FakeSlack, via: &Via, production: &str, extra_people: &str) -> String {
    format!(
        r#"
{slack}
[people]
alice = {{ slack = "{ALICE}", github = "alice" }}
bob = {{ slack = "{BOB}", github = "bob-gh" }}
carol = {{ slack = "{CAROL}", github = "carol" }}
dave = {{ slack = "{DAVE}" }}
{extra_people}
{shop}"#,
        slack = via.section(
            slack,
            slack_section_signed_with(slack, r#"["old-secret", "${SLACK_SIGNING_SECRET}"]"#)
        ),
        shop = shop_config(&format!("{{ slack = \"{CHANNEL}\" }}"), production),
    )
}

async fn start(slack: &FakeSlack, via: &Via, production: &str, extra_people: &str) -> TestApp {
    let app = spawn_app_with_clock(
        &config(slack, via, production, extra_people),
        &[("SLACK_SIGNING_SECRET", SIGNING_SECRET)],
        manual_clock(),
    )
    .await;
    via.ready().await;
    app
}

/// Slack, Greenlight on the standard policy, and a request for `SHA` whose card was posted.
async fn card_posted(transport: Transport) -> (FakeSlack, Via, TestApp, i64) {
    let slack = FakeSlack::start().await;
    let via = transport.via(&slack, SIGNING_SECRET).await;
    let app = start(&slack, &via, STANDARD_POLICY, "").await;
    let request = staging_healthy(&app, SHA).await;
    slack.next_call("chat.postMessage", CHANNEL).await;
    (slack, via, app, request)
}

async fn ci(app: &TestApp, event: Value) -> Value {
    ci::report(app, CI_TOKEN, event).await
}

/// CI reports a build by alice and its healthy staging deploy; returns the approval request id.
async fn staging_healthy(app: &TestApp, sha: &str) -> i64 {
    approvals::staging_healthy(app, sha, "alice").await
}

/// Delivers a Slack interaction as Slack does: a signed form post (`payload=`), or an
/// envelope over Socket Mode.
async fn interact(via: &Via, app: &TestApp, payload: &Value) -> Answer {
    via.interact(app, payload).await
}

/// `count` reviewers (`r000`, … with the Slack ids of [`reviewer`]), `required` of whom must
/// approve: their `[people]` lines and the production policy.
fn reviewer_group(count: usize, required: usize) -> (String, String) {
    let people = (0..count)
        .map(|n| format!("r{n:03} = {{ slack = \"{}\" }}\n", reviewer(n)))
        .collect();
    let names: Vec<String> = (0..count).map(|n| format!("\"r{n:03}\"")).collect();
    let policy = format!(
        "reviewers = [{}]\nrequired_approvals = {required}\napproval_timeout = \"1h\"\n",
        names.join(", ")
    );
    (people, policy)
}

/// The Slack id of reviewer `n` of [`reviewer_group`].
fn reviewer(n: usize) -> String {
    format!("U0R{n:06}")
}

/// A button click built from Slack's documented block_actions payload.
fn click(slack: &FakeSlack, user: &str, action: &str, request_id: i64) -> Value {
    let response_url = slack.response_url(&format!("{user}-{action}"));
    from_slack::click(
        user,
        CHANNEL,
        action,
        &request_id.to_string(),
        &response_url,
    )
}

/// Submitting the reject-reason modal Greenlight opened (`opened`, the view of its
/// `views.open`) with `reason` typed in.
fn reject_submission(opened: &Value, user: &str, reason: &str) -> Value {
    from_slack::view_submission(
        opened,
        user,
        json!({"reason": {"reason": {"type": "plain_text_input", "value": reason}}}),
    )
}

fn text_of(blocks: &Value) -> String {
    blocks.to_string()
}

#[tokio::test]
async fn the_card_appears_once_with_what_a_reviewer_needs() {
    let slack = FakeSlack::start().await;
    let via = Via::http(SIGNING_SECRET);
    let app = start(&slack, &via, STANDARD_POLICY, "").await;
    let request = staging_healthy(&app, SHA).await;

    let post = slack.next_call("chat.postMessage", CHANNEL).await;
    let card = text_of(&post.body);
    for needle in ["shop".to_owned(), "production".to_owned()]
        .into_iter()
        .chain(card_texts(SHA))
    {
        assert!(card.contains(&needle), "card lacks {needle:?}: {card}");
    }
    assert!(has_buttons(&post.body));
    let actions = post.body["blocks"]
        .as_array()
        .and_then(|blocks| blocks.iter().find(|b| b["type"] == "actions"))
        .expect("actions block")
        .clone();
    let approve = &actions["elements"][0];
    assert_eq!(approve["action_id"], "approve");
    assert_eq!(approve["value"], request.to_string());
    assert!(
        approve["confirm"].is_object(),
        "approving asks for confirmation"
    );
    assert_eq!(actions["elements"][1]["action_id"], "reject");

    // Reporting the same deploy again posts nothing more.
    ci(&app, healthy_in_staging(SHA)).await;
    app.deliver_due().await;
    assert_eq!(slack.api_requests(), 1);
    slack.assert_all_read();
    app.teardown().await;
}

#[tokio::test]
async fn failing_staging_smoke_gets_a_card_without_buttons() {
    let slack = FakeSlack::start().await;
    let via = Via::http(SIGNING_SECRET);
    let app = start(&slack, &via, STANDARD_POLICY, "").await;
    ci(&app, ci::build(SHA).with(json!({"author": "alice"}))).await;
    ci(
        &app,
        ci::deployed("staging", SHA, "success").with(json!({"smoke": {"status": "failed",
            "checks": [{"name": "checkout", "status": "failed", "duration_ms": 5003,
                "detail": "503 Service Unavailable"}]}})),
    )
    .await;
    let post = slack.next_call("chat.postMessage", CHANNEL).await;
    let card = text_of(&post.body);
    assert!(card.contains("503 Service Unavailable"), "{card}");
    assert!(card.contains("not promotable"), "{card}");
    assert!(!has_buttons(&post.body));
    slack.assert_all_read();
    app.teardown().await;
}

async fn refused_clicks_say_why_and_change_nothing(transport: Transport) {
    let (slack, via, app, request) = card_posted(transport).await;

    let cases = [
        ("U0NOBODY1", "not linked to a person"),
        (DAVE, "not a reviewer"),
        (ALICE, "self-review is blocked"),
        (BOB, "approvals open at 12:05 UTC"),
    ];
    for (user, why) in cases {
        let response = interact(&via, &app, &click(&slack, user, "approve", request)).await;
        assert_eq!(response.status, 200, "Slack always gets its ack");
        let reply = slack.next_response_url_post().await;
        assert_eq!(reply.body["response_type"], "ephemeral");
        let text = reply.text();
        assert!(text.contains(why), "{user}: {text:?} lacks {why:?}");
    }
    assert_eq!(app.request_state(request).await, "waiting");
    assert_eq!(app.approver_count(request).await, 0);
    assert_eq!(
        app.refusal_reasons(request).await,
        ["unknown_user", "not_reviewer", "self_review", "too_early"]
    );
    assert_eq!(app.audit("decision_refused").await.len(), 4);
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("greenlight_decisions_total")
                && line.contains(r#"outcome="self_review""#)
                && line.contains(r#"platform="slack""#)),
        "{metrics}"
    );
    slack.assert_all_read();
    app.teardown().await;
}

async fn two_reviewers_approve_and_the_card_shows_both_without_buttons(transport: Transport) {
    let (slack, via, app, request) = card_posted(transport).await;
    // The card is refreshed when approvals open, dropping "opens 12:05 UTC".
    app.outbox_pass_after(chrono::Duration::minutes(5)).await;
    let opened = slack.next_call("chat.update", CHANNEL).await;
    assert!(
        !text_of(&opened.body).contains("opens 12:05"),
        "{}",
        opened.body
    );

    interact(&via, &app, &click(&slack, BOB, "approve", request)).await;
    let update = slack.next_call("chat.update", CHANNEL).await;
    assert!(text_of(&update.body).contains("bob"));
    assert!(
        has_buttons(&update.body),
        "one approval of two: still waiting"
    );

    // Bob again: counts once.
    interact(&via, &app, &click(&slack, BOB, "approve", request)).await;
    let again = slack.next_response_url_post().await;
    assert!(again.text().contains("counts once"));
    assert_eq!(app.request_state(request).await, "waiting");

    interact(&via, &app, &click(&slack, CAROL, "approve", request)).await;
    let approved = slack.next_final_update(CHANNEL).await;
    let card = text_of(&approved.body);
    assert!(card.contains("bob") && card.contains("carol"), "{card}");
    assert!(card.contains("approved"), "{card}");
    assert_eq!(app.request_state(request).await, "approved");
    assert_eq!(app.approver_count(request).await, 2);
    let announced = slack.next_call("chat.postMessage", CHANNEL).await;
    assert!(
        text_of(&announced.body).contains("approved for production by bob, carol"),
        "{}",
        announced.body
    );
    // A late click on a final card changes nothing and says so.
    interact(&via, &app, &click(&slack, ALICE, "approve", request)).await;
    let late = slack.next_response_url_post().await;
    assert!(late.text().contains("already"), "{}", late.body);
    app.teardown().await;
}

async fn rejecting_asks_for_a_reason_and_rejects(transport: Transport) {
    let (slack, via, app, request) = card_posted(transport).await;

    // A non-reviewer's Reject is refused at once, without a modal.
    interact(&via, &app, &click(&slack, DAVE, "reject", request)).await;
    let refusal = slack.next_response_url_post().await;
    assert!(refusal.text().contains("not a reviewer"));

    // A reviewer's Reject opens the reason modal (even before the wait timer: rejecting early
    // is allowed).
    interact(&via, &app, &click(&slack, CAROL, "reject", request)).await;
    let modal = slack.next_method("views.open").await;
    assert_eq!(modal.body["view"]["callback_id"], "reject_reason");
    assert_eq!(modal.body["view"]["private_metadata"], request.to_string());

    // An empty reason is refused inside the modal.
    let empty = interact(
        &via,
        &app,
        &reject_submission(&modal.body["view"], CAROL, "  "),
    )
    .await;
    let errors = empty.body;
    assert_eq!(errors["response_action"], "errors");
    assert_eq!(app.request_state(request).await, "waiting");

    let submitted = interact(
        &via,
        &app,
        &reject_submission(
            &modal.body["view"],
            CAROL,
            "the migration locks the orders table",
        ),
    )
    .await;
    assert_eq!(submitted.status, 200);
    assert_eq!(app.request_state(request).await, "rejected");
    let update = slack.next_final_update(CHANNEL).await;
    assert!(text_of(&update.body).contains("the migration locks the orders table"));
    let announced = slack.next_call("chat.postMessage", CHANNEL).await;
    assert!(
        text_of(&announced.body).contains("rejected for production by carol"),
        "{}",
        announced.body
    );
    app.teardown().await;
}

#[tokio::test]
async fn an_unanswered_request_expires_even_across_a_restart() {
    let (slack, _, app, request) = card_posted(Transport::Http).await;

    app.outbox_idle().await;
    let app = app.restart().await;
    app.run_timers_after(chrono::Duration::minutes(61)).await;
    assert_eq!(app.request_state(request).await, "expired");
    let update = slack.next_final_update(CHANNEL).await;
    assert!(text_of(&update.body).contains("expired"), "{}", update.body);
    // The refresh due when approvals opened may arrive only now, drawn from the same state.
    app.deliver_due().await;
    for later in slack.inbox().take_all() {
        assert!(text_of(&later.body).contains("expired"), "{}", later.body);
    }
    app.teardown().await;
}

#[tokio::test]
async fn reminders_go_to_the_cards_thread() {
    let (slack, _, app, request) = card_posted(Transport::Http).await;
    app.run_timers_after(chrono::Duration::minutes(20)).await;
    let reminder = slack.next_call("chat.postMessage", CHANNEL).await;
    assert!(reminder.body["thread_ts"].is_string(), "{}", reminder.body);
    assert_eq!(app.request_state(request).await, "waiting");
    // The card was refreshed when approvals opened, 5 minutes in.
    let refreshed = slack.next_call("chat.update", CHANNEL).await;
    assert!(
        !text_of(&refreshed.body).contains("opens 12:05"),
        "{}",
        refreshed.body
    );
    app.teardown().await;
}

#[tokio::test]
async fn a_newer_release_supersedes_the_waiting_card() {
    let slack = FakeSlack::start().await;
    let via = Via::http(SIGNING_SECRET);
    let app = start(&slack, &via, STANDARD_POLICY, "").await;
    let first = staging_healthy(&app, SHA).await;
    slack.next_call("chat.postMessage", CHANNEL).await;
    let second = staging_healthy(&app, NEWER).await;
    assert_eq!(app.request_state(first).await, "superseded");
    assert_eq!(app.request_state(second).await, "waiting");
    let update = slack.next_call("chat.update", CHANNEL).await;
    assert!(
        text_of(&update.body).contains("superseded"),
        "{}",
        update.body
    );
    assert!(!has_buttons(&update.body));
    let new_card = slack.next_call("chat.postMessage", CHANNEL).await;
    assert!(text_of(&new_card.body).contains(&NEWER[..7]));
    app.teardown().await;
}

async fn fifty_concurrent_approvals_make_one_approval_and_one_deploy(transport: Transport) {
    let slack = FakeSlack::start().await;
    let via = transport.via(&slack, SIGNING_SECRET).await;
    let (people, policy) = reviewer_group(50, 2);
    let app = start(&slack, &via, &policy, &people).await;
    let request = staging_healthy(&app, SHA).await;
    slack.next_call("chat.postMessage", CHANNEL).await;

    let clicks = (0..50).map(|n| {
        let payload = click(&slack, &reviewer(n), "approve", request);
        let (app, via) = (&app, &via);
        async move { interact(via, app, &payload).await.status }
    });
    let statuses = futures::future::join_all(clicks).await;
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    assert_eq!(app.request_state(request).await, "approved");
    assert_eq!(app.approver_count(request).await, 2);
    assert_eq!(
        app.audit("deploy_owed").await.len(),
        1,
        "exactly one deploy"
    );
    // Everyone else is told it was already approved; the channel hears the outcome once.
    app.deliver_due().await;
    let rest = slack.inbox().take_all();
    let replies: Vec<&Value> = rest
        .iter()
        .filter(|call| call.path.starts_with("/hooks/"))
        .map(|call| &call.body["text"])
        .collect();
    assert_eq!(replies.len(), 48, "{rest:#?}");
    assert!(
        replies
            .iter()
            .all(|text| *text == "already approved; nothing changed"),
        "{replies:?}"
    );
    let announced: Vec<&Value> = rest
        .iter()
        .filter(|call| call.path == "/api/chat.postMessage")
        .map(|call| &call.body["text"])
        .collect();
    assert_eq!(announced.len(), 1, "{announced:?}");
    app.teardown().await;
}

/// Sends every one of `payloads` while the app's writes are held, releases the writes once all
/// of them wait in the engine (the first batch's write waits for the disk, every other click
/// queues behind it), and checks that each was answered 200.
async fn click_while_writes_are_held(via: &Via, app: &TestApp, payloads: &[Value]) {
    let held = app.hold_writes().await;
    let clicks = payloads
        .iter()
        .map(|payload| async move { interact(via, app, payload).await.status });
    let release_once_queued = async {
        let mut waiting = app.state.engine.clicks_waiting();
        let queued = waiting.wait_for(|waiting| *waiting == payloads.len());
        tokio::time::timeout(std::time::Duration::from_secs(10), queued)
            .await
            .expect("every click reached the engine within 10 s")
            .expect("the engine is running");
        held.release().await;
    };
    let (statuses, ()) = tokio::join!(futures::future::join_all(clicks), release_once_queued);
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
}

/// The Slack blocks of the request's card as it stands now.
async fn card_blocks(app: &TestApp, request: i64) -> Value {
    let card = app
        .state
        .engine
        .card(greenlight::cards::CardKey::Approval(request))
        .await
        .expect("card");
    greenlight::slack::card_message(&card).to_json()["blocks"].clone()
}

/// SPEC §13: clicks on one card that arrive while its last decision is being written wait and
/// go into the next write together, yet each is decided on its own, in order. (Over HTTP only:
/// Socket Mode hands a connection's envelopes over one at a time, so they cannot pile up.)
#[tokio::test]
async fn clicks_arriving_while_a_write_is_on_disk_are_decided_together_each_counted_once() {
    const CLICKS: usize = 40;
    let slack = FakeSlack::start().await;
    let via = Via::http(SIGNING_SECRET);
    // Two more reviewers than clicks: one approves first, and the request keeps waiting.
    let (people, policy) = reviewer_group(CLICKS + 2, CLICKS + 2);
    let app = start(&slack, &via, &policy, &people).await;
    let request = staging_healthy(&app, SHA).await;
    slack.next_call("chat.postMessage", CHANNEL).await;
    // A first approval, so the clicks below find the request's policy in memory and need no
    // read while the writes are held.
    let first = click(&slack, &reviewer(CLICKS + 1), "approve", request);
    assert_eq!(interact(&via, &app, &first).await.status, 200);
    app.deliver_due().await;
    slack.next_call("chat.update", CHANNEL).await;
    let mut payloads: Vec<Value> = (0..CLICKS)
        .map(|n| click(&slack, &reviewer(n), "approve", request))
        .collect();
    // Slack delivering one click twice, and someone approving twice.
    payloads.push(payloads[7].clone());
    payloads.push(click(&slack, &reviewer(3), "approve", request));

    let writes_before = app.storage().write_stats().writes;
    click_while_writes_are_held(&via, &app, &payloads).await;

    assert_eq!(app.approver_count(request).await, CLICKS + 1);
    // The redelivery is not recorded; the second approval is, as already counted.
    assert_eq!(app.decision_count(request).await, CLICKS + 2);
    assert_eq!(app.request_state(request).await, "waiting");
    let writes = app.storage().write_stats().writes - writes_before;
    // Two batches, and the outbox's own writes for the edit and the reply.
    assert!(
        writes < 10,
        "{} clicks took {writes} writes: the queued ones were not written together",
        payloads.len()
    );
    assert_eq!(*app.state.engine.clicks_waiting().borrow(), 0);
    // The one edit shows every approval; the second approval is told it counts once.
    app.deliver_due().await;
    let rest = slack.inbox().take_all();
    let edits: Vec<&Value> = rest
        .iter()
        .filter(|call| call.path == "/api/chat.update")
        .map(|call| &call.body)
        .collect();
    assert_eq!(edits.len(), 1, "{rest:#?}");
    assert_eq!(
        edits[0]["blocks"],
        card_blocks(&app, request).await,
        "the edit shows all approvals"
    );
    let replies: Vec<&Value> = rest
        .iter()
        .filter(|call| call.path.starts_with("/hooks/"))
        .map(|call| &call.body["text"])
        .collect();
    assert_eq!(replies.len(), 1, "{rest:#?}");
    app.teardown().await;
}

/// Clicks on different requests that queue together are decided in one batch, each request
/// against its own state: one completes, the other keeps counting.
#[tokio::test]
async fn clicks_on_several_requests_are_batched_and_each_request_keeps_its_own_count() {
    const PER_REQUEST: usize = 20;
    const CART_SHA: &str = "fedcba9876543210fedcba9876543210fedcba98";
    const CART_CI_TOKEN: &str = "cart-ci-token";
    let slack = FakeSlack::start().await;
    let via = Via::http(SIGNING_SECRET);
    // One reviewer more than will click, so the cart is still short of one at the end.
    let (people, shop_policy) = reviewer_group(PER_REQUEST + 2, 2);
    let (_, cart_policy) = reviewer_group(PER_REQUEST + 2, PER_REQUEST + 2);
    let cart = format!(
        "[apps.cart]\nimage = \"ghcr.io/acme/cart\"\nrepository = \"acme/cart\"\n\
         ci_token = \"{CART_CI_TOKEN}\"\nchannels = {{ slack = \"{CHANNEL}\" }}\n\n\
         [apps.cart.environments.staging]\n\n\
         [apps.cart.environments.production]\nafter = \"staging\"\n{cart_policy}\n"
    );
    let app = start(&slack, &via, &shop_policy, &format!("{people}\n{cart}")).await;
    let shop_request = staging_healthy(&app, SHA).await;
    let build = json!({"event": "build", "app": "cart", "sha": CART_SHA,
        "image": format!("ghcr.io/acme/cart:{CART_SHA}"), "author": "alice"});
    ci::report(&app, CART_CI_TOKEN, build).await;
    let healthy = json!({"event": "deployed", "app": "cart", "environment": "staging",
        "sha": CART_SHA, "status": "success", "smoke": ci::smoke_passed()});
    let cart_request = ci::opened_request(&ci::report(&app, CART_CI_TOKEN, healthy).await);
    // Both cards posted, so their edits are due at once.
    for _ in [shop_request, cart_request] {
        slack.next_call("chat.postMessage", CHANNEL).await;
    }
    // One approval on each first, so the clicks below find both policies in memory and need
    // no read while the writes are held.
    for request in [shop_request, cart_request] {
        let first = click(&slack, &reviewer(PER_REQUEST), "approve", request);
        assert_eq!(interact(&via, &app, &first).await.status, 200);
    }
    app.deliver_due().await;
    for _ in [shop_request, cart_request] {
        slack.next_call("chat.update", CHANNEL).await;
    }
    let payloads: Vec<Value> = (0..PER_REQUEST)
        .flat_map(|n| {
            [shop_request, cart_request]
                .map(|request| click(&slack, &reviewer(n), "approve", request))
        })
        .collect();

    let writes_before = app.storage().write_stats().writes;
    click_while_writes_are_held(&via, &app, &payloads).await;

    let writes = app.storage().write_stats().writes - writes_before;
    // The queued clicks of both requests go into one batch; with the outbox's own writes for
    // the approval's effects that stays far below one write per click.
    assert!(
        writes < 12,
        "{} clicks on two requests took {writes} writes: they were not written together",
        payloads.len()
    );
    // The shop needed one more approval: the first of its clicks completed it, and the rest
    // found it decided (refused, and not recorded).
    assert_eq!(app.request_state(shop_request).await, "approved");
    assert_eq!(app.approver_count(shop_request).await, 2);
    assert_eq!(app.decision_count(shop_request).await, 2);
    // The cart counted every click, and still waits for its last reviewer.
    assert_eq!(app.request_state(cart_request).await, "waiting");
    assert_eq!(app.approver_count(cart_request).await, PER_REQUEST + 1);
    assert_eq!(app.decision_count(cart_request).await, PER_REQUEST + 1);
    // Each card is edited once, showing its own request's approvals.
    app.deliver_due().await;
    let calls = slack.inbox().take_all();
    for request in [shop_request, cart_request] {
        let expected = card_blocks(&app, request).await;
        let edits = calls
            .iter()
            .filter(|call| call.path == "/api/chat.update")
            .filter(|call| call.body["blocks"] == expected)
            .count();
        assert_eq!(edits, 1, "request {request}: {calls:#?}");
    }
    app.teardown().await;
}

#[tokio::test]
async fn a_slack_outage_delays_the_card_but_loses_nothing() {
    let slack = FakeSlack::start().await;
    let via = Via::http(SIGNING_SECRET);
    slack.hiccup(Hiccup::outage());
    let app = start(&slack, &via, STANDARD_POLICY, "").await;
    staging_healthy(&app, SHA).await;
    // Drive the outbox through the outage with the clock; the card arrives exactly once.
    app.retry_outbox(10).await;
    slack.next_call("chat.postMessage", CHANNEL).await;
    // The refresh when approvals open (5 minutes in) is an edit of that one post.
    slack.next_call("chat.update", CHANNEL).await;
    assert_eq!(
        slack.api_requests(),
        5,
        "three failures, one post, one edit"
    );
    slack.assert_all_read();
    app.teardown().await;
}

#[tokio::test]
async fn forged_stale_future_and_foreign_requests_get_401() {
    let (slack, _, app, request) = card_posted(Transport::Http).await;
    app.outbox_idle().await;
    app.clock.advance(chrono::Duration::minutes(5));
    let body = interaction_body(&click(&slack, BOB, "approve", request));

    for (secret, skew) in [
        ("another-apps-secret", 0),
        (SIGNING_SECRET, -301),
        (SIGNING_SECRET, 301),
    ] {
        let response =
            from_slack::post_signed(&app, "/slack/interactions", body.clone(), secret, skew).await;
        assert_eq!(response.status(), 401, "secret {secret}, skew {skew}");
    }
    // Forged: a valid signature for another body.
    let timestamp = app.clock.now().timestamp();
    let forged = app
        .client
        .post(app.url("/slack/interactions"))
        .header("x-slack-request-timestamp", timestamp.to_string())
        .header(
            "x-slack-signature",
            slack_signature(SIGNING_SECRET, timestamp, b"payload=%7B%7D"),
        )
        .body(body.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(forged.status(), 401);
    let unsigned = app
        .client
        .post(app.url("/slack/commands"))
        .body("command=%2Freleases")
        .send()
        .await
        .expect("request");
    assert_eq!(unsigned.status(), 401);
    assert!(app
        .storage()
        .decisions(request)
        .await
        .expect("decisions")
        .is_empty());

    // The rotation list's older secret still works.
    let old = from_slack::post_signed(&app, "/slack/interactions", body, "old-secret", 0).await;
    assert_eq!(old.status(), 200);
    assert_eq!(app.approver_count(request).await, 1);
    // The card shows that approval.
    app.deliver_due().await;
    let updates = slack.inbox().take_all();
    assert!(
        updates
            .iter()
            .any(|update| text_of(&update.body).contains("bob")),
        "{updates:#?}"
    );
    app.teardown().await;
}

#[tokio::test]
async fn url_verification_is_answered() {
    let slack = FakeSlack::start().await;
    let via = Via::http(SIGNING_SECRET);
    let app = start(&slack, &via, STANDARD_POLICY, "").await;
    let body = json!({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}).to_string();
    let response = from_slack::post_signed(
        &app,
        "/slack/interactions",
        body.into_bytes(),
        SIGNING_SECRET,
        0,
    )
    .await;
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.expect("JSON");
    assert_eq!(
        reply["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    app.teardown().await;
}

async fn a_replayed_click_counts_once_and_foreign_response_urls_are_not_followed(
    transport: Transport,
) {
    let (slack, via, app, request) = card_posted(transport).await;

    // A refusal would be posted to whatever response_url the payload names; one pointing
    // anywhere but Slack goes to the user in the channel instead.
    let mut hostile = click(&slack, DAVE, "approve", request);
    hostile["response_url"] = json!("http://169.254.169.254/latest/meta-data");
    let response = interact(&via, &app, &hostile).await;
    assert_eq!(response.status, 200);
    let reply = slack.next_call("chat.postEphemeral", CHANNEL).await;
    assert_eq!(reply.body["user"], DAVE);
    assert!(reply.text().contains("not a reviewer"));

    // The same signed click delivered twice (a replay) is applied once: one refusal recorded,
    // one reply.
    let once = click(&slack, DAVE, "approve", request);
    interact(&via, &app, &once).await;
    slack.next_response_url_post().await;
    let before = app
        .storage()
        .decisions(request)
        .await
        .expect("decisions")
        .len();
    let response = interact(&via, &app, &once).await;
    assert_eq!(response.status, 200);
    let after = app
        .storage()
        .decisions(request)
        .await
        .expect("decisions")
        .len();
    assert_eq!(before, after, "the replay recorded nothing");
    app.deliver_due().await;
    slack.assert_all_read();
    app.teardown().await;
}

#[tokio::test]
async fn approvals_while_slack_throttles_make_one_card_edit_after_the_pause() {
    const CLICKS: usize = 500;
    let slack = FakeSlack::start().await;
    let via = Via::http(SIGNING_SECRET);
    // One more reviewer than approve, so the request keeps waiting and every click counts.
    let (people, policy) = reviewer_group(CLICKS + 1, CLICKS + 1);
    let app = start(&slack, &via, &policy, &people).await;
    let request = staging_healthy(&app, SHA).await;
    slack.next_call("chat.postMessage", CHANNEL).await;

    // The first edit is answered 429 Retry-After: 60; every approval after it finds that edit
    // waiting and adds nothing to the outbox.
    slack.hiccup([Hiccup::RateLimited {
        retry_after_secs: 60,
    }]);
    let mut calls_after_the_429 = 0;
    for n in 0..CLICKS {
        let payload = click(&slack, &reviewer(n), "approve", request);
        assert_eq!(interact(&via, &app, &payload).await.status, 200);
        if n == 0 {
            app.deliver_due().await;
            calls_after_the_429 = slack.api_requests();
        } else if n % 100 == 0 {
            // The waiting edit is due again only after the pause: no pass calls Slack.
            app.deliver_due().await;
        }
    }
    app.deliver_due().await;
    assert_eq!(app.approver_count(request).await, CLICKS);
    let edit = app
        .waiting_card_edit(greenlight_commands::Platform::Slack, request)
        .await
        .expect("the throttled edit waits");
    assert_eq!(
        (edit.attempts, edit.deferrals),
        (0, 1),
        "the 429 deferred the edit without using an attempt"
    );
    assert_eq!(
        app.storage().outbox_counts().await.expect("counts").pending,
        1,
        "one waiting edit stands for every approval"
    );
    let replies = slack.inbox().take_all();
    assert!(
        replies.iter().all(|call| call.path != "/api/chat.update"),
        "no edit while Slack asked to wait: {replies:#?}"
    );
    let calls_while_paused = slack.api_requests();
    assert_eq!(
        calls_while_paused, calls_after_the_429,
        "Slack received no call (no chat.update) while it asked to wait"
    );

    app.outbox_pass_after(chrono::Duration::seconds(61)).await;
    app.deliver_due().await;
    let edit = slack.next_call("chat.update", CHANNEL).await;
    assert_eq!(
        edit.body["blocks"],
        card_blocks(&app, request).await,
        "the edit shows all approvals"
    );
    assert_eq!(
        slack.api_requests(),
        calls_while_paused + 1,
        "exactly one chat.update after the pause"
    );
    assert!(slack.inbox().take_all().is_empty());
    app.teardown().await;
}
