//! What Slack shows besides the card: the reject-reason modal and the rollback confirmation.
//! (Refusals, reminders and announcements are the pure core's plain texts, escaped on the way
//! out by `Message::plain`.)

use slack_morphism::blocks::{
    SlackBlock, SlackBlockMarkDownText, SlackBlockPlainTextInputElement, SlackBlockPlainTextOnly,
    SlackBlockText, SlackInputBlock, SlackModalView, SlackSectionBlock, SlackView,
};
use slack_morphism::{SlackActionId, SlackCallbackId};

use super::blocks::{escape_truncated, limits, truncate};
use crate::cards::Card;

/// `callback_id` of the reject-reason modal; its `view_submission` carries it back.
pub const REJECT_MODAL_CALLBACK_ID: &str = "reject_reason";
/// `block_id` / `action_id` of the reason input: the submission's
/// `view.state.values.reason.reason.value` is the reason.
pub const REASON_BLOCK_ID: &str = "reason";
pub const REASON_ACTION_ID: &str = "reason";

/// What the card's target is called in one-line texts: "shop abc1234 → production".
fn target(card: &Card) -> String {
    format!("{} {} → {}", card.app, card.sha.short(), card.environment)
}

/// The modal a Reject click opens: one required, multi-line reason. `private_metadata` is the
/// request id, so the submission says which request it rejects.
pub fn reject_reason_modal(card: &Card, request_id: i64) -> SlackView {
    let intro = format!(
        "Rejecting *{}*. The reason is shown on the card and sent to CI.",
        escape_truncated(&target(card), limits::SECTION_TEXT - 100)
    );
    let blocks: Vec<SlackBlock> = vec![
        SlackSectionBlock::new()
            .with_text(SlackBlockText::MarkDown(SlackBlockMarkDownText::new(intro)))
            .into(),
        SlackInputBlock::new(
            plain("Why are you rejecting it?", limits::INPUT_LABEL),
            SlackBlockPlainTextInputElement::new()
                .with_action_id(SlackActionId::new(REASON_ACTION_ID.to_owned()))
                .with_multiline(true)
                .with_min_length(1)
                .with_max_length(limits::INPUT_MAX_LENGTH)
                .with_placeholder(plain(
                    "e.g. the migration locks the orders table",
                    limits::PLACEHOLDER,
                ))
                .into(),
        )
        .with_block_id(slack_morphism::blocks::SlackBlockId::new(
            REASON_BLOCK_ID.to_owned(),
        ))
        .into(),
    ];
    SlackView::Modal(
        SlackModalView::new(plain("Reject deploy", limits::MODAL_TITLE), blocks)
            .with_submit(plain("Reject", limits::MODAL_BUTTON))
            .with_close(plain("Cancel", limits::MODAL_BUTTON))
            .with_callback_id(SlackCallbackId::new(REJECT_MODAL_CALLBACK_ID.to_owned()))
            .with_private_metadata(request_id.to_string()),
    )
}

fn plain(text: &str, max: usize) -> SlackBlockPlainTextOnly {
    SlackBlockPlainTextOnly::from(truncate(text, max))
}

/// `action_id` of the rollback confirmation's buttons; the confirm button's value is the
/// engine's reference to the planned rollback.
pub const ROLLBACK_CONFIRM_ACTION_ID: &str = "rollback_confirm";
pub const ROLLBACK_CANCEL_ACTION_ID: &str = "rollback_cancel";

/// The ephemeral reply to `/rollback`: what runs now, what would run after, and buttons to
/// confirm or cancel. `text` is plain text from the engine.
pub fn rollback_confirmation(text: &str, confirm_value: &str) -> super::blocks::Message {
    use slack_morphism::blocks::{
        SlackActionsBlock, SlackBlockButtonElement, SlackBlockButtonStyle, SlackBlockConfirmItem,
        SlackBlockPlainText,
    };
    let body = escape_truncated(text, limits::SECTION_TEXT);
    let plain_only =
        |text: &str| SlackBlockPlainTextOnly::from(truncate(text, limits::BUTTON_TEXT));
    let confirm = SlackBlockConfirmItem::new(
        plain_only("Roll back?"),
        SlackBlockText::Plain(SlackBlockPlainText::new(truncate(
            text,
            limits::CONFIRM_TEXT,
        ))),
        plain_only("Roll back"),
        plain_only("Keep what runs"),
    )
    .with_style("danger".to_owned());
    let blocks: Vec<SlackBlock> = vec![
        SlackSectionBlock::new()
            .with_text(SlackBlockText::MarkDown(SlackBlockMarkDownText::new(body)))
            .into(),
        SlackActionsBlock::new(vec![
            SlackBlockButtonElement::new(plain_only("Roll back"))
                .with_action_id(SlackActionId::new(ROLLBACK_CONFIRM_ACTION_ID.to_owned()))
                .with_value(truncate(confirm_value, limits::BUTTON_VALUE))
                .with_style(SlackBlockButtonStyle::Danger)
                .with_confirm(confirm)
                .into(),
            SlackBlockButtonElement::new(plain_only("Cancel"))
                .with_action_id(SlackActionId::new(ROLLBACK_CANCEL_ACTION_ID.to_owned()))
                .with_value("cancel".to_owned())
                .into(),
        ])
        .into(),
    ];
    super::blocks::Message {
        text: escape_truncated(text, limits::MESSAGE_TEXT),
        blocks,
    }
}
