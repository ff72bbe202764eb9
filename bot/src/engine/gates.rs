//! GitHub deployment protection rules in the approval flow (SPEC §5.2): a new gate joins the
//! approval request of its sha, or is answered at once when the outcome is already known; gates
//! left waiting are rejected when the previous environment fails, or when they expire.
//!
//! Answering a gate is always [`answer_gate`]: the gate row and its callback in the outbox are
//! written together, so a gate is answered exactly when GitHub will be told.

use chrono::{DateTime, Utc};
use greenlight_commands::{
    AppName, ApprovalState, DecisionVerdict, DeploymentState, EnvironmentName,
};
use greenlight_storage::{
    approvals, decisions, deployments, gates, locks, outbox, releases, AnyConnection,
    ApprovalRequest, Deployment, GateAnswer, GithubGate, Lock, Release, StorageError,
};
use serde::Serialize;

use super::audit::{self, Entry, GREENLIGHT};
use super::github_effect::GithubEffect;
use super::{promotion, Engine};
use crate::clock::span;
use crate::config::Config;

/// What became of a protection rule when it arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum GateOutcome {
    /// Answered at once (the request was decided, or the previous environment failed).
    Answered { state: GateAnswer, comment: String },
    /// An approval request waits; the gate is answered when it ends.
    Joined { approval_request_id: i64 },
    /// Nothing to decide on yet (the sha is not healthy in the previous environment).
    Waiting { reason: String },
}

/// Decides a gate that was just recorded, in the same write: joins the approval request of its
/// release and environment, answers it from a request that already ended or from a failure in
/// the previous environment, or leaves it waiting for that environment (with a status report).
pub async fn join_new_github_gate(
    conn: &mut AnyConnection,
    config: &Config,
    gate: &GithubGate,
    now: DateTime<Utc>,
) -> Result<GateOutcome, StorageError> {
    let Some(after) = config
        .environment(&gate.app, &gate.environment)
        .and_then(|environment| environment.after())
        .cloned()
    else {
        return Ok(GateOutcome::Waiting {
            reason: format!(
                "environment {} of app {} is not gated",
                gate.environment, gate.app
            ),
        });
    };
    let Some(release) = releases::find_release(conn, &gate.app, &gate.sha).await? else {
        let reason = format!(
            "Greenlight has not seen {} {} yet; it waits to become healthy in {after}",
            gate.app,
            gate.sha.short()
        );
        return report_waiting(conn, gate, reason, now).await;
    };
    let latest = approvals::latest_approval_request(conn, release.id, &gate.environment).await?;
    // An approval answers the gates of its own time: past `approval_timeout` a new protection
    // rule (a re-run job, say) asks the reviewers again (SPEC §10).
    let ask_again = latest
        .as_ref()
        .is_some_and(|request| approval_is_stale(config, request, now));
    if let Some(request) = latest.filter(|_| !ask_again) {
        return from_request(conn, gate, &request, now).await;
    }
    let previous = deployments::latest_deployment(conn, release.id, &after).await?;
    if let Some(reason) = previous.as_ref().and_then(|d| failure_reason(d, &after)) {
        answer_gate(conn, gate.id, GateAnswer::Rejected, &reason, now).await?;
        return Ok(GateOutcome::Answered {
            state: GateAnswer::Rejected,
            comment: reason,
        });
    }
    match previous.filter(|deployment| deployment.healthy_at.is_some()) {
        Some(healthy) if ask_again => {
            promotion::ask_again(conn, config, &release, &gate.environment, &healthy, now).await?;
            after_opening(conn, config, gate, now).await
        }
        Some(healthy) => open_request(conn, config, gate, &release, &healthy, now).await,
        None => {
            let reason = format!(
                "Waiting for {} {} to become healthy in {after}; the approval request opens then",
                gate.app,
                gate.sha.short()
            );
            report_waiting(conn, gate, reason, now).await
        }
    }
}

/// The release is healthy in the previous environment but has no request (it predates the
/// gate's configuration, or a newer release was already waiting): the protection rule opens
/// it, as the CI event would have, unless a newer release waits, which supersedes this one.
async fn open_request(
    conn: &mut AnyConnection,
    config: &Config,
    gate: &GithubGate,
    release: &Release,
    healthy: &Deployment,
    now: DateTime<Utc>,
) -> Result<GateOutcome, StorageError> {
    promotion::on_healthy(conn, config, release, healthy, now).await?;
    after_opening(conn, config, gate, now).await
}

/// The gate after its release's request was (re)opened: joined to it, or rejected because a
/// newer release waits in its place.
async fn after_opening(
    conn: &mut AnyConnection,
    config: &Config,
    gate: &GithubGate,
    now: DateTime<Utc>,
) -> Result<GateOutcome, StorageError> {
    let release = releases::find_release(conn, &gate.app, &gate.sha)
        .await?
        .ok_or_else(|| StorageError::not_found(format!("release {}", gate.sha)))?;
    if let Some(request) =
        approvals::latest_approval_request(conn, release.id, &gate.environment).await?
    {
        if request.state == ApprovalState::Waiting || !approval_is_stale(config, &request, now) {
            return from_request(conn, gate, &request, now).await;
        }
    }
    let Some(newer) =
        approvals::waiting_approval_request(conn, &gate.app, &gate.environment).await?
    else {
        return Ok(GateOutcome::Waiting {
            reason: format!(
                "no approval request could be opened for {} in {}",
                gate.sha.short(),
                gate.environment
            ),
        });
    };
    let comment = format!(
        "superseded by {}, which is waiting for approval",
        newer.sha.short()
    );
    answer_gate(conn, gate.id, GateAnswer::Rejected, &comment, now).await?;
    Ok(GateOutcome::Answered {
        state: GateAnswer::Rejected,
        comment,
    })
}

/// Rejects the gates still waiting on `deployment`'s release in the environments it gates,
/// now that it failed or turned faulty there. Call in the write that recorded the failure.
/// Gates that joined a request are left to the request.
pub(super) async fn reject_gates_after_failure(
    conn: &mut AnyConnection,
    config: &Config,
    deployment: &Deployment,
    now: DateTime<Utc>,
) -> Result<u32, StorageError> {
    let Some(reason) = failure_reason(deployment, &deployment.environment) else {
        return Ok(0);
    };
    let Some(app) = config.app(&deployment.app) else {
        return Ok(0);
    };
    let mut answered = 0;
    for target in app.environments_after(&deployment.environment) {
        if approvals::latest_approval_request(conn, deployment.release_id, &target.name)
            .await?
            .is_some()
        {
            continue;
        }
        for gate in
            gates::waiting_github_gates(conn, &deployment.app, &target.name, &deployment.sha)
                .await?
        {
            if answer_gate(conn, gate.id, GateAnswer::Rejected, &reason, now).await? {
                answered += 1;
            }
        }
    }
    Ok(answered)
}

/// Answers waiting gate `id` and queues the callback, in the caller's write. `false` when it
/// was answered already (by another replica, or a timer that ran first).
pub(super) async fn answer_gate(
    conn: &mut AnyConnection,
    id: i64,
    answer: GateAnswer,
    comment: &str,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let gate = match gates::answer_github_gate(conn, id, answer, Some(comment), now).await {
        Ok(gate) => gate,
        Err(error) if error.is_conflict() => return Ok(false),
        Err(error) => return Err(error),
    };
    outbox::enqueue_outbox(
        conn,
        &GithubEffect::AnswerGate { gate: id }.outbox_item(now),
    )
    .await?;
    let entry = Entry::GithubGateAnswered {
        gate: &gate,
        answer,
        comment,
    };
    audit::append(conn, GREENLIGHT, &entry, now).await?;
    Ok(true)
}

/// Answers the gates a lock held back, now that `environment` was unlocked: each gate whose
/// release has an approval that is not stale is approved. Call in the unlock's write.
pub(super) async fn answer_held_gates(
    conn: &mut AnyConnection,
    config: &Config,
    app: &AppName,
    environment: &EnvironmentName,
    now: DateTime<Utc>,
) -> Result<u32, StorageError> {
    let mut answered = 0;
    for gate in gates::waiting_github_gates_in(conn, app, environment).await? {
        let Some(release) = releases::find_release(conn, app, &gate.sha).await? else {
            continue;
        };
        let Some(request) =
            approvals::approved_request_of_release(conn, release.id, environment).await?
        else {
            continue;
        };
        if approval_is_stale(config, &request, now) {
            continue;
        }
        if let GateOutcome::Answered { .. } = from_request(conn, &gate, &request, now).await? {
            answered += 1;
        }
    }
    Ok(answered)
}

/// Whether an approved request is too old to answer a new gate: decided longer ago than the
/// environment's `approval_timeout`.
fn approval_is_stale(config: &Config, request: &ApprovalRequest, now: DateTime<Utc>) -> bool {
    if request.state != ApprovalState::Approved {
        return false;
    }
    let Some(gate) = config
        .environment(&request.app, &request.environment)
        .and_then(|environment| environment.gate.as_ref())
    else {
        return true;
    };
    let decided_at = request.decided_at.unwrap_or(request.updated_at);
    now - decided_at > span(gate.approval_timeout)
}

/// What GitHub is told while a lock holds an approved gate.
fn held_by_lock(lock: &Lock) -> String {
    format!(
        "approved, but {} is locked by {} ({}); the deploy may run after /unlock",
        lock.environment, lock.locked_by, lock.reason
    )
}

impl Engine {
    /// Rejects every gate past its deadline with the comment "expired" (SPEC §2), naming the
    /// lock when one held it back (SPEC §10). Returns how many were answered.
    pub(super) async fn expire_github_gates(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<u32, StorageError> {
        let mut expired = 0;
        for gate in self.storage.due_github_gates(now, limit).await? {
            let (id, app, environment) = (gate.id, gate.app.clone(), gate.environment.clone());
            let answered = self
                .storage
                .write(move |conn| {
                    Box::pin(async move {
                        let comment = match locks::active_lock(conn, &app, &environment).await? {
                            Some(lock) => format!(
                                "expired: {} is locked by {} ({})",
                                lock.environment, lock.locked_by, lock.reason
                            ),
                            None => "expired".to_owned(),
                        };
                        answer_gate(conn, id, GateAnswer::Rejected, &comment, now).await
                    })
                })
                .await?;
            if answered {
                tracing::info!(gate = gate.id, app = %gate.app, environment = %gate.environment, sha = %gate.sha, "GitHub protection rule expired");
                expired += 1;
            }
        }
        Ok(expired)
    }
}

/// The gate of a release whose request exists: joined while it waits, answered from its
/// outcome once it ended (with the same comments the request's own transitions send).
async fn from_request(
    conn: &mut AnyConnection,
    gate: &GithubGate,
    request: &ApprovalRequest,
    now: DateTime<Utc>,
) -> Result<GateOutcome, StorageError> {
    let (state, comment) = match request.state {
        ApprovalState::Waiting => {
            return Ok(GateOutcome::Joined {
                approval_request_id: request.id,
            })
        }
        ApprovalState::Approved => {
            // Answering `approved` lets GitHub run the job: a lock holds it until `/unlock`.
            if let Some(lock) = locks::active_lock(conn, &gate.app, &gate.environment).await? {
                let reason = held_by_lock(&lock);
                return report_waiting(conn, gate, reason, now).await;
            }
            let approvers: Vec<String> = decisions::approvers(conn, request.id)
                .await?
                .iter()
                .map(ToString::to_string)
                .collect();
            (
                GateAnswer::Approved,
                format!("approved in Greenlight by {}", approvers.join(", ")),
            )
        }
        ApprovalState::Rejected => {
            let rejection = decisions::list_decisions(conn, request.id)
                .await?
                .into_iter()
                .rev()
                .find(|d| d.verdict == DecisionVerdict::Reject && d.refused_reason.is_none());
            let reason = request.outcome_comment.clone().unwrap_or_default();
            let comment = match rejection.and_then(|decision| decision.person) {
                Some(person) => format!("rejected by {person}: {reason}"),
                None => format!("rejected in Greenlight: {reason}"),
            };
            (GateAnswer::Rejected, comment)
        }
        ApprovalState::Expired | ApprovalState::Superseded | ApprovalState::Cancelled => (
            GateAnswer::Rejected,
            request
                .outcome_comment
                .clone()
                .unwrap_or_else(|| request.state.to_string()),
        ),
    };
    answer_gate(conn, gate.id, state, &comment, now).await?;
    Ok(GateOutcome::Answered { state, comment })
}

/// Why a deployment in the previous environment rules its release out, if it does.
fn failure_reason(deployment: &Deployment, environment: &impl std::fmt::Display) -> Option<String> {
    match deployment.state {
        DeploymentState::Faulty => {
            let failed: Vec<&str> = deployment
                .smoke
                .iter()
                .filter(|check| !check.passed())
                .map(|check| check.name.as_str())
                .collect();
            Some(if failed.is_empty() {
                format!("smoke checks failed in {environment}")
            } else {
                format!(
                    "smoke checks failed in {environment}: {}",
                    failed.join(", ")
                )
            })
        }
        DeploymentState::Failed => Some(format!("deploy to {environment} failed")),
        DeploymentState::RolledBack => Some(format!("rolled back in {environment}")),
        _ => None,
    }
}

/// Leaves the gate waiting and tells GitHub why, once per gate.
async fn report_waiting(
    conn: &mut AnyConnection,
    gate: &GithubGate,
    reason: String,
    now: DateTime<Utc>,
) -> Result<GateOutcome, StorageError> {
    let status = GithubEffect::GateStatus {
        gate: gate.id,
        comment: reason.clone(),
    };
    outbox::enqueue_outbox(conn, &status.outbox_item(now)).await?;
    Ok(GateOutcome::Waiting { reason })
}
