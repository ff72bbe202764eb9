//! GitHub: the webhook receiver (`POST /webhooks/github`, SPEC §5.2) and the wire types it reads.
//!
//! Code map:
//! - `webhook.rs` is the HTTP edge: route switched on by `[github]`, 25 MB body, signature over
//!   the raw bytes before anything parses them, the delivery headers, the `{"ok":…}` replies.
//! - `events.rs` says what each event means for Greenlight: a deployment result for the engine,
//!   a workflow run for the release log, a protection-rule gate for storage; or why it is ignored.
//! - `payloads.rs` holds GitHub's JSON as serde structs with only the fields used.
//!
//! Architecture invariant: only this module knows GitHub's JSON; the engine and storage get
//! typed reports (`DeploymentReport`, `NewGithubGate`, `NewAuditEntry`).

mod events;
pub mod payloads;
pub mod webhook;

/// GitHub caps webhook payloads at 25 MB (REFERENCE §3.1); the rest of the API keeps 1 MB.
pub const WEBHOOK_BODY_LIMIT: usize = 25 * 1024 * 1024;

/// The `source` under which GitHub delivery ids are remembered (`webhook_deliveries`).
pub const DELIVERY_SOURCE: &str = "github";
