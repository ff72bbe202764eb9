//! Greenlight, the bot: configuration, HTTP routes, platform clients and the engine.
//!
//! Entry points: [`app::App::build`] and [`app::App::serve`] (used by `main` and by the
//! end-to-end tests alike), and [`cli::run`] for the subcommands.

pub mod app;
pub mod background;
pub mod cards;
pub mod chat;
pub mod ci;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connections;
pub mod demo;
pub mod deploy;
pub mod discord;
pub mod dora;
pub mod engine;
pub mod flags;
pub mod github;
pub mod http;
pub mod notify;
pub mod outbox;
pub mod page;
pub mod release_log;
pub mod replica;
pub mod secret;
pub mod serve_lock;
pub mod shutdown;
pub mod slack;
pub mod smoke;
pub mod stored_policy;
pub mod telemetry;
pub mod verify;

#[cfg(test)]
mod parser_properties;
