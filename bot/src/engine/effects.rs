//! Turns the pure core's effects into outbox items, in the same write as the state change that
//! caused them. This is where an effect learns which platforms and channels it goes to.

use chrono::{DateTime, Utc};
use greenlight_commands::{AppName, Effect, GateAnswer};
use greenlight_storage::{
    gates, outbox, AnyConnection, ApprovalRequest, NewOutboxItem, StorageError,
};

use super::audit::{self, Entry};

use crate::cards::CardKey;
use crate::config::Config;
use crate::discord::DiscordEffect;
use crate::slack::{EphemeralTarget, SlackEffect};

/// Where a reply that only the actor sees goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyTo {
    /// The interaction's `response_url` (ephemeral to the clicker).
    SlackResponseUrl(String),
    /// `chat.postEphemeral` to `user` in `channel`.
    SlackUser { channel: String, user: String },
    /// Nobody to tell (CLI, API, timers).
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

/// Posts a new card in every channel of the app.
pub(super) async fn post_card(
    conn: &mut AnyConnection,
    config: &Config,
    app: &AppName,
    card: CardKey,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if let Some(channel) = discord_channel(config, app) {
        let key = format!("discord.post_card:{}:{channel}", card.as_string());
        enqueue(
            conn,
            DiscordEffect::PostCard { card, channel }.outbox_item(key, now),
        )
        .await?;
    }
    let Some(channel) = slack_channel(config, app) else {
        return Ok(());
    };
    // One post per card and channel, however often this runs.
    let key = format!("slack.post_card:{}:{channel}", card.as_string());
    let effect = SlackEffect::PostCard {
        card,
        channel: channel.to_owned(),
    };
    enqueue(conn, effect.outbox_item(key, now)).await
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
    if discord_channel(config, app).is_some() {
        let mut item =
            DiscordEffect::UpdateCard { card }.outbox_item(unique("discord.update_card"), now);
        item.not_before = not_before;
        enqueue(conn, item).await?;
    }
    if slack_channel(config, app).is_none() {
        return Ok(());
    }
    let mut item = SlackEffect::UpdateCard { card }.outbox_item(unique("slack.update_card"), now);
    item.not_before = not_before;
    enqueue(conn, item).await
}

pub(super) async fn announce(
    conn: &mut AnyConnection,
    config: &Config,
    app: &AppName,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if let Some(channel) = discord_channel(config, app) {
        let text = text.to_owned();
        let effect = DiscordEffect::Message { channel, text };
        enqueue(conn, effect.outbox_item(unique("discord.message"), now)).await?;
    }
    let Some(channel) = slack_channel(config, app) else {
        return Ok(());
    };
    let effect = SlackEffect::Message {
        channel: channel.to_owned(),
        text: text.to_owned(),
    };
    enqueue(conn, effect.outbox_item(unique("slack.message"), now)).await
}

/// A reply in the card's thread (reminders).
pub(super) async fn thread_reply(
    conn: &mut AnyConnection,
    config: &Config,
    app: &AppName,
    card: CardKey,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if discord_channel(config, app).is_some() {
        let text = text.to_owned();
        let effect = DiscordEffect::Thread { card, text };
        enqueue(conn, effect.outbox_item(unique("discord.thread"), now)).await?;
    }
    if slack_channel(config, app).is_none() {
        return Ok(());
    }
    let effect = SlackEffect::Thread {
        card,
        text: text.to_owned(),
    };
    enqueue(conn, effect.outbox_item(unique("slack.thread"), now)).await
}

pub(super) async fn reply(
    conn: &mut AnyConnection,
    reply_to: &ReplyTo,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let to = match reply_to {
        ReplyTo::SlackResponseUrl(url) => EphemeralTarget::ResponseUrl(url.clone()),
        ReplyTo::SlackUser { channel, user } => EphemeralTarget::User {
            channel: channel.clone(),
            user: user.clone(),
        },
        ReplyTo::Nobody => return Ok(()),
    };
    let effect = SlackEffect::Ephemeral {
        to,
        text: text.to_owned(),
    };
    enqueue(conn, effect.outbox_item(unique("slack.ephemeral"), now)).await
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

fn slack_channel<'c>(config: &'c Config, app: &AppName) -> Option<&'c str> {
    config.slack.as_ref()?;
    config
        .app(app)?
        .channels
        .slack
        .as_ref()
        .map(|channel| channel.as_str())
}

/// The app's Discord channel, when Discord is configured.
fn discord_channel(config: &Config, app: &AppName) -> Option<String> {
    config.discord.as_ref()?;
    config
        .app(app)?
        .channels
        .discord
        .map(|channel| channel.to_string())
}

/// Items that are events in their own right (each edit, each reply) get a fresh key.
fn unique(kind: &str) -> String {
    format!("{kind}:{}", uuid::Uuid::new_v4())
}

async fn enqueue(conn: &mut AnyConnection, item: NewOutboxItem) -> Result<(), StorageError> {
    outbox::enqueue_outbox(conn, &item).await?;
    Ok(())
}
