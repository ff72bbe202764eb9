//! Deployers: the outbox deliverer for `deploy.*` items, which starts a deployment through the
//! environment's `deploy` (SPEC §3): a signed HTTP hook, a command, or a GitHub workflow.
//!
//! What a deployer answers decides only whether the deploy *started*; completion arrives later
//! (a `deployed` CI event or `deployment_status` carrying the deployment id, or a command's
//! exit), and a deployment that never completes fails at its `timeout` (engine timers).
//!
//! Architecture invariant: only this module knows the deployers' wire formats, and it changes
//! a deployment's state only through the engine's conditional transitions.
//!
//! Restarts: an HTTP or workflow trigger is an outbox item, so one interrupted by a crash is
//! delivered again, with the same `Idempotency-Key` (the deployment id). A command deploy runs
//! in a background task of the replica that claimed it (`command_runs`, written with the
//! "started" mark); if that replica stops, the deployment fails as interrupted (at its
//! shutdown, or from another replica once its lease lapsed, see `replica`) and the command is
//! never run again on its own.

mod command;
mod hook;
mod workflow;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use greenlight_commands::{DeploymentKind, DeploymentState};
use greenlight_storage::{deployments, replicas, Deployment, DeploymentTransition, OutboxItem};
use serde::Serialize;

use crate::background::Background;
use crate::config::{ChildEnvironment, Config, Deployer};
use crate::engine::audit::GREENLIGHT;
use crate::engine::{DeployResult, Engine, INTERRUPTED};
use crate::outbox::{Deliverer, DeliveryError};

pub use command::{fill_placeholders, CommandOutcome, OUTPUT_LIMIT};
pub use hook::signature;

/// One deployer call may take this long before it counts as a transient failure. The outbox
/// worker renews its lease meanwhile, so a slow hook never lets a second worker trigger the
/// same deployment.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const USER_AGENT: &str = concat!("greenlight/", env!("CARGO_PKG_VERSION"));

/// What every deployer is told about a deployment (the HTTP hook's body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployRequest {
    pub deployment_id: i64,
    pub app: String,
    pub environment: String,
    pub sha: String,
    pub image: String,
    pub previous_sha: Option<String>,
    /// `deploy` or `rollback`.
    pub kind: DeploymentKind,
}

impl DeployRequest {
    pub fn of(deployment: &Deployment) -> Self {
        Self {
            deployment_id: deployment.id,
            app: deployment.app.to_string(),
            environment: deployment.environment.to_string(),
            sha: deployment.sha.to_string(),
            image: deployment.image.clone(),
            previous_sha: deployment.previous_sha.as_ref().map(ToString::to_string),
            kind: deployment.kind,
        }
    }
}

/// How a deployer answered the request to start.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Started {
    /// Accepted; completion is reported later.
    Accepted,
    /// Refused for good (4xx): the deployment fails with this detail.
    Refused(String),
    /// Down, slow or throttling: try again (after `Retry-After` when given).
    Unavailable {
        after: Option<Duration>,
        reason: String,
    },
}

/// Delivers `deploy.trigger` items.
#[derive(Clone)]
pub struct DeployDeliverer {
    engine: Engine,
    config: Arc<Config>,
    client: reqwest::Client,
    background: Background,
}

impl DeployDeliverer {
    /// Command deploys run as tasks of `background`, so shutdown stops them.
    pub fn new(engine: Engine, background: Background) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(CALL_TIMEOUT)
            // A signed POST is not replayed to wherever a redirect points; configure the
            // hook's final URL instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            config: engine.config.clone(),
            engine,
            client,
            background,
        })
    }

    async fn trigger(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        let Some(id) = item.payload["deployment_id"].as_i64() else {
            return Err(DeliveryError::Permanent(
                "deploy item without a deployment_id".to_owned(),
            ));
        };
        let deployment = match self.engine.storage.deployment(id).await {
            Ok(deployment) => deployment,
            Err(error) if error.is_not_found() => {
                return Err(DeliveryError::Permanent(format!(
                    "deployment {id} not found"
                )))
            }
            Err(error) => return Err(DeliveryError::retry(error.to_string())),
        };
        // Timed out, or completed by CI, before the trigger went out: nothing left to start.
        if deployment.state != DeploymentState::Deploying {
            tracing::info!(deployment = id, state = %deployment.state, "deployment no longer deploying; trigger dropped");
            return Ok(());
        }
        let deployer = self
            .config
            .environment(&deployment.app, &deployment.environment)
            .and_then(|environment| environment.deploy.clone());
        let started = match &deployer {
            Some(Deployer::Http { url, secret, .. }) => {
                hook::post(&self.client, url, secret, &DeployRequest::of(&deployment)).await
            }
            Some(Deployer::GithubWorkflow {
                workflow, git_ref, ..
            }) => {
                workflow::dispatch(&self.client, &self.config, &deployment, workflow, git_ref).await
            }
            Some(Deployer::Command { run, timeout, env }) => {
                return self
                    .start_command(deployment, run.clone(), env.clone(), *timeout)
                    .await;
            }
            Some(Deployer::GithubProtectionRule { .. }) | None => Started::Refused(format!(
                "{} {} has no deployer Greenlight can trigger any more (greenlight.toml changed)",
                deployment.app, deployment.environment
            )),
        };
        let kind = deployer.as_ref().map_or("none", Deployer::kind);
        match started {
            Started::Accepted => {
                tracing::info!(deployment = id, deployer = kind, "deploy triggered");
                Ok(())
            }
            Started::Unavailable { after, reason } => Err(DeliveryError::Retry { after, reason }),
            Started::Refused(detail) => {
                self.fail(&deployment, detail.clone()).await?;
                Err(DeliveryError::Permanent(detail))
            }
        }
    }

    /// Records that the deploy did not happen; a storage failure retries the whole item.
    async fn fail(&self, deployment: &Deployment, detail: String) -> Result<(), DeliveryError> {
        self.engine
            .record_deploy_result(deployment, DeployResult::Failed { detail }, GREENLIGHT)
            .await
            .map(|_| ())
            .map_err(|error| DeliveryError::retry(format!("recording the failure: {error}")))
    }

    /// Marks the command as started (so nobody runs it a second time), then runs it in the
    /// background and records its result when it ends.
    async fn start_command(
        &self,
        deployment: Deployment,
        run: Vec<String>,
        child_env: ChildEnvironment,
        timeout: Duration,
    ) -> Result<(), DeliveryError> {
        let id = deployment.id;
        let now = self.engine.clock().now();
        let replica = self.engine.replica.name().to_owned();
        let claim = self
            .engine
            .storage
            .write(move |conn| {
                Box::pin(async move {
                    let current = deployments::get_deployment(conn, id).await?;
                    if current.state != DeploymentState::Deploying {
                        return Ok(Claim::Settled);
                    }
                    if current.deployer_ref.is_some() {
                        return Ok(Claim::StartedBefore(current));
                    }
                    let mut change = DeploymentTransition::new(
                        DeploymentState::Deploying,
                        DeploymentState::Deploying,
                        now,
                    );
                    change.deployer_ref = Some(format!(
                        "command started {} on replica {replica}",
                        now.to_rfc3339()
                    ));
                    let claimed = deployments::transition_deployment(conn, id, &change).await?;
                    replicas::record_command_run(conn, id, &replica, now).await?;
                    Ok(Claim::Run(claimed))
                })
            })
            .await
            .map_err(|error| DeliveryError::retry(error.to_string()))?;
        let deployment = match claim {
            Claim::Settled => return Ok(()),
            // Delivered again after a crash: the first run's outcome is unknown, so it is not
            // run twice.
            Claim::StartedBefore(deployment) => {
                return self.fail(&deployment, INTERRUPTED.to_owned()).await;
            }
            Claim::Run(deployment) => deployment,
        };
        let argv = fill_placeholders(&run, &DeployRequest::of(&deployment));
        // The deploy timeout counts from when the deployment was created, so the command is
        // killed when the timer would fail the deployment, not later.
        let spent = (now - deployment.created_at).to_std().unwrap_or_default();
        let timeout = timeout.saturating_sub(spent).max(Duration::from_secs(1));
        let engine = self.engine.clone();
        let stop = self.background.stop_signal();
        let held = self.engine.replica.run_command_deploy(id);
        self.background
            .spawn(&format!("deploy command {id}"), async move {
                let _held = held;
                let outcome = command::run(&argv, &child_env, timeout, stop).await;
                tracing::info!(deployment = id, outcome = outcome.summary(), "deploy command ended");
                let result = outcome.into_result();
                if let Err(error) = engine
                    .record_deploy_result(&deployment, result, "deployer:command")
                    .await
                {
                    tracing::error!(%error, deployment = id, "recording the deploy command's result failed; the deploy timeout will fail it");
                }
            });
        Ok(())
    }
}

enum Claim {
    Settled,
    StartedBefore(Deployment),
    Run(Deployment),
}

impl Deliverer for DeployDeliverer {
    fn deliver<'a>(&'a self, item: &'a OutboxItem) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.trigger(item))
    }
}

/// "HTTP 503 Service Unavailable: <body excerpt>".
fn status_detail(status: reqwest::StatusCode, body: &str) -> String {
    let body = body.trim();
    let excerpt: String = body.chars().take(300).collect();
    let more = if body.chars().count() > 300 {
        "…"
    } else {
        ""
    };
    if excerpt.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {excerpt}{more}")
    }
}

/// The answer to a deployer's HTTP status: 2xx accepted, 408/425/429 and 5xx try again, any
/// other status refused for good.
fn started_from(
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    body: &str,
    who: &str,
) -> Started {
    if status.is_success() {
        return Started::Accepted;
    }
    let detail = format!("{who} answered {}", status_detail(status, body));
    let transient = status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429);
    if transient {
        Started::Unavailable {
            after: retry_after,
            reason: detail,
        }
    } else {
        Started::Refused(detail)
    }
}

/// `Retry-After` in seconds, as deploy hooks and GitHub send it.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// A network failure, described without the URL (it may carry a token).
fn unreachable(who: &str, error: &reqwest::Error) -> Started {
    let what = if error.is_timeout() {
        format!("timed out after {}s", CALL_TIMEOUT.as_secs())
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    Started::Unavailable {
        after: None,
        reason: format!("{who} unreachable: {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_sort_into_accepted_retry_and_refused() {
        use reqwest::StatusCode;
        assert_eq!(
            started_from(StatusCode::ACCEPTED, None, "", "hook"),
            Started::Accepted
        );
        assert_eq!(
            started_from(StatusCode::NO_CONTENT, None, "", "hook"),
            Started::Accepted
        );
        for status in [500, 502, 503, 408, 429] {
            let status = StatusCode::from_u16(status).expect("status");
            assert!(
                matches!(
                    started_from(status, None, "", "hook"),
                    Started::Unavailable { .. }
                ),
                "{status}"
            );
        }
        assert_eq!(
            started_from(
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                " no such app ",
                "hook"
            ),
            Started::Refused("hook answered HTTP 422 Unprocessable Entity: no such app".into())
        );
        assert!(matches!(
            started_from(StatusCode::FOUND, None, "", "hook"),
            Started::Refused(_)
        ));
    }

    #[test]
    fn long_bodies_are_cut() {
        let detail = status_detail(reqwest::StatusCode::BAD_REQUEST, &"x".repeat(1000));
        assert!(detail.ends_with('…'), "{detail}");
        assert!(detail.len() < 400, "{}", detail.len());
    }
}
