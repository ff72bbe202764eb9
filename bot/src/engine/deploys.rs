//! Deploys Greenlight runs itself: the deployment an approval owes, what deployers report, and
//! the deploy timeout. What follows a deployment's change of state is `deployment.rs`.
//!
//! Exactly once: a deployment is created in the same write as the approval (or the unlock, or
//! the rollback confirmation) that causes it, together with its `deploy.trigger` outbox item and
//! an idempotency key naming its cause. A crash before the trigger is delivered leaves the item
//! pending, so the restarted worker delivers it; the key stops a second deployment for the same
//! cause; the deployer receives the deployment id as its own idempotency key.

use chrono::{DateTime, Utc};
use greenlight_commands::{CommitSha, DeploymentKind, DeploymentState};
use greenlight_storage::{
    deliveries, deployments, outbox, releases, AnyConnection, Deployment, NewDeployment,
    NewOutboxItem, Release, StorageError,
};
use serde_json::json;

use super::audit::{self, Entry, CI, GREENLIGHT};
use super::effects::Context;
use super::{Dedup, DeploymentReport, Engine, IntakeError, ReportedStatus};
use crate::clock::span;
use crate::config::{Deployer, EnvironmentConfig};

/// The outbox kind that asks the `deploy` deliverer to start a deployment.
pub const TRIGGER_KIND: &str = "deploy.trigger";

/// Whether Greenlight starts deploys with this deployer (a protection rule is GitHub's job,
/// answered by the gate; no deployer at all is CI's job).
pub(crate) fn triggers(deployer: &Deployer) -> bool {
    !matches!(deployer, Deployer::GithubProtectionRule { .. })
}

/// The deployer Greenlight would trigger for an environment, if any.
pub(crate) fn triggerable(environment: &EnvironmentConfig) -> Option<&Deployer> {
    environment
        .deploy
        .as_ref()
        .filter(|deployer| triggers(deployer))
}

/// The idempotency key marking that approval request `id` released its deploy.
fn approval_key(request_id: i64) -> String {
    format!("greenlight:deploy:approval:{request_id}")
}

/// Whether the deploy approval request `id` owes was already started (or handed to CI).
pub(super) async fn approval_deploy_started(
    conn: &mut AnyConnection,
    request_id: i64,
) -> Result<bool, StorageError> {
    Ok(
        deliveries::find_idempotency_key(conn, &approval_key(request_id))
            .await?
            .is_some(),
    )
}

/// `Effect::TriggerDeploy`: the approved request's deploy starts now, in the approval's write.
/// With a command, HTTP or workflow deployer that is a deployment in `deploying` plus its
/// trigger; with a protection rule the gate's answer is the deploy, and without a deployer CI
/// deploys: both are only recorded.
pub(super) async fn start_approved_deploy(
    conn: &mut AnyConnection,
    context: &Context<'_>,
) -> Result<(), StorageError> {
    let request = context.request;
    if approval_deploy_started(conn, request.id).await? {
        return Ok(());
    }
    let release = releases::get_release(conn, request.release_id).await?;
    let deployer = context
        .config
        .environment(&request.app, &request.environment)
        .and_then(|environment| environment.deploy.as_ref());
    let deployment = match deployer.filter(|deployer| triggers(deployer)) {
        Some(deployer) => {
            let current =
                deployments::current_deployment(conn, &request.app, &request.environment).await?;
            let started = begin_deployment(
                conn,
                &Begin {
                    release: &release,
                    environment: &request.environment,
                    kind: DeploymentKind::Deploy,
                    deployer,
                    previous_sha: current
                        .map(|current| current.sha)
                        .filter(|sha| *sha != release.sha),
                    triggered_by: format!("approval:{}", request.id),
                    actor: context.actor,
                },
                context.now,
            )
            .await?;
            Some(started)
        }
        None => None,
    };
    let deployment_id = deployment.as_ref().map(|deployment| deployment.id);
    deliveries::insert_idempotency_key(
        conn,
        &approval_key(request.id),
        &json!({ "deployment_id": deployment_id }),
        context.now,
    )
    .await?;
    let entry = Entry::DeployOwed {
        request,
        deployment_id,
        deployer: deployer.map_or(CI, Deployer::kind),
    };
    audit::append(conn, context.actor, &entry, context.now).await?;
    Ok(())
}

/// What a new deployment started by Greenlight is.
pub(super) struct Begin<'a> {
    pub release: &'a Release,
    pub environment: &'a greenlight_commands::EnvironmentName,
    pub kind: DeploymentKind,
    pub deployer: &'a Deployer,
    /// What ran before (what a rollback undoes).
    pub previous_sha: Option<CommitSha>,
    pub triggered_by: String,
    /// For the release log.
    pub actor: &'a str,
}

/// Inserts a deployment in `deploying` and queues its trigger, in the caller's write.
pub(super) async fn begin_deployment(
    conn: &mut AnyConnection,
    begin: &Begin<'_>,
    now: DateTime<Utc>,
) -> Result<Deployment, StorageError> {
    let deployment = deployments::insert_deployment(
        conn,
        &NewDeployment {
            release_id: begin.release.id,
            environment: begin.environment.clone(),
            kind: begin.kind,
            state: DeploymentState::Deploying,
            previous_sha: begin.previous_sha.clone(),
            deployer: Some(begin.deployer.kind().to_owned()),
            deployer_ref: None,
            triggered_by: Some(begin.triggered_by.clone()),
            smoke: Vec::new(),
            detail: None,
            // Started by Greenlight: after an approval, an unlock of one, or a rollback to an
            // approved release.
            approved: true,
            at: now,
        },
    )
    .await?;
    outbox::enqueue_outbox(
        conn,
        &NewOutboxItem {
            kind: TRIGGER_KIND.to_owned(),
            idempotency_key: format!("{TRIGGER_KIND}:{}", deployment.id),
            payload: json!({ "deployment_id": deployment.id }),
            at: now,
            not_before: None,
        },
    )
    .await?;
    let entry = Entry::Deployment {
        deployment: &deployment,
        replaced_by: None,
    };
    audit::append(conn, begin.actor, &entry, now).await?;
    metrics::counter!("greenlight_deploys_started_total", "kind" => begin.kind.as_str(), "deployer" => begin.deployer.kind()).increment(1);
    Ok(deployment)
}

/// The deployment Greenlight started for `release_id` in `environment` that still waits for its
/// completion: a `deployed` report without a `deployment_id` (GitHub's `deployment_status`, a
/// CI step that does not pass the id on) completes it rather than recording another one.
pub(super) async fn in_flight(
    conn: &mut AnyConnection,
    release_id: i64,
    environment: &greenlight_commands::EnvironmentName,
) -> Result<Option<i64>, StorageError> {
    Ok(
        deployments::latest_deployment(conn, release_id, environment)
            .await?
            .filter(|deployment| {
                deployment.state == DeploymentState::Deploying && deployment.deployer.is_some()
            })
            .map(|deployment| deployment.id),
    )
}

/// What a deployer reports about a deployment it was asked to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployResult {
    /// Deployed (a command that exited 0): verification follows.
    Deployed { detail: Option<String> },
    /// The deploy did not happen (refused, exited non-zero, timed out, interrupted).
    Failed { detail: String },
}

impl Engine {
    /// Records a deployer's result for `deployment`, through the same path as a `deployed`
    /// report carrying its id. `false` when the deployment had already finished (timed out,
    /// completed by CI): the result is then only logged.
    pub async fn record_deploy_result(
        &self,
        deployment: &Deployment,
        result: DeployResult,
        actor: &str,
    ) -> Result<bool, StorageError> {
        let (status, detail) = match result {
            DeployResult::Deployed { detail } => (ReportedStatus::Success, detail),
            DeployResult::Failed { detail } => (ReportedStatus::Failure, Some(detail)),
        };
        let report = DeploymentReport {
            app: deployment.app.clone(),
            environment: deployment.environment.clone(),
            sha: deployment.sha.clone(),
            status,
            image: None,
            smoke: None,
            deployment_id: Some(deployment.id),
            url: None,
            detail,
            actor: actor.to_owned(),
        };
        match self.record_deployment(report, Dedup::None).await {
            Ok(_) => Ok(true),
            Err(IntakeError::DeploymentFinished { id, state }) => {
                tracing::info!(deployment = id, %state, "deploy result arrived after the deployment finished");
                Ok(false)
            }
            // Another replica finished it between our read and our write.
            Err(IntakeError::Storage(error)) if error.is_conflict() => {
                tracing::info!(%error, deployment = deployment.id, "deploy result arrived as another replica finished the deployment");
                Ok(false)
            }
            Err(IntakeError::Storage(error)) => Err(error),
            Err(error) => {
                tracing::error!(%error, deployment = deployment.id, "deploy result refused");
                Ok(false)
            }
        }
    }

    /// Fails deployments still `deploying` after their deployer's `timeout`. Returns how many.
    pub(super) async fn time_out_deploys(&self, now: DateTime<Utc>) -> Result<u32, StorageError> {
        let mut timed_out = 0;
        for deployment in self.storage.unfinished_deployments().await? {
            if deployment.state != DeploymentState::Deploying || deployment.deployer.is_none() {
                continue;
            }
            let timeout = self
                .config
                .environment(&deployment.app, &deployment.environment)
                .and_then(|environment| environment.deploy.as_ref())
                .map_or(Deployer::DEFAULT_TIMEOUT, Deployer::timeout);
            if deployment.created_at + span(timeout) > now {
                continue;
            }
            let detail = format!(
                "timed out after {}: no completion arrived from the {} deployer",
                humantime::format_duration(timeout),
                deployment.deployer.as_deref().unwrap_or("configured"),
            );
            let failed = DeployResult::Failed { detail };
            if self
                .record_deploy_result(&deployment, failed, GREENLIGHT)
                .await?
            {
                metrics::counter!("greenlight_deploys_timed_out_total").increment(1);
                timed_out += 1;
            }
        }
        Ok(timed_out)
    }

    /// Fails command deploys whose replica is gone (SPEC §11): their commands were that
    /// replica's children and nobody watches them any more. They are never run again on their
    /// own: a half-finished deploy command is for a person to judge. Runs at start-up and with
    /// the timers; this replica's own commands are never touched (it records their ends).
    pub async fn interrupt_orphaned_commands(&self) -> Result<u32, StorageError> {
        let now = self.clock.now();
        let mut failed = 0;
        for (id, runner) in self.storage.orphaned_command_deploys(now).await? {
            if runner.as_deref() == Some(self.replica.name()) {
                continue;
            }
            let deployment = self.storage.deployment(id).await?;
            let result = DeployResult::Failed {
                detail: INTERRUPTED.to_owned(),
            };
            // Conditional: when several replicas find the orphan at once, one records it.
            if self
                .record_deploy_result(&deployment, result, GREENLIGHT)
                .await?
            {
                tracing::warn!(
                    deployment = id,
                    runner = runner.as_deref().unwrap_or("unknown"),
                    "command deploy interrupted: its replica stopped"
                );
                failed += 1;
            }
        }
        Ok(failed)
    }
}

/// Why a command deploy that Greenlight lost track of failed.
pub const INTERRUPTED: &str = "interrupted: the Greenlight process running the deploy command \
     stopped before it ended; it was not run again. Check the environment, then deploy or \
     /rollback";
