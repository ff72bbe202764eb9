//! Slack as a chat platform of the outbox: Block Kit rendering and the Web API calls behind
//! [`ChatAdapter`]; the shared deliverer does the rest. Slack limits calls per Web API method
//! (a 429 on `chat.update` pauses `chat.update` only) and posts per channel (REFERENCE §1.7).

use std::sync::Arc;
use std::time::Duration;

use greenlight_commands::Platform;
use greenlight_storage::ChatMessage;

use super::blocks::Message;
use super::card::card_message;
use super::client::{SlackClient, SlackError};
use crate::cards::Card;
use crate::chat::pace::{Route, Spacing};
use crate::chat::{Answer, Attempt, Call, ChatAdapter, ChatError, Marker, ReplyAddress};

/// `chat.postMessage` allows about one message per second per channel, "with short bursts"
/// (REFERENCE §1.7). One event can say several things at once (a faulty release: the card's
/// edit, the lock, the rollback, replies), and a card held back by spacing also holds back its
/// edits, so this many go at once; a longer burst is spaced to one a second. Slack's own 429
/// (which pauses the method) still guards a burst Slack finds too long.
pub const POSTS_PER_CHANNEL_BURST: u32 = 20;

pub struct SlackAdapter(pub Arc<SlackClient>);

/// A Web API method's limits: per method and workspace, posts also per channel.
fn method(name: &'static str, posts_to: Option<&str>) -> Route {
    Route {
        name,
        major: None,
        spacing: posts_to.map(|channel| Spacing {
            key: channel.to_owned(),
            every: Duration::from_secs(1),
            burst: POSTS_PER_CHANNEL_BURST,
        }),
    }
}

impl ChatAdapter for SlackAdapter {
    const PLATFORM: Platform = Platform::Slack;
    type Message = Message;

    fn route(&self, call: Call<'_>) -> Route {
        match call {
            Call::Post { channel } => method("chat.postMessage", Some(channel)),
            Call::Reply(posted) => method("chat.postMessage", Some(&posted.channel)),
            Call::Edit(_) => method("chat.update", None),
            Call::Ephemeral(ReplyAddress::User { .. }) => method("chat.postEphemeral", None),
            Call::Ephemeral(ReplyAddress::ResponseUrl(_)) => method("response_url", None),
        }
    }

    fn render_card(&self, card: &Card) -> Message {
        card_message(card)
    }

    fn render_text(&self, text: &str, marker: Option<Marker>) -> Message {
        text_message(text, marker)
    }

    async fn post(&self, channel: &str, message: &Message, _attempt: Attempt) -> Answer<String> {
        answer(self.0.post_message(channel, message, None).await)
    }

    async fn edit(&self, posted: &ChatMessage, message: &Message) -> Answer<()> {
        answer(
            self.0
                .update_message(&posted.channel, &posted.message_ref, message)
                .await,
        )
    }

    async fn reply(
        &self,
        posted: &ChatMessage,
        message: &Message,
        _attempt: Attempt,
    ) -> Answer<()> {
        let posted = self
            .0
            .post_message(&posted.channel, message, Some(&posted.message_ref))
            .await;
        answer(posted.map(drop))
    }

    async fn ephemeral(&self, to: &ReplyAddress, message: &Message) -> Answer<()> {
        answer(match to {
            ReplyAddress::User { channel, user } => {
                self.0.post_ephemeral(channel, user, message).await
            }
            ReplyAddress::ResponseUrl(url) => self.0.respond(url, message, false).await,
        })
    }
}

/// Slack's answer: its rate limits show only as a 429's `Retry-After`, carried by the error.
fn answer<T>(result: Result<T, SlackError>) -> Answer<T> {
    result.map_err(ChatError::from).into()
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
