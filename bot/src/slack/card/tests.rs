use serde_json::Value;

use super::*;
use crate::cards::fixtures::{self};
use crate::cards::CardStatus;
use crate::slack::blocks::{message_violations, view_violations};
use crate::slack::notices;

fn waiting_card() -> Card {
    fixtures::waiting_card("Retries once on a 502 from the <PSP> & logs it.")
}

fn every_status() -> Vec<CardStatus> {
    fixtures::every_status("breaks the <!channel> checkout")
}

fn json(message: &Message) -> Value {
    message.to_json()
}

fn actions(message: &Message) -> Vec<Value> {
    json(message)["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .filter(|block| block["type"] == "actions")
        .cloned()
        .collect()
}

fn all_text(message: &Message) -> String {
    json(message).to_string()
}

#[test]
fn representative_waiting_card() {
    let mut message = json(&card_message(&waiting_card()));
    // The revision part of block ids hashes the whole card; the snapshot is about the layout.
    for block in message["blocks"].as_array_mut().expect("blocks") {
        let id = block["block_id"].as_str().expect("block id");
        let (part, revision) = id.rsplit_once('-').expect("part-revision");
        assert_eq!(revision.len(), 12, "{id}");
        block["block_id"] = Value::String(format!("{part}-[revision]"));
    }
    insta::assert_json_snapshot!(message);
}

#[test]
fn buttons_only_while_waiting() {
    for status in every_status() {
        let card = Card {
            status: status.clone(),
            ..waiting_card()
        };
        let message = card_message(&card);
        let actions = actions(&message);
        match status {
            CardStatus::Waiting { .. } => assert_eq!(actions.len(), 1, "{status:?}"),
            _ => assert!(actions.is_empty(), "{status:?} has buttons"),
        }
        let problems = message_violations(&json(&message));
        assert!(problems.is_empty(), "{status:?}: {problems:#?}");
        assert!(
            message.text.contains(&escape(&card.headline())),
            "{status:?}: fallback {:?}",
            message.text
        );
    }
}

#[test]
fn approve_asks_for_confirmation_and_reject_does_not() {
    let message = card_message(&waiting_card());
    let actions = actions(&message);
    let elements = actions[0]["elements"].as_array().expect("elements");
    assert_eq!(elements.len(), 2);
    let approve = &elements[0];
    assert_eq!(approve["action_id"], "approve");
    assert_eq!(approve["value"], "42");
    assert_eq!(approve["style"], "primary");
    assert_eq!(approve["text"]["text"], "Approve");
    assert_eq!(
        approve["confirm"]["text"]["text"],
        "Approve deploying 0123456 to production?"
    );
    assert_eq!(approve["confirm"]["confirm"]["text"], "Approve");
    let reject = &elements[1];
    assert_eq!(reject["action_id"], "reject");
    assert_eq!(reject["value"], "42");
    assert_eq!(reject["style"], "danger");
    assert!(reject["confirm"].is_null());
}

#[test]
fn smoke_failed_card_lists_each_check_and_is_not_promotable() {
    let card = fixtures::smoke_failed_card(waiting_card());
    let message = card_message(&card);
    let text = all_text(&message);
    assert!(actions(&message).is_empty());
    assert!(text.contains("not promotable"), "{text}");
    assert!(text.contains("✅ *health* · 40 ms"), "{text}");
    assert!(
        text.contains("❌ *status* · 5.0 s · expected database=ok"),
        "{text}"
    );
    assert!(text.contains("⚠️ timeout *search*"), "{text}");
    assert!(
        text.contains("Smoke checks in staging*: 1 of 3 passed"),
        "{text}"
    );
    assert!(message_violations(&json(&message)).is_empty());
}

#[test]
fn card_shows_what_spec_asks_for() {
    let card = fixtures::locked_and_rejected(waiting_card(), "needs <b>a</b> migration & a flag");
    let text = all_text(&card_message(&card));
    for expected in [
        "shop → production",
        "<https://github.com/acme/shop/commit/0123456789abcdef0123456789abcdef01234567|0123456>",
        "ghcr.io/acme/shop:0123456",
        "*Author*\\nalice",
        "*Checkout: retry card payments*",
        "&lt;PSP&gt; &amp; logs it",
        "Changes since what runs in production now",
        "Policy: needs 2 of: sre, carol · self-review blocked · opens 12:35 UTC",
        "✅ *bob* approved on Slack · <!date^",
        "|2026-11-27 12:40 UTC>",
        "⛔ *carol* rejected on Discord",
        "needs &lt;b&gt;a&lt;/b&gt; migration &amp; a flag",
        ":lock: *production is locked* by carol: incident 12",
        "waiting for approval",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in {text}");
    }
}

#[test]
fn block_ids_change_with_the_content_and_only_then() {
    let ids = |card: &Card| -> Vec<String> {
        json(&card_message(card))["blocks"]
            .as_array()
            .expect("blocks")
            .iter()
            .map(|block| block["block_id"].as_str().expect("id").to_owned())
            .collect()
    };
    let card = waiting_card();
    assert_eq!(ids(&card), ids(&card.clone()));
    let decided = Card {
        status: CardStatus::Approved { deployment: None },
        ..waiting_card()
    };
    let before = ids(&card);
    let after = ids(&decided);
    assert!(
        before.iter().all(|id| !after.contains(id)),
        "{before:?} {after:?}"
    );
}

/// Everything at once, far beyond what fits: every message the bot sends must still be
/// accepted by Slack.
fn huge_card(status: CardStatus) -> Card {
    let card = fixtures::huge_card(
        status,
        &fixtures::Hostile {
            subject: "First line of a very long subject <!here> & more ",
            body: "Body with emoji 😀 and <markup> & ampersands. ",
            comment: "a comment <!channel> 😀 ",
            lock_reason: "locked because <!everyone> ",
            image_tag: "0123456",
            diff_path_len: 300,
        },
    );
    assert!(card.message.as_deref().is_some_and(|m| m.len() > 10_000));
    card
}

#[test]
fn huge_inputs_stay_within_every_block_kit_limit() {
    let mut statuses = every_status();
    statuses.push(CardStatus::Rejected {
        comment: Some("reason <!channel> & 😀 ".repeat(1000)),
    });
    statuses.push(CardStatus::Superseded {
        comment: Some("s".repeat(20_000)),
    });
    for status in statuses {
        let card = huge_card(status.clone());
        let message = card_message(&card);
        let problems = message_violations(&json(&message));
        assert!(problems.is_empty(), "card {status:?}: {problems:#?}");
        let text = all_text(&message);
        assert!(
            !text.contains("<!channel>"),
            "unescaped mention in {status:?}"
        );
        assert!(!text.contains("<!here>") && !text.contains("<!everyone>"));
        assert!(text.contains("…and "), "nothing summarised for {status:?}");

        let modal =
            serde_json::to_value(notices::reject_reason_modal(&card, i64::MAX)).expect("json");
        let problems = view_violations(&modal);
        assert!(problems.is_empty(), "modal: {problems:#?}");
    }
}

#[test]
fn failures_come_first_when_not_every_check_fits() {
    let card = huge_card(CardStatus::SmokeFailed);
    let text = all_text(&card_message(&card));
    let first_passed = text.find("✅ *").expect("a passed check");
    let first_failed = text.find("❌ *").expect("a failed check");
    assert!(first_failed < first_passed);
}

#[test]
fn reject_modal_carries_the_request_and_asks_for_a_reason() {
    let modal =
        serde_json::to_value(notices::reject_reason_modal(&waiting_card(), 42)).expect("json");
    assert_eq!(modal["type"], "modal");
    assert_eq!(modal["callback_id"], notices::REJECT_MODAL_CALLBACK_ID);
    assert_eq!(modal["private_metadata"], "42");
    let input = &modal["blocks"][1];
    assert_eq!(input["type"], "input");
    assert_eq!(input["block_id"], notices::REASON_BLOCK_ID);
    assert_eq!(input["element"]["action_id"], notices::REASON_ACTION_ID);
    assert_eq!(input["element"]["multiline"], true);
    assert!(view_violations(&modal).is_empty());
}

fn commits_block(message: &Message) -> Option<String> {
    json(message)["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .find(|block| {
            block["block_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("commits-"))
        })
        .map(|block| block["text"]["text"].as_str().expect("text").to_owned())
}

#[test]
fn commits_show_ten_lines_then_how_many_more() {
    let card = Card {
        commits: Some(fixtures::commit_list(13, "alice", "Fix checkout")),
        ..waiting_card()
    };
    let message = card_message(&card);
    let text = commits_block(&message).expect("a commits section");
    let mut expected = vec!["*13 commits since what runs in production*".to_owned()];
    expected.extend((0..10).map(|n| format!("{n:07x} alice: Fix checkout {n}")));
    expected.push("and 3 more".to_owned());
    assert_eq!(text, expected.join("\n"));
    // The compare link stays.
    assert!(all_text(&message).contains("Changes since what runs in production now"));

    let exact = Card {
        commits: Some(fixtures::commit_list(1, "", "Only one")),
        ..waiting_card()
    };
    assert_eq!(
        commits_block(&card_message(&exact)).expect("section"),
        "*1 commit since what runs in production*\n0000000 Only one 0"
    );
}

#[test]
fn commit_authors_and_titles_are_escaped_for_mrkdwn() {
    let card = Card {
        commits: Some(fixtures::commit_list(
            2,
            "<!channel> & Bob",
            "Use <https://evil.example|this> & <@U0123>\nsecond line",
        )),
        ..waiting_card()
    };
    let text = commits_block(&card_message(&card)).expect("section");
    assert!(
        text.contains(
            "0000000 &lt;!channel&gt; &amp; Bob: Use &lt;https://evil.example|this&gt; &amp; &lt;@U0123&gt; second line 0"
        ),
        "{text}"
    );
    assert!(!text.contains("<!channel>") && !text.contains("<@U0123>"));
}

#[test]
fn long_commit_lines_stay_within_the_section_limit() {
    // Escaping triples "<" and a family emoji is 11 UTF-16 units: lines are cut after
    // escaping, never inside an escape or a character.
    let card = Card {
        commits: Some(fixtures::commit_list(
            4000,
            &"<👩‍👩‍👧‍👦".repeat(200),
            &"&é👩‍👩‍👧‍👦<".repeat(500),
        )),
        ..waiting_card()
    };
    let message = card_message(&card);
    let text = commits_block(&message).expect("section");
    assert!(
        slack_len(&text) <= limits::SECTION_TEXT,
        "{}",
        slack_len(&text)
    );
    assert!(message_violations(&json(&message)).is_empty());
    let shown = text.lines().filter(|line| line.contains(": ")).count();
    let last = text.lines().last().expect("lines");
    assert_eq!(last, format!("and {} more", 4000 - shown));
    assert!(!text.contains("&l…") && !text.contains("&am…"), "{text}");
}

#[test]
fn without_a_commit_list_the_card_keeps_the_compare_link_only() {
    let message = card_message(&waiting_card());
    assert_eq!(commits_block(&message), None);
    assert!(all_text(&message).contains("compare/aaa...0123456"));
}
