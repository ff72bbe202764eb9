//! Discord as a chat platform of the outbox: embeds and the REST calls behind
//! [`ChatAdapter`]; the shared deliverer does the rest. Posts carry a nonce derived from the
//! outbox item, so Discord itself drops a repeat sent within minutes of the first. Replies
//! that only the actor sees need no outbox item here: on Discord they are the interaction's
//! response. Discord limits calls per route and channel (its "major parameter"), in buckets
//! its answers name; the client reports their headers to the shared limits.

use greenlight_commands::Platform;
use greenlight_storage::ChatMessage;

use super::card::card_message;
use super::client::{Answered, DiscordClient, DiscordError};
use super::message::{Message, MessageReference};
use crate::cards::Card;
use crate::chat::pace::Route;
use crate::chat::{Answer, Attempt, Call, ChatAdapter, ChatError, Marker, ReplyAddress};

pub struct DiscordAdapter(pub DiscordClient);

/// A route's limits, per channel.
fn route(name: &'static str, channel: &str) -> Route {
    Route {
        name,
        major: Some(channel.to_owned()),
        spacing: None,
    }
}

impl ChatAdapter for DiscordAdapter {
    const PLATFORM: Platform = Platform::Discord;
    type Message = Message;

    fn route(&self, call: Call<'_>) -> Route {
        const CREATE: &str = "POST /channels/{channel}/messages";
        match call {
            Call::Post { channel } => route(CREATE, channel),
            Call::Reply(posted) => route(CREATE, &posted.channel),
            Call::Edit(posted) => route(
                "PATCH /channels/{channel}/messages/{message}",
                &posted.channel,
            ),
            // Never called: answers to one person are interaction responses.
            Call::Ephemeral(_) => Route {
                name: "interaction response",
                major: None,
                spacing: None,
            },
        }
    }

    fn render_card(&self, card: &Card) -> Message {
        card_message(card)
    }

    fn render_text(&self, text: &str, marker: Option<Marker>) -> Message {
        text_message(text, marker)
    }

    async fn post(&self, channel: &str, message: &Message, attempt: Attempt) -> Answer<String> {
        let message = with_nonce(message.clone(), attempt);
        answer(self.0.create_message(channel, &message).await)
    }

    async fn edit(&self, posted: &ChatMessage, message: &Message) -> Answer<()> {
        answer(
            self.0
                .edit_message(&posted.channel, &posted.message_ref, message)
                .await,
        )
    }

    async fn reply(&self, posted: &ChatMessage, message: &Message, attempt: Attempt) -> Answer<()> {
        let message = Message {
            message_reference: Some(MessageReference {
                message_id: posted.message_ref.clone(),
                channel_id: posted.channel.clone(),
                fail_if_not_exists: false,
            }),
            ..with_nonce(message.clone(), attempt)
        };
        let (created, limits) = self.0.create_message(&posted.channel, &message).await;
        answer((created.map(drop), limits))
    }

    async fn ephemeral(&self, _to: &ReplyAddress, _message: &Message) -> Answer<()> {
        Answer::from(Err(ChatError::Refused(
            "Discord answers a person in the interaction response, never later".to_owned(),
        )))
    }
}

fn answer<T>((result, limits): Answered<T>) -> Answer<T> {
    Answer {
        result: result.map_err(ChatError::from),
        limits,
    }
}

/// Escaped text, led by the marker's emoji.
fn text_message(text: &str, marker: Option<Marker>) -> Message {
    let mut message = Message::plain(text);
    if let Some(marker) = marker {
        message.content = message
            .content
            .map(|content| format!("{} {content}", marker.emoji()));
    }
    message
}

/// A nonce (at most 25 characters) unique to this outbox item and target, enforced so that a
/// post repeated after a crash returns the first message instead of a duplicate.
fn with_nonce(message: Message, attempt: Attempt) -> Message {
    Message {
        nonce: Some(format!("g{:x}.{:x}", attempt.item_id, attempt.index)),
        enforce_nonce: true,
        ..message
    }
}

impl From<DiscordError> for ChatError {
    fn from(error: DiscordError) -> Self {
        let rate_limited = match &error {
            DiscordError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        };
        ChatError::classify(&error, rate_limited, error.is_retryable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_fit_discords_limit() {
        let attempt = Attempt {
            item_id: i64::MAX,
            index: usize::from(u16::MAX),
        };
        let message = with_nonce(Message::plain("x"), attempt);
        let nonce = message.nonce.expect("nonce");
        assert!(nonce.len() <= 25, "{nonce}");
    }

    #[test]
    fn a_marker_is_shown_as_its_emoji() {
        let message = text_message("faulty *now*", Some(Marker::Alert));
        assert_eq!(message.content.as_deref(), Some("🚨 faulty \\*now\\*"));
    }
}
