//! `/rollback`: planning which release to put back, and starting that rollback exactly once per
//! confirmation. The caller (a chat command) has already authorized the actor.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use greenlight_commands::{AppName, DeploymentKind, DeploymentState, EnvironmentName};
use greenlight_storage::{
    deliveries, deployments, releases, AnyConnection, Deployment, StorageError,
};
use serde_json::json;

use super::audit::{self, Entry};
use super::deployment::lock_automatically;
use super::deploys::{self, Begin};
use super::targets::{configured_environment, UnknownTarget};
use super::{effects, Engine};
use crate::chat::Marker;
use crate::config::Config;

/// What a rollback would do: `current` (what runs now) is replaced by `target`, a release that
/// was once healthy in the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackPlan {
    pub app: AppName,
    pub environment: EnvironmentName,
    pub current: Deployment,
    /// The newest deployment of the target release that was healthy in the environment.
    pub target: Deployment,
}

impl RollbackPlan {
    /// "shop production: abc1234 (faulty) → def5678 (ghcr.io/acme/shop:def5678…)", for the
    /// confirmation prompt.
    pub fn summary(&self) -> String {
        format!(
            "{app} {env}: {current} ({state}) → {target} ({image})",
            app = self.app,
            env = self.environment,
            current = self.current.sha.short(),
            state = self.current.state,
            target = self.target.sha.short(),
            image = self.target.image,
        )
    }

    /// A reference to this plan for a confirm button: `rollback_plan_from_reference` loads the
    /// plan again and refuses it if the environment changed meanwhile. It also makes a good
    /// idempotency key for `start_rollback`: confirming the same plan twice rolls back once.
    pub fn reference(&self) -> String {
        format!(
            "rollback:{}:{}:{}:{}",
            self.app, self.environment, self.current.id, self.target.id
        )
    }
}

/// Why a rollback cannot be planned or started. Said to the person who asked, as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackRefusal {
    #[error("there is no app {0} in greenlight.toml")]
    UnknownApp(AppName),
    #[error("{app} has no environment {environment}")]
    UnknownEnvironment {
        app: AppName,
        environment: EnvironmentName,
    },
    #[error("Greenlight does not deploy {app} {environment} ({by} does), so it cannot roll it back; redeploy the previous release from there")]
    NoDeployer {
        app: AppName,
        environment: EnvironmentName,
        by: &'static str,
    },
    #[error(
        "nothing has been deployed to {app} {environment} yet, so there is nothing to roll back"
    )]
    NothingDeployed {
        app: AppName,
        environment: EnvironmentName,
    },
    #[error("a {kind} of {sha} to {app} {environment} is in progress; wait until it finishes (or times out), then try again")]
    DeployInProgress {
        app: AppName,
        environment: EnvironmentName,
        sha: String,
        kind: DeploymentKind,
    },
    #[error("there is nothing to roll back to: no release other than {current} was ever healthy in {app} {environment}")]
    NothingToRollBackTo {
        app: AppName,
        environment: EnvironmentName,
        current: String,
    },
    #[error("{given:?} is not a commit SHA: give at least 7 hex characters")]
    NotASha { given: String },
    #[error("no release starting with {given} was ever healthy in {app} {environment}; `/releases {app} {environment}` lists what ran there")]
    NotATarget {
        app: AppName,
        environment: EnvironmentName,
        given: String,
    },
    #[error("{sha} was deployed to {app} {environment} without approval, so it is not a rollback target; approve it through the gate, or pick another release")]
    Unapproved {
        app: AppName,
        environment: EnvironmentName,
        sha: String,
    },
    #[error("{given} matches several releases ({candidates}); give more characters")]
    AmbiguousTarget { given: String, candidates: String },
    #[error("{app} {environment} already runs {sha}")]
    AlreadyRunning {
        app: AppName,
        environment: EnvironmentName,
        sha: String,
    },
    #[error("{app} {environment} changed since this rollback was planned (it now runs {now}); run /rollback again")]
    Changed {
        app: AppName,
        environment: EnvironmentName,
        now: String,
    },
    #[error("that rollback confirmation is not valid any more; run /rollback again")]
    UnknownPlan,
}

/// How many deployments a SHA prefix may match before the answer is "ambiguous".
const PREFIX_CANDIDATES: u32 = 20;

impl Engine {
    /// Plans a rollback of `app` in `environment` to `to` (a full SHA or a prefix of at least 7
    /// hex characters), or by default to the newest release other than the current one that
    /// was ever healthy there.
    pub async fn rollback_plan(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
        to: Option<&str>,
    ) -> Result<Result<RollbackPlan, RollbackRefusal>, StorageError> {
        if let Err(refusal) = check_deployer(&self.config, app, environment) {
            return Ok(Err(refusal));
        }
        let mut conn = self.storage.reader().await?;
        let current = match current_for_rollback(&mut conn, app, environment).await? {
            Ok(current) => current,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let target = match to {
            None => {
                match deployments::last_healthy_deployment(
                    &mut conn,
                    app,
                    environment,
                    Some(&current.sha),
                )
                .await?
                {
                    Some(target) => target,
                    None => {
                        return Ok(Err(RollbackRefusal::NothingToRollBackTo {
                            app: app.clone(),
                            environment: environment.clone(),
                            current: current.sha.short().to_owned(),
                        }))
                    }
                }
            }
            Some(given) => {
                let given = given.trim();
                if given.len() < 7
                    || given.len() > 40
                    || !given.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Ok(Err(RollbackRefusal::NotASha {
                        given: given.to_owned(),
                    }));
                }
                let found = deployments::healthy_deployments_by_sha_prefix(
                    &mut conn,
                    app,
                    environment,
                    given,
                    PREFIX_CANDIDATES,
                )
                .await?;
                let shas: BTreeSet<&str> = found.iter().map(|d| d.sha.short()).collect();
                if shas.len() > 1 {
                    return Ok(Err(RollbackRefusal::AmbiguousTarget {
                        given: given.to_owned(),
                        candidates: shas.into_iter().collect::<Vec<_>>().join(", "),
                    }));
                }
                // Newest first, so the first is the newest healthy deployment of that release;
                // one nobody approved is never a target (SPEC §10).
                let unapproved = found.iter().find(|d| !d.approved).map(|d| d.sha.clone());
                let Some(target) = found.into_iter().find(|d| d.approved) else {
                    return Ok(Err(match unapproved {
                        Some(sha) => RollbackRefusal::Unapproved {
                            app: app.clone(),
                            environment: environment.clone(),
                            sha: sha.short().to_owned(),
                        },
                        None => RollbackRefusal::NotATarget {
                            app: app.clone(),
                            environment: environment.clone(),
                            given: given.to_owned(),
                        },
                    }));
                };
                if target.sha == current.sha {
                    return Ok(Err(RollbackRefusal::AlreadyRunning {
                        app: app.clone(),
                        environment: environment.clone(),
                        sha: current.sha.short().to_owned(),
                    }));
                }
                target
            }
        };
        Ok(Ok(RollbackPlan {
            app: app.clone(),
            environment: environment.clone(),
            current,
            target,
        }))
    }

    /// The plan behind `RollbackPlan::reference`, if the environment still runs what it did
    /// when the plan was made.
    pub async fn rollback_plan_from_reference(
        &self,
        reference: &str,
    ) -> Result<Result<RollbackPlan, RollbackRefusal>, StorageError> {
        let Some((app, environment, current_id, target_id)) = parse_reference(reference) else {
            return Ok(Err(RollbackRefusal::UnknownPlan));
        };
        if let Err(refusal) = check_deployer(&self.config, &app, &environment) {
            return Ok(Err(refusal));
        }
        let mut conn = self.storage.reader().await?;
        let (current, target) = match (
            deployments::get_deployment(&mut conn, current_id).await,
            deployments::get_deployment(&mut conn, target_id).await,
        ) {
            (Ok(current), Ok(target)) => (current, target),
            (Err(error), _) | (_, Err(error)) if !error.is_not_found() => return Err(error),
            _ => return Ok(Err(RollbackRefusal::UnknownPlan)),
        };
        let belongs = |d: &Deployment| d.app == app && d.environment == environment;
        if !belongs(&current) || !belongs(&target) || target.healthy_at.is_none() {
            return Ok(Err(RollbackRefusal::UnknownPlan));
        }
        let plan = RollbackPlan {
            app,
            environment,
            current,
            target,
        };
        match still_current(&mut conn, &plan).await? {
            Ok(()) => Ok(Ok(plan)),
            Err(refusal) => Ok(Err(refusal)),
        }
    }

    /// The rollback already started under `idempotency_key`, if any: a second confirmation of
    /// the same plan is answered with it rather than refused because a rollback now runs.
    pub async fn rollback_started_with(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<Deployment>, StorageError> {
        let mut conn = self.storage.reader().await?;
        started_by_key(&mut conn, &format!("greenlight:rollback:{idempotency_key}")).await
    }

    /// Starts the rollback `plan` describes, on behalf of `actor`, at most once per
    /// `idempotency_key` (e.g. the plan's reference or the confirmation's id): asking again
    /// with the same key returns the rollback deployment started the first time. Refused if the
    /// environment changed since the plan was made.
    pub async fn start_rollback(
        &self,
        plan: &RollbackPlan,
        actor: &str,
        idempotency_key: &str,
    ) -> Result<Result<Deployment, RollbackRefusal>, StorageError> {
        if let Err(refusal) = check_deployer(&self.config, &plan.app, &plan.environment) {
            return Ok(Err(refusal));
        }
        let key = format!("greenlight:rollback:{idempotency_key}");
        let now = self.clock.now();
        let config = self.config.clone();
        let (plan_owned, actor_owned, key_owned) = (plan.clone(), actor.to_owned(), key.clone());
        let outcome = self
            .storage
            .write(move |conn| {
                Box::pin(async move {
                    start_in(conn, &config, &plan_owned, &actor_owned, &key_owned, now).await
                })
            })
            .await;
        let outcome = match outcome {
            // The same confirmation, handled concurrently: answer as it did.
            Err(error) if error.is_conflict() => {
                let mut conn = self.storage.reader().await?;
                match started_by_key(&mut conn, &key).await? {
                    Some(deployment) => Ok(deployment),
                    None => return Err(error),
                }
            }
            other => other?,
        };
        self.outbox_wakeup.notify_one();
        Ok(outcome)
    }
}

async fn start_in(
    conn: &mut AnyConnection,
    config: &Config,
    plan: &RollbackPlan,
    actor: &str,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Result<Deployment, RollbackRefusal>, StorageError> {
    if let Some(deployment) = started_by_key(conn, key).await? {
        return Ok(Ok(deployment));
    }
    if let Err(refusal) = still_current(conn, plan).await? {
        return Ok(Err(refusal));
    }
    let Some(environment) = config.environment(&plan.app, &plan.environment) else {
        return Ok(Err(RollbackRefusal::UnknownEnvironment {
            app: plan.app.clone(),
            environment: plan.environment.clone(),
        }));
    };
    let Some(deployer) = deploys::triggerable(environment) else {
        return Ok(Err(no_deployer(config, plan)));
    };
    let release = releases::get_release(conn, plan.target.release_id).await?;
    let rollback = deploys::begin_deployment(
        conn,
        &Begin {
            release: &release,
            environment: &plan.environment,
            kind: DeploymentKind::Rollback,
            deployer,
            previous_sha: Some(plan.current.sha.clone()),
            triggered_by: actor.to_owned(),
            actor,
        },
        now,
    )
    .await?;
    deliveries::insert_idempotency_key(conn, key, &json!({ "deployment_id": rollback.id }), now)
        .await?;
    let (app, env) = (&plan.app, &plan.environment);
    let (from, to) = (plan.current.sha.short(), plan.target.sha.short());
    let mut locked = false;
    if environment.lock_after_rollback {
        // Locked while the release it replaces ran; an existing lock stays as it is.
        let reason = format!("rolled back by {actor} from {from} to {to}");
        lock_automatically(conn, &plan.current, &reason, now).await?;
        locked = true;
    }
    let entry = Entry::RollbackStarted {
        rollback: &rollback,
        from: &plan.current.sha,
    };
    audit::append(conn, actor, &entry, now).await?;
    let mut text = format!(
        "{actor} is rolling back {app} {env} from {from} to {to} \
         ({image}); {env} runs {from} until the rollback is done.\n\
         Permanent fix: `git revert {full}`, then ship that.",
        image = rollback.image,
        full = plan.current.sha,
    );
    if locked {
        text.push_str(&format!(
            "\n{env} is locked: new deploys wait for `/unlock {app} {env}`."
        ));
    }
    effects::announce_marked(conn, config, app, Some(Marker::Rollback), &text, now).await?;
    Ok(Ok(rollback))
}

async fn started_by_key(
    conn: &mut AnyConnection,
    key: &str,
) -> Result<Option<Deployment>, StorageError> {
    let Some(stored) = deliveries::find_idempotency_key(conn, key).await? else {
        return Ok(None);
    };
    match stored["deployment_id"].as_i64() {
        Some(id) => Ok(Some(deployments::get_deployment(conn, id).await?)),
        None => Ok(None),
    }
}

/// The environment must still run what the plan replaces, and nothing may be deploying.
async fn still_current(
    conn: &mut AnyConnection,
    plan: &RollbackPlan,
) -> Result<Result<(), RollbackRefusal>, StorageError> {
    let current = match current_for_rollback(conn, &plan.app, &plan.environment).await? {
        Ok(current) => current,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if current.id != plan.current.id {
        return Ok(Err(RollbackRefusal::Changed {
            app: plan.app.clone(),
            environment: plan.environment.clone(),
            now: current.sha.short().to_owned(),
        }));
    }
    Ok(Ok(()))
}

/// What runs now, if a rollback may replace it.
async fn current_for_rollback(
    conn: &mut AnyConnection,
    app: &AppName,
    environment: &EnvironmentName,
) -> Result<Result<Deployment, RollbackRefusal>, StorageError> {
    let Some(current) = deployments::current_deployment(conn, app, environment).await? else {
        return Ok(Err(RollbackRefusal::NothingDeployed {
            app: app.clone(),
            environment: environment.clone(),
        }));
    };
    if current.state == DeploymentState::Deploying {
        return Ok(Err(RollbackRefusal::DeployInProgress {
            app: app.clone(),
            environment: environment.clone(),
            sha: current.sha.short().to_owned(),
            kind: current.kind,
        }));
    }
    Ok(Ok(current))
}

fn check_deployer(
    config: &Config,
    app: &AppName,
    environment: &EnvironmentName,
) -> Result<(), RollbackRefusal> {
    let environment_config = match configured_environment(config, app, environment) {
        Ok(found) => found,
        Err(UnknownTarget::App(app)) => return Err(RollbackRefusal::UnknownApp(app)),
        Err(UnknownTarget::Environment { app, environment }) => {
            return Err(RollbackRefusal::UnknownEnvironment { app, environment })
        }
    };
    if deploys::triggerable(environment_config).is_none() {
        return Err(RollbackRefusal::NoDeployer {
            app: app.clone(),
            environment: environment.clone(),
            by: if environment_config.deploy.is_some() {
                "GitHub"
            } else {
                "CI"
            },
        });
    }
    Ok(())
}

fn no_deployer(config: &Config, plan: &RollbackPlan) -> RollbackRefusal {
    check_deployer(config, &plan.app, &plan.environment)
        .err()
        .unwrap_or(RollbackRefusal::UnknownPlan)
}

fn parse_reference(reference: &str) -> Option<(AppName, EnvironmentName, i64, i64)> {
    let mut parts = reference.strip_prefix("rollback:")?.split(':');
    let app = AppName::parse(parts.next()?).ok()?;
    let environment = EnvironmentName::parse(parts.next()?).ok()?;
    let current = parts.next()?.parse().ok()?;
    let target = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((app, environment, current, target))
}

impl fmt::Display for RollbackPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip_and_reject_garbage() {
        let parsed = parse_reference("rollback:shop:production:12:7").expect("parses");
        assert_eq!(
            (parsed.0.as_str(), parsed.1.as_str(), parsed.2, parsed.3),
            ("shop", "production", 12, 7)
        );
        for bad in [
            "",
            "rollback:shop:production:12",
            "rollback:shop:production:12:7:1",
            "rollback:shop:production:x:7",
            "flag:shop:production:12:7",
        ] {
            assert_eq!(parse_reference(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn refusals_say_what_to_do() {
        let app = AppName::parse("shop").expect("app");
        let environment = EnvironmentName::parse("production").expect("env");
        let text = RollbackRefusal::NothingToRollBackTo {
            app: app.clone(),
            environment: environment.clone(),
            current: "abc1234".into(),
        }
        .to_string();
        assert_eq!(text, "there is nothing to roll back to: no release other than abc1234 was ever healthy in shop production");
        let text = RollbackRefusal::NoDeployer {
            app,
            environment,
            by: "CI",
        }
        .to_string();
        assert!(text.contains("CI does"), "{text}");
    }
}
