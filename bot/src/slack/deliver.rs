//! Delivers `slack.*` outbox items: posts and edits cards, ephemeral answers, thread reminders
//! and channel announcements.
//!
//! Payload formats (all `text` values are plain text, escaped here before sending):
//! - `slack.post_card` `{"card": "approval:42", "channel": "C0DEPLOYS"}`
//! - `slack.update_card` `{"card": "approval:42"}`
//! - `slack.ephemeral` `{"channel": "C…", "user": "U…", "text": "…"}` or
//!   `{"response_url": "https://hooks.slack.com/…", "text": "…"}`
//! - `slack.thread` `{"card": "approval:42", "text": "…"}`
//! - `slack.message` `{"channel": "C…", "text": "…"}`
//!
//! [`SlackEffect`] builds and reads these, so callers never write the JSON by hand.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use greenlight_commands::Platform;
use greenlight_storage::{ChatMessage, NewOutboxItem, OutboxItem, Storage, StorageError};
use serde::Deserialize;
use serde_json::{json, Value};

use super::blocks::Message;
use super::card::card_message;
use super::client::{SlackClient, SlackError};
use crate::cards::{self, CardKey};
use crate::clock::Clock;
use crate::config::Config;
use crate::outbox::payload::{
    card_key, read, CardPayload, CardTextPayload, ChannelTextPayload, PostCardPayload,
};
use crate::outbox::{Deliverer, DeliveryError};

pub const POST_CARD: &str = "slack.post_card";
pub const UPDATE_CARD: &str = "slack.update_card";
pub const EPHEMERAL: &str = "slack.ephemeral";
pub const THREAD: &str = "slack.thread";
pub const MESSAGE: &str = "slack.message";

/// One thing to do on Slack, as stored in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackEffect {
    /// Post the card in `channel`, once: a card already posted there is left alone.
    PostCard { card: CardKey, channel: String },
    /// Re-render the card and edit every Slack message showing it.
    UpdateCard { card: CardKey },
    /// Tell one person something only they see.
    Ephemeral { to: EphemeralTarget, text: String },
    /// Reply in the thread of every Slack message showing the card (reminders).
    Thread { card: CardKey, text: String },
    /// A plain message in `channel` (announcements).
    Message { channel: String, text: String },
}

/// Where an ephemeral message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EphemeralTarget {
    /// `chat.postEphemeral` to `user` in `channel`.
    User { channel: String, user: String },
    /// The `response_url` of the interaction or command being answered (valid 30 minutes).
    ResponseUrl(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EphemeralPayload {
    User {
        channel: String,
        user: String,
        text: String,
    },
    ResponseUrl {
        response_url: String,
        text: String,
    },
}

impl SlackEffect {
    /// The outbox kind, e.g. `slack.post_card`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::PostCard { .. } => POST_CARD,
            Self::UpdateCard { .. } => UPDATE_CARD,
            Self::Ephemeral { .. } => EPHEMERAL,
            Self::Thread { .. } => THREAD,
            Self::Message { .. } => MESSAGE,
        }
    }

    /// The outbox payload (see the module docs).
    pub fn payload(&self) -> Value {
        match self {
            Self::PostCard { card, channel } => {
                json!({"card": card.as_string(), "channel": channel})
            }
            Self::UpdateCard { card } => json!({"card": card.as_string()}),
            Self::Ephemeral {
                to: EphemeralTarget::User { channel, user },
                text,
            } => json!({"channel": channel, "user": user, "text": text}),
            Self::Ephemeral {
                to: EphemeralTarget::ResponseUrl(url),
                text,
            } => json!({"response_url": url, "text": text}),
            Self::Thread { card, text } => json!({"card": card.as_string(), "text": text}),
            Self::Message { channel, text } => json!({"channel": channel, "text": text}),
        }
    }

    /// The outbox row; write it in the same transaction as the state change it follows from.
    pub fn outbox_item(
        &self,
        idempotency_key: impl Into<String>,
        at: DateTime<Utc>,
    ) -> NewOutboxItem {
        NewOutboxItem {
            kind: self.kind().to_owned(),
            idempotency_key: idempotency_key.into(),
            payload: self.payload(),
            at,
            not_before: None,
        }
    }

    /// Reads an outbox item back; the error says what is wrong with it.
    pub fn parse(kind: &str, payload: &Value) -> Result<Self, String> {
        match kind {
            POST_CARD => {
                let p: PostCardPayload = read(kind, payload)?;
                Ok(Self::PostCard {
                    card: card_key(&p.card)?,
                    channel: p.channel,
                })
            }
            UPDATE_CARD => {
                let p: CardPayload = read(kind, payload)?;
                Ok(Self::UpdateCard {
                    card: card_key(&p.card)?,
                })
            }
            EPHEMERAL => Ok(match read(kind, payload)? {
                EphemeralPayload::User {
                    channel,
                    user,
                    text,
                } => Self::Ephemeral {
                    to: EphemeralTarget::User { channel, user },
                    text,
                },
                EphemeralPayload::ResponseUrl { response_url, text } => Self::Ephemeral {
                    to: EphemeralTarget::ResponseUrl(response_url),
                    text,
                },
            }),
            THREAD => {
                let p: CardTextPayload = read(kind, payload)?;
                Ok(Self::Thread {
                    card: card_key(&p.card)?,
                    text: p.text,
                })
            }
            MESSAGE => {
                let p: ChannelTextPayload = read(kind, payload)?;
                Ok(Self::Message {
                    channel: p.channel,
                    text: p.text,
                })
            }
            other => Err(format!("unknown Slack effect {other:?}")),
        }
    }
}

impl From<SlackError> for DeliveryError {
    fn from(error: SlackError) -> Self {
        match error {
            SlackError::RateLimited { retry_after } => DeliveryError::Retry {
                after: retry_after,
                reason: error.to_string(),
            },
            SlackError::Transient { .. } => DeliveryError::retry(error.to_string()),
            SlackError::Refused { .. } => DeliveryError::Permanent(error.to_string()),
        }
    }
}

/// The `slack` deliverer of the outbox worker.
pub struct SlackDeliverer {
    client: SlackClient,
    storage: Storage,
    config: Arc<Config>,
    clock: Clock,
}

impl SlackDeliverer {
    pub fn new(client: SlackClient, storage: Storage, config: Arc<Config>, clock: Clock) -> Self {
        Self {
            client,
            storage,
            config,
            clock,
        }
    }

    /// Does one effect. Safe to repeat: a card is posted at most once per channel, and edits
    /// always show the card as it stands now.
    pub async fn deliver_effect(&self, effect: &SlackEffect) -> Result<(), DeliveryError> {
        match effect {
            SlackEffect::PostCard { card, channel } => self.post_card(*card, channel).await,
            SlackEffect::UpdateCard { card } => self.update_card(*card).await,
            SlackEffect::Ephemeral { to, text } => {
                let message = Message::plain(text);
                match to {
                    EphemeralTarget::User { channel, user } => {
                        self.client.post_ephemeral(channel, user, &message).await?;
                    }
                    EphemeralTarget::ResponseUrl(url) => {
                        self.client.respond(url, &message, false).await?;
                    }
                }
                Ok(())
            }
            SlackEffect::Thread { card, text } => self.reply_in_threads(*card, text).await,
            SlackEffect::Message { channel, text } => {
                self.client
                    .post_message(channel, &Message::plain(text), None)
                    .await?;
                Ok(())
            }
        }
    }

    async fn post_card(&self, key: CardKey, channel: &str) -> Result<(), DeliveryError> {
        let card_key = key.as_string();
        let already = self
            .slack_messages(&card_key)
            .await?
            .into_iter()
            .any(|message| message.channel == channel);
        if already {
            // Posted before a crash or a lost `delivered` mark: posting again would duplicate it.
            return Ok(());
        }
        let now = self.clock.now();
        let message = self.render(key, now).await?;
        let ts = self.client.post_message(channel, &message, None).await?;
        tracing::info!(card = %card_key, channel, ts, "posted card on Slack");
        self.storage
            .record_chat_message(&card_key, Platform::Slack, channel, &ts, now)
            .await
            .map_err(|error| {
                // The card is on Slack but we lost where; retrying posts it a second time,
                // which beats never being able to update the first.
                tracing::error!(card = %card_key, channel, ts, %error, "posted card but could not record it");
                storage_failure(error)
            })?;
        Ok(())
    }

    async fn update_card(&self, key: CardKey) -> Result<(), DeliveryError> {
        let card_key = key.as_string();
        let messages = self.slack_messages(&card_key).await?;
        if messages.is_empty() {
            // The post is still in the outbox (or being retried); edit once it is there.
            return Err(DeliveryError::retry("card not posted on Slack yet"));
        }
        let message = self.render(key, self.clock.now()).await?;
        let results = futures::future::join_all(messages.iter().map(|posted| {
            self.client
                .update_message(&posted.channel, &posted.message_ref, &message)
        }))
        .await;
        combine(results)
    }

    async fn reply_in_threads(&self, key: CardKey, text: &str) -> Result<(), DeliveryError> {
        let messages = self.slack_messages(&key.as_string()).await?;
        if messages.is_empty() {
            return Err(DeliveryError::retry("card not posted on Slack yet"));
        }
        let message = Message::plain(text);
        let mut results = Vec::with_capacity(messages.len());
        for posted in &messages {
            results.push(
                self.client
                    .post_message(&posted.channel, &message, Some(&posted.message_ref))
                    .await
                    .map(|_| ()),
            );
        }
        combine(results)
    }

    async fn slack_messages(&self, card_key: &str) -> Result<Vec<ChatMessage>, DeliveryError> {
        Ok(self
            .storage
            .chat_messages(card_key)
            .await
            .map_err(storage_failure)?
            .into_iter()
            .filter(|message| message.platform == Platform::Slack)
            .collect())
    }

    /// The card as it stands at `now`, freshly read, so a late edit never shows an old state.
    async fn render(&self, key: CardKey, now: DateTime<Utc>) -> Result<Message, DeliveryError> {
        let mut conn = self.storage.reader().await.map_err(storage_failure)?;
        let card = cards::load_card(&mut conn, &self.config, key, now)
            .await
            .map_err(|error| match error {
                StorageError::NotFound { .. } => {
                    DeliveryError::Permanent(format!("card {}: {error}", key.as_string()))
                }
                other => storage_failure(other),
            })?;
        Ok(card_message(&card))
    }
}

impl Deliverer for SlackDeliverer {
    fn deliver<'a>(&'a self, item: &'a OutboxItem) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let effect =
                SlackEffect::parse(&item.kind, &item.payload).map_err(DeliveryError::Permanent)?;
            self.deliver_effect(&effect).await
        })
    }
}

fn storage_failure(error: StorageError) -> DeliveryError {
    DeliveryError::retry(format!("storage: {error}"))
}

/// One outcome for several calls: retry if any may succeed later (all are repeated, which is
/// harmless for edits), else the first refusal, else done.
fn combine(results: Vec<Result<(), SlackError>>) -> Result<(), DeliveryError> {
    let mut retry: Option<(Option<Duration>, String)> = None;
    let mut refused = None;
    for error in results.into_iter().filter_map(Result::err) {
        if error.is_retryable() {
            let after = match &error {
                SlackError::RateLimited { retry_after } => *retry_after,
                _ => None,
            };
            let (longest, _) = retry.get_or_insert((after, error.to_string()));
            *longest = (*longest).max(after);
        } else if refused.is_none() {
            refused = Some(error);
        }
    }
    match (retry, refused) {
        (Some((after, reason)), _) => Err(DeliveryError::Retry { after, reason }),
        (None, Some(error)) => Err(error.into()),
        (None, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_round_trip_through_the_outbox_format() {
        let effects = [
            SlackEffect::PostCard {
                card: CardKey::Approval(42),
                channel: "C0DEPLOYS".into(),
            },
            SlackEffect::UpdateCard {
                card: CardKey::SmokeFailed(7),
            },
            SlackEffect::Ephemeral {
                to: EphemeralTarget::User {
                    channel: "C1".into(),
                    user: "U1".into(),
                },
                text: "no".into(),
            },
            SlackEffect::Ephemeral {
                to: EphemeralTarget::ResponseUrl("https://hooks.slack.com/x".into()),
                text: "no".into(),
            },
            SlackEffect::Thread {
                card: CardKey::Approval(1),
                text: "reminder".into(),
            },
            SlackEffect::Message {
                channel: "C1".into(),
                text: "approved".into(),
            },
        ];
        for effect in effects {
            assert_eq!(
                SlackEffect::parse(effect.kind(), &effect.payload()),
                Ok(effect.clone())
            );
        }
    }

    #[test]
    fn malformed_payloads_are_refused_with_a_reason() {
        let error = SlackEffect::parse(POST_CARD, &json!({"card": "approval:1"}))
            .expect_err("channel missing");
        assert!(error.contains("channel"), "{error}");
        let error =
            SlackEffect::parse(UPDATE_CARD, &json!({"card": "nonsense"})).expect_err("bad key");
        assert!(error.contains("nonsense"), "{error}");
        assert!(SlackEffect::parse("slack.dance", &json!({})).is_err());
        assert!(SlackEffect::parse(EPHEMERAL, &json!({"text": "x"})).is_err());
    }

    #[test]
    fn several_outcomes_combine_into_one() {
        let refused = || SlackError::Refused {
            method: "chat.update".into(),
            code: "message_not_found".into(),
            detail: None,
        };
        let limited = |secs| SlackError::RateLimited {
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(combine(vec![Ok(()), Ok(())]), Ok(()));
        assert!(matches!(
            combine(vec![Ok(()), Err(refused())]),
            Err(DeliveryError::Permanent(_))
        ));
        match combine(vec![Err(limited(3)), Err(refused()), Err(limited(9))]) {
            Err(DeliveryError::Retry { after, .. }) => {
                assert_eq!(after, Some(Duration::from_secs(9)));
            }
            other => panic!("expected a retry, got {other:?}"),
        }
    }
}
