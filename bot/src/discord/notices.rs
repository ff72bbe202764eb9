//! Everything Discord shows besides the card: the ephemeral approve confirmation, the
//! reject-reason modal, and the answers to clicks.
//!
//! Announcements and reminders are the engine's plain texts, sent as [`Message::plain`].

use super::card::ButtonAction;
use super::message::{limits, style, ActionRow, Component, Message, Modal, EPHEMERAL};
use crate::cards::Card;
use crate::engine::DecisionReply;

/// `custom_id` of the reason input in the reject modal.
pub const REASON_INPUT_ID: &str = "reason";
/// Longest reason accepted; the card shows the start of it.
const REASON_MAX: u32 = 1000;

/// What the card's target is called in one-line texts: "shop 0123456 → production".
fn target(card: &Card) -> String {
    format!("{} {} → {}", card.app, card.sha.short(), card.environment)
}

/// The ephemeral question an Approve click gets: approving by mistake on a phone is easy, so
/// the decision waits for "Confirm approve".
pub fn approve_confirmation(card: Option<&Card>, request_id: i64) -> Message {
    let question = match card {
        Some(card) => format!("Approve deploying {}?", target(card)),
        None => format!("Approve approval request {request_id}?"),
    };
    Message {
        components: vec![ActionRow::new(vec![
            Component::button(
                style::SUCCESS,
                "Confirm approve",
                ButtonAction::Confirm(request_id).custom_id(),
            ),
            Component::button(
                style::SECONDARY,
                "Cancel",
                ButtonAction::Cancel(request_id).custom_id(),
            ),
        ])],
        flags: Some(EPHEMERAL),
        ..Message::plain(&question)
    }
}

/// What the confirmation turns into after "Cancel".
pub fn cancelled() -> Message {
    Message::plain("Not approved; nothing changed.")
}

/// The modal a Reject click opens: one required, multi-line reason.
pub fn reject_reason_modal(card: Option<&Card>, request_id: i64) -> Modal {
    let title = match card {
        Some(card) => format!("Reject {} → {}", card.app, card.environment),
        None => "Reject deploy".to_owned(),
    };
    let title = if super::message::discord_len(&title) > limits::MODAL_TITLE {
        "Reject deploy".to_owned()
    } else {
        title
    };
    let reason = Component::paragraph(
        REASON_INPUT_ID,
        "Why are you rejecting it?",
        REASON_MAX,
        Some("e.g. the migration locks the orders table"),
    );
    Modal {
        custom_id: ButtonAction::RejectReason(request_id).custom_id(),
        title,
        components: vec![ActionRow::new(vec![reason])],
    }
}

/// The text for the person who decided: what counted, or why nothing changed.
pub fn decision_text(reply: &DecisionReply) -> String {
    match reply {
        DecisionReply::Accepted(text) => format!("✅ {text}"),
        DecisionReply::Refused(refusal) => format!("🚫 {}", capitalized(&refusal.to_string())),
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The answer to an interaction Discord delivered twice.
pub const DUPLICATE: &str = "This was already handled; nothing changed.";
/// The answer when the decision takes longer than Discord waits; it is edited in later.
pub const STILL_WORKING: &str =
    "⏳ Still recording your decision; this message will show the result.";
/// The answer when the database could not be read in time.
pub const UNAVAILABLE: &str =
    "Greenlight could not check that right now; please try again in a moment.";
/// The answer when the decision failed (it was not recorded).
pub const NOT_RECORDED: &str =
    "Greenlight could not record that; nothing changed. Please try again in a moment.";
/// The answer to a click on a request that does not exist (any more).
pub const NO_SUCH_REQUEST: &str = "This approval request no longer exists.";

/// `custom_id` prefix of the rollback confirmation's button; the rest is the engine's
/// reference to the planned rollback (re-authorized when clicked).
pub const ROLLBACK_CONFIRM_PREFIX: &str = "rollback:";
pub const ROLLBACK_CANCEL_ID: &str = "rollback_cancel";

/// The private reply to `/rollback`: what runs now, what would run after, and buttons to
/// confirm or cancel.
pub fn rollback_confirmation(text: &str, confirm_value: &str) -> Message {
    let custom_id: String = format!("{ROLLBACK_CONFIRM_PREFIX}{confirm_value}")
        .chars()
        .take(limits::CUSTOM_ID)
        .collect();
    Message {
        components: vec![ActionRow::new(vec![
            Component::button(style::DANGER, "Roll back", custom_id),
            Component::button(style::SECONDARY, "Cancel", ROLLBACK_CANCEL_ID.to_owned()),
        ])],
        flags: Some(EPHEMERAL),
        ..Message::plain(text)
    }
}
