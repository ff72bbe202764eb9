//! The card on Discord: a [`Card`] as one embed plus, while the request waits, one row with
//! Approve and Reject (SPEC §6), within every embed and component limit.

use greenlight_commands::DeploymentState;

use super::message::{
    discord_len, embed_len, escape, escape_truncated, limits, link, linkable, style, truncate,
    ActionRow, Component, DiscordMarkdown, Embed, EmbedField, EmbedFooter, Message,
};
use crate::cards::{Card, CardKey, CardStatus};
use crate::chat::text::{self, CommitRoom, LineRoom};

/// What a button's `custom_id` asks for. The id only names the request: whether the clicker
/// may act is decided from server state alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonAction {
    /// The card's Approve: asks for confirmation first.
    Approve(i64),
    /// The card's Reject: asks for a reason in a modal.
    Reject(i64),
    /// "Confirm approve" in the ephemeral confirmation.
    Confirm(i64),
    /// "Cancel" in the ephemeral confirmation.
    Cancel(i64),
    /// The reject-reason modal's submission.
    RejectReason(i64),
}

impl ButtonAction {
    pub fn custom_id(self) -> String {
        match self {
            Self::Approve(id) => format!("approve:{id}"),
            Self::Reject(id) => format!("reject:{id}"),
            Self::Confirm(id) => format!("confirm:{id}"),
            Self::Cancel(id) => format!("cancel:{id}"),
            Self::RejectReason(id) => format!("reject_reason:{id}"),
        }
    }

    pub fn parse(custom_id: &str) -> Option<Self> {
        let (action, id) = custom_id.split_once(':')?;
        let id: i64 = id.parse().ok()?;
        Some(match action {
            "approve" => Self::Approve(id),
            "reject" => Self::Reject(id),
            "confirm" => Self::Confirm(id),
            "cancel" => Self::Cancel(id),
            "reject_reason" => Self::RejectReason(id),
            _ => return None,
        })
    }
}

/// Room per part, chosen so that everything together stays under the 6000-character total
/// even when every part is full; [`fit_total`] is the safety net.
const DESCRIPTION: usize = 1400;
const COMMENT: usize = 500;
const COMMIT_TITLE: usize = 250;
const IMAGE: usize = 200;
const AUTHOR: usize = 100;
const POLICY: usize = 400;
const LOCK: usize = 400;
const DETAIL: usize = 120;
const NAME: usize = 80;
/// Room for a smoke check's name and detail, and a decision's comment.
const ROOM: LineRoom = LineRoom {
    name: NAME,
    detail: DETAIL,
    comment: DETAIL * 2,
};

/// Room for a commit line's author and title.
const COMMIT_ROOM: CommitRoom = CommitRoom {
    author: NAME / 2,
    title: NAME,
};

const YELLOW: u32 = 0xF1C40F;
const GREEN: u32 = 0x2ECC71;
const RED: u32 = 0xE74C3C;
const BLUE: u32 = 0x3498DB;
const GREY: u32 = 0x95A5A6;

/// The card as a Discord message. Buttons only while the request waits; a final card sends an
/// empty component list, which removes them on edit.
pub fn card_message(card: &Card) -> Message {
    let mut fields = facts(card);
    if let Some(field) = smoke_field(card) {
        fields.push(field);
    }
    if let Some(field) = commits_field(card) {
        fields.push(field);
    }
    if let Some(url) = &card.diff_url {
        if linkable(url).is_some() {
            fields.push(field(
                "Changes",
                link(
                    url,
                    &format!("Changes since what runs in {} now", card.environment),
                    NAME * 2,
                ),
                false,
            ));
        }
    }
    if let Some(policy) = &card.policy_line {
        fields.push(field("Policy", escape_truncated(policy, POLICY), false));
    }
    if let Some(field) = decisions_field(card) {
        fields.push(field);
    }
    if let Some(lock) = &card.lock {
        fields.push(field(
            &format!("🔒 {} is locked", card.environment),
            format!(
                "by {}: {}",
                escape_truncated(&lock.by, NAME),
                escape_truncated(&lock.reason, LOCK)
            ),
            false,
        ));
    }
    let mut embed = Embed {
        title: truncate(
            &format!(
                "{} {} → {}",
                text::status_emoji(card),
                card.app,
                card.environment
            ),
            limits::EMBED_TITLE,
        ),
        url: card.commit_url.as_deref().and_then(linkable),
        description: description(card),
        color: color(card),
        fields,
        footer: Some(EmbedFooter {
            text: match card.key {
                CardKey::Approval(id) => format!("Greenlight · approval request {id}"),
                CardKey::SmokeFailed(id) => format!("Greenlight · deployment {id}"),
            },
        }),
    };
    fit_total(&mut embed);
    let components = match card.buttons_for() {
        Some(request_id) => vec![ActionRow::new(vec![
            Component::button(
                style::SUCCESS,
                "Approve",
                ButtonAction::Approve(request_id).custom_id(),
            ),
            Component::button(
                style::DANGER,
                "Reject",
                ButtonAction::Reject(request_id).custom_id(),
            ),
        ])],
        None => Vec::new(),
    };
    Message {
        embeds: vec![embed],
        components,
        ..Message::default()
    }
}

/// The headline, the reason that came with a final state, then the commit message.
fn description(card: &Card) -> String {
    let mut text = format!("**{}**", escape(&card.headline()));
    if let Some((label, comment)) = card.status_comment() {
        text.push_str(&format!(
            "\n**{label}:** {}",
            escape_truncated(comment, COMMENT)
        ));
    }
    if let Some(message) = card.message.as_deref().map(str::trim) {
        let mut lines = message.lines();
        if let Some(first) = lines.next().map(str::trim).filter(|l| !l.is_empty()) {
            text.push_str(&format!(
                "\n\n**{}**",
                escape_truncated(first, COMMIT_TITLE)
            ));
            let rest = lines.collect::<Vec<_>>().join("\n");
            let rest = rest.trim();
            let room = DESCRIPTION.saturating_sub(discord_len(&text) + 1);
            if !rest.is_empty() && room > 10 {
                text.push('\n');
                text.push_str(&escape_truncated(rest, room));
            }
        }
    }
    truncate(&text, DESCRIPTION)
}

/// Commit, image, author, where it was tested: short facts side by side.
fn facts(card: &Card) -> Vec<EmbedField> {
    let sha = card.sha.short();
    let commit = match card.commit_url.as_deref().and_then(linkable) {
        Some(url) => format!("[`{sha}`]({url})"),
        None => format!("`{sha}`"),
    };
    let mut fields = vec![
        field("Commit", commit, true),
        // An image reference has no backticks, but a code span must not be broken by one.
        field(
            "Image",
            format!("`{}`", truncate(&card.image.replace('`', "'"), IMAGE)),
            true,
        ),
    ];
    if let Some(author) = card.author.as_deref().map(str::trim) {
        if !author.is_empty() {
            fields.push(field("Author", escape_truncated(author, AUTHOR), true));
        }
    }
    if let Some(from) = &card.from_environment {
        fields.push(field("Tested in", from.to_string(), true));
    }
    fields
}

fn smoke_field(card: &Card) -> Option<EmbedField> {
    let (environment, passed, total) = text::smoke_counts(card)?;
    let name = format!("Smoke checks in {environment}: {passed} of {total} passed");
    let value = text::smoke_lines::<DiscordMarkdown>(card, limits::FIELD_VALUE, ROOM);
    Some(field(&name, value, false))
}

/// The commits since what runs in the environment, once GitHub listed them.
fn commits_field(card: &Card) -> Option<EmbedField> {
    let list = card.commits.as_ref().filter(|list| list.total > 0)?;
    let name = format!(
        "{} since what runs in {}",
        text::commit_count(list),
        card.environment
    );
    let value = text::commit_lines::<DiscordMarkdown>(list, limits::FIELD_VALUE, COMMIT_ROOM);
    Some(field(&name, value, false))
}

fn decisions_field(card: &Card) -> Option<EmbedField> {
    let value =
        text::decision_lines::<DiscordMarkdown>(&card.decisions, limits::FIELD_VALUE, ROOM)?;
    Some(field("Decisions", value, false))
}

fn color(card: &Card) -> u32 {
    match &card.status {
        CardStatus::Waiting { .. } => YELLOW,
        CardStatus::Approved { deployment } => match deployment {
            Some(DeploymentState::Healthy) => GREEN,
            Some(DeploymentState::Faulty | DeploymentState::Failed) => RED,
            Some(DeploymentState::RolledBack) => GREY,
            _ => BLUE,
        },
        CardStatus::Rejected { .. } | CardStatus::SmokeFailed => RED,
        CardStatus::Expired | CardStatus::Superseded { .. } | CardStatus::Cancelled { .. } => GREY,
    }
}

fn field(name: &str, value: String, inline: bool) -> EmbedField {
    EmbedField {
        name: truncate(name, limits::FIELD_NAME),
        value: if value.trim().is_empty() {
            "—".to_owned()
        } else {
            truncate(&value, limits::FIELD_VALUE)
        },
        inline,
    }
}

/// Keeps the embed under Discord's total: the description gives way first, then the longest
/// fields.
fn fit_total(embed: &mut Embed) {
    let over = embed_len(embed).saturating_sub(limits::EMBED_TOTAL);
    if over == 0 {
        return;
    }
    let room = discord_len(&embed.description).saturating_sub(over);
    embed.description = truncate(&embed.description, room);
    while embed_len(embed) > limits::EMBED_TOTAL {
        let over = embed_len(embed) - limits::EMBED_TOTAL;
        let Some(longest) = embed
            .fields
            .iter_mut()
            .max_by_key(|field| discord_len(&field.value))
        else {
            return;
        };
        let len = discord_len(&longest.value);
        if len <= 1 {
            return;
        }
        longest.value = truncate(&longest.value, len.saturating_sub(over).max(1));
    }
}

#[cfg(test)]
mod tests;
