//! GitHub deliveries that are not deployment results (those go through
//! [`intake`](super::intake)): a completed workflow run for the release log, and a deployment
//! protection rule's gate, decided in the write that stores it. Each is one write with its
//! delivery id, so a redelivery changes nothing.

use chrono::{DateTime, Utc};
use greenlight_commands::{AppName, CommitSha, EnvironmentName};
use greenlight_storage::{
    deliveries, gates, AnyConnection, Backend, GithubGate, NewAuditEntry, NewGithubGate,
    StorageError,
};

use super::audit::{self, Entry, WorkflowRun};
use super::batch_queue::{runners_for, BatchQueue};
use super::decisions::first_deliveries;
use super::gates::{join_new_github_gate, GateOutcome};
use super::{Engine, InboundDelivery};
use crate::clock::span;

/// A `workflow_run` that completed, for the release log of every app built from its repository.
#[derive(Debug, Clone)]
pub struct CompletedWorkflowRun {
    pub delivery: InboundDelivery,
    /// The apps built from the run's repository.
    pub apps: Vec<AppName>,
    pub sha: CommitSha,
    /// Who ran it, e.g. `github:octocat`.
    pub actor: String,
    /// What the run says about itself (workflow, number, conclusion, times).
    pub detail: WorkflowRun,
}

/// A deployment protection rule GitHub holds a job on until it is answered.
#[derive(Debug, Clone)]
pub struct GateRequest {
    pub delivery: InboundDelivery,
    /// A gated environment of `app`; the gate expires after its `approval_timeout`.
    pub app: AppName,
    pub environment: EnvironmentName,
    pub sha: CommitSha,
    /// Where the answer goes, already checked to be on the configured GitHub API.
    pub callback_url: String,
    pub installation_id: Option<i64>,
    /// The environment as GitHub names it.
    pub github_environment: String,
    pub github_deployment_id: Option<i64>,
    /// The event that started the job (`push`, `workflow_dispatch`, …).
    pub trigger: Option<String>,
    pub actor: String,
}

/// The gate a protection rule is stored as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedGate {
    pub gate: GithubGate,
    /// What became of it, when this delivery created it; `None` when another delivery had
    /// already stored the same gate (its callback URL is its key).
    pub outcome: Option<GateOutcome>,
}

impl Engine {
    /// Adds `workflow_run_completed` to the release log of each app. `false` when the delivery
    /// was seen before, and nothing was written. Runs arriving while others are being written
    /// are stored together in the next write (a busy repository's webhooks).
    pub async fn record_workflow_run(
        &self,
        run: CompletedWorkflowRun,
    ) -> Result<bool, StorageError> {
        let now = self.clock.now();
        let entries: Vec<NewAuditEntry> = run
            .apps
            .iter()
            .map(|app| {
                let entry = Entry::WorkflowRunCompleted {
                    app,
                    run: &run.detail,
                };
                entry.to_new(&run.actor, now)
            })
            .collect();
        let writer = || {
            let (storage, clock) = (self.storage.clone(), self.clock.clone());
            move |runs: Vec<RunEntries>| {
                let storage = storage.clone();
                let now = clock.now();
                async move {
                    storage
                        .write(move |conn| Box::pin(record_runs(conn, runs, now)))
                        .await
                }
            }
        };
        let run = RunEntries {
            delivery: run.delivery,
            entries,
        };
        self.workflow_runs
            .submit(run, &self.background, "workflow run batches", writer)
            .await
    }

    /// Stores the gate of a protection rule and, when it is new, joins it to its approval
    /// request or answers it at once ([`join_new_github_gate`]) in the same write. `None` when
    /// the delivery was seen before.
    pub async fn record_github_gate(
        &self,
        request: GateRequest,
    ) -> Result<Option<RecordedGate>, StorageError> {
        let now = self.clock.now();
        // The handler only passes gated environments (it ignores the others, saying why).
        let approval_timeout = self
            .config
            .environment(&request.app, &request.environment)
            .and_then(|environment| environment.gate.as_ref())
            .map(|gate| gate.approval_timeout)
            .ok_or_else(|| {
                StorageError::not_found(format!(
                    "approval gate of {} {}",
                    request.app, request.environment
                ))
            })?;
        let new = NewGithubGate {
            app: request.app,
            environment: request.environment,
            sha: request.sha,
            callback_url: request.callback_url,
            installation_id: request.installation_id,
            github_environment: request.github_environment,
            received_at: now,
            expires_at: now + span(approval_timeout),
        };
        let (delivery, actor, trigger) = (request.delivery, request.actor, request.trigger);
        let deployment_id = request.github_deployment_id;
        let config = self.config.clone();
        let stored = self
            .storage
            .write(move |conn| {
                Box::pin(async move {
                    if !first_time(conn, &delivery, now).await? {
                        return Ok(None);
                    }
                    let upserted = gates::record_github_gate(conn, &new).await?;
                    let created = upserted.is_created();
                    let mut gate = upserted.into_inner();
                    let mut outcome = None;
                    if created {
                        let entry = Entry::GithubGateRequested {
                            gate: &gate,
                            github_deployment_id: deployment_id,
                            event: trigger.as_deref(),
                        };
                        audit::append(conn, &actor, &entry, now).await?;
                        // Decided in the same write, so a gate is never left waiting on an
                        // outcome that is already known.
                        outcome = Some(join_new_github_gate(conn, &config, &gate, now).await?);
                        gate = gates::get_github_gate(conn, gate.id).await?;
                    }
                    Ok(Some(RecordedGate { gate, outcome }))
                })
            })
            .await?;
        if stored
            .as_ref()
            .is_some_and(|stored| stored.outcome.is_some())
        {
            self.outbox_wakeup.notify_one();
        }
        Ok(stored)
    }
}

/// A completed run's release-log entries, waiting for their batch.
#[derive(Debug)]
pub(crate) struct RunEntries {
    delivery: InboundDelivery,
    entries: Vec<NewAuditEntry>,
}

/// Runs waiting to be stored together.
pub(crate) type WorkflowRunQueue = BatchQueue<RunEntries, bool>;

pub(super) fn workflow_run_queue(backend: Backend) -> WorkflowRunQueue {
    // 128 runs of one app: 128 rows in each of two statements.
    BatchQueue::new(
        "greenlight_workflow_runs_waiting",
        128,
        runners_for(backend),
    )
}

/// Stores the runs whose delivery is new, in two statements; for each, whether it was new.
async fn record_runs(
    conn: &mut AnyConnection,
    runs: Vec<RunEntries>,
    now: DateTime<Utc>,
) -> Result<Vec<Result<bool, StorageError>>, StorageError> {
    let deliveries: Vec<_> = runs.iter().map(|run| Some(&run.delivery)).collect();
    let fresh = first_deliveries(conn, &deliveries, now).await?;
    let entries: Vec<&NewAuditEntry> = runs
        .iter()
        .zip(&fresh)
        .filter(|(_, fresh)| **fresh)
        .flat_map(|(run, _)| &run.entries)
        .collect();
    greenlight_storage::audit::record_audits(conn, &entries).await?;
    Ok(fresh.into_iter().map(Ok).collect())
}

/// Records the delivery as seen in the write that applies it; `false` for a redelivery, which
/// must then change nothing.
async fn first_time(
    conn: &mut AnyConnection,
    delivery: &InboundDelivery,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    deliveries::record_webhook_delivery(conn, delivery.source, &delivery.id, now).await
}
