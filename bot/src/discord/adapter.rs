//! Discord as a chat platform of the outbox: embeds and the REST calls behind
//! [`ChatAdapter`]; the shared deliverer does the rest. Posts carry a nonce derived from the
//! outbox item, so Discord itself drops a repeat sent within minutes of the first. Replies
//! that only the actor sees need no outbox item here: on Discord they are the interaction's
//! response.

use greenlight_commands::Platform;
use greenlight_storage::ChatMessage;

use super::card::card_message;
use super::client::{DiscordClient, DiscordError};
use super::message::{Message, MessageReference};
use crate::cards::Card;
use crate::chat::{Attempt, ChatAdapter, ChatError, Marker, ReplyAddress};

pub struct DiscordAdapter(pub DiscordClient);

impl ChatAdapter for DiscordAdapter {
    const PLATFORM: Platform = Platform::Discord;
    type Message = Message;

    fn render_card(&self, card: &Card) -> Message {
        card_message(card)
    }

    fn render_text(&self, text: &str, marker: Option<Marker>) -> Message {
        text_message(text, marker)
    }

    async fn post(
        &self,
        channel: &str,
        message: &Message,
        attempt: Attempt,
    ) -> Result<String, ChatError> {
        let message = with_nonce(message.clone(), attempt);
        Ok(self.0.create_message(channel, &message).await?)
    }

    async fn edit(&self, posted: &ChatMessage, message: &Message) -> Result<(), ChatError> {
        Ok(self
            .0
            .edit_message(&posted.channel, &posted.message_ref, message)
            .await?)
    }

    async fn reply(
        &self,
        posted: &ChatMessage,
        message: &Message,
        attempt: Attempt,
    ) -> Result<(), ChatError> {
        let message = Message {
            message_reference: Some(MessageReference {
                message_id: posted.message_ref.clone(),
                channel_id: posted.channel.clone(),
                fail_if_not_exists: false,
            }),
            ..with_nonce(message.clone(), attempt)
        };
        self.0.create_message(&posted.channel, &message).await?;
        Ok(())
    }

    async fn ephemeral(&self, _to: &ReplyAddress, _message: &Message) -> Result<(), ChatError> {
        Err(ChatError::Refused(
            "Discord answers a person in the interaction response, never later".to_owned(),
        ))
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
