//! Delivers `discord.*` outbox items: posts and edits cards, channel announcements and
//! reminders under the card.
//!
//! Payload formats (all `text` values are plain text, escaped here before sending):
//! - `discord.post_card` `{"card": "approval:42", "channel": "1100000000000000000"}`
//! - `discord.update_card` `{"card": "approval:42"}`
//! - `discord.thread` `{"card": "approval:42", "text": "…"}`
//! - `discord.message` `{"channel": "1100000000000000000", "text": "…"}`
//!
//! [`DiscordEffect`] builds and reads these, so callers never write the JSON by hand. Replies
//! that only the actor sees need no item: on Discord they are the interaction's response.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use greenlight_commands::Platform;
use greenlight_storage::{ChatMessage, NewOutboxItem, OutboxItem, Storage, StorageError};
use serde_json::{json, Value};

use super::card::card_message;
use super::client::{DiscordClient, DiscordError};
use super::message::{Message, MessageReference};
use crate::cards::{self, CardKey};
use crate::clock::Clock;
use crate::config::Config;
use crate::outbox::payload::{
    card_key, read, CardPayload, CardTextPayload, ChannelTextPayload, PostCardPayload,
};
use crate::outbox::{Deliverer, DeliveryError};

pub const POST_CARD: &str = "discord.post_card";
pub const UPDATE_CARD: &str = "discord.update_card";
pub const THREAD: &str = "discord.thread";
pub const MESSAGE: &str = "discord.message";

/// One thing to do on Discord, as stored in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscordEffect {
    /// Post the card in `channel`, once: a card already posted there is left alone.
    PostCard { card: CardKey, channel: String },
    /// Re-render the card in every Discord message showing it.
    UpdateCard { card: CardKey },
    /// Reply to every Discord message showing the card (reminders).
    Thread { card: CardKey, text: String },
    /// A plain message in `channel` (announcements).
    Message { channel: String, text: String },
}

impl DiscordEffect {
    /// The outbox kind, e.g. `discord.post_card`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::PostCard { .. } => POST_CARD,
            Self::UpdateCard { .. } => UPDATE_CARD,
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
            other => Err(format!("unknown Discord effect {other:?}")),
        }
    }
}

impl From<DiscordError> for DeliveryError {
    fn from(error: DiscordError) -> Self {
        match error {
            DiscordError::RateLimited { retry_after } => DeliveryError::Retry {
                after: retry_after,
                reason: error.to_string(),
            },
            DiscordError::Transient { .. } => DeliveryError::retry(error.to_string()),
            DiscordError::Refused { .. } => DeliveryError::Permanent(error.to_string()),
        }
    }
}

/// The `discord` deliverer of the outbox worker.
pub struct DiscordDeliverer {
    client: DiscordClient,
    storage: Storage,
    config: Arc<Config>,
    clock: Clock,
}

impl DiscordDeliverer {
    pub fn new(client: DiscordClient, storage: Storage, config: Arc<Config>, clock: Clock) -> Self {
        Self {
            client,
            storage,
            config,
            clock,
        }
    }

    /// Does one effect. Safe to repeat: a card is posted at most once per channel, edits
    /// always show the card as it stands now, and posts carry a nonce derived from the outbox
    /// item so Discord itself drops a repeat sent within minutes of the first.
    pub async fn deliver_effect(
        &self,
        effect: &DiscordEffect,
        item_id: i64,
    ) -> Result<(), DeliveryError> {
        match effect {
            // Discord refuses an empty message; there is nothing to say anyway.
            DiscordEffect::Thread { text, .. } | DiscordEffect::Message { text, .. }
                if text.trim().is_empty() =>
            {
                Ok(())
            }
            DiscordEffect::PostCard { card, channel } => {
                self.post_card(*card, channel, item_id).await
            }
            DiscordEffect::UpdateCard { card } => self.update_card(*card).await,
            DiscordEffect::Thread { card, text } => self.reply_to_cards(*card, text, item_id).await,
            DiscordEffect::Message { channel, text } => {
                let message = with_nonce(Message::plain(text), item_id, 0);
                self.client.create_message(channel, &message).await?;
                Ok(())
            }
        }
    }

    async fn post_card(
        &self,
        key: CardKey,
        channel: &str,
        item_id: i64,
    ) -> Result<(), DeliveryError> {
        let card_key = key.as_string();
        let already = self
            .discord_messages(&card_key)
            .await?
            .into_iter()
            .any(|message| message.channel == channel);
        if already {
            // Posted before a crash or a lost `delivered` mark: posting again would duplicate it.
            return Ok(());
        }
        let now = self.clock.now();
        let message = with_nonce(self.render(key, now).await?, item_id, 0);
        let id = self.client.create_message(channel, &message).await?;
        tracing::info!(card = %card_key, channel, message = %id, "posted card on Discord");
        self.storage
            .record_chat_message(&card_key, Platform::Discord, channel, &id, now)
            .await
            .map_err(|error| {
                // The card is on Discord but we lost where; the retry carries the same nonce,
                // so Discord answers with this message rather than posting a second one.
                tracing::error!(card = %card_key, channel, message = %id, %error, "posted card but could not record it");
                storage_failure(error)
            })?;
        Ok(())
    }

    async fn update_card(&self, key: CardKey) -> Result<(), DeliveryError> {
        let card_key = key.as_string();
        let messages = self.discord_messages(&card_key).await?;
        if messages.is_empty() {
            // The post is still in the outbox (or being retried); edit once it is there.
            return Err(DeliveryError::retry("card not posted on Discord yet"));
        }
        let message = self.render(key, self.clock.now()).await?;
        let results = futures::future::join_all(messages.iter().map(|posted| {
            self.client
                .edit_message(&posted.channel, &posted.message_ref, &message)
        }))
        .await;
        combine(results)
    }

    async fn reply_to_cards(
        &self,
        key: CardKey,
        text: &str,
        item_id: i64,
    ) -> Result<(), DeliveryError> {
        let messages = self.discord_messages(&key.as_string()).await?;
        if messages.is_empty() {
            return Err(DeliveryError::retry("card not posted on Discord yet"));
        }
        let mut results = Vec::with_capacity(messages.len());
        for (index, posted) in messages.iter().enumerate() {
            let message = Message {
                message_reference: Some(MessageReference {
                    message_id: posted.message_ref.clone(),
                    channel_id: posted.channel.clone(),
                    fail_if_not_exists: false,
                }),
                ..with_nonce(Message::plain(text), item_id, index)
            };
            results.push(
                self.client
                    .create_message(&posted.channel, &message)
                    .await
                    .map(|_| ()),
            );
        }
        combine(results)
    }

    async fn discord_messages(&self, card_key: &str) -> Result<Vec<ChatMessage>, DeliveryError> {
        Ok(self
            .storage
            .chat_messages(card_key)
            .await
            .map_err(storage_failure)?
            .into_iter()
            .filter(|message| message.platform == Platform::Discord)
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

impl Deliverer for DiscordDeliverer {
    fn deliver<'a>(&'a self, item: &'a OutboxItem) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let effect = DiscordEffect::parse(&item.kind, &item.payload)
                .map_err(DeliveryError::Permanent)?;
            self.deliver_effect(&effect, item.id).await
        })
    }
}

/// A nonce (at most 25 characters) unique to this outbox item and target, enforced so that a
/// post repeated after a crash returns the first message instead of a duplicate.
fn with_nonce(message: Message, item_id: i64, index: usize) -> Message {
    Message {
        nonce: Some(format!("g{item_id:x}.{index:x}")),
        enforce_nonce: true,
        ..message
    }
}

fn storage_failure(error: StorageError) -> DeliveryError {
    DeliveryError::retry(format!("storage: {error}"))
}

/// One outcome for several calls: retry if any may succeed later (all are repeated, which is
/// harmless for edits), else the first refusal, else done.
fn combine(results: Vec<Result<(), DiscordError>>) -> Result<(), DeliveryError> {
    let mut retry: Option<(Option<Duration>, String)> = None;
    let mut refused = None;
    for error in results.into_iter().filter_map(Result::err) {
        if error.is_retryable() {
            let after = match &error {
                DiscordError::RateLimited { retry_after } => *retry_after,
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
            DiscordEffect::PostCard {
                card: CardKey::Approval(42),
                channel: "1100000000000000000".into(),
            },
            DiscordEffect::UpdateCard {
                card: CardKey::SmokeFailed(7),
            },
            DiscordEffect::Thread {
                card: CardKey::Approval(1),
                text: "reminder".into(),
            },
            DiscordEffect::Message {
                channel: "1".into(),
                text: "approved".into(),
            },
        ];
        for effect in effects {
            assert_eq!(
                DiscordEffect::parse(effect.kind(), &effect.payload()),
                Ok(effect.clone())
            );
        }
        assert!(DiscordEffect::parse(POST_CARD, &json!({"card": "approval:1"})).is_err());
        assert!(DiscordEffect::parse(UPDATE_CARD, &json!({"card": "nonsense"})).is_err());
        assert!(DiscordEffect::parse("discord.dance", &json!({})).is_err());
    }

    #[test]
    fn nonces_fit_discords_limit() {
        let message = with_nonce(Message::plain("x"), i64::MAX, usize::from(u16::MAX));
        let nonce = message.nonce.expect("nonce");
        assert!(nonce.len() <= 25, "{nonce}");
    }

    #[test]
    fn several_outcomes_combine_into_one() {
        let refused = || DiscordError::Refused {
            call: "edit message",
            status: 404,
            detail: None,
        };
        let limited = |secs| DiscordError::RateLimited {
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
