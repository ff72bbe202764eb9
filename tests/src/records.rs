//! What Greenlight recorded, read straight from its database: request states, decisions,
//! approvers and the audit log.

use greenlight::cards::CardKey;
use greenlight::chat::ChatEffect;
use greenlight_commands::Platform;
use greenlight_storage::{AuditEntry, AuditFilter, Due, OutboxItem};

use crate::TestApp;

impl TestApp {
    /// The state of approval request `id`, as its word (`waiting`, `approved`, …).
    pub async fn request_state(&self, id: i64) -> String {
        self.storage()
            .approval_request(id)
            .await
            .expect("approval request")
            .state
            .to_string()
    }

    /// How many people approve request `id` so far.
    pub async fn approver_count(&self, id: i64) -> usize {
        self.storage().approvers(id).await.expect("approvers").len()
    }

    /// How many decisions (accepted or refused) were recorded on request `id`.
    pub async fn decision_count(&self, id: i64) -> usize {
        self.storage().decisions(id).await.expect("decisions").len()
    }

    /// The audit entries of `kind`, newest first (of the last thousand).
    pub async fn audit(&self, kind: &str) -> Vec<AuditEntry> {
        self.storage()
            .list_audit(&AuditFilter {
                limit: 1000,
                ..AuditFilter::default()
            })
            .await
            .expect("audit log")
            .into_iter()
            .filter(|entry| entry.kind == kind)
            .collect()
    }

    /// Why each decision on request `id` was refused, in the order they came (empty for
    /// accepted ones).
    pub async fn refusal_reasons(&self, id: i64) -> Vec<String> {
        self.storage()
            .decisions(id)
            .await
            .expect("decisions")
            .into_iter()
            .map(|decision| decision.refused_reason.unwrap_or_default())
            .collect()
    }

    /// The edit of approval card `request` on `platform` that waits in the outbox (due, or
    /// waiting for a retry or the platform's pause), which later edits of the card join.
    pub async fn waiting_card_edit(&self, platform: Platform, request: i64) -> Option<OutboxItem> {
        let edit = ChatEffect::UpdateCard {
            card: CardKey::Approval(request),
        };
        let mut conn = self.storage().reader().await.expect("reader");
        greenlight_storage::outbox::unclaimed_pending_outbox(
            &mut conn,
            &edit.kind(platform),
            &edit.payload(),
            Due::Now(self.clock.now()),
        )
        .await
        .expect("outbox look-up")
    }
}
