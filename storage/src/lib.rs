//! Greenlight's storage: one `Storage` over SQLite or PostgreSQL.
//!
//! Code map:
//! - [`Storage`] (`storage.rs`) is chosen by URL; reads use a pool, every write goes through
//!   [`Storage::write`]. On SQLite that is the group-commit writer (`writer.rs`, `sqlite.rs`).
//! - One module per aggregate. Each operation is a function taking `&mut AnyConnection`, so a
//!   caller can combine several (a transition, its audit entry, its outbox items) in one write;
//!   `Storage` has a method of the same name that runs it alone.
//! - `columns.rs` maps Rust types to the portable column types the `Any` driver can carry.
//!
//! Architecture invariants: every state change is one write with a condition (expected state,
//! or a unique index), so two replicas or two clicks never both act and the loser gets
//! [`StorageError::Conflict`]; the release log is append-only; SQL is shared by both dialects
//! except for the migrations and the few statements that branch on [`Backend`].

mod columns;
mod error;
mod opening;
mod params;
mod script;
mod sqlite;
mod storage;
mod upserted;
mod writer;

pub mod approvals;
pub mod audit;
pub mod cards;
pub mod commits;
pub mod decisions;
pub mod deliveries;
pub mod deployments;
pub mod dora;
pub mod flags;
pub mod gates;
pub mod locks;
pub mod outbox;
pub mod releases;
pub mod replicas;
pub mod timeline;
pub mod views;

pub use error::StorageError;
pub use opening::{Open, Opening};
pub use storage::{Backend, Storage, WRITE_PROBE_EVERY};
pub use upserted::Upserted;
pub use writer::WriteStats;

pub use approvals::{ApprovalRequest, ApprovalSource, ApprovalTransition, NewApprovalRequest};
pub use audit::{AuditEntry, AuditFilter, NewAuditEntry};
pub use cards::ChatMessage;
pub use commits::{CardCommit, CardCommits};
pub use decisions::{Decision, NewDecision};
pub use deployments::{Deployment, DeploymentTransition, NewDeployment, SmokeResult};
pub use dora::{DoraMetrics, DoraWindow, Durations};
pub use flags::{EnvironmentFlags, Flag, FlagChange, FlagTarget, FlagVersion};
pub use gates::{GateAnswer, GithubGate, NewGithubGate};
pub use locks::{Lock, LockOutcome, NewLock};
pub use outbox::{
    Due, NewOutboxItem, OutboxCounts, OutboxDeferral, OutboxItem, OutboxRetry, OutboxState,
};
pub use releases::{NewRelease, Release};
pub use replicas::ReplicaRow;
pub use timeline::{DeployOutcome, FinishedDeploy, ReleaseStory, StoryFilter};
pub use views::{
    EnvironmentOutcome, EnvironmentState, EnvironmentStatus, PendingApproval, ReleaseFilter,
    ReleaseSummary,
};

/// Re-exported so callers can write [`Storage::write`] closures without naming sqlx or futures.
pub use futures::future::BoxFuture;
pub use sqlx::AnyConnection;
