//! Slack as a chat platform of the outbox: Block Kit rendering and the Web API calls behind
//! [`ChatAdapter`]; the shared deliverer does the rest.

use std::sync::Arc;

use greenlight_commands::Platform;
use greenlight_storage::ChatMessage;

use super::blocks::Message;
use super::card::card_message;
use super::client::{SlackClient, SlackError};
use crate::cards::Card;
use crate::chat::{Attempt, ChatAdapter, ChatError, Marker, ReplyAddress};

pub struct SlackAdapter(pub Arc<SlackClient>);

impl ChatAdapter for SlackAdapter {
    const PLATFORM: Platform = Platform::Slack;
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
        _attempt: Attempt,
    ) -> Result<String, ChatError> {
        Ok(self.0.post_message(channel, message, None).await?)
    }

    async fn edit(&self, posted: &ChatMessage, message: &Message) -> Result<(), ChatError> {
        Ok(self
            .0
            .update_message(&posted.channel, &posted.message_ref, message)
            .await?)
    }

    async fn reply(
        &self,
        posted: &ChatMessage,
        message: &Message,
        _attempt: Attempt,
    ) -> Result<(), ChatError> {
        self.0
            .post_message(&posted.channel, message, Some(&posted.message_ref))
            .await?;
        Ok(())
    }

    async fn ephemeral(&self, to: &ReplyAddress, message: &Message) -> Result<(), ChatError> {
        match to {
            ReplyAddress::User { channel, user } => {
                self.0.post_ephemeral(channel, user, message).await?
            }
            ReplyAddress::ResponseUrl(url) => self.0.respond(url, message, false).await?,
        }
        Ok(())
    }
}

/// Escaped text, led by the marker's emoji.
fn text_message(text: &str, marker: Option<Marker>) -> Message {
    let mut message = Message::plain(text);
    if let Some(marker) = marker {
        message.text = format!("{} {}", shortcode(marker), message.text);
    }
    message
}

/// Slack's name for the marker's emoji, which every Slack client renders.
fn shortcode(marker: Marker) -> &'static str {
    match marker {
        Marker::Alert => ":rotating_light:",
        Marker::Warning => ":warning:",
        Marker::Success => ":white_check_mark:",
        Marker::Failure => ":x:",
        Marker::Locked => ":lock:",
        Marker::Unlocked => ":unlock:",
        Marker::Rollback => ":leftwards_arrow_with_hook:",
    }
}

impl From<SlackError> for ChatError {
    fn from(error: SlackError) -> Self {
        let rate_limited = match &error {
            SlackError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        };
        ChatError::classify(&error, rate_limited, error.is_retryable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_is_shown_as_its_shortcode() {
        let message = text_message("faulty <now>", Some(Marker::Alert));
        assert_eq!(message.text, ":rotating_light: faulty &lt;now&gt;");
    }
}
