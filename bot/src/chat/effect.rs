//! One thing to do on a chat platform, as stored in the outbox: the kind is
//! `"{platform}.{op}"` (`slack.post_card`, `discord.message`, …) and the payload is the same
//! JSON on every platform, so callers never write it by hand.
//!
//! Payloads (all `text` values are plain text, escaped by the platform's renderer):
//! - `post_card` `{"card": "approval:42", "channel": "C0DEPLOYS"}`
//! - `update_card` `{"card": "approval:42"}`
//! - `thread` `{"card": "approval:42", "text": "…"}`
//! - `message` `{"channel": "C…", "text": "…", "marker": "alert"}` (`marker` optional)
//! - `ephemeral` `{"channel": "C…", "user": "U…", "text": "…"}` or
//!   `{"response_url": "https://…", "text": "…"}`

use chrono::{DateTime, Utc};
use greenlight_commands::Platform;
use greenlight_storage::NewOutboxItem;
use serde::Deserialize;
use serde_json::{json, Value};

use super::marker::Marker;
use crate::cards::CardKey;
use crate::outbox::read_payload as read;

/// What to do, whatever the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEffect {
    /// Post the card in `channel`, once: a card already posted there is left alone.
    PostCard { card: CardKey, channel: String },
    /// Re-render the card and edit every message of this platform showing it.
    UpdateCard { card: CardKey },
    /// Reply under every message of this platform showing the card (reminders).
    Thread { card: CardKey, text: String },
    /// A message in `channel` (announcements), led by the marker's emoji.
    Message {
        channel: String,
        text: String,
        marker: Option<Marker>,
    },
    /// Tell one person something only they see.
    Ephemeral { to: ReplyAddress, text: String },
}

/// Where a reply that only one person sees goes, on the platform that asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyAddress {
    /// To `user`, in `channel`.
    User { channel: String, user: String },
    /// The URL the platform gave for answering the interaction (Slack's `response_url`).
    ResponseUrl(String),
}

/// The operations, as the part of the kind after the platform.
const POST_CARD: &str = "post_card";
const UPDATE_CARD: &str = "update_card";
const THREAD: &str = "thread";
const MESSAGE: &str = "message";
const EPHEMERAL: &str = "ephemeral";

impl ChatEffect {
    pub fn op(&self) -> &'static str {
        match self {
            Self::PostCard { .. } => POST_CARD,
            Self::UpdateCard { .. } => UPDATE_CARD,
            Self::Thread { .. } => THREAD,
            Self::Message { .. } => MESSAGE,
            Self::Ephemeral { .. } => EPHEMERAL,
        }
    }

    /// The outbox kind on `platform`, e.g. `slack.post_card`.
    pub fn kind(&self, platform: Platform) -> String {
        format!("{}.{}", platform.as_str(), self.op())
    }

    /// The outbox payload (see the module docs).
    pub fn payload(&self) -> Value {
        match self {
            Self::PostCard { card, channel } => {
                json!({"card": card.as_string(), "channel": channel})
            }
            Self::UpdateCard { card } => json!({"card": card.as_string()}),
            Self::Thread { card, text } => json!({"card": card.as_string(), "text": text}),
            Self::Message {
                channel,
                text,
                marker,
            } => {
                let mut payload = json!({"channel": channel, "text": text});
                if let Some(marker) = marker {
                    payload["marker"] = json!(marker.as_str());
                }
                payload
            }
            Self::Ephemeral {
                to: ReplyAddress::User { channel, user },
                text,
            } => json!({"channel": channel, "user": user, "text": text}),
            Self::Ephemeral {
                to: ReplyAddress::ResponseUrl(url),
                text,
            } => json!({"response_url": url, "text": text}),
        }
    }

    /// The outbox row for `platform`; write it in the same transaction as the state change it
    /// follows from.
    pub fn outbox_item(
        &self,
        platform: Platform,
        idempotency_key: impl Into<String>,
        at: DateTime<Utc>,
    ) -> NewOutboxItem {
        NewOutboxItem {
            kind: self.kind(platform),
            idempotency_key: idempotency_key.into(),
            payload: self.payload(),
            at,
            not_before: None,
        }
    }

    /// Reads an outbox item back: its platform and effect, or what is wrong with it.
    pub fn parse(kind: &str, payload: &Value) -> Result<(Platform, Self), String> {
        let unknown = || format!("unknown chat effect {kind:?}");
        let (platform, op) = kind.split_once('.').ok_or_else(unknown)?;
        let platform: Platform = platform.parse().map_err(|_| unknown())?;
        let effect = match op {
            POST_CARD => {
                let p: PostCardPayload = read(kind, payload)?;
                Self::PostCard {
                    card: card_key(&p.card)?,
                    channel: p.channel,
                }
            }
            UPDATE_CARD => {
                let p: CardPayload = read(kind, payload)?;
                Self::UpdateCard {
                    card: card_key(&p.card)?,
                }
            }
            THREAD => {
                let p: CardTextPayload = read(kind, payload)?;
                Self::Thread {
                    card: card_key(&p.card)?,
                    text: p.text,
                }
            }
            MESSAGE => {
                let p: MessagePayload = read(kind, payload)?;
                let marker =
                    match p.marker.as_deref() {
                        None => None,
                        Some(name) => Some(Marker::parse(name).ok_or_else(|| {
                            format!("bad {kind} payload: unknown marker {name:?}")
                        })?),
                    };
                Self::Message {
                    channel: p.channel,
                    text: p.text,
                    marker,
                }
            }
            EPHEMERAL => match read(kind, payload)? {
                EphemeralPayload::User {
                    channel,
                    user,
                    text,
                } => Self::Ephemeral {
                    to: ReplyAddress::User { channel, user },
                    text,
                },
                EphemeralPayload::ResponseUrl { response_url, text } => Self::Ephemeral {
                    to: ReplyAddress::ResponseUrl(response_url),
                    text,
                },
            },
            _ => return Err(unknown()),
        };
        Ok((platform, effect))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostCardPayload {
    card: String,
    channel: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CardPayload {
    card: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CardTextPayload {
    card: String,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessagePayload {
    channel: String,
    text: String,
    #[serde(default)]
    marker: Option<String>,
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

fn card_key(text: &str) -> Result<CardKey, String> {
    CardKey::parse(text).ok_or_else(|| format!("unknown card key {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_round_trip_through_the_outbox_format_on_every_platform() {
        let effects = [
            ChatEffect::PostCard {
                card: CardKey::Approval(42),
                channel: "C0DEPLOYS".into(),
            },
            ChatEffect::UpdateCard {
                card: CardKey::SmokeFailed(7),
            },
            ChatEffect::Ephemeral {
                to: ReplyAddress::User {
                    channel: "C1".into(),
                    user: "U1".into(),
                },
                text: "no".into(),
            },
            ChatEffect::Ephemeral {
                to: ReplyAddress::ResponseUrl("https://hooks.slack.com/x".into()),
                text: "no".into(),
            },
            ChatEffect::Thread {
                card: CardKey::Approval(1),
                text: "reminder".into(),
            },
            ChatEffect::Message {
                channel: "C1".into(),
                text: "approved".into(),
                marker: None,
            },
            ChatEffect::Message {
                channel: "1100000000000000000".into(),
                text: "faulty".into(),
                marker: Some(Marker::Alert),
            },
        ];
        for platform in [Platform::Slack, Platform::Discord] {
            for effect in &effects {
                let kind = effect.kind(platform);
                assert!(kind.starts_with(platform.as_str()), "{kind}");
                assert_eq!(
                    ChatEffect::parse(&kind, &effect.payload()),
                    Ok((platform, effect.clone()))
                );
            }
        }
    }

    #[test]
    fn the_stored_kinds_keep_their_names() {
        let card = CardKey::Approval(1);
        assert_eq!(
            ChatEffect::UpdateCard { card }.kind(Platform::Slack),
            "slack.update_card"
        );
        assert_eq!(
            ChatEffect::PostCard {
                card,
                channel: "1".into()
            }
            .kind(Platform::Discord),
            "discord.post_card"
        );
    }

    #[test]
    fn malformed_payloads_are_refused_with_a_reason() {
        let error = ChatEffect::parse("slack.post_card", &json!({"card": "approval:1"}))
            .expect_err("channel missing");
        assert!(error.contains("channel"), "{error}");
        let error = ChatEffect::parse("discord.update_card", &json!({"card": "nonsense"}))
            .expect_err("bad key");
        assert!(error.contains("nonsense"), "{error}");
        assert!(ChatEffect::parse("slack.dance", &json!({})).is_err());
        assert!(ChatEffect::parse("teams.message", &json!({})).is_err());
        assert!(ChatEffect::parse("slack.ephemeral", &json!({"text": "x"})).is_err());
        let error = ChatEffect::parse(
            "slack.message",
            &json!({"channel": "C1", "text": "x", "marker": "party"}),
        )
        .expect_err("unknown marker");
        assert!(error.contains("party"), "{error}");
    }
}
