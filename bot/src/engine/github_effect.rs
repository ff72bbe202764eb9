//! What the engine asks of GitHub, as stored in the outbox (the `github` deliverer sends it):
//! - `github.answer_gate` `{"gate": 7}`: send the answer stored on gate 7.
//! - `github.gate_status` `{"gate": 7, "comment": "…"}`: why gate 7 still waits.
//! - `github.card_commits` `{"request": 42}`: fetch the commits approval request 42's card
//!   lists (GitHub's compare API), store them and edit the card.

use chrono::{DateTime, Utc};
use greenlight_storage::NewOutboxItem;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::outbox::read_payload as read;

pub const ANSWER_GATE: &str = "github.answer_gate";
pub const GATE_STATUS: &str = "github.gate_status";
pub const CARD_COMMITS: &str = "github.card_commits";

/// One thing to tell GitHub, as stored in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GithubEffect {
    /// Send the answer stored on the gate (approved or rejected, with its comment).
    AnswerGate { gate: i64 },
    /// Say why the gate still waits; no `state`, so GitHub keeps waiting.
    GateStatus { gate: i64, comment: String },
    /// Fetch the commits between what runs in the request's environment and its release.
    CardCommits { request: i64 },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestPayload {
    request: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GatePayload {
    gate: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GateStatusPayload {
    gate: i64,
    comment: String,
}

impl GithubEffect {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AnswerGate { .. } => ANSWER_GATE,
            Self::GateStatus { .. } => GATE_STATUS,
            Self::CardCommits { .. } => CARD_COMMITS,
        }
    }

    pub fn payload(&self) -> Value {
        match self {
            Self::AnswerGate { gate } => json!({ "gate": gate }),
            Self::GateStatus { gate, comment } => json!({ "gate": gate, "comment": comment }),
            Self::CardCommits { request } => json!({ "request": request }),
        }
    }

    /// The outbox row; write it in the same transaction as the gate's change. A gate is
    /// answered once and reports its status at most once, whatever writes this twice; a
    /// request's commits are fetched once.
    pub fn outbox_item(&self, at: DateTime<Utc>) -> NewOutboxItem {
        let id = match self {
            Self::AnswerGate { gate } | Self::GateStatus { gate, .. } => gate,
            Self::CardCommits { request } => request,
        };
        NewOutboxItem {
            kind: self.kind().to_owned(),
            idempotency_key: format!("{}:{id}", self.kind()),
            payload: self.payload(),
            at,
            not_before: None,
        }
    }

    /// Reads an outbox item back; the error says what is wrong with it.
    pub fn parse(kind: &str, payload: &Value) -> Result<Self, String> {
        match kind {
            ANSWER_GATE => {
                let p: GatePayload = read(kind, payload)?;
                Ok(Self::AnswerGate { gate: p.gate })
            }
            GATE_STATUS => {
                let p: GateStatusPayload = read(kind, payload)?;
                Ok(Self::GateStatus {
                    gate: p.gate,
                    comment: p.comment,
                })
            }
            CARD_COMMITS => {
                let p: RequestPayload = read(kind, payload)?;
                Ok(Self::CardCommits { request: p.request })
            }
            other => Err(format!("unknown GitHub effect {other:?}")),
        }
    }
}
