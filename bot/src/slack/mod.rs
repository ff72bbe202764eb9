//! Slack's side of outgoing effects: the Web API client, Block Kit rendering of cards and
//! notices, and the outbox deliverer for `slack.*` items.
//!
//! Architecture invariant: only this module knows Slack's outgoing wire formats; what goes
//! out on behalf of a state change goes through [`deliver::SlackDeliverer`] from the outbox.
//!
//! Wiring: `OutboxWorker::with_deliverer("slack", Arc::new(SlackDeliverer::new(
//! SlackClient::new(slack_config), storage, config, clock)))`.

pub mod blocks;
pub mod card;
pub mod client;
pub mod deliver;
pub mod manifest;
pub mod notices;
pub mod response_url;

pub use blocks::Message;
pub use card::card_message;
pub use client::{SlackClient, SlackError};
pub use deliver::{EphemeralTarget, SlackDeliverer, SlackEffect};
