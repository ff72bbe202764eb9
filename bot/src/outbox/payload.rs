//! The payload shapes chat deliverers share (a card key and a channel, a card and a text, …),
//! and reading them back, so every platform stores and parses outbox items the same way.

use serde::Deserialize;
use serde_json::Value;

use crate::cards::CardKey;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostCardPayload {
    pub card: String,
    pub channel: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CardPayload {
    pub card: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CardTextPayload {
    pub card: String,
    pub text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelTextPayload {
    pub channel: String,
    pub text: String,
}

/// Reads an outbox payload of `kind`; the error says what is wrong with it.
pub(crate) fn read<T: for<'de> Deserialize<'de>>(kind: &str, payload: &Value) -> Result<T, String> {
    T::deserialize(payload).map_err(|error| format!("bad {kind} payload: {error}"))
}

pub(crate) fn card_key(text: &str) -> Result<CardKey, String> {
    CardKey::parse(text).ok_or_else(|| format!("unknown card key {text:?}"))
}
