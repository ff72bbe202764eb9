//! GitHub: the webhook receiver (`POST /webhooks/github`, SPEC §5.2), the wire types it reads,
//! and the GitHub App client that answers deployment protection rules from the outbox.
//!
//! Code map:
//! - `webhook.rs` is the HTTP edge: route switched on by `[github]`, 25 MB body, signature over
//!   the raw bytes before anything parses them, the delivery headers, the `{"ok":…}` replies.
//! - `events.rs` says what each event means for Greenlight: a deployment result for the engine,
//!   a workflow run for the release log, a protection-rule gate the engine joins to its approval
//!   request or answers at once; or why it is ignored.
//! - `payloads.rs` holds GitHub's JSON as serde structs with only the fields used.
//! - `client.rs` calls GitHub as the App: RS256 JWT, cached installation tokens, and the
//!   sorting of GitHub's answers into "try again" and "refused".
//! - `gate_answer.rs` is the outbox deliverer for `github.*` items: the protection rule's
//!   callback `{environment_name, state, comment}`, and the commit list of an approval card.
//! - `compare.rs` reads GitHub's compare API into that list (SPEC §14, "Card context").
//!
//! Architecture invariant: only this module knows GitHub's JSON, and it never writes state: the
//! engine gets typed reports (`DeploymentReport`, `CompletedWorkflowRun`, `GateRequest`) and
//! queues [`GithubEffect`]s.
//!
//! Wiring: `GithubDeliverer::from_config(&config, engine)?` reads the App key once at
//! start-up; register it with `OutboxWorker::with_deliverer("github", …)`.

pub mod client;
pub mod compare;
mod events;
pub mod gate_answer;
pub mod payloads;
pub mod webhook;

pub use crate::engine::GithubEffect;
pub use client::{AppKey, GithubAppClient, GithubError};
pub use gate_answer::{GithubDeliverer, SetupError};

/// GitHub caps webhook payloads at 25 MB (REFERENCE §3.1); the rest of the API keeps 1 MB.
pub const WEBHOOK_BODY_LIMIT: usize = 25 * 1024 * 1024;

/// The `source` under which GitHub delivery ids are remembered (`webhook_deliveries`).
pub const DELIVERY_SOURCE: &str = "github";
