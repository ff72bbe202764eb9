//! The release log's entries as types: every kind the engine writes, each with its one detail
//! shape, turned into a `NewAuditEntry` here and nowhere else.
//!
//! The kind words and detail keys are what the release log API shows, so they never change
//! meaning; new keys may be added.

use chrono::{DateTime, Utc};
use greenlight_commands::chat::Command;
use greenlight_commands::{AppName, CommitSha, EnvironmentName, GateAnswer, Platform, Refusal};
use greenlight_storage::{
    audit, AnyConnection, ApprovalRequest, Deployment, Flag, FlagTarget, GithubGate, Lock,
    NewAuditEntry, Release, StorageError,
};
use serde::Serialize;
use serde_json::{json, Value};

/// Who Greenlight's own actions (timers, the verifier, automatic rollbacks) are attributed to.
pub(crate) const GREENLIGHT: &str = "greenlight";
/// Who CI's reports are attributed to.
pub(crate) const CI: &str = "ci";

/// How the log names someone by their account on a platform (`slack:U0123`,
/// `github:octocat`): people without a `[people]` entry, and GitHub users.
pub(crate) fn platform_user(platform: Platform, user_id: &str) -> String {
    format!("{platform}:{user_id}")
}

/// One thing that happened, with what the release log keeps about it.
#[derive(Debug, Clone)]
pub(crate) enum Entry<'a> {
    /// `release_recorded`: CI reported a build for the first time.
    ReleaseRecorded(&'a Release),
    /// `deployment_<state>`: a deployment reached its current state; `replaced_by` is the
    /// deployment that took its place when that is why it moved.
    Deployment {
        deployment: &'a Deployment,
        replaced_by: Option<i64>,
    },
    /// `unapproved_deploy`: a deployment reached a gated environment around the gate.
    UnapprovedDeploy(&'a Deployment),
    /// `deploy_owed`: an approval released its deploy (`deployer` names who runs it).
    DeployOwed {
        request: &'a ApprovalRequest,
        deployment_id: Option<i64>,
        deployer: &'a str,
    },
    /// `auto_rollback`: what Greenlight did about a faulty release in a gated environment.
    AutoRollback {
        faulty: &'a Deployment,
        rollback_deployment_id: Option<i64>,
        target_sha: Option<&'a CommitSha>,
        failed: &'a str,
        locked: bool,
    },
    /// `rollback_started`: a `/rollback` from `from` to the rollback's release.
    RollbackStarted {
        rollback: &'a Deployment,
        from: &'a CommitSha,
    },
    /// `locked`: the environment was locked, by a person or by Greenlight (while `sha` ran).
    Locked {
        lock: &'a Lock,
        sha: Option<&'a CommitSha>,
    },
    /// `unlocked`: the lock was released.
    Unlocked(&'a Lock),
    /// `approval_requested`: an approval request opened.
    ApprovalRequested(&'a ApprovalRequest),
    /// `approval_superseded`: a newer release took a waiting request's place.
    ApprovalSuperseded(&'a ApprovalRequest),
    /// `deploy_held`: approved, but the environment's lock holds the deploy.
    DeployHeld {
        request: &'a ApprovalRequest,
        lock_reason: &'a str,
    },
    /// `decision_refused`: a click the policy refused.
    DecisionRefused {
        request: &'a ApprovalRequest,
        refusal: &'a Refusal,
    },
    /// `command_refused`: a slash command its typist may not run.
    CommandRefused {
        command: &'a Command,
        reason: String,
    },
    /// `flag_changed`: a feature flag was set (`created` when it did not exist before).
    FlagChanged {
        target: &'a FlagTarget,
        flag: &'a Flag,
        created: bool,
    },
    /// `github_gate_requested`: GitHub asks for our answer on a deployment protection rule.
    GithubGateRequested {
        gate: &'a GithubGate,
        github_deployment_id: Option<i64>,
        event: Option<&'a str>,
    },
    /// `github_gate_answered`: the answer GitHub is being sent.
    GithubGateAnswered {
        gate: &'a GithubGate,
        answer: GateAnswer,
        comment: &'a str,
    },
    /// `workflow_run_completed`: a GitHub Actions run of one of the app's repositories ended.
    WorkflowRunCompleted {
        app: &'a AppName,
        run: &'a WorkflowRun,
    },
}

/// A finished GitHub Actions run as the release log keeps it, for lead time. Fields are as
/// GitHub sent them (a completed run may still say `queued` with a null conclusion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkflowRun {
    pub workflow: Option<String>,
    pub workflow_path: Option<String>,
    pub run_id: i64,
    pub run_number: Option<i64>,
    pub run_attempt: Option<i64>,
    pub event: Option<String>,
    pub status: Option<String>,
    pub conclusion: Option<String>,
    pub head_sha: CommitSha,
    pub head_branch: Option<String>,
    pub html_url: Option<String>,
    pub created_at: Option<String>,
    pub run_started_at: Option<String>,
    pub updated_at: Option<String>,
    pub duration_secs: Option<i64>,
}

/// Where an entry belongs: the columns the log is filtered by.
struct Subject<'a> {
    app: Option<&'a AppName>,
    environment: Option<&'a EnvironmentName>,
    sha: Option<&'a CommitSha>,
}

impl<'a> Subject<'a> {
    fn deployment(deployment: &'a Deployment) -> Self {
        Self {
            app: Some(&deployment.app),
            environment: Some(&deployment.environment),
            sha: Some(&deployment.sha),
        }
    }

    fn request(request: &'a ApprovalRequest) -> Self {
        Self {
            app: Some(&request.app),
            environment: Some(&request.environment),
            sha: Some(&request.sha),
        }
    }

    fn gate(gate: &'a GithubGate) -> Self {
        Self {
            app: Some(&gate.app),
            environment: Some(&gate.environment),
            sha: Some(&gate.sha),
        }
    }
}

impl Entry<'_> {
    /// The entry as stored, done by `actor` at `at`.
    pub(crate) fn to_new(&self, actor: &str, at: DateTime<Utc>) -> NewAuditEntry {
        let subject = self.subject();
        NewAuditEntry {
            occurred_at: at,
            actor: actor.to_owned(),
            app: subject.app.cloned(),
            environment: subject.environment.cloned(),
            sha: subject.sha.cloned(),
            kind: self.kind(),
            detail: self.detail(),
        }
    }

    fn kind(&self) -> String {
        let kind = match self {
            Self::Deployment { deployment, .. } => {
                return format!("deployment_{}", deployment.state)
            }
            Self::ReleaseRecorded(_) => "release_recorded",
            Self::UnapprovedDeploy(_) => "unapproved_deploy",
            Self::DeployOwed { .. } => "deploy_owed",
            Self::AutoRollback { .. } => "auto_rollback",
            Self::RollbackStarted { .. } => "rollback_started",
            Self::Locked { .. } => "locked",
            Self::Unlocked(_) => "unlocked",
            Self::ApprovalRequested(_) => "approval_requested",
            Self::ApprovalSuperseded(_) => "approval_superseded",
            Self::DeployHeld { .. } => "deploy_held",
            Self::DecisionRefused { .. } => "decision_refused",
            Self::CommandRefused { .. } => "command_refused",
            Self::FlagChanged { .. } => "flag_changed",
            Self::GithubGateRequested { .. } => "github_gate_requested",
            Self::GithubGateAnswered { .. } => "github_gate_answered",
            Self::WorkflowRunCompleted { .. } => "workflow_run_completed",
        };
        kind.to_owned()
    }

    fn subject(&self) -> Subject<'_> {
        match self {
            Self::ReleaseRecorded(release) => Subject {
                app: Some(&release.app),
                environment: None,
                sha: Some(&release.sha),
            },
            Self::Deployment { deployment, .. }
            | Self::UnapprovedDeploy(deployment)
            | Self::AutoRollback {
                faulty: deployment, ..
            } => Subject::deployment(deployment),
            Self::RollbackStarted { rollback, from } => Subject {
                sha: Some(from),
                ..Subject::deployment(rollback)
            },
            Self::Locked { lock, sha } => Subject {
                app: Some(&lock.app),
                environment: Some(&lock.environment),
                sha: *sha,
            },
            Self::Unlocked(lock) => Subject {
                app: Some(&lock.app),
                environment: Some(&lock.environment),
                sha: None,
            },
            Self::DeployOwed { request, .. }
            | Self::ApprovalRequested(request)
            | Self::ApprovalSuperseded(request)
            | Self::DeployHeld { request, .. }
            | Self::DecisionRefused { request, .. } => Subject::request(request),
            Self::CommandRefused { command, .. } => Subject {
                app: command.app(),
                environment: None,
                sha: None,
            },
            Self::FlagChanged { target, .. } => Subject {
                app: Some(&target.app),
                environment: Some(&target.environment),
                sha: None,
            },
            Self::GithubGateRequested { gate, .. } | Self::GithubGateAnswered { gate, .. } => {
                Subject::gate(gate)
            }
            Self::WorkflowRunCompleted { app, run } => Subject {
                app: Some(app),
                environment: None,
                sha: Some(&run.head_sha),
            },
        }
    }

    fn detail(&self) -> Value {
        match self {
            Self::ReleaseRecorded(release) => {
                json!({ "image": release.image, "ref": release.git_ref })
            }
            Self::Deployment {
                deployment,
                replaced_by,
            } => deployment_detail(deployment, *replaced_by),
            Self::UnapprovedDeploy(deployment) => {
                json!({ "deployment_id": deployment.id, "state": deployment.state })
            }
            Self::DeployOwed {
                request,
                deployment_id,
                deployer,
            } => json!({
                "approval_request_id": request.id,
                "deployment_id": deployment_id,
                "deployer": deployer,
            }),
            Self::AutoRollback {
                faulty,
                rollback_deployment_id,
                target_sha,
                failed,
                locked,
            } => json!({
                "faulty_deployment_id": faulty.id,
                "rollback_deployment_id": rollback_deployment_id,
                "target_sha": target_sha,
                "failed": failed,
                "locked": locked,
            }),
            Self::RollbackStarted { rollback, from } => json!({
                "deployment_id": rollback.id,
                "from": from,
                "to": rollback.sha,
                "image": rollback.image,
            }),
            Self::Locked { lock, .. } | Self::Unlocked(lock) => json!({
                "reason": lock.reason,
                "locked_by": lock.locked_by,
                "automatic": lock.automatic,
                "locked_at": lock.locked_at,
            }),
            Self::ApprovalRequested(request) | Self::ApprovalSuperseded(request) => json!({
                "approval_request_id": request.id,
                "state": request.state,
                "opens_at": request.opens_at,
                "expires_at": request.expires_at,
                "comment": request.outcome_comment,
            }),
            Self::DeployHeld {
                request,
                lock_reason,
            } => json!({ "approval_request_id": request.id, "lock": lock_reason }),
            Self::DecisionRefused { request, refusal } => json!({
                "approval_request_id": request.id,
                "reason": refusal.as_str(),
                "message": refusal.to_string(),
            }),
            Self::CommandRefused { command, reason } => {
                json!({ "command": format!("{command:?}"), "reason": reason })
            }
            Self::FlagChanged {
                target,
                flag,
                created,
            } => json!({
                "key": flag.key,
                "enabled": flag.enabled,
                "rollout": flag.rollout,
                "reason": target.reason,
                "created": created,
            }),
            Self::GithubGateRequested {
                gate,
                github_deployment_id,
                event,
            } => json!({
                "gate_id": gate.id,
                "github_environment": gate.github_environment,
                "github_deployment_id": github_deployment_id,
                "event": event,
                "installation_id": gate.installation_id,
                "expires_at": gate.expires_at,
            }),
            Self::GithubGateAnswered {
                gate,
                answer,
                comment,
            } => json!({ "gate_id": gate.id, "state": answer, "comment": comment }),
            Self::WorkflowRunCompleted { run, .. } => json!(run),
        }
    }
}

/// One shape for every `deployment_<state>` entry, whoever moved it: what the deployment is,
/// who runs it, what it replaced, its results, whether it went through the gate.
fn deployment_detail(deployment: &Deployment, replaced_by: Option<i64>) -> Value {
    let mut detail = json!({
        "deployment_id": deployment.id,
        "kind": deployment.kind,
        "image": deployment.image,
        "deployer": deployment.deployer,
        "triggered_by": deployment.triggered_by,
        "previous_sha": deployment.previous_sha,
        "smoke": deployment.smoke,
        "detail": deployment.detail,
        "approved": deployment.approved,
    });
    if let Some(replaced_by) = replaced_by {
        detail["replaced_by"] = json!(replaced_by);
    }
    detail
}

/// Appends `entry`, done by `actor`, in the caller's write.
pub(crate) async fn append(
    conn: &mut AnyConnection,
    actor: &str,
    entry: &Entry<'_>,
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    audit::record_audit(conn, &entry.to_new(actor, at)).await
}

#[cfg(test)]
mod tests;
