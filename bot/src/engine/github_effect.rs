//! What the engine asks of GitHub, as stored in the outbox (the `github` deliverer sends it):
//! - `github.answer_gate` `{"gate": 7}`: send the answer stored on gate 7.
//! - `github.gate_status` `{"gate": 7, "comment": "…"}`: why gate 7 still waits.

use chrono::{DateTime, Utc};
use greenlight_storage::NewOutboxItem;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::outbox::read_payload as read;

pub const ANSWER_GATE: &str = "github.answer_gate";
pub const GATE_STATUS: &str = "github.gate_status";

/// One thing to tell GitHub, as stored in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GithubEffect {
    /// Send the answer stored on the gate (approved or rejected, with its comment).
    AnswerGate { gate: i64 },
    /// Say why the gate still waits; no `state`, so GitHub keeps waiting.
    GateStatus { gate: i64, comment: String },
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
        }
    }

    pub fn payload(&self) -> Value {
        match self {
            Self::AnswerGate { gate } => json!({ "gate": gate }),
            Self::GateStatus { gate, comment } => json!({ "gate": gate, "comment": comment }),
        }
    }

    /// The outbox row; write it in the same transaction as the gate's change. A gate is
    /// answered once and reports its status at most once, whatever writes this twice.
    pub fn outbox_item(&self, at: DateTime<Utc>) -> NewOutboxItem {
        let gate = match self {
            Self::AnswerGate { gate } | Self::GateStatus { gate, .. } => gate,
        };
        NewOutboxItem {
            kind: self.kind().to_owned(),
            idempotency_key: format!("{}:{gate}", self.kind()),
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
            other => Err(format!("unknown GitHub effect {other:?}")),
        }
    }
}
