//! What CI and GitHub report: builds (releases) and deployment results, recorded once each,
//! with the promotion that a healthy result may trigger.

use chrono::{DateTime, Utc};
use greenlight_commands::deployment::{Event, Refusal, ReportedSmoke};
use greenlight_commands::{
    AppName, CommitSha, DeploymentState, EnvironmentName, ImageRef, ImageRefError,
};
use greenlight_storage::{
    approvals, deliveries, deployments, releases, AnyConnection, ApprovalRequest, Deployment,
    NewRelease, Release, SmokeResult, StorageError,
};
use serde_json::{json, Value};

use super::audit::{self, Entry, CI};
use super::deployment::{self, Change, Target, Unrecorded};
use super::Engine;
use crate::config::{AppConfig, Config};

/// Whether the deploy went well, as CI or GitHub says.
pub use greenlight_commands::deployment::ReportedStatus;

/// A build CI finished: the release it produced.
#[derive(Debug, Clone)]
pub struct BuildReport {
    pub app: AppName,
    pub sha: CommitSha,
    pub image: String,
    pub git_ref: Option<String>,
    pub author: Option<String>,
    pub message: Option<String>,
    pub committed_at: Option<DateTime<Utc>>,
    pub ci_url: Option<String>,
}

/// Smoke results CI ran itself and sent along.
#[derive(Debug, Clone)]
pub struct CiSmoke {
    pub passed: bool,
    pub checks: Vec<SmokeResult>,
}

/// A deployment of a release to an environment finished (CI event or GitHub
/// `deployment_status`).
#[derive(Debug, Clone)]
pub struct DeploymentReport {
    pub app: AppName,
    pub environment: EnvironmentName,
    pub sha: CommitSha,
    pub status: ReportedStatus,
    /// Needed when the release was never reported as a build.
    pub image: Option<String>,
    pub smoke: Option<CiSmoke>,
    /// The id Greenlight gave its deployer, when this completes a deploy Greenlight triggered.
    pub deployment_id: Option<i64>,
    pub url: Option<String>,
    pub detail: Option<String>,
    /// Who reported it, for the release log (`ci`, `github:octocat`).
    pub actor: String,
}

impl DeploymentReport {
    /// The report as the deployment machine sees it.
    fn event(&self) -> Event {
        let smoke = match &self.smoke {
            None => ReportedSmoke::Absent,
            Some(smoke) if smoke.passed => ReportedSmoke::Passed,
            Some(_) => ReportedSmoke::Failed,
        };
        Event::Reported {
            status: self.status,
            smoke,
        }
    }
}

/// How a repeated delivery of the same report is recognised.
#[derive(Debug, Clone)]
pub enum Dedup {
    /// A CI idempotency key: a repeat gets the first reply again.
    Key(String),
    /// A webhook delivery id: a repeat is acknowledged and ignored.
    Delivery {
        source: &'static str,
        id: String,
    },
    None,
}

/// The answer to a report: what was recorded, as JSON for the caller, and whether this call was
/// a repeat of an earlier one.
#[derive(Debug, Clone, PartialEq)]
pub struct IntakeReply {
    pub body: Value,
    pub duplicate: bool,
    /// A deployment started verifying in this write: the verifier has work once it committed.
    pub(crate) wake_verifier: bool,
}

/// Why a report was refused. `field` names what the sender must fix.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("unknown app {0:?}; configured apps are listed in greenlight.toml [apps]")]
    UnknownApp(String),
    #[error("app {app} has no environment {environment:?}")]
    UnknownEnvironment { app: String, environment: String },
    #[error(transparent)]
    Image(#[from] ImageRefError),
    #[error("release {app}@{sha} is not known: send a `build` event first, or include `image`")]
    UnknownRelease { app: String, sha: String },
    #[error("release {app}@{sha} was already recorded with image {recorded}; a release's image cannot change")]
    ImageChanged {
        app: String,
        sha: String,
        recorded: String,
    },
    #[error("deployment {id} is not a deployment of {app}@{sha} to {environment}")]
    DeploymentMismatch {
        id: i64,
        app: String,
        sha: String,
        environment: String,
    },
    #[error("deployment {id} already finished as {state}; a later result cannot change it")]
    DeploymentFinished { id: i64, state: DeploymentState },
    /// Any other refusal of the deployment machine (a report is refused only as finished).
    #[error("the deployment cannot take this result: {0}")]
    DeploymentRefused(Refusal),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl IntakeError {
    /// The request field at fault; `None` for internal failures.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::UnknownApp(_) => Some("app"),
            Self::UnknownEnvironment { .. } => Some("environment"),
            Self::Image(_) | Self::ImageChanged { .. } => Some("image"),
            Self::UnknownRelease { .. } => Some("sha"),
            Self::DeploymentMismatch { .. }
            | Self::DeploymentFinished { .. }
            | Self::DeploymentRefused(_) => Some("deployment_id"),
            Self::Storage(_) => None,
        }
    }
}

/// A write's domain outcome: refusals found inside the transaction come back as `Err` without
/// having written anything.
type Outcome = Result<IntakeReply, IntakeError>;

impl Engine {
    /// Records a release after checking its image is immutable and belongs to the app.
    pub async fn record_build(&self, report: BuildReport, dedup: Dedup) -> Outcome {
        let app = self.known_app(&report.app)?;
        let image = ImageRef::parse(
            &report.image,
            app.image.as_str(),
            &report.sha,
            app.allow_version_tags,
        )?;
        let now = self.clock.now();
        let commit_url = app
            .repository
            .as_ref()
            .map(|repository| format!("https://github.com/{repository}/commit/{}", report.sha));
        let new = NewRelease {
            app: report.app.clone(),
            sha: report.sha.clone(),
            image: image.to_string(),
            author: report.author.clone(),
            message: report.message.clone(),
            git_ref: report.git_ref.clone(),
            commit_url,
            ci_url: report.ci_url.clone(),
            committed_at: report.committed_at,
            created_at: now,
        };
        self.write_deduplicated(dedup, now, move |conn| {
            Box::pin(async move {
                let upserted = releases::insert_release(conn, &new).await?;
                let created = upserted.is_created();
                let release = upserted.into_inner();
                if release.image != new.image {
                    return Ok(Err(IntakeError::ImageChanged {
                        app: release.app.to_string(),
                        sha: release.sha.to_string(),
                        recorded: release.image,
                    }));
                }
                if created {
                    audit::append(conn, CI, &Entry::ReleaseRecorded(&release), now).await?;
                }
                Ok(Ok(reply(&release, None, &[])))
            })
        })
        .await
    }

    /// Records a deployment result. Success runs (or waits for) smoke checks; a release that
    /// ends up healthy before a gated environment opens its approval request.
    pub async fn record_deployment(&self, report: DeploymentReport, dedup: Dedup) -> Outcome {
        let app = self.known_app(&report.app)?;
        let environment = app.environment(&report.environment).ok_or_else(|| {
            IntakeError::UnknownEnvironment {
                app: report.app.to_string(),
                environment: report.environment.to_string(),
            }
        })?;
        let image = report
            .image
            .as_deref()
            .map(|image| {
                ImageRef::parse(
                    image,
                    app.image.as_str(),
                    &report.sha,
                    app.allow_version_tags,
                )
            })
            .transpose()?;
        let now = self.clock.now();
        let config = self.config.clone();
        let recorded = self
            .write_deduplicated(dedup, now, move |conn| {
                Box::pin(async move {
                    let release =
                        match releases::find_release(conn, &report.app, &report.sha).await? {
                            Some(release) => release,
                            None => match image {
                                Some(image) => {
                                    let new = NewRelease {
                                        app: report.app.clone(),
                                        sha: report.sha.clone(),
                                        image: image.to_string(),
                                        author: None,
                                        message: None,
                                        git_ref: None,
                                        commit_url: None,
                                        ci_url: report.url.clone(),
                                        committed_at: None,
                                        created_at: now,
                                    };
                                    releases::insert_release(conn, &new).await?.into_inner()
                                }
                                None => {
                                    return Ok(Err(IntakeError::UnknownRelease {
                                        app: report.app.to_string(),
                                        sha: report.sha.to_string(),
                                    }))
                                }
                            },
                        };
                    let smoke = report
                        .smoke
                        .as_ref()
                        .map(|s| s.checks.clone())
                        .unwrap_or_default();
                    let deployment_id = match report.deployment_id {
                        Some(id) => Some(id),
                        None => {
                            super::deploys::in_flight(conn, release.id, &report.environment).await?
                        }
                    };
                    let target = match deployment_id {
                        Some(id) => match recorded_deployment(conn, id, &release, &report).await? {
                            Ok(deployment) => Target::Recorded(deployment),
                            Err(error) => return Ok(Err(error)),
                        },
                        None => Target::Unrecorded(
                            unrecorded_deploy(conn, &config, &release, &report).await?,
                        ),
                    };
                    let change = Change {
                        config: &config,
                        release: &release,
                        event: report.event(),
                        smoke,
                        detail: report.detail.clone(),
                        actor: &report.actor,
                        now,
                    };
                    let applied = match deployment::advance(conn, target, &change).await? {
                        Ok(applied) => applied,
                        Err(refusal) => return Ok(Err(refused(deployment_id, refusal))),
                    };
                    let mut reply = reply(&release, Some(&applied.deployment), &applied.opened);
                    reply.wake_verifier = applied.wake_verifier;
                    Ok(Ok(reply))
                })
            })
            .await?;
        if !recorded.duplicate && recorded.body["deployment"]["approved"] == false {
            metrics::counter!(
                "greenlight_unapproved_deploys_total",
                "app" => app.name.to_string(),
                "environment" => environment.name.to_string(),
            )
            .increment(1);
        }
        if recorded.wake_verifier {
            self.verifier_wakeup.notify_one();
        }
        self.outbox_wakeup.notify_one();
        Ok(recorded)
    }

    fn known_app(&self, name: &AppName) -> Result<&AppConfig, IntakeError> {
        self.config
            .app(name)
            .ok_or_else(|| IntakeError::UnknownApp(name.to_string()))
    }

    /// Runs `work` once per dedup key: the key is recorded in the same write, so a crash cannot
    /// apply a report without remembering it, nor remember it without applying it.
    async fn write_deduplicated<F>(&self, dedup: Dedup, now: DateTime<Utc>, work: F) -> Outcome
    where
        F: for<'c> FnOnce(
                &'c mut AnyConnection,
            )
                -> greenlight_storage::BoxFuture<'c, Result<Outcome, StorageError>>
            + Send
            + 'static,
    {
        let key = match &dedup {
            Dedup::Key(key) => Some(key.clone()),
            _ => None,
        };
        if let Some(key) = &key {
            if let Some(body) = self.storage.find_idempotency_key(key).await? {
                return Ok(IntakeReply {
                    body,
                    duplicate: true,
                    wake_verifier: false,
                });
            }
        }
        let delivery = match &dedup {
            Dedup::Delivery { source, id } => Some((*source, id.clone())),
            _ => None,
        };
        let attempt = self
            .storage
            .write(move |conn| {
                Box::pin(async move {
                    if let Dedup::Delivery { source, id } = &dedup {
                        if deliveries::webhook_delivery_seen(conn, source, id).await? {
                            return Ok(Ok(duplicate_delivery(id)));
                        }
                    }
                    let outcome = work(conn).await?;
                    // Only an applied report is remembered: a refused one may be sent again
                    // once its cause is fixed.
                    if let Ok(reply) = &outcome {
                        match &dedup {
                            Dedup::Key(key) => {
                                deliveries::insert_idempotency_key(conn, key, &reply.body, now)
                                    .await?;
                            }
                            Dedup::Delivery { source, id } => {
                                if !deliveries::record_webhook_delivery(conn, source, id, now)
                                    .await?
                                {
                                    // A concurrent copy of this delivery applied it first.
                                    return Err(StorageError::conflict(format!(
                                        "delivery {id} was applied concurrently"
                                    )));
                                }
                            }
                            Dedup::None => {}
                        }
                    }
                    Ok(outcome)
                })
            })
            .await;
        match attempt {
            Ok(outcome) => outcome,
            // Two identical reports raced and the other one applied it: answer as it did.
            Err(error) if error.is_conflict() => match (&key, &delivery) {
                (Some(key), _) => match self.storage.find_idempotency_key(key).await? {
                    Some(body) => Ok(IntakeReply {
                        body,
                        duplicate: true,
                        wake_verifier: false,
                    }),
                    None => Err(error.into()),
                },
                (None, Some((_, id))) => Ok(duplicate_delivery(id)),
                (None, None) => Err(error.into()),
            },
            Err(error) => Err(error.into()),
        }
    }
}

fn duplicate_delivery(id: &str) -> IntakeReply {
    IntakeReply {
        body: json!({ "duplicate_delivery": id }),
        duplicate: true,
        wake_verifier: false,
    }
}

/// A deploy CI or GitHub ran without Greenlight, as its report describes it.
async fn unrecorded_deploy(
    conn: &mut AnyConnection,
    config: &Config,
    release: &Release,
    report: &DeploymentReport,
) -> Result<Unrecorded, StorageError> {
    let running = deployments::current_deployment(conn, &release.app, &report.environment).await?;
    let approved = reported_deploy_approved(conn, config, release, &report.environment).await?;
    Ok(Unrecorded {
        environment: report.environment.clone(),
        running,
        approved,
        deployer_ref: report.url.clone(),
    })
}

/// Whether a deployment that CI or GitHub reports (not one Greenlight started) went through the
/// gate (SPEC §10). Environments without a gate need none. Where Greenlight runs the deployer,
/// its own deploys carry their deployment id (or are in flight), so a report without one is a
/// deploy around the gate. Where CI or a protection rule deploys, the release must have been
/// approved for the environment.
async fn reported_deploy_approved(
    conn: &mut AnyConnection,
    config: &Config,
    release: &Release,
    environment: &EnvironmentName,
) -> Result<bool, StorageError> {
    let Some(target) = config.environment(&release.app, environment) else {
        return Ok(true);
    };
    if target.gate.is_none() {
        return Ok(true);
    }
    if super::deploys::triggerable(target).is_some() {
        return Ok(false);
    }
    Ok(
        approvals::approved_request_of_release(conn, release.id, environment)
            .await?
            .is_some(),
    )
}

/// The deployment a report completes (Greenlight's deployer started it): it must be the same
/// app, release and environment. Whether its state still takes a result is the machine's call.
async fn recorded_deployment(
    conn: &mut AnyConnection,
    id: i64,
    release: &Release,
    report: &DeploymentReport,
) -> Result<Result<Deployment, IntakeError>, StorageError> {
    let mismatch = || IntakeError::DeploymentMismatch {
        id,
        app: release.app.to_string(),
        sha: release.sha.to_string(),
        environment: report.environment.to_string(),
    };
    let existing = match deployments::get_deployment(conn, id).await {
        Ok(existing) => existing,
        Err(error) if error.is_not_found() => return Ok(Err(mismatch())),
        Err(error) => return Err(error),
    };
    if existing.release_id != release.id || existing.environment != report.environment {
        return Ok(Err(mismatch()));
    }
    Ok(Ok(existing))
}

/// Why the machine refused a report on deployment `id`.
fn refused(id: Option<i64>, refusal: Refusal) -> IntakeError {
    match (refusal, id) {
        (Refusal::Finished { state }, Some(id)) => IntakeError::DeploymentFinished { id, state },
        (refusal, _) => IntakeError::DeploymentRefused(refusal),
    }
}

fn reply(
    release: &Release,
    deployment: Option<&Deployment>,
    approvals: &[ApprovalRequest],
) -> IntakeReply {
    IntakeReply {
        body: json!({
            "release": release,
            "deployment": deployment,
            "approval_requests": approvals,
        }),
        duplicate: false,
        wake_verifier: false,
    }
}
