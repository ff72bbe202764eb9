//! Greenlight's pure core: domain types, state vocabulary, the approval policy and its state
//! machine, shared by every crate.
//!
//! Code map: `domain` and `image` hold the validated newtypes; `states` the state words of the
//! spec; `policy` who may decide on an approval request and when; `approval` the request's
//! transitions (decide, expire, supersede, remind) and `deployment` a deployment's (reported,
//! verified), each as `(next state, effects)`.
//!
//! Architecture invariant: nothing here does IO, spawns tasks or reads a clock. Time is always
//! an argument. Nothing here knows the JSON of Slack, Discord or GitHub.

pub mod approval;
pub mod chat;
pub mod deployment;
pub mod domain;
pub mod image;
pub mod policy;
pub mod states;
pub mod suggest;

// Types at the root; the functions stay behind their module (`approval::decide`,
// `approval::tick`) so call sites say which machine they drive. The deployment machine's types
// stay behind `deployment::` too, as their names (`Effect`, `Snapshot`) would be ambiguous here.
pub use approval::{
    Approvals, Decision, Effect, RequestSnapshot, StateChange, Transition, Verdict,
};
pub use domain::{AppName, CommitSha, DomainError, EnvironmentName, PersonName};
pub use image::{ImageRef, ImageRefError};
pub use policy::{Actor, Policy, Refusal};
pub use states::{
    ApprovalState, DecisionVerdict, DeploymentKind, DeploymentState, GateAnswer, Platform,
};

#[cfg(test)]
mod parser_properties;
