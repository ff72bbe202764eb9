//! The chat port: what the engine asks of any chat platform, and the one deliverer that does
//! it. The engine speaks in [`ChatEffect`]s (post a card, update it, reply under it, announce,
//! answer one person) stored in the outbox as `"{platform}.{op}"`; each platform is an adapter
//! folder (`slack/`, `discord/`) implementing [`ChatAdapter`] and its own inbound routes.
//! [`pace`] holds each platform's rate limits, shared by all its deliveries.
//!
//! Architecture invariant: nothing here names a platform; the engine never imports an adapter.

mod deliver;
mod effect;
mod marker;
pub mod pace;
pub mod text;

pub use deliver::{Answer, Attempt, Call, ChatAdapter, ChatDeliverer, ChatError};
pub use effect::{ChatEffect, ReplyAddress};
pub use marker::Marker;
