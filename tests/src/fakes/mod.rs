//! Fake platform servers on 127.0.0.1 that speak the real wire formats. Each records what
//! Greenlight sent; tests read those records in order and teardown fails on unread ones.

pub mod deploy_hook;
pub mod discord;
pub mod github;
mod inbox;
pub mod slack;

pub use deploy_hook::{DeployHook, FakeProduction};
pub use discord::FakeDiscord;
pub use github::FakeGithub;
pub use inbox::{Inbox, Recorded};
pub use slack::FakeSlack;
