//! Loads what a decision depends on into the pure core's `RequestSnapshot`.

use greenlight_commands::{Approvals, PersonName, RequestSnapshot};
use greenlight_storage::approvals::{self, DecisionContext};
use greenlight_storage::{decisions, AnyConnection, ApprovalRequest, StorageError};

use crate::config::Config;
use crate::stored_policy::StoredPolicy;

/// Whose decision the snapshot is for, which decides how much of the approvals it reads.
#[derive(Debug, Clone, Copy)]
pub enum Reading<'a> {
    /// Every approver by name (expiry, supersession, a held deploy starting).
    Everyone,
    /// A click by this person (`None`: not in `[people]`): the count, and whether they
    /// approved before, unless one more approval completes the request. A click then costs
    /// the same with 10 or 10,000 approvals.
    DecisionBy(Option<&'a PersonName>),
}

/// The snapshot of `request`; reads its policy from the database.
pub async fn load_snapshot(
    conn: &mut AnyConnection,
    config: &Config,
    request: &ApprovalRequest,
) -> Result<RequestSnapshot, StorageError> {
    let policy = StoredPolicy::load(conn, request).await?;
    snapshot_with(conn, config, request, &policy, Reading::Everyone).await
}

/// The snapshot of `request` with its (cached) `policy`.
pub async fn snapshot_with(
    conn: &mut AnyConnection,
    config: &Config,
    request: &ApprovalRequest,
    policy: &StoredPolicy,
    reading: Reading<'_>,
) -> Result<RequestSnapshot, StorageError> {
    let context = approvals::decision_context(conn, request).await?;
    let approvals = load_approvals(conn, request, reading).await?;
    Ok(snapshot_from(config, request, policy, context, approvals))
}

/// The snapshot of `request` from what was read for it (a batch reads many requests' at once).
pub fn snapshot_from(
    config: &Config,
    request: &ApprovalRequest,
    policy: &StoredPolicy,
    context: DecisionContext,
    approvals: Approvals,
) -> RequestSnapshot {
    RequestSnapshot {
        app: request.app.clone(),
        environment: request.environment.clone(),
        sha: request.sha.clone(),
        state: request.state,
        policy: policy.policy.clone(),
        author: policy.author(config, context.author.as_deref()),
        approvals,
        locked: context.lock_reason,
        github_gate: context.github_gate,
    }
}

pub(super) async fn load_approvals(
    conn: &mut AnyConnection,
    request: &ApprovalRequest,
    reading: Reading<'_>,
) -> Result<Approvals, StorageError> {
    let count = request.approvals_counted;
    let person = match reading {
        Reading::DecisionBy(person)
            if !Approvals::names_needed(count, request.required_approvals) =>
        {
            person
        }
        _ => {
            let everyone = decisions::approvers(conn, request.id).await?;
            return Ok(Approvals::all(everyone.into_iter().collect()));
        }
    };
    let mut known = Vec::new();
    if let Some(person) = person {
        if decisions::has_approved(conn, request.id, person).await? {
            known.push(person.clone());
        }
    }
    Ok(Approvals::counted(count, known))
}
