//! Turns the pure core's effects into outbox items, in the same write as the state change that
//! caused them. This is where an effect learns which platforms and channels it goes to.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use greenlight_commands::approval::StateChange;
use greenlight_commands::{AppName, Effect, GateAnswer, Platform};
use greenlight_storage::{
    approvals, gates, outbox, AnyConnection, ApprovalRequest, ApprovalTransition, Due,
    NewOutboxItem, StorageError,
};

use super::audit::{self, Entry};

use crate::cards::CardKey;
use crate::chat::{ChatEffect, Marker, ReplyAddress};
use crate::config::Config;

/// Where a reply that only the actor sees goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyTo {
    /// A later message to the actor on the platform they acted from.
    Chat {
        platform: Platform,
        address: ReplyAddress,
    },
    /// Nobody to tell (CLI, API, timers), or the platform answers in the interaction itself.
    Nobody,
}

pub(super) struct Context<'a> {
    pub config: &'a Config,
    pub request: &'a ApprovalRequest,
    pub actor: &'a str,
    pub reply_to: &'a ReplyTo,
    pub now: DateTime<Utc>,
}

pub(super) async fn enqueue_effects(
    conn: &mut AnyConnection,
    context: &Context<'_>,
    effects: &[Effect],
) -> Result<(), StorageError> {
    let card = CardKey::Approval(context.request.id);
    for effect in effects {
        match effect {
            Effect::UpdateCard => {
                update_card_at(
                    conn,
                    context.config,
                    &context.request.app,
                    card,
                    context.now,
                    None,
                )
                .await?
            }
            Effect::Announce(text) => {
                announce(
                    conn,
                    context.config,
                    &context.request.app,
                    text,
                    context.now,
                )
                .await?
            }
            Effect::TriggerDeploy => super::deploys::start_approved_deploy(conn, context).await?,
            Effect::HoldDeploy { lock_reason } => {
                let request = context.request;
                audit_request(
                    conn,
                    context,
                    &Entry::DeployHeld {
                        request,
                        lock_reason,
                    },
                )
                .await?;
            }
            Effect::AnswerGithubGate { state, comment } => {
                answer_gates(conn, context, *state, comment).await?;
            }
            Effect::Ephemeral(text) => reply(conn, context.reply_to, text, context.now).await?,
            Effect::AuditRefusal(refusal) => {
                let request = context.request;
                audit_request(conn, context, &Entry::DecisionRefused { request, refusal }).await?;
            }
        }
    }
    Ok(())
}

/// Posts a new card in every chat channel of the app.
pub(super) async fn post_card(
    conn: &mut AnyConnection,
    config: &Config,
    app: &AppName,
    card: CardKey,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    for (platform, channel) in config.chat_channels(app) {
        // One post per card and channel, however often this runs.
        let key = format!("{platform}.post_card:{}:{channel}", card.as_string());
        let effect = ChatEffect::PostCard { card, channel };
        enqueue(conn, effect.outbox_item(platform, key, now)).await?;
    }
    Ok(())
}

/// Re-renders the card everywhere it was posted, now or (`not_before`) later.
pub(super) async fn update_card_at(
    conn: &mut AnyConnection,
    config: &Config,
    app: &AppName,
    card: CardKey,
    now: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
) -> Result<(), StorageError> {
    let due = match not_before.filter(|at| *at > now) {
        Some(at) => Due::NotBefore(at),
        None => Due::Now(now),
    };
    for (platform, _) in config.chat_channels(app) {
        let effect = ChatEffect::UpdateCard { card };
        let mut item = effect.outbox_item(platform, unique(platform, &effect), now);
        // One waiting edit per card and platform is enough: it renders the card as it stands
        // when delivered, so a burst of approvals (or a platform's rate limit) costs one call.
        if outbox::unclaimed_pending_outbox(conn, &item.kind, &item.payload, due)
            .await?
            .is_some()
        {
            continue;
        }
        item.not_before = not_before;
        enqueue(conn, item).await?;
    }
    Ok(())
}

/// The outbox items that re-render each of `cards` (of its app) everywhere it was posted,
/// now: as [`update_card_at`] adds for each, except that which cards have an edit waiting on
/// which platform was looked up before, with the batch's reads ([`card_edits`]; `waiting`).
/// For a batch to store with its last statements.
pub(super) fn card_edit_items(
    config: &Config,
    cards: &[(&AppName, CardKey)],
    waiting: &HashSet<(Platform, CardKey)>,
    now: DateTime<Utc>,
) -> Vec<NewOutboxItem> {
    let mut items = Vec::new();
    let mut added = HashSet::new();
    for (app, card) in cards {
        for (platform, _) in config.chat_channels(app) {
            if waiting.contains(&(platform, *card)) || !added.insert((platform, *card)) {
                continue;
            }
            let effect = ChatEffect::UpdateCard { card: *card };
            items.push(effect.outbox_item(platform, unique(platform, &effect), now));
        }
    }
    items
}

/// The outbox items that would edit each of `cards` on each platform: which card on which
/// platform, and the item as `(kind, payload)`, in the same order. What [`card_edit_items`]
/// needs looked up.
pub(super) fn card_edits(cards: &[CardKey]) -> CardEdits {
    let mut edits = CardEdits::default();
    for card in cards {
        let effect = ChatEffect::UpdateCard { card: *card };
        for platform in Platform::ALL {
            edits.cards.push((*platform, *card));
            edits.items.push((effect.kind(*platform), effect.payload()));
        }
    }
    edits
}

/// See [`card_edits`].
#[derive(Debug, Default)]
pub(super) struct CardEdits {
    pub cards: Vec<(Platform, CardKey)>,
    pub items: Vec<(String, serde_json::Value)>,
}

/// Says `text` in every chat channel of the app.
pub(super) async fn announce(
    conn: &mut AnyConnection,
    config: &Config,
    app: &AppName,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    announce_marked(conn, config, app, None, text, now).await
}

/// Says `text` in every chat channel of the app, led by `marker`'s symbol.
pub(super) async fn announce_marked(
    conn: &mut AnyConnection,
    config: &Config,
    app: &AppName,
    marker: Option<Marker>,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    for (platform, channel) in config.chat_channels(app) {
        let effect = ChatEffect::Message {
            channel,
            text: text.to_owned(),
            marker,
        };
        enqueue(
            conn,
            effect.outbox_item(platform, unique(platform, &effect), now),
        )
        .await?;
    }
    Ok(())
}

/// A reply under the card, wherever it was posted (reminders).
pub(super) async fn thread_reply(
    conn: &mut AnyConnection,
    config: &Config,
    app: &AppName,
    card: CardKey,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    for (platform, _) in config.chat_channels(app) {
        let effect = ChatEffect::Thread {
            card,
            text: text.to_owned(),
        };
        enqueue(
            conn,
            effect.outbox_item(platform, unique(platform, &effect), now),
        )
        .await?;
    }
    Ok(())
}

/// Tells the actor something only they see, on the platform they acted from.
pub(super) async fn reply(
    conn: &mut AnyConnection,
    reply_to: &ReplyTo,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let ReplyTo::Chat { platform, address } = reply_to else {
        return Ok(());
    };
    let effect = ChatEffect::Ephemeral {
        to: address.clone(),
        text: text.to_owned(),
    };
    enqueue(
        conn,
        effect.outbox_item(*platform, unique(*platform, &effect), now),
    )
    .await
}

/// Answers every GitHub protection rule waiting on this request's release and environment:
/// marks each answered and queues the callback, in one write.
async fn answer_gates(
    conn: &mut AnyConnection,
    context: &Context<'_>,
    state: GateAnswer,
    comment: &str,
) -> Result<(), StorageError> {
    let release =
        greenlight_storage::releases::get_release(conn, context.request.release_id).await?;
    let waiting = gates::waiting_github_gates(
        conn,
        &context.request.app,
        &context.request.environment,
        &release.sha,
    )
    .await?;
    for gate in waiting {
        super::gates::answer_gate(conn, gate.id, state, comment, context.now).await?;
    }
    Ok(())
}

/// The release log entry of an effect on the request, by the effect's actor.
async fn audit_request(
    conn: &mut AnyConnection,
    context: &Context<'_>,
    entry: &Entry<'_>,
) -> Result<(), StorageError> {
    audit::append(conn, context.actor, entry, context.now).await
}

/// Items that are events in their own right (each edit, each reply) get a fresh key.
fn unique(platform: Platform, effect: &ChatEffect) -> String {
    format!("{}:{}", effect.kind(platform), uuid::Uuid::new_v4())
}

async fn enqueue(conn: &mut AnyConnection, item: NewOutboxItem) -> Result<(), StorageError> {
    outbox::enqueue_outbox(conn, &item).await?;
    Ok(())
}

/// Stores the request's new state when the core's transition changes it; the request as it
/// stands afterwards.
pub(super) async fn apply_change(
    conn: &mut AnyConnection,
    request: ApprovalRequest,
    change: Option<&StateChange>,
    now: DateTime<Utc>,
) -> Result<ApprovalRequest, StorageError> {
    let Some(change) = change else {
        return Ok(request);
    };
    approvals::transition_approval_request(
        conn,
        request.id,
        &ApprovalTransition {
            to: change.to,
            comment: change.comment.clone(),
            at: now,
        },
    )
    .await
}
