//! The Discord adapter: everything Greenlight knows about Discord. The interactions endpoint
//! (buttons, confirm step, reject modal, slash commands), the card as an embed with buttons,
//! the [`ChatAdapter`](crate::chat::ChatAdapter) behind the outbox's `discord.*` items,
//! command registration, and the Gateway connection (`gateway.rs`, serenity's shard runner
//! for `[discord] gateway = true`). Plain reqwest and our own small serde types (no serenity
//! models).
//!
//! Architecture invariant: only this folder knows Discord's wire formats; what goes out on
//! behalf of a state change goes through the outbox, and the only inline calls are answers to
//! the interaction being handled.

mod adapter;
pub mod card;
pub mod client;
pub mod commands;
pub mod gateway;
pub mod interactions;
pub mod message;
pub mod notices;

pub use adapter::DiscordAdapter;
pub use card::{card_message, ButtonAction};
pub use client::{DiscordClient, DiscordError};
pub use message::Message;
