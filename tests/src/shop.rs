//! `shop`, the app the end-to-end tests gate: its names as Greenlight's types, and its images.

use greenlight_commands::{AppName, CommitSha, EnvironmentName};

pub fn shop() -> AppName {
    AppName::parse("shop").expect("app name")
}

pub fn environment(name: &str) -> EnvironmentName {
    EnvironmentName::parse(name).expect("environment name")
}

pub fn staging() -> EnvironmentName {
    environment("staging")
}

pub fn production() -> EnvironmentName {
    environment("production")
}

pub fn sha(sha: &str) -> CommitSha {
    CommitSha::parse(sha).expect("commit SHA")
}

/// shop's image for release `sha`, tagged with the commit as CI pushes it.
pub fn image(sha: &str) -> String {
    format!("ghcr.io/acme/shop:{sha}")
}
