//! The card in Block Kit: a [`Card`] as a Slack message (SPEC §6), within every Block Kit limit.

use sha2::{Digest, Sha256};
use slack_morphism::blocks::{
    SlackActionsBlock, SlackBlock, SlackBlockButtonElement, SlackBlockButtonStyle,
    SlackBlockConfirmItem, SlackBlockId, SlackBlockMarkDownText, SlackBlockPlainText,
    SlackBlockPlainTextOnly, SlackBlockText, SlackContextBlock, SlackHeaderBlock,
    SlackSectionBlock,
};
use slack_morphism::SlackActionId;

use super::blocks::{escape, escape_truncated, limits, link, slack_len, truncate, Message, Mrkdwn};
use crate::cards::Card;
use crate::chat::text::{self, CommitRoom, LineRoom};

/// `action_id` of the Approve button; the inbound handler matches on it.
pub const APPROVE_ACTION_ID: &str = "approve";
/// `action_id` of the Reject button.
pub const REJECT_ACTION_ID: &str = "reject";

/// How much of a free-text value (author, check detail, comment) one line shows.
const SHORT: usize = 200;
const LONG: usize = 500;
/// How much of the notification text shows the commit message.
const FALLBACK: usize = 500;
/// Room for a smoke check's name and detail, and a decision's comment.
const ROOM: LineRoom = LineRoom {
    name: SHORT,
    detail: SHORT,
    comment: LONG,
};
/// Room for a commit line's author and title.
const COMMIT_ROOM: CommitRoom = CommitRoom {
    author: 100,
    title: SHORT,
};

/// The card as a Slack message. Buttons only while the request waits.
pub fn card_message(card: &Card) -> Message {
    let ids = BlockIds::for_card(card);
    let mut blocks: Vec<SlackBlock> = Vec::new();

    blocks.push(
        SlackHeaderBlock::new(plain_only(&format!(
            "{} {} → {}",
            text::status_emoji(card),
            card.app,
            card.environment
        )))
        .with_block_id(ids.id("header"))
        .into(),
    );
    blocks.push(section(ids.id("status"), &status_text(card)).into());
    blocks.push(
        SlackSectionBlock::new()
            .with_block_id(ids.id("facts"))
            .with_fields(facts(card))
            .into(),
    );
    if let Some(text) = commit_message_text(card.message.as_deref()) {
        blocks.push(section(ids.id("message"), &text).into());
    }
    if let Some(text) = smoke_text(card) {
        blocks.push(section(ids.id("smoke"), &text).into());
    }
    if let Some(text) = commits_text(card) {
        blocks.push(section(ids.id("commits"), &text).into());
    }
    let mut context = Vec::new();
    if let Some(url) = &card.diff_url {
        context.push(link(
            url,
            &format!("Changes since what runs in {} now", card.environment),
            SHORT,
        ));
    }
    if let Some(policy) = &card.policy_line {
        context.push(format!("Policy: {}", escape_truncated(policy, LONG)));
    }
    if !context.is_empty() {
        blocks.push(
            SlackContextBlock::new(
                context
                    .into_iter()
                    .map(|text| SlackBlockMarkDownText::new(text).into())
                    .collect(),
            )
            .with_block_id(ids.id("context"))
            .into(),
        );
    }
    if let Some(text) = decisions_text(card) {
        blocks.push(section(ids.id("decisions"), &text).into());
    }
    if let Some(lock) = &card.lock {
        let text = format!(
            ":lock: *{} is locked* by {}: {}",
            card.environment,
            escape_truncated(&lock.by, SHORT),
            escape_truncated(&lock.reason, LONG)
        );
        blocks.push(section(ids.id("lock"), &text).into());
    }
    if let Some(request_id) = card.buttons_for() {
        blocks.push(
            SlackActionsBlock::new(buttons(card, request_id))
                .with_block_id(ids.id("actions"))
                .into(),
        );
    }
    Message {
        text: fallback_text(card),
        blocks,
    }
}

/// Approve (with a confirm dialog) and Reject (the inbound handler asks for a reason).
fn buttons(card: &Card, request_id: i64) -> Vec<slack_morphism::blocks::SlackActionBlockElement> {
    let value = request_id.to_string();
    let confirm = SlackBlockConfirmItem::new(
        plain_only("Approve this deploy?"),
        SlackBlockText::Plain(SlackBlockPlainText::new(truncate(
            &format!(
                "Approve deploying {} to {}?",
                card.sha.short(),
                card.environment
            ),
            limits::CONFIRM_TEXT,
        ))),
        plain_only("Approve"),
        plain_only("Cancel"),
    )
    .with_style("primary".to_owned());
    vec![
        SlackBlockButtonElement::new(plain_only("Approve"))
            .with_action_id(SlackActionId::new(APPROVE_ACTION_ID.to_owned()))
            .with_value(value.clone())
            .with_style(SlackBlockButtonStyle::Primary)
            .with_confirm(confirm)
            .into(),
        SlackBlockButtonElement::new(plain_only("Reject"))
            .with_action_id(SlackActionId::new(REJECT_ACTION_ID.to_owned()))
            .with_value(value)
            .with_style(SlackBlockButtonStyle::Danger)
            .into(),
    ]
}

/// What a notification or a client without Block Kit shows.
fn fallback_text(card: &Card) -> String {
    let first_line = card
        .message
        .as_deref()
        .and_then(|message| message.lines().map(str::trim).find(|line| !line.is_empty()));
    let text = match first_line {
        Some(line) => format!(
            "{} · {} {}",
            card.headline(),
            card.sha.short(),
            truncate(line, FALLBACK)
        ),
        None => format!("{} · {}", card.headline(), card.sha.short()),
    };
    escape_truncated(&text, limits::MESSAGE_TEXT)
}

/// The outcome headline, with the reason or comment that came with a final state.
fn status_text(card: &Card) -> String {
    let headline = format!("*{}*", escape(&card.headline()));
    match card.status_comment() {
        Some((label, text)) => format!(
            "{headline}\n*{label}:* {}",
            escape_truncated(text, limits::SECTION_TEXT - slack_len(&headline) - 50)
        ),
        None => headline,
    }
}

/// Commit, image, author, where it was tested: short facts side by side.
fn facts(card: &Card) -> Vec<SlackBlockText> {
    let commit = match &card.commit_url {
        Some(url) => link(url, card.sha.short(), 40),
        None => format!("`{}`", card.sha.short()),
    };
    let mut fields = vec![
        format!("*Commit*\n{commit}"),
        format!("*Image*\n`{}`", escape_truncated(&card.image, LONG)),
    ];
    if let Some(author) = card.author.as_deref().filter(|a| !a.trim().is_empty()) {
        fields.push(format!(
            "*Author*\n{}",
            escape_truncated(author.trim(), SHORT)
        ));
    }
    if let Some(from) = &card.from_environment {
        fields.push(format!("*Tested in*\n{from}"));
    }
    fields
        .into_iter()
        .map(|text| SlackBlockText::MarkDown(SlackBlockMarkDownText::new(text)))
        .collect()
}

/// The first line in bold, then as much of the rest as fits.
fn commit_message_text(message: Option<&str>) -> Option<String> {
    let message = message?.trim();
    let mut lines = message.lines();
    let first = lines.next()?.trim();
    if first.is_empty() {
        return None;
    }
    let title = format!("*{}*", escape_truncated(first, 300));
    let rest = lines.collect::<Vec<_>>().join("\n");
    let rest = rest.trim();
    if rest.is_empty() {
        return Some(title);
    }
    // Slack shows long sections collapsed behind "Show more", so the body may use the room.
    let budget = limits::SECTION_TEXT - slack_len(&title) - 1;
    Some(format!("{title}\n{}", escape_truncated(rest, budget)))
}

fn smoke_text(card: &Card) -> Option<String> {
    let (environment, passed, total) = text::smoke_counts(card)?;
    let title = format!("*Smoke checks in {environment}*: {passed} of {total} passed");
    let budget = limits::SECTION_TEXT - slack_len(&title) - 1;
    let body = text::smoke_lines::<Mrkdwn>(card, budget, ROOM);
    Some(format!("{title}\n{body}"))
}

/// The commits since what runs in the environment, once GitHub listed them.
fn commits_text(card: &Card) -> Option<String> {
    let list = card.commits.as_ref().filter(|list| list.total > 0)?;
    let title = format!(
        "*{} since what runs in {}*",
        text::commit_count(list),
        card.environment
    );
    let budget = limits::SECTION_TEXT - slack_len(&title) - 1;
    let body = text::commit_lines::<Mrkdwn>(list, budget, COMMIT_ROOM);
    Some(format!("{title}\n{body}"))
}

fn decisions_text(card: &Card) -> Option<String> {
    let title = "*Decisions*";
    let budget = limits::SECTION_TEXT - slack_len(title) - 1;
    let body = text::decision_lines::<Mrkdwn>(&card.decisions, budget, ROOM)?;
    Some(format!("{title}\n{body}"))
}

fn section(block_id: SlackBlockId, mrkdwn: &str) -> SlackSectionBlock {
    SlackSectionBlock::new()
        .with_block_id(block_id)
        .with_text(SlackBlockText::MarkDown(SlackBlockMarkDownText::new(
            truncate(mrkdwn, limits::SECTION_TEXT),
        )))
}

fn plain_only(text: &str) -> SlackBlockPlainTextOnly {
    SlackBlockPlainTextOnly::from(truncate(text, limits::HEADER_TEXT))
}

/// Block ids that change whenever what the card shows changes: Slack asks for a new `block_id`
/// on every iteration of an updated message, so clients never keep a stale block (REFERENCE
/// §1.3); the same content keeps the same ids, so re-sending an unchanged card is a no-op.
struct BlockIds {
    revision: String,
}

impl BlockIds {
    fn for_card(card: &Card) -> Self {
        let digest = Sha256::digest(format!("{card:?}").as_bytes());
        Self {
            revision: hex::encode(&digest[..6]),
        }
    }

    fn id(&self, part: &str) -> SlackBlockId {
        SlackBlockId::new(format!("{part}-{}", self.revision))
    }
}

#[cfg(test)]
mod tests;
