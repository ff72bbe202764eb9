//! Deploys Greenlight runs itself: the deployment an approval owes, what deployers report, the
//! deploy timeout, and what follows a deployment's change of state (card edits, automatic
//! rollback, the rolled-back release).
//!
//! Exactly once: a deployment is created in the same write as the approval (or the unlock, or
//! the rollback confirmation) that causes it, together with its `deploy.trigger` outbox item and
//! an idempotency key naming its cause. A crash before the trigger is delivered leaves the item
//! pending, so the restarted worker delivers it; the key stops a second deployment for the same
//! cause; the deployer receives the deployment id as its own idempotency key.

use chrono::{DateTime, Utc};
use greenlight_commands::{ApprovalState, CommitSha, DeploymentKind, DeploymentState};
use greenlight_storage::{
    approvals, audit, deliveries, deployments, locks, outbox, releases, AnyConnection, Deployment,
    DeploymentTransition, LockOutcome, NewAuditEntry, NewDeployment, NewLock, NewOutboxItem,
    Release, SmokeResult, StorageError,
};
use serde_json::{json, Value};

use super::effects::{self, Context};
use super::{Dedup, DeploymentReport, Engine, IntakeError, ReportedStatus};
use crate::cards::CardKey;
use crate::clock::span;
use crate::config::{Config, Deployer, EnvironmentConfig};

/// The outbox kind that asks the `deploy` deliverer to start a deployment.
pub const TRIGGER_KIND: &str = "deploy.trigger";
/// Who Greenlight's own automatic actions are attributed to.
const GREENLIGHT: &str = "greenlight";

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
    audit::append_audit(
        conn,
        &NewAuditEntry {
            occurred_at: context.now,
            actor: context.actor.to_owned(),
            app: Some(request.app.clone()),
            environment: Some(request.environment.clone()),
            sha: Some(release.sha.clone()),
            kind: "deploy_owed".to_owned(),
            detail: json!({
                "approval_request_id": request.id,
                "deployment_id": deployment_id,
                "deployer": deployer.map_or("ci", Deployer::kind),
            }),
        },
    )
    .await?;
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
    audit_deployment(
        conn,
        &deployment,
        begin.actor,
        json!({ "triggered_by": begin.triggered_by, "previous_sha": begin.previous_sha }),
        now,
    )
    .await?;
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

/// What follows `deployment` reaching its current state, in the write that moved it there: the
/// approval card shows it, a completed deploy replaces what ran before, a healthy rollback
/// marks what it undid `rolled_back`, a faulty release is rolled back, and failures are said
/// in the channel.
pub(super) async fn after_change(
    conn: &mut AnyConnection,
    config: &Config,
    deployment: &Deployment,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let Some(environment) = config.environment(&deployment.app, &deployment.environment) else {
        return Ok(());
    };
    if deployment.kind == DeploymentKind::Deploy {
        update_approval_card(conn, config, deployment, now).await?;
    }
    match (deployment.state, deployment.kind) {
        (DeploymentState::Verifying | DeploymentState::Healthy, DeploymentKind::Deploy) => {
            replace_previous(conn, deployment, DeploymentState::Superseded, now).await?;
        }
        (DeploymentState::Healthy, DeploymentKind::Rollback) => {
            if let Some(undone) =
                replace_previous(conn, deployment, DeploymentState::RolledBack, now).await?
            {
                update_approval_card(conn, config, &undone, now).await?;
            }
            let text = format!(
                ":white_check_mark: {app} {env} runs {sha} again: the rollback{from} is healthy.{lock}",
                app = deployment.app,
                env = deployment.environment,
                sha = deployment.sha.short(),
                from = deployment
                    .previous_sha
                    .as_ref()
                    .map(|sha| format!(" from {}", sha.short()))
                    .unwrap_or_default(),
                lock = lock_note(conn, deployment).await?,
            );
            effects::announce(conn, config, &deployment.app, &text, now).await?;
        }
        (DeploymentState::Faulty, DeploymentKind::Deploy) if environment.is_gated() => {
            on_faulty(conn, config, environment, deployment, now).await?;
        }
        (DeploymentState::Faulty, DeploymentKind::Rollback) => {
            let text = format!(
                ":rotating_light: The rollback of {app} {env} to {sha} is faulty too: {why}. \
                 Greenlight will not roll back further; someone needs to look now.",
                app = deployment.app,
                env = deployment.environment,
                sha = deployment.sha.short(),
                why = what_failed(deployment),
            );
            let reason = format!("rollback to {} is faulty", deployment.sha.short());
            lock_automatically(conn, deployment, &reason, now).await?;
            effects::announce(conn, config, &deployment.app, &text, now).await?;
        }
        (DeploymentState::Failed, kind) if deployment.deployer.is_some() => {
            let running =
                deployments::current_deployment(conn, &deployment.app, &deployment.environment)
                    .await?;
            let runs = match running {
                Some(running) => format!(
                    "{} still runs {}",
                    deployment.environment,
                    running.sha.short()
                ),
                None => format!(
                    "nothing is recorded as running in {}",
                    deployment.environment
                ),
            };
            let what = match kind {
                DeploymentKind::Deploy => "Deploy",
                DeploymentKind::Rollback => "Rollback",
            };
            let mut text = format!(
                ":x: {what} of {app} {sha} to {env} failed: {detail}. {runs}.",
                app = deployment.app,
                sha = deployment.sha.short(),
                env = deployment.environment,
                detail = first_line(deployment.detail.as_deref().unwrap_or("no detail")),
            );
            if kind == DeploymentKind::Rollback {
                let reason = format!("rollback to {} failed", deployment.sha.short());
                lock_automatically(conn, deployment, &reason, now).await?;
                text.push_str(" The environment stays locked; someone needs to look now.");
            }
            effects::announce(conn, config, &deployment.app, &text, now).await?;
        }
        _ => {}
    }
    Ok(())
}

/// Edits the card of the approval that let this release into the environment.
async fn update_approval_card(
    conn: &mut AnyConnection,
    config: &Config,
    deployment: &Deployment,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let request =
        approvals::latest_approval_request(conn, deployment.release_id, &deployment.environment)
            .await?;
    if let Some(request) = request.filter(|r| r.state == ApprovalState::Approved) {
        effects::update_card_at(
            conn,
            config,
            &deployment.app,
            CardKey::Approval(request.id),
            now,
            None,
        )
        .await?;
    }
    Ok(())
}

/// Moves the deployment of `deployment.previous_sha` (what ran before it) to `to`. Returns it
/// when it moved.
async fn replace_previous(
    conn: &mut AnyConnection,
    deployment: &Deployment,
    to: DeploymentState,
    now: DateTime<Utc>,
) -> Result<Option<Deployment>, StorageError> {
    let Some(previous_sha) = &deployment.previous_sha else {
        return Ok(None);
    };
    let Some(release) = releases::find_release(conn, &deployment.app, previous_sha).await? else {
        return Ok(None);
    };
    let Some(previous) =
        deployments::latest_deployment(conn, release.id, &deployment.environment).await?
    else {
        return Ok(None);
    };
    let replaceable = matches!(
        previous.state,
        DeploymentState::Verifying | DeploymentState::Healthy | DeploymentState::Faulty
    );
    if previous.id >= deployment.id || !replaceable {
        return Ok(None);
    }
    let change = DeploymentTransition::new(previous.state, to, now);
    match deployments::transition_deployment(conn, previous.id, &change).await {
        Ok(moved) => {
            audit_deployment(
                conn,
                &moved,
                GREENLIGHT,
                json!({ "replaced_by": deployment.id }),
                now,
            )
            .await?;
            Ok(Some(moved))
        }
        // Settled concurrently (a verifier finishing it): it no longer runs either way.
        Err(error) if error.is_conflict() => Ok(None),
        Err(error) => Err(error),
    }
}

/// A gated environment's release turned faulty: roll back to the last healthy release when
/// `auto_rollback` allows and a deployer can, lock the environment, and say what happened.
async fn on_faulty(
    conn: &mut AnyConnection,
    config: &Config,
    environment: &EnvironmentConfig,
    faulty: &Deployment,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    // Already replaced (an operator's rollback or a newer deploy started meanwhile).
    let current = deployments::current_deployment(conn, &faulty.app, &faulty.environment).await?;
    if current
        .as_ref()
        .is_some_and(|current| current.id != faulty.id)
    {
        return Ok(());
    }
    let key = format!("greenlight:auto-rollback:{}", faulty.id);
    if deliveries::find_idempotency_key(conn, &key)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let (app, env, sha) = (&faulty.app, &faulty.environment, faulty.sha.short());
    let why = what_failed(faulty);
    let target = deployments::last_healthy_deployment(conn, app, env, Some(&faulty.sha)).await?;
    let revert = format!(
        "Permanent fix: `git revert {}`, then ship that.",
        faulty.sha
    );
    let mut rollback_id = None;
    let (text, lock) = match (&target, triggerable(environment)) {
        (Some(target), Some(deployer)) if environment.auto_rollback => {
            let release = releases::get_release(conn, target.release_id).await?;
            let rollback = begin_deployment(
                conn,
                &Begin {
                    release: &release,
                    environment: env,
                    kind: DeploymentKind::Rollback,
                    deployer,
                    previous_sha: Some(faulty.sha.clone()),
                    triggered_by: format!("auto-rollback:{}", faulty.id),
                    actor: GREENLIGHT,
                },
                now,
            )
            .await?;
            rollback_id = Some(rollback.id);
            (
                format!(
                    ":rotating_light: {app} {sha} is faulty in {env}: {why}.\n\
                     Rolling back automatically to {target_sha} ({image}); {env} runs {sha} \
                     until the rollback is done, then {target_sha}.\n{revert}",
                    target_sha = target.sha.short(),
                    image = release.image,
                ),
                environment.lock_after_rollback,
            )
        }
        (Some(target), _) if !environment.auto_rollback => (
            format!(
                ":warning: {app} {sha} is faulty in {env}: {why}.\n\
                 auto_rollback is off: `/rollback {app} {env}` puts back {target_sha}.\n{revert}",
                target_sha = target.sha.short(),
            ),
            false,
        ),
        (Some(target), _) => (
            format!(
                ":rotating_light: {app} {sha} is faulty in {env}: {why}.\n\
                 Greenlight cannot roll back {env} itself (it is deployed {by}): redeploy \
                 {target_sha} ({image}) from there now. {env} still runs the faulty {sha}.\n{revert}",
                by = if environment.deploy.is_some() {
                    "by GitHub"
                } else {
                    "by CI"
                },
                target_sha = target.sha.short(),
                image = target.image,
            ),
            true,
        ),
        (None, _) => (
            format!(
                ":rotating_light: {app} {sha} is faulty in {env}: {why}.\n\
                 There is nothing to roll back to: no other release was ever healthy in {env}, \
                 so {env} still runs the faulty {sha}. Someone needs to look now.\n{revert}"
            ),
            true,
        ),
    };
    let mut text = text;
    if lock {
        let reason = format!("{sha} is faulty in {env} ({why})");
        if lock_automatically(conn, faulty, &reason, now).await? {
            text.push_str(&format!(
                "\n{env} is locked: new deploys wait for `/unlock {app} {env}`."
            ));
        }
    }
    deliveries::insert_idempotency_key(conn, &key, &json!({ "deployment_id": rollback_id }), now)
        .await?;
    audit::append_audit(
        conn,
        &NewAuditEntry {
            occurred_at: now,
            actor: GREENLIGHT.to_owned(),
            app: Some(app.clone()),
            environment: Some(env.clone()),
            sha: Some(faulty.sha.clone()),
            kind: "auto_rollback".to_owned(),
            detail: json!({
                "faulty_deployment_id": faulty.id,
                "rollback_deployment_id": rollback_id,
                "target_sha": target.as_ref().map(|target| &target.sha),
                "failed": why,
                "locked": lock,
            }),
        },
    )
    .await?;
    effects::announce(conn, config, app, &text, now).await?;
    Ok(())
}

/// Locks the deployment's environment for Greenlight. `false` if it was already locked (the
/// existing lock stays as it is).
async fn lock_automatically(
    conn: &mut AnyConnection,
    deployment: &Deployment,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let outcome = locks::acquire_lock(
        conn,
        &NewLock {
            app: deployment.app.clone(),
            environment: deployment.environment.clone(),
            locked_by: GREENLIGHT.to_owned(),
            reason: reason.to_owned(),
            automatic: true,
            at: now,
        },
    )
    .await?;
    match outcome {
        LockOutcome::Acquired(lock) => {
            audit::append_audit(
                conn,
                &NewAuditEntry {
                    occurred_at: now,
                    actor: GREENLIGHT.to_owned(),
                    app: Some(lock.app.clone()),
                    environment: Some(lock.environment.clone()),
                    sha: Some(deployment.sha.clone()),
                    kind: "locked".to_owned(),
                    detail: json!({ "reason": lock.reason, "automatic": true }),
                },
            )
            .await?;
            Ok(true)
        }
        LockOutcome::AlreadyHeld(_) => Ok(false),
    }
}

/// " production stays locked until `/unlock shop production`." when it is locked.
async fn lock_note(
    conn: &mut AnyConnection,
    deployment: &Deployment,
) -> Result<String, StorageError> {
    Ok(
        match locks::active_lock(conn, &deployment.app, &deployment.environment).await? {
            Some(_) => format!(
                " {env} stays locked until `/unlock {app} {env}`.",
                app = deployment.app,
                env = deployment.environment
            ),
            None => String::new(),
        },
    )
}

/// "smoke check failed: health (503 Service Unavailable)", from the deployment's results.
pub(super) fn what_failed(deployment: &Deployment) -> String {
    let failed: Vec<String> = deployment
        .smoke
        .iter()
        .filter(|check| check.status != crate::smoke::PASSED)
        .map(describe_check)
        .collect();
    match failed.len() {
        0 => deployment
            .detail
            .as_deref()
            .map(first_line)
            .unwrap_or("its checks failed")
            .to_owned(),
        1 => format!("smoke check failed: {}", failed.join(", ")),
        _ => format!("smoke checks failed: {}", failed.join(", ")),
    }
}

fn describe_check(check: &SmokeResult) -> String {
    match &check.detail {
        Some(detail) => format!("{} ({detail})", check.name),
        None => check.name.clone(),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

pub(super) async fn audit_deployment(
    conn: &mut AnyConnection,
    deployment: &Deployment,
    actor: &str,
    extra: Value,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let mut detail = json!({
        "deployment_id": deployment.id,
        "kind": deployment.kind,
        "image": deployment.image,
        "deployer": deployment.deployer,
        "detail": deployment.detail,
    });
    if let (Value::Object(detail), Value::Object(extra)) = (&mut detail, extra) {
        detail.extend(extra);
    }
    audit::append_audit(
        conn,
        &NewAuditEntry {
            occurred_at: now,
            actor: actor.to_owned(),
            app: Some(deployment.app.clone()),
            environment: Some(deployment.environment.clone()),
            sha: Some(deployment.sha.clone()),
            kind: format!("deployment_{}", deployment.state),
            detail,
        },
    )
    .await?;
    Ok(())
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

    /// At start-up: command deploys that were running when Greenlight last stopped cannot be
    /// watched any more, so they fail as interrupted. They are never run again on their own:
    /// a half-finished deploy command is for a person to judge.
    pub async fn fail_interrupted_commands(&self) -> Result<u32, StorageError> {
        let mut failed = 0;
        for deployment in self.storage.unfinished_deployments().await? {
            let started = deployment.deployer_ref.is_some();
            if deployment.state != DeploymentState::Deploying
                || deployment.deployer.as_deref() != Some("command")
                || !started
            {
                continue;
            }
            let result = DeployResult::Failed {
                detail: INTERRUPTED.to_owned(),
            };
            if self
                .record_deploy_result(&deployment, result, GREENLIGHT)
                .await?
            {
                failed += 1;
            }
        }
        Ok(failed)
    }
}

/// Why a command deploy that Greenlight lost track of failed.
pub const INTERRUPTED: &str = "interrupted: Greenlight stopped while the deploy command ran; \
     it was not run again. Check the environment, then deploy or /rollback";
