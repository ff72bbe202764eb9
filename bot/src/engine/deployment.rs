//! A deployment's change of state, applied: the pure machine (`greenlight_commands::deployment`)
//! decides the next state and what follows it; this module writes the deployment and performs
//! each follow-up, in order, in the caller's write.
//!
//! Intake (CI and GitHub reports, deployer results, deploy timeouts) and the verifier both come
//! through [`advance`], so a state change has the same follow-ups whoever reported it.

use chrono::{DateTime, Utc};
use greenlight_commands::deployment::{
    self as machine, Announcement, Effect, Environment, Event, LockCause, Prior, Refusal, Snapshot,
};
use greenlight_commands::{ApprovalState, DeploymentKind, DeploymentState, EnvironmentName};
use greenlight_storage::{
    approvals, deployments, locks, releases, AnyConnection, ApprovalRequest, Deployment,
    DeploymentTransition, LockOutcome, NewDeployment, NewLock, Release, SmokeResult, StorageError,
};

use super::audit::{self, Entry, CI, GREENLIGHT};
use super::faulty::{first_line, what_failed};
use super::{effects, faulty, gates, promotion};
use crate::cards::CardKey;
use crate::chat::Marker;
use crate::config::Config;

/// The deployment an event is about.
pub(super) enum Target {
    /// CI or GitHub deployed without Greenlight: the report records it.
    Unrecorded(Unrecorded),
    /// A deployment Greenlight has: one it started, or one an earlier report recorded.
    Recorded(Deployment),
}

/// A deploy CI or GitHub reports that Greenlight has no record of.
pub(super) struct Unrecorded {
    pub environment: EnvironmentName,
    /// What ran in the environment until now.
    pub running: Option<Deployment>,
    /// See [`Deployment::approved`].
    pub approved: bool,
    /// Where the deploy can be looked at (the report's URL).
    pub deployer_ref: Option<String>,
}

/// What moves a deployment, and what comes with it.
pub(super) struct Change<'a> {
    pub config: &'a Config,
    /// The deployment's release.
    pub release: &'a Release,
    pub event: Event,
    /// The smoke results the deployment keeps from now on.
    pub smoke: Vec<SmokeResult>,
    /// Replaces the deployment's detail; `None` keeps the one it has.
    pub detail: Option<String>,
    /// Who reported it, for the release log.
    pub actor: &'a str,
    pub now: DateTime<Utc>,
}

/// What a step did.
pub(super) struct Applied {
    pub deployment: Deployment,
    /// The approval requests its health opened before gated environments.
    pub opened: Vec<ApprovalRequest>,
    /// The deployment now waits for smoke checks: wake the verifier once the write committed
    /// (before, it would not see the deployment yet).
    pub wake_verifier: bool,
}

/// Moves the deployment as the machine says `change.event` does, with every follow-up, in the
/// caller's write. A refusal writes nothing.
pub(super) async fn advance(
    conn: &mut AnyConnection,
    target: Target,
    change: &Change<'_>,
) -> Result<Result<Applied, Refusal>, StorageError> {
    let step = match machine::step(&snapshot(&target, change), &change.event) {
        Ok(step) => step,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let (deployment, running) = record(conn, target, change, step.to).await?;
    let mut applied = Applied {
        deployment,
        opened: Vec::new(),
        wake_verifier: false,
    };
    for effect in step.effects {
        perform(conn, change, &mut applied, running.as_ref(), effect).await?;
    }
    Ok(Ok(applied))
}

fn snapshot(target: &Target, change: &Change<'_>) -> Snapshot {
    let (deployment, environment) = match target {
        Target::Unrecorded(unrecorded) => (
            Prior::Unrecorded {
                approved: unrecorded.approved,
            },
            &unrecorded.environment,
        ),
        Target::Recorded(deployment) => (
            Prior::Recorded {
                kind: deployment.kind,
                state: deployment.state,
                by_greenlight: deployment.deployer.is_some(),
            },
            &deployment.environment,
        ),
    };
    let environment = change
        .config
        .environment(&change.release.app, environment)
        .map(|environment| Environment {
            gated: environment.is_gated(),
            own_smoke: !environment.smoke.is_empty(),
        });
    Snapshot {
        deployment,
        environment,
    }
}

/// Writes the deployment in state `to`: a new row for an unrecorded deploy, else a conditional
/// move from the state the machine saw. Returns it with what ran before an unrecorded one.
async fn record(
    conn: &mut AnyConnection,
    target: Target,
    change: &Change<'_>,
    to: DeploymentState,
) -> Result<(Deployment, Option<Deployment>), StorageError> {
    match target {
        Target::Unrecorded(unrecorded) => {
            let release = change.release;
            // A redeploy of the running release has no release before it.
            let previous_sha = unrecorded
                .running
                .as_ref()
                .filter(|running| running.release_id != release.id)
                .map(|running| running.sha.clone());
            let deployment = deployments::insert_deployment(
                conn,
                &NewDeployment {
                    release_id: release.id,
                    environment: unrecorded.environment,
                    kind: DeploymentKind::Deploy,
                    state: to,
                    previous_sha,
                    deployer: None,
                    deployer_ref: unrecorded.deployer_ref,
                    triggered_by: Some(change.actor.to_owned()),
                    smoke: change.smoke.clone(),
                    detail: change.detail.clone(),
                    approved: unrecorded.approved,
                    at: change.now,
                },
            )
            .await?;
            Ok((deployment, unrecorded.running))
        }
        Target::Recorded(deployment) => {
            let mut transition = DeploymentTransition::new(deployment.state, to, change.now);
            transition.smoke = Some(change.smoke.clone());
            transition.detail = change.detail.clone();
            let moved =
                deployments::transition_deployment(conn, deployment.id, &transition).await?;
            Ok((moved, None))
        }
    }
}

/// The interpreter: one effect of the machine as storage writes and outbox items.
async fn perform(
    conn: &mut AnyConnection,
    change: &Change<'_>,
    applied: &mut Applied,
    running: Option<&Deployment>,
    effect: Effect,
) -> Result<(), StorageError> {
    let (config, now) = (change.config, change.now);
    let deployment = &applied.deployment;
    match effect {
        Effect::FlagUnapproved => {
            flag_unapproved(conn, config, deployment, change.actor, now).await
        }
        Effect::SupersedeRunning => match running {
            Some(running) => supersede_running(conn, running, now).await,
            None => Ok(()),
        },
        Effect::LogChange => {
            let entry = Entry::Deployment {
                deployment,
                replaced_by: None,
            };
            audit::append(conn, change.actor, &entry, now).await
        }
        Effect::OpenPromotion => {
            let opened =
                promotion::on_healthy(conn, config, change.release, deployment, now).await?;
            applied.opened = opened;
            Ok(())
        }
        Effect::PostNotPromotable => {
            promotion::on_not_promotable(conn, config, deployment, now).await
        }
        Effect::RejectWaitingGates => {
            gates::reject_gates_after_failure(conn, config, deployment, now).await?;
            Ok(())
        }
        Effect::UpdateApprovalCard => update_approval_card(conn, config, deployment, now).await,
        Effect::SupersedePrevious => {
            replace_previous(conn, deployment, DeploymentState::Superseded, now).await?;
            Ok(())
        }
        Effect::MarkPreviousRolledBack => {
            let undone =
                replace_previous(conn, deployment, DeploymentState::RolledBack, now).await?;
            match undone {
                Some(undone) => update_approval_card(conn, config, &undone, now).await,
                None => Ok(()),
            }
        }
        Effect::RollBackFaultyRelease => {
            match config.environment(&deployment.app, &deployment.environment) {
                Some(environment) => {
                    faulty::on_faulty(conn, config, environment, deployment, now).await
                }
                None => Ok(()),
            }
        }
        Effect::Lock(cause) => {
            let reason = match cause {
                LockCause::RollbackFaulty => {
                    format!("rollback to {} is faulty", deployment.sha.short())
                }
                LockCause::RollbackFailed => {
                    format!("rollback to {} failed", deployment.sha.short())
                }
            };
            lock_automatically(conn, deployment, &reason, now).await?;
            Ok(())
        }
        Effect::Announce(announcement) => {
            let (marker, text) = announcement_text(conn, announcement, deployment).await?;
            effects::announce_marked(conn, config, &deployment.app, Some(marker), &text, now).await
        }
        Effect::WakeVerifier => {
            applied.wake_verifier = true;
            Ok(())
        }
    }
}

/// Says in the app's channels that something reached a gated environment around the gate, and
/// keeps it in the release log.
async fn flag_unapproved(
    conn: &mut AnyConnection,
    config: &Config,
    deployment: &Deployment,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let reporter = match actor.split_once(':') {
        Some(("github", login)) => format!("GitHub, {login}"),
        _ if actor == CI => "CI".to_owned(),
        _ => actor.to_owned(),
    };
    let (app, sha, environment) = (
        &deployment.app,
        deployment.sha.short(),
        &deployment.environment,
    );
    let text = if deployment.state == DeploymentState::Failed {
        format!("⚠ {app} {sha}: a deploy to {environment} without approval was attempted and failed (reported by {reporter}).")
    } else {
        format!("⚠ {app} {sha} deployed to {environment} without approval (reported by {reporter}). It will never be a rollback target.")
    };
    effects::announce(conn, config, &deployment.app, &text, now).await?;
    audit::append(conn, actor, &Entry::UnapprovedDeploy(deployment), now).await
}

/// What ran before an unrecorded deploy no longer runs; it stays a rollback target.
async fn supersede_running(
    conn: &mut AnyConnection,
    running: &Deployment,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    // A deploy still in progress belongs to its deployer, which settles it.
    if running.state == DeploymentState::Deploying {
        return Ok(());
    }
    let change = DeploymentTransition::new(running.state, DeploymentState::Superseded, now);
    match deployments::transition_deployment(conn, running.id, &change).await {
        Ok(_) => Ok(()),
        // Already moved on (a verifier finished it concurrently): nothing to replace.
        Err(error) if error.is_conflict() => Ok(()),
        Err(error) => Err(error),
    }
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
            let entry = Entry::Deployment {
                deployment: &moved,
                replaced_by: Some(deployment.id),
            };
            audit::append(conn, GREENLIGHT, &entry, now).await?;
            Ok(Some(moved))
        }
        // Settled concurrently (a verifier finishing it): it no longer runs either way.
        Err(error) if error.is_conflict() => Ok(None),
        Err(error) => Err(error),
    }
}

/// The message for the app's channels, and its tone.
async fn announcement_text(
    conn: &mut AnyConnection,
    announcement: Announcement,
    deployment: &Deployment,
) -> Result<(Marker, String), StorageError> {
    let (app, env, sha) = (
        &deployment.app,
        &deployment.environment,
        deployment.sha.short(),
    );
    Ok(match announcement {
        Announcement::RollbackHealthy => (
            Marker::Success,
            format!(
                "{app} {env} runs {sha} again: the rollback{from} is healthy.{lock}",
                from = deployment
                    .previous_sha
                    .as_ref()
                    .map(|sha| format!(" from {}", sha.short()))
                    .unwrap_or_default(),
                lock = lock_note(conn, deployment).await?,
            ),
        ),
        Announcement::RollbackFaulty => (
            Marker::Alert,
            format!(
                "The rollback of {app} {env} to {sha} is faulty too: {why}. \
             Greenlight will not roll back further; someone needs to look now.",
                why = what_failed(deployment),
            ),
        ),
        Announcement::DeployFailed | Announcement::RollbackFailed => {
            let running = deployments::current_deployment(conn, app, env).await?;
            let runs = match running {
                Some(running) => format!("{env} still runs {}", running.sha.short()),
                None => format!("nothing is recorded as running in {env}"),
            };
            let what = match announcement {
                Announcement::RollbackFailed => "Rollback",
                _ => "Deploy",
            };
            let mut text = format!(
                "{what} of {app} {sha} to {env} failed: {detail}. {runs}.",
                detail = first_line(deployment.detail.as_deref().unwrap_or("no detail")),
            );
            if announcement == Announcement::RollbackFailed {
                text.push_str(" The environment stays locked; someone needs to look now.");
            }
            (Marker::Failure, text)
        }
    })
}

/// Locks the deployment's environment for Greenlight. `false` if it was already locked (the
/// existing lock stays as it is).
pub(super) async fn lock_automatically(
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
            let entry = Entry::Locked {
                lock: &lock,
                sha: Some(&deployment.sha),
            };
            audit::append(conn, GREENLIGHT, &entry, now).await?;
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
