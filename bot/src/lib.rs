//! Greenlight, the bot: configuration, HTTP routes, platform clients and the engine.

pub mod config;
pub mod secret;
