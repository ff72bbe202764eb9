use greenlight_commands::{ApprovalState, PersonName, Platform, Refusal};
use serde_json::Value;

use super::*;
use crate::cards::fixtures::{self, at};
use crate::discord::message::{
    message_violations, modal_violations, response_violations, InteractionResponse,
};
use crate::discord::notices;
use crate::engine::DecisionReply;
use greenlight_commands::DecisionVerdict;

fn waiting_card() -> Card {
    fixtures::waiting_card("Retries once on a 502 from the *PSP* & logs it.")
}

fn every_status() -> Vec<CardStatus> {
    fixtures::every_status("breaks the @everyone checkout")
}

fn json(message: &Message) -> Value {
    message.to_json()
}

fn field<'a>(message: &'a Value, name: &str) -> &'a Value {
    message["embeds"][0]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|field| field["name"].as_str().is_some_and(|n| n.starts_with(name)))
        .unwrap_or_else(|| panic!("no field {name:?} in {message}"))
}

#[test]
fn waiting_card_shows_what_spec_asks_for() {
    let card = fixtures::locked_and_rejected(waiting_card(), "needs a **migration** & a flag");
    let message = json(&card_message(&card));
    let embed = &message["embeds"][0];
    assert_eq!(embed["title"], "⏳ shop → production");
    assert_eq!(
        embed["url"],
        "https://github.com/acme/shop/commit/0123456789abcdef0123456789abcdef01234567"
    );
    let description = embed["description"].as_str().expect("description");
    assert!(description.starts_with("**shop → production: waiting for approval**"));
    assert!(description.contains("**Checkout: retry card payments**"));
    assert!(
        description.contains(r"the \*PSP\* & logs it"),
        "{description}"
    );
    assert_eq!(
        field(&message, "Commit")["value"],
        "[`0123456`](https://github.com/acme/shop/commit/0123456789abcdef0123456789abcdef01234567)"
    );
    assert_eq!(
        field(&message, "Image")["value"],
        "`ghcr.io/acme/shop:0123456`"
    );
    assert_eq!(field(&message, "Author")["value"], "alice");
    assert_eq!(field(&message, "Tested in")["value"], "staging");
    let smoke = field(&message, "Smoke checks in staging: 2 of 2 passed");
    assert_eq!(
        smoke["value"],
        "✅ **health** · 42 ms\n✅ **status** · 1.5 s · database ok, cache ok"
    );
    assert_eq!(
        field(&message, "Changes")["value"],
        "[Changes since what runs in production now](https://github.com/acme/shop/compare/aaa...0123456)"
    );
    assert_eq!(
        field(&message, "Policy")["value"],
        "needs 2 of: sre, carol · self-review blocked · opens 12:35 UTC"
    );
    let decisions = field(&message, "Decisions")["value"]
        .as_str()
        .expect("decisions");
    let unix = at(12, 40).timestamp();
    assert!(
        decisions.contains(&format!("✅ **bob** approved on Slack · <t:{unix}:f>")),
        "{decisions}"
    );
    assert!(
        decisions.contains(r"⛔ **carol** rejected on Discord"),
        "{decisions}"
    );
    assert!(
        decisions.contains(r"“needs a \*\*migration\*\* & a flag”"),
        "{decisions}"
    );
    assert_eq!(
        field(&message, "🔒 production is locked")["value"],
        "by carol: incident 12"
    );
    assert_eq!(embed["footer"]["text"], "Greenlight · approval request 42");
    assert_eq!(message["allowed_mentions"]["parse"], serde_json::json!([]));
    assert!(message_violations(&message).is_empty());
}

#[test]
fn approve_and_reject_buttons_only_while_waiting() {
    for status in every_status() {
        let card = Card {
            status: status.clone(),
            ..waiting_card()
        };
        let message = json(&card_message(&card));
        let rows = message["components"].as_array().expect("components sent");
        match status {
            CardStatus::Waiting { request_id } => {
                assert_eq!(
                    message["components"],
                    serde_json::json!([{"type": 1, "components": [
                        {"type": 2, "style": 3, "label": "Approve",
                         "custom_id": format!("approve:{request_id}")},
                        {"type": 2, "style": 4, "label": "Reject",
                         "custom_id": format!("reject:{request_id}")}]}])
                );
            }
            // An empty list, not a missing key: an edit must remove the buttons.
            _ => assert!(rows.is_empty(), "{status:?} has buttons"),
        }
        let problems = message_violations(&message);
        assert!(problems.is_empty(), "{status:?}: {problems:#?}");
        assert!(
            message["embeds"][0]["description"]
                .as_str()
                .is_some_and(|d| d.contains(&escape(&card.headline()))),
            "{status:?}: {message}"
        );
    }
}

#[test]
fn smoke_failed_card_lists_each_check_and_is_not_promotable() {
    let card = fixtures::smoke_failed_card(waiting_card());
    let message = json(&card_message(&card));
    assert_eq!(message["components"], serde_json::json!([]));
    let text = message.to_string();
    assert!(text.contains("not promotable"), "{text}");
    let smoke = field(&message, "Smoke checks in staging: 1 of 3 passed")["value"]
        .as_str()
        .expect("smoke");
    assert!(smoke.contains("✅ **health** · 40 ms"), "{smoke}");
    assert!(
        smoke.contains("❌ **status** · 5.0 s · expected database=ok"),
        "{smoke}"
    );
    assert!(smoke.contains("⚠️ timeout **search**"), "{smoke}");
    assert_eq!(
        message["embeds"][0]["footer"]["text"],
        "Greenlight · deployment 7"
    );
    assert!(message_violations(&message).is_empty());
}

#[test]
fn custom_ids_are_short_references_that_round_trip() {
    for id in [0, 1, 42, i64::MAX, i64::MIN] {
        for action in [
            ButtonAction::Approve(id),
            ButtonAction::Reject(id),
            ButtonAction::Confirm(id),
            ButtonAction::Cancel(id),
            ButtonAction::RejectReason(id),
        ] {
            let custom_id = action.custom_id();
            assert!(custom_id.len() <= limits::CUSTOM_ID, "{custom_id}");
            assert_eq!(ButtonAction::parse(&custom_id), Some(action));
        }
    }
    for other in [
        "",
        "click_one",
        "approve",
        "approve:",
        "approve:x",
        "dance:1",
    ] {
        assert_eq!(ButtonAction::parse(other), None, "{other}");
    }
}

/// Everything at once, far beyond what fits: every message the bot sends must still be
/// accepted by Discord.
fn huge_card(status: CardStatus) -> Card {
    fixtures::huge_card(
        status,
        &fixtures::Hostile {
            subject: "First line of a very long subject @everyone **bold** & more ",
            body: "Body with emoji 😀 and <@123> `code` & [links](http://x). ",
            comment: "a comment @here 😀 ",
            lock_reason: "locked because @everyone ",
            image_tag: "0123456`",
            diff_path_len: 400,
        },
    )
}

fn refusals() -> Vec<Refusal> {
    let huge = "x".repeat(5000);
    vec![
        Refusal::Final {
            state: ApprovalState::Approved,
        },
        Refusal::Expired {
            expires_at: at(13, 0),
            at: at(14, 0),
        },
        Refusal::UnknownUser {
            platform: Platform::Discord,
            platform_user_id: huge.clone(),
        },
        Refusal::NotReviewer {
            person: PersonName::parse("dave").expect("person"),
            reviewers: huge,
            verdict: DecisionVerdict::Approve,
        },
        Refusal::SelfReview {
            person: PersonName::parse("alice").expect("person"),
        },
        Refusal::TooEarly {
            opens_at: at(12, 5),
            at: at(12, 0),
        },
        Refusal::ReasonRequired,
    ]
}

#[test]
fn huge_inputs_stay_within_every_discord_limit() {
    let mut statuses = every_status();
    statuses.push(CardStatus::Rejected {
        comment: Some("reason @everyone & 😀 ".repeat(1000)),
    });
    statuses.push(CardStatus::Superseded {
        comment: Some("s".repeat(20_000)),
    });
    for status in statuses {
        let card = huge_card(status.clone());

        // The card, posted or edited.
        let message = card_message(&card);
        let value = json(&message);
        let problems = message_violations(&value);
        assert!(problems.is_empty(), "card {status:?}: {problems:#?}");
        let text = value.to_string();
        assert!(
            !text.contains(" @everyone"),
            "unescaped mention in {status:?}"
        );
        assert!(!text.contains(" @here"), "unescaped mention in {status:?}");
        assert!(text.contains("…and "), "nothing summarised for {status:?}");

        // Announcements and reminders (the engine's plain texts), in the channel and as
        // replies to the card.
        let plain = [
            format!("✅ {} approved by {}.", card.app, "p".repeat(5000)),
            format!("⛔ rejected: {}", "reason @everyone **x** ".repeat(500)),
        ];
        for text in plain {
            let problems = message_violations(&json(&Message::plain(&text)));
            assert!(problems.is_empty(), "notice for {status:?}: {problems:#?}");
        }

        // Every answer to an interaction.
        let mut responses = vec![
            InteractionResponse::Message(notices::approve_confirmation(Some(&card), i64::MAX)),
            InteractionResponse::Message(notices::approve_confirmation(None, i64::MIN)),
            InteractionResponse::Modal(notices::reject_reason_modal(Some(&card), i64::MAX)),
            InteractionResponse::Modal(notices::reject_reason_modal(None, i64::MIN)),
            InteractionResponse::UpdateMessage(notices::cancelled()),
            InteractionResponse::Pong,
            InteractionResponse::NoChoices,
        ];
        for text in [
            notices::DUPLICATE,
            notices::STILL_WORKING,
            notices::UNAVAILABLE,
            notices::NOT_RECORDED,
            notices::NO_SUCH_REQUEST,
        ] {
            responses.push(InteractionResponse::Message(Message::ephemeral(text)));
            responses.push(InteractionResponse::UpdateMessage(Message::plain(text)));
        }
        let mut replies: Vec<DecisionReply> =
            refusals().into_iter().map(DecisionReply::Refused).collect();
        replies.push(DecisionReply::Accepted("ok ".repeat(3000)));
        for reply in replies {
            let text = notices::decision_text(&reply);
            responses.push(InteractionResponse::Message(Message::ephemeral(&text)));
            responses.push(InteractionResponse::UpdateMessage(Message::plain(&text)));
        }
        for response in responses {
            let value = response.to_json();
            let problems = response_violations(&value);
            assert!(problems.is_empty(), "{value}: {problems:#?}");
        }
    }
}

#[test]
fn the_reject_modal_asks_for_a_required_reason() {
    let modal = serde_json::to_value(notices::reject_reason_modal(Some(&waiting_card()), 42))
        .expect("json");
    assert_eq!(modal["custom_id"], "reject_reason:42");
    assert_eq!(modal["title"], "Reject shop → production");
    let input = &modal["components"][0]["components"][0];
    assert_eq!(input["type"], 4);
    assert_eq!(input["custom_id"], notices::REASON_INPUT_ID);
    assert_eq!(input["style"], 2);
    assert_eq!(input["required"], true);
    assert!(modal_violations(&modal).is_empty());
}

#[test]
fn the_confirmation_is_ephemeral_with_confirm_and_cancel() {
    let message = json(&notices::approve_confirmation(Some(&waiting_card()), 42));
    assert_eq!(message["flags"], 64);
    assert_eq!(
        message["content"],
        "Approve deploying shop 0123456 → production?"
    );
    let buttons = &message["components"][0]["components"];
    assert_eq!(buttons[0]["custom_id"], "confirm:42");
    assert_eq!(buttons[0]["label"], "Confirm approve");
    assert_eq!(buttons[0]["style"], 3);
    assert_eq!(buttons[1]["custom_id"], "cancel:42");
    assert_eq!(buttons[1]["style"], 2);
}

#[test]
fn commits_show_ten_lines_then_how_many_more() {
    let card = Card {
        commits: Some(fixtures::commit_list(13, "alice", "Fix checkout")),
        ..waiting_card()
    };
    let message = json(&card_message(&card));
    let commits = field(&message, "13 commits since what runs in production");
    let mut expected: Vec<String> = (0..10)
        .map(|n| format!("{n:07x} alice: Fix checkout {n}"))
        .collect();
    expected.push("and 3 more".to_owned());
    assert_eq!(commits["value"], expected.join("\n"));
    assert!(field(&message, "Changes")["value"]
        .as_str()
        .expect("link")
        .contains("compare/aaa...0123456"));
}

#[test]
fn commit_lines_are_escaped_and_fit_a_field() {
    let card = Card {
        commits: Some(fixtures::commit_list(
            4000,
            &"*bold* `code` ~~x~~ ".repeat(50),
            &"# é👩‍👩‍👧‍👦 **no** [link](https://evil.example) ".repeat(100),
        )),
        ..waiting_card()
    };
    let message = json(&card_message(&card));
    assert!(message_violations(&message).is_empty());
    let value = field(&message, "4000 commits")["value"]
        .as_str()
        .expect("value")
        .to_owned();
    assert!(
        value.encode_utf16().count() <= limits::FIELD_VALUE,
        "{value}"
    );
    assert!(
        value.starts_with("0000000 \\*bold\\* \\`code\\`"),
        "{value}"
    );
    assert!(!value.contains("[link](https://"), "{value}");
    let shown = value.lines().filter(|line| line.contains(": ")).count();
    assert!(shown >= 1, "{value}");
    assert_eq!(
        value.lines().last().expect("lines"),
        format!("and {} more", 4000 - shown)
    );
}

#[test]
fn without_a_commit_list_there_is_no_commits_field() {
    let message = json(&card_message(&waiting_card()));
    let fields = message["embeds"][0]["fields"].as_array().expect("fields");
    assert!(!fields
        .iter()
        .any(|field| field["name"].as_str().is_some_and(|n| n.contains("commit"))));
}
