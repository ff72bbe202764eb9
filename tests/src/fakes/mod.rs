//! Fake platform servers on 127.0.0.1 that speak the real wire formats. Each records what
//! Greenlight sent in an [`Inbox`]; tests read those records in order and `TestApp::teardown`
//! fails on unread ones.

pub mod deploy_hook;
pub mod discord;
pub mod discord_gateway;
mod faults;
pub mod github;
mod inbox;
pub mod platform;
pub mod slack;
pub mod slack_socket;

pub use deploy_hook::{DeployHook, FakeProduction};
pub use discord::FakeDiscord;
pub use discord_gateway::FakeGateway;
pub use faults::Hiccup;
pub use github::FakeGithub;
pub use inbox::{started_on_this_thread, Inbox, Recorded};
pub use slack::FakeSlack;
pub use slack_socket::FakeSocketMode;
