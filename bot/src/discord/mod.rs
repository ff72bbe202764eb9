//! Discord's side of Greenlight: the interactions endpoint (buttons, confirm step, reject
//! modal), the card as an embed with buttons, and the outbox deliverer for `discord.*` items.
//!
//! Architecture invariant: only this module knows Discord's wire formats; what goes out on
//! behalf of a state change goes through [`deliver::DiscordDeliverer`] from the outbox, and
//! the only inline calls are answers to the interaction being handled.
//!
//! Wiring: `POST /discord/interactions` → [`interactions::interactions`];
//! `OutboxWorker::with_deliverer("discord", Arc::new(DiscordDeliverer::new(client, storage,
//! config, clock)))`.

pub mod card;
pub mod client;
pub mod commands;
pub mod deliver;
pub mod interactions;
pub mod message;
pub mod notices;

pub use card::{card_message, ButtonAction};
pub use client::{DiscordClient, DiscordError};
pub use deliver::{DiscordDeliverer, DiscordEffect};
pub use message::Message;
