//! Greenlight's pure core: domain types and state vocabulary shared by every crate.
//!
//! Architecture invariant: nothing here does IO, spawns tasks or reads a clock. Time is always
//! an argument. Nothing here knows the JSON of Slack, Discord or GitHub.

pub mod domain;
pub mod image;
pub mod states;

pub use domain::{AppName, CommitSha, DomainError, EnvironmentName, PersonName};
pub use image::{ImageRef, ImageRefError};
pub use states::{ApprovalState, DecisionVerdict, DeploymentKind, DeploymentState, Platform};
