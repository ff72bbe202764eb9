//! Requests into Greenlight as Slack, Discord and GitHub send them: their documented payloads,
//! signed exactly as each platform signs, so tests drive the real verification path.

pub mod discord;
pub mod github;
pub mod slack;
