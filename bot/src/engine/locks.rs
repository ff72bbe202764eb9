//! `/lock` and `/unlock`: stopping new deploys to an environment, and letting the approved
//! deploy that a lock held back go once it is lifted. The caller has already authorized the
//! actor.

use chrono::{DateTime, Utc};
use greenlight_commands::{approval, AppName, CommitSha, EnvironmentName};
use greenlight_storage::{
    approvals, locks, AnyConnection, Lock, LockOutcome, NewLock, StorageError,
};

use super::audit::{self, Entry};
use super::deploys;
use super::effects::{self, Context, ReplyTo};
use super::snapshot::load_snapshot;
use super::targets::{configured_environment, UnknownTarget};
use super::Engine;
use crate::cards::CardKey;
use crate::chat::Marker;
use crate::config::Config;

/// Why a lock or unlock was not applied. Said to the person who asked, as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockRefusal {
    #[error("there is no app {0} in greenlight.toml")]
    UnknownApp(AppName),
    #[error("{app} has no environment {environment}")]
    UnknownEnvironment {
        app: AppName,
        environment: EnvironmentName,
    },
    #[error("say why you lock it, e.g. `/lock shop production incident in progress`")]
    ReasonRequired,
}

/// What `/unlock` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnlockOutcome {
    /// The lock is gone; `released` names the approved deploy it had been holding, now started.
    Unlocked {
        lock: Lock,
        released: Option<HeldDeploy>,
    },
    /// There was no lock; nothing changed.
    NotLocked,
}

/// An approved deploy that waited for the lock to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldDeploy {
    pub request_id: i64,
    pub sha: CommitSha,
}

impl Engine {
    /// Locks `app`'s `environment` for `actor` with `reason`. Locking a locked environment
    /// changes nothing and answers `AlreadyHeld` with who holds it and why.
    pub async fn lock(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
        reason: &str,
        actor: &str,
    ) -> Result<Result<LockOutcome, LockRefusal>, StorageError> {
        if let Err(refusal) = check_environment(&self.config, app, environment) {
            return Ok(Err(refusal));
        }
        let reason = reason.trim();
        if reason.is_empty() {
            return Ok(Err(LockRefusal::ReasonRequired));
        }
        let now = self.clock.now();
        let config = self.config.clone();
        let new = NewLock {
            app: app.clone(),
            environment: environment.clone(),
            locked_by: actor.to_owned(),
            reason: reason.to_owned(),
            automatic: false,
            at: now,
        };
        let outcome = self
            .storage
            .write(move |conn| Box::pin(async move { lock_in(conn, &config, &new, now).await }))
            .await?;
        self.outbox_wakeup.notify_one();
        Ok(Ok(outcome))
    }

    /// Unlocks `app`'s `environment` for `actor`, and starts the approved deploy the lock was
    /// holding, if any (the newest approved request whose deploy never started), in the same
    /// write.
    pub async fn unlock(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
        actor: &str,
    ) -> Result<Result<UnlockOutcome, LockRefusal>, StorageError> {
        if let Err(refusal) = check_environment(&self.config, app, environment) {
            return Ok(Err(refusal));
        }
        let now = self.clock.now();
        let config = self.config.clone();
        let (app, environment, actor) = (app.clone(), environment.clone(), actor.to_owned());
        let outcome = self
            .storage
            .write(move |conn| {
                Box::pin(
                    async move { unlock_in(conn, &config, &app, &environment, &actor, now).await },
                )
            })
            .await?;
        self.outbox_wakeup.notify_one();
        Ok(Ok(outcome))
    }
}

async fn lock_in(
    conn: &mut AnyConnection,
    config: &Config,
    new: &NewLock,
    now: DateTime<Utc>,
) -> Result<LockOutcome, StorageError> {
    let outcome = locks::acquire_lock(conn, new).await?;
    let LockOutcome::Acquired(lock) = &outcome else {
        return Ok(outcome);
    };
    let entry = Entry::Locked { lock, sha: None };
    audit::append(conn, &lock.locked_by, &entry, now).await?;
    let (app, env) = (&lock.app, &lock.environment);
    let text = format!(
        "{app} {env} locked by {by}: {reason}. New deploys wait for `/unlock {app} {env}`.",
        by = lock.locked_by,
        reason = lock.reason,
    );
    effects::announce_marked(conn, config, app, Some(Marker::Locked), &text, now).await?;
    refresh_waiting_card(conn, config, app, env, now).await?;
    Ok(outcome)
}

async fn unlock_in(
    conn: &mut AnyConnection,
    config: &Config,
    app: &AppName,
    environment: &EnvironmentName,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<UnlockOutcome, StorageError> {
    let lock = match locks::release_lock(conn, app, environment, actor, now).await {
        Ok(lock) => lock,
        Err(error) if error.is_not_found() => return Ok(UnlockOutcome::NotLocked),
        Err(error) => return Err(error),
    };
    audit::append(conn, actor, &Entry::Unlocked(&lock), now).await?;
    let mut text = format!("{app} {environment} unlocked by {actor}.");
    let mut released = None;
    if let Some(request) = approvals::latest_approved_request(conn, app, environment).await? {
        if !deploys::approval_deploy_started(conn, request.id).await? {
            let snapshot = load_snapshot(conn, config, &request).await?;
            let mut start = approval::start_held_deploy(&snapshot);
            if !start.is_empty() {
                start.push(greenlight_commands::Effect::UpdateCard);
                effects::enqueue_effects(
                    conn,
                    &Context {
                        config,
                        request: &request,
                        actor,
                        reply_to: &ReplyTo::Nobody,
                        now,
                    },
                    &start,
                )
                .await?;
                let sha = request.sha.short();
                let deployed_by_ci = config
                    .environment(app, environment)
                    .is_some_and(|environment| environment.deploy.is_none());
                text.push_str(&if deployed_by_ci {
                    format!(" CI may now deploy {sha}, approved while {environment} was locked.")
                } else {
                    format!(" Deploying {sha}, approved while {environment} was locked.")
                });
                released = Some(HeldDeploy {
                    request_id: request.id,
                    sha: request.sha.clone(),
                });
            }
        }
    }
    // GitHub protection rules that arrived for an approved release while locked.
    let gates = super::gates::answer_held_gates(conn, config, app, environment, now).await?;
    if gates > 0 && released.is_none() {
        text.push_str(&format!(
            " GitHub may now run the {gates} approved deployment job(s) held by the lock."
        ));
    }
    effects::announce_marked(conn, config, app, Some(Marker::Unlocked), &text, now).await?;
    refresh_waiting_card(conn, config, app, environment, now).await?;
    Ok(UnlockOutcome::Unlocked { lock, released })
}

/// The waiting approval card shows the lock; edit it when the lock comes or goes.
async fn refresh_waiting_card(
    conn: &mut AnyConnection,
    config: &Config,
    app: &AppName,
    environment: &EnvironmentName,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if let Some(waiting) = approvals::waiting_approval_request(conn, app, environment).await? {
        effects::update_card_at(conn, config, app, CardKey::Approval(waiting.id), now, None)
            .await?;
    }
    Ok(())
}

fn check_environment(
    config: &Config,
    app: &AppName,
    environment: &EnvironmentName,
) -> Result<(), LockRefusal> {
    match configured_environment(config, app, environment) {
        Ok(_) => Ok(()),
        Err(UnknownTarget::App(app)) => Err(LockRefusal::UnknownApp(app)),
        Err(UnknownTarget::Environment { app, environment }) => {
            Err(LockRefusal::UnknownEnvironment { app, environment })
        }
    }
}
