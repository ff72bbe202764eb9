//! The Slack adapter: everything Greenlight knows about Slack. The Web API client
//! (slack-morphism, base URL from config), Block Kit rendering of cards and notices, the
//! [`ChatAdapter`](crate::chat::ChatAdapter) behind the outbox's `slack.*` items, the inbound
//! routes (`/slack/interactions`, `/slack/commands`), Socket Mode (the same handling over a
//! WebSocket Greenlight opens) and the app manifest.
//!
//! Architecture invariant: only this folder knows Slack's wire formats; what goes out on
//! behalf of a state change goes through the outbox, and the only inline call is opening a
//! modal in answer to the click being handled.

mod adapter;
pub mod blocks;
pub mod card;
pub mod client;
pub mod inbound;
pub mod manifest;
pub mod notices;
pub mod response_url;
pub mod socket_mode;

pub use adapter::{SlackAdapter, POSTS_PER_CHANNEL_BURST};
pub use blocks::Message;
pub use card::card_message;
pub use client::{SlackClient, SlackError};
