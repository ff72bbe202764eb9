//! The one deliverer of chat effects, whatever the platform: a card is posted at most once per
//! channel, every post or edit renders the card as it stands at delivery, and every platform's
//! errors are classified the same way (retry later, or give up). Every call waits its turn in
//! the platform's shared limits ([`Pace`]): a call the platform paused is not made, and its
//! item is deferred to the pause's end without using an attempt. The platform itself is a
//! [`ChatAdapter`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use greenlight_commands::Platform;
use greenlight_storage::{ChatMessage, OutboxItem, Storage, StorageError};

use super::effect::{ChatEffect, ReplyAddress};
use super::marker::Marker;
use super::pace::{Limits, Pace, Paused, Route};
use crate::cards::{self, Card, CardKey};
use crate::clock::Clock;
use crate::config::Config;
use crate::outbox::{Deliverer, DeliveryError};

/// Which outbox item, and which of its several sends, a post belongs to: platforms that
/// de-duplicate posts (Discord's nonce) derive their key from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub item_id: i64,
    pub index: usize,
}

/// A platform's refusal or failure, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// Slow down; try again after `retry_after` when the platform said.
    #[error("{reason}")]
    RateLimited {
        retry_after: Option<Duration>,
        reason: String,
    },
    /// Network trouble or a server error: may work later.
    #[error("{0}")]
    Transient(String),
    /// The platform refused the call itself: repeating it would not help.
    #[error("{0}")]
    Refused(String),
    /// Not made (or answered 429): the platform paused this kind of call until `until`.
    #[error("{reason}")]
    Deferred {
        until: DateTime<Utc>,
        reason: String,
    },
}

impl ChatError {
    /// A platform's error, classified: `rate_limited` carries the platform's wait when it
    /// asked to slow down; anything else is transient when the same call may work later.
    pub fn classify(
        error: &impl std::fmt::Display,
        rate_limited: Option<Option<Duration>>,
        retryable: bool,
    ) -> Self {
        let reason = error.to_string();
        match rate_limited {
            Some(retry_after) => Self::RateLimited {
                retry_after,
                reason,
            },
            None if retryable => Self::Transient(reason),
            None => Self::Refused(reason),
        }
    }

    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Refused(_))
    }
}

impl From<ChatError> for DeliveryError {
    fn from(error: ChatError) -> Self {
        match error {
            ChatError::RateLimited {
                retry_after,
                reason,
            } => DeliveryError::Retry {
                after: retry_after,
                reason,
            },
            ChatError::Transient(reason) => DeliveryError::retry(reason),
            ChatError::Refused(reason) => DeliveryError::Permanent(reason),
            ChatError::Deferred { until, reason } => DeliveryError::Deferred { until, reason },
        }
    }
}

impl From<Paused> for ChatError {
    fn from(paused: Paused) -> Self {
        Self::Deferred {
            until: paused.until,
            reason: paused.reason,
        }
    }
}

/// A call, as the adapter is asked which limits it counts against.
#[derive(Debug, Clone, Copy)]
pub enum Call<'a> {
    Post { channel: &'a str },
    Edit(&'a ChatMessage),
    Reply(&'a ChatMessage),
    Ephemeral(&'a ReplyAddress),
}

/// A platform's answer to one call, with what it said about its rate limits.
#[derive(Debug)]
pub struct Answer<T> {
    pub result: Result<T, ChatError>,
    pub limits: Limits,
}

impl<T> From<Result<T, ChatError>> for Answer<T> {
    /// An answer that said nothing about limits beyond a 429's wait.
    fn from(result: Result<T, ChatError>) -> Self {
        Self {
            result,
            limits: Limits::default(),
        }
    }
}

/// One chat platform, as the deliverer needs it: rendering, the four calls, and which of the
/// platform's rate limits each call counts against.
pub trait ChatAdapter: Send + Sync + 'static {
    /// The platform whose `"{platform}.*"` items this adapter delivers.
    const PLATFORM: Platform;
    /// A message as this platform's API takes it.
    type Message: Send + Sync;

    /// The limits `call` counts against (its method or route, its channel's spacing).
    fn route(&self, call: Call<'_>) -> Route;

    /// The card, within every limit of the platform.
    fn render_card(&self, card: &Card) -> Self::Message;
    /// Plain text shown exactly as written (escaped), led by the marker's symbol.
    fn render_text(&self, text: &str, marker: Option<Marker>) -> Self::Message;

    /// Posts in `channel`; the new message's reference (for edits and replies).
    fn post(
        &self,
        channel: &str,
        message: &Self::Message,
        attempt: Attempt,
    ) -> impl Future<Output = Answer<String>> + Send;
    /// Replaces what `posted` shows.
    fn edit(
        &self,
        posted: &ChatMessage,
        message: &Self::Message,
    ) -> impl Future<Output = Answer<()>> + Send;
    /// Replies under `posted` (in its thread, or as a reply to it).
    fn reply(
        &self,
        posted: &ChatMessage,
        message: &Self::Message,
        attempt: Attempt,
    ) -> impl Future<Output = Answer<()>> + Send;
    /// Tells one person something only they see.
    fn ephemeral(
        &self,
        to: &ReplyAddress,
        message: &Self::Message,
    ) -> impl Future<Output = Answer<()>> + Send;
}

/// The outbox deliverer of one platform's `"{platform}.*"` items.
pub struct ChatDeliverer<A> {
    adapter: A,
    storage: Storage,
    config: Arc<Config>,
    clock: Clock,
    /// The platform's rate limits, shared by every item this deliverer delivers.
    pace: Pace,
}

impl<A: ChatAdapter> ChatDeliverer<A> {
    pub fn new(adapter: A, storage: Storage, config: Arc<Config>, clock: Clock) -> Self {
        Self {
            adapter,
            storage,
            config,
            pace: Pace::new(clock.clone()),
            clock,
        }
    }

    /// Makes one call in its turn: not at all while the platform pauses its route (then
    /// `Deferred`), and a 429 pauses the route for every item (and defers this one).
    async fn call<T, F>(&self, call: Call<'_>, send: impl FnOnce() -> F) -> Result<T, ChatError>
    where
        F: Future<Output = Answer<T>>,
    {
        let route = self.adapter.route(call);
        let place = match self.pace.start(&route).await {
            Ok(place) => place,
            Err(paused) => return Err(self.deferred(paused)),
        };
        let answer = send().await;
        drop(place);
        let throttled = match &answer.result {
            Err(ChatError::RateLimited { retry_after, .. }) => Some(*retry_after),
            _ => None,
        };
        match self.pace.finish(&route, &answer.limits, throttled) {
            Some(paused) => Err(self.deferred(paused)),
            None => answer.result,
        }
    }

    fn deferred(&self, paused: Paused) -> ChatError {
        metrics::counter!("greenlight_chat_calls_deferred_total", "platform" => A::PLATFORM.as_str())
            .increment(1);
        paused.into()
    }

    /// Does one effect. Safe to repeat: a card is posted at most once per channel, and edits
    /// always show the card as it stands now.
    pub async fn deliver_effect(
        &self,
        effect: &ChatEffect,
        item_id: i64,
    ) -> Result<(), DeliveryError> {
        let attempt = Attempt { item_id, index: 0 };
        match effect {
            // Platforms refuse an empty message; there is nothing to say anyway.
            ChatEffect::Thread { text, .. } | ChatEffect::Message { text, .. }
                if text.trim().is_empty() =>
            {
                Ok(())
            }
            ChatEffect::PostCard { card, channel } => self.post_card(*card, channel, attempt).await,
            ChatEffect::UpdateCard { card } => self.update_card(*card).await,
            ChatEffect::Thread { card, text } => self.reply_in_threads(*card, text, item_id).await,
            ChatEffect::Message {
                channel,
                text,
                marker,
            } => {
                let message = self.adapter.render_text(text, *marker);
                self.call(Call::Post { channel }, || {
                    self.adapter.post(channel, &message, attempt)
                })
                .await?;
                Ok(())
            }
            ChatEffect::Ephemeral { to, text } => {
                let message = self.adapter.render_text(text, None);
                let call = Call::Ephemeral(to);
                Ok(self
                    .call(call, || self.adapter.ephemeral(to, &message))
                    .await?)
            }
        }
    }

    async fn post_card(
        &self,
        key: CardKey,
        channel: &str,
        attempt: Attempt,
    ) -> Result<(), DeliveryError> {
        let card_key = key.as_string();
        let already = self
            .messages(&card_key)
            .await?
            .into_iter()
            .any(|message| message.channel == channel);
        if already {
            // Posted before a crash or a lost `delivered` mark: posting again would duplicate it.
            return Ok(());
        }
        let now = self.clock.now();
        let message = self.render(key, now).await?;
        let reference = self
            .call(Call::Post { channel }, || {
                self.adapter.post(channel, &message, attempt)
            })
            .await?;
        let platform = A::PLATFORM;
        tracing::info!(card = %card_key, %platform, channel, %reference, "posted card");
        self.storage
            .record_chat_message(&card_key, platform, channel, &reference, now)
            .await
            .map_err(|error| {
                // The card is posted but we lost where; retrying posts it a second time (or,
                // where the platform de-duplicates posts, finds the first), which beats never
                // being able to update it.
                tracing::error!(card = %card_key, %platform, channel, %reference, %error, "posted card but could not record it");
                storage_failure(error)
            })?;
        Ok(())
    }

    async fn update_card(&self, key: CardKey) -> Result<(), DeliveryError> {
        let messages = self.posted(key).await?;
        if let Some(paused) = self.all_paused(messages.iter().map(Call::Edit)) {
            // Reading and rendering the card would be wasted: it is read afresh after the pause.
            return Err(self.deferred(paused).into());
        }
        let message = self.render(key, self.clock.now()).await?;
        let results =
            futures::future::join_all(messages.iter().map(|posted| {
                self.call(Call::Edit(posted), || self.adapter.edit(posted, &message))
            }))
            .await;
        combine(results)
    }

    async fn reply_in_threads(
        &self,
        key: CardKey,
        text: &str,
        item_id: i64,
    ) -> Result<(), DeliveryError> {
        let messages = self.posted(key).await?;
        let message = self.adapter.render_text(text, None);
        let mut results = Vec::with_capacity(messages.len());
        for (index, posted) in messages.iter().enumerate() {
            let attempt = Attempt { item_id, index };
            let call = Call::Reply(posted);
            let reply = || self.adapter.reply(posted, &message, attempt);
            results.push(self.call(call, reply).await);
        }
        combine(results)
    }

    /// The pause lasting longest when every one of `calls` is paused now; `None` when any may
    /// go (that one is then made, and the others defer as they call).
    fn all_paused<'c>(&self, calls: impl Iterator<Item = Call<'c>>) -> Option<Paused> {
        let mut longest: Option<Paused> = None;
        for call in calls {
            let paused = self.pace.pause_of(&self.adapter.route(call))?;
            if longest
                .as_ref()
                .is_none_or(|held| paused.until > held.until)
            {
                longest = Some(paused);
            }
        }
        longest
    }

    /// The card's messages on this platform; none yet means its post is still in the outbox
    /// (or being retried), so the edit or reply waits for it.
    async fn posted(&self, key: CardKey) -> Result<Vec<ChatMessage>, DeliveryError> {
        let messages = self.messages(&key.as_string()).await?;
        if messages.is_empty() {
            return Err(DeliveryError::retry(format!(
                "card not posted on {} yet",
                A::PLATFORM.display_name()
            )));
        }
        Ok(messages)
    }

    async fn messages(&self, card_key: &str) -> Result<Vec<ChatMessage>, DeliveryError> {
        Ok(self
            .storage
            .chat_messages(card_key)
            .await
            .map_err(storage_failure)?
            .into_iter()
            .filter(|message| message.platform == A::PLATFORM)
            .collect())
    }

    /// The card as it stands at `now`, freshly read, so a late edit never shows an old state.
    async fn render(&self, key: CardKey, now: DateTime<Utc>) -> Result<A::Message, DeliveryError> {
        let mut conn = self.storage.reader().await.map_err(storage_failure)?;
        let card = cards::load_card(&mut conn, &self.config, key, now)
            .await
            .map_err(|error| match error {
                StorageError::NotFound { .. } => {
                    DeliveryError::Permanent(format!("card {}: {error}", key.as_string()))
                }
                other => storage_failure(other),
            })?;
        Ok(self.adapter.render_card(&card))
    }
}

impl<A: ChatAdapter> Deliverer for ChatDeliverer<A> {
    fn deliver<'a>(&'a self, item: &'a OutboxItem) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let (platform, effect) =
                ChatEffect::parse(&item.kind, &item.payload).map_err(DeliveryError::Permanent)?;
            if platform != A::PLATFORM {
                return Err(DeliveryError::Permanent(format!(
                    "{} item routed to the {} deliverer",
                    item.kind,
                    A::PLATFORM
                )));
            }
            self.deliver_effect(&effect, item.id).await
        })
    }
}

fn storage_failure(error: StorageError) -> DeliveryError {
    DeliveryError::retry(format!("storage: {error}"))
}

/// One outcome for several calls: retry if any may succeed later (all are repeated, which is
/// harmless for edits), else wait for the latest pause if any was paused, else the first
/// refusal, else done.
fn combine(results: Vec<Result<(), ChatError>>) -> Result<(), DeliveryError> {
    let mut retry: Option<(Option<Duration>, String)> = None;
    let mut deferred: Option<(DateTime<Utc>, String)> = None;
    let mut refused = None;
    for error in results.into_iter().filter_map(Result::err) {
        match error {
            ChatError::Deferred { until, reason } => {
                if deferred.as_ref().is_none_or(|(latest, _)| until > *latest) {
                    deferred = Some((until, reason));
                }
            }
            ChatError::Refused(_) => {
                refused.get_or_insert(error);
            }
            ChatError::RateLimited { retry_after, .. } => {
                let (longest, _) = retry.get_or_insert((retry_after, error.to_string()));
                *longest = (*longest).max(retry_after);
            }
            ChatError::Transient(reason) => {
                retry.get_or_insert((None, reason));
            }
        }
    }
    match (retry, deferred, refused) {
        (Some((after, reason)), _, _) => Err(DeliveryError::Retry { after, reason }),
        (None, Some((until, reason)), _) => Err(DeliveryError::Deferred { until, reason }),
        (None, None, Some(error)) => Err(error.into()),
        (None, None, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_outcomes_combine_into_one() {
        let refused = || ChatError::Refused("chat.update: message_not_found".into());
        let limited = |secs| ChatError::RateLimited {
            retry_after: Some(Duration::from_secs(secs)),
            reason: "rate limited".into(),
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
        assert!(matches!(
            combine(vec![Err(ChatError::Transient("503".into()))]),
            Err(DeliveryError::Retry { after: None, .. })
        ));
    }

    #[test]
    fn paused_calls_defer_unless_another_call_failed() {
        let at = |secs: i64| DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("time");
        let paused = |secs| ChatError::Deferred {
            until: at(secs),
            reason: format!("paused for {secs}s"),
        };
        match combine(vec![
            Ok(()),
            Err(paused(5)),
            Err(paused(60)),
            Err(paused(9)),
        ]) {
            Err(DeliveryError::Deferred { until, reason }) => {
                assert_eq!((until, reason.as_str()), (at(60), "paused for 60s"));
            }
            other => panic!("expected a deferral, got {other:?}"),
        }
        assert!(matches!(
            combine(vec![Err(paused(5)), Err(ChatError::Refused("gone".into()))]),
            Err(DeliveryError::Deferred { .. })
        ));
        // A real failure uses an attempt; its retry finds the pause and defers then.
        assert!(matches!(
            combine(vec![
                Err(paused(5)),
                Err(ChatError::Transient("503".into()))
            ]),
            Err(DeliveryError::Retry { .. })
        ));
    }
}
