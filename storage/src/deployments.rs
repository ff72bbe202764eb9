//! Deployments: a release going to an environment, moved from state to state only by
//! conditional updates (SPEC §1 "Deployment", §8).

use chrono::{DateTime, Utc};
use greenlight_commands::{AppName, CommitSha, DeploymentKind, DeploymentState, EnvironmentName};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::columns::{flag, json, millis, opt_parsed, opt_time, parsed, time, to_json, word};
use crate::{Storage, StorageError};

/// One smoke check's outcome, as the card and `GET /api/v1/releases` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeResult {
    pub name: String,
    /// `passed` or `failed` (CI may report other words; they are kept as sent).
    pub status: String,
    pub duration_ms: Option<u64>,
    pub detail: Option<String>,
}

impl SmokeResult {
    /// The status of a check that passed.
    pub const PASSED: &'static str = "passed";
    /// The status of a check that failed.
    pub const FAILED: &'static str = "failed";

    pub fn passed(&self) -> bool {
        self.status == Self::PASSED
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deployment {
    pub id: i64,
    pub release_id: i64,
    pub app: AppName,
    pub environment: EnvironmentName,
    pub sha: CommitSha,
    pub image: String,
    pub kind: DeploymentKind,
    pub state: DeploymentState,
    pub previous_sha: Option<CommitSha>,
    pub deployer: Option<String>,
    pub deployer_ref: Option<String>,
    pub triggered_by: Option<String>,
    pub smoke: Vec<SmokeResult>,
    pub detail: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When it first became healthy; kept after it is superseded or rolled back.
    pub healthy_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Bumped by every change.
    pub version: i64,
    /// `false` for a deployment to a gated environment that Greenlight did not approve (SPEC
    /// §10): reported by CI or GitHub without an approval. Never a rollback target.
    pub approved: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeployment {
    pub release_id: i64,
    pub environment: EnvironmentName,
    pub kind: DeploymentKind,
    /// Usually `pending`; a CI `deployed` event records its outcome directly.
    pub state: DeploymentState,
    pub previous_sha: Option<CommitSha>,
    pub deployer: Option<String>,
    pub deployer_ref: Option<String>,
    pub triggered_by: Option<String>,
    pub smoke: Vec<SmokeResult>,
    pub detail: Option<String>,
    /// See [`Deployment::approved`].
    pub approved: bool,
    pub at: DateTime<Utc>,
}

/// A move from one state to the next. Fields left `None` keep their stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentTransition {
    pub from: DeploymentState,
    pub to: DeploymentState,
    pub smoke: Option<Vec<SmokeResult>>,
    pub detail: Option<String>,
    pub deployer_ref: Option<String>,
    pub at: DateTime<Utc>,
}

impl DeploymentTransition {
    pub fn new(from: DeploymentState, to: DeploymentState, at: DateTime<Utc>) -> Self {
        Self {
            from,
            to,
            smoke: None,
            detail: None,
            deployer_ref: None,
            at,
        }
    }
}

pub(crate) const SELECT: &str =
    "SELECT d.id, d.release_id, d.app, d.environment, r.sha, r.image, d.kind, \
     d.state, d.previous_sha, d.deployer, d.deployer_ref, d.triggered_by, d.smoke, d.detail, \
     d.created_at, d.updated_at, d.healthy_at, d.finished_at, d.version, d.approved \
     FROM deployments d JOIN releases r ON r.id = d.release_id";

/// States in which a deployment's release is what runs in the environment.
const RUNNING: &str = "('deploying', 'verifying', 'healthy', 'faulty')";

impl<'r> FromRow<'r, AnyRow> for Deployment {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            release_id: row.try_get("release_id")?,
            app: parsed(row, "app", AppName::parse)?,
            environment: parsed(row, "environment", EnvironmentName::parse)?,
            sha: parsed(row, "sha", CommitSha::parse)?,
            image: row.try_get("image")?,
            kind: word(row, "kind")?,
            state: word(row, "state")?,
            previous_sha: opt_parsed(row, "previous_sha", CommitSha::parse)?,
            deployer: row.try_get("deployer")?,
            deployer_ref: row.try_get("deployer_ref")?,
            triggered_by: row.try_get("triggered_by")?,
            smoke: json(row, "smoke")?,
            detail: row.try_get("detail")?,
            created_at: time(row, "created_at")?,
            updated_at: time(row, "updated_at")?,
            healthy_at: opt_time(row, "healthy_at")?,
            finished_at: opt_time(row, "finished_at")?,
            version: row.try_get("version")?,
            approved: flag(row, "approved")?,
        })
    }
}

pub async fn insert_deployment(
    conn: &mut AnyConnection,
    new: &NewDeployment,
) -> Result<Deployment, StorageError> {
    let at = millis(new.at);
    let healthy_at = (new.state == DeploymentState::Healthy).then_some(at);
    let faulty_at = (new.state == DeploymentState::Faulty).then_some(at);
    let finished_at = new.state.is_final().then_some(at);
    // The app is copied from the release so environment queries need no join.
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO deployments (release_id, app, environment, kind, state, previous_sha, \
         deployer, deployer_ref, triggered_by, smoke, detail, created_at, updated_at, healthy_at, \
         finished_at, approved, faulty_at) \
         SELECT id, app, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14, $15 \
         FROM releases WHERE id = $1 RETURNING id",
    )
    .bind(new.release_id)
    .bind(new.environment.as_str())
    .bind(new.kind.as_str())
    .bind(new.state.as_str())
    .bind(new.previous_sha.as_ref().map(CommitSha::as_str))
    .bind(new.deployer.as_deref())
    .bind(new.deployer_ref.as_deref())
    .bind(new.triggered_by.as_deref())
    .bind(to_json("smoke", &new.smoke)?)
    .bind(new.detail.as_deref())
    .bind(at)
    .bind(healthy_at)
    .bind(finished_at)
    .bind(i64::from(new.approved))
    .bind(faulty_at)
    .fetch_optional(&mut *conn)
    .await?;
    let id = id.ok_or_else(|| StorageError::not_found(format!("release {}", new.release_id)))?;
    get_deployment(conn, id).await
}

/// Moves deployment `id` from `change.from` to `change.to`. Exactly one of several concurrent
/// callers wins; the others get `Conflict` (and `NotFound` if there is no such deployment).
pub async fn transition_deployment(
    conn: &mut AnyConnection,
    id: i64,
    change: &DeploymentTransition,
) -> Result<Deployment, StorageError> {
    let at = millis(change.at);
    let smoke = change
        .smoke
        .as_ref()
        .map(|smoke| to_json("smoke", smoke))
        .transpose()?;
    let updated: Option<i64> = sqlx::query_scalar(
        "UPDATE deployments SET state = $3, updated_at = $4, version = version + 1, \
         smoke = COALESCE($5, smoke), detail = COALESCE($6, detail), \
         deployer_ref = COALESCE($7, deployer_ref), healthy_at = COALESCE(healthy_at, $8), \
         finished_at = COALESCE(finished_at, $9), faulty_at = COALESCE(faulty_at, $10) \
         WHERE id = $1 AND state = $2 RETURNING id",
    )
    .bind(id)
    .bind(change.from.as_str())
    .bind(change.to.as_str())
    .bind(at)
    .bind(smoke)
    .bind(change.detail.as_deref())
    .bind(change.deployer_ref.as_deref())
    .bind((change.to == DeploymentState::Healthy).then_some(at))
    .bind(change.to.is_final().then_some(at))
    .bind((change.to == DeploymentState::Faulty).then_some(at))
    .fetch_optional(&mut *conn)
    .await?;
    match updated {
        Some(id) => get_deployment(conn, id).await,
        None => {
            let current = get_deployment(conn, id).await?;
            Err(StorageError::conflict(format!(
                "deployment {id} is {}, not {}",
                current.state, change.from
            )))
        }
    }
}

pub async fn get_deployment(conn: &mut AnyConnection, id: i64) -> Result<Deployment, StorageError> {
    sqlx::query_as::<_, Deployment>(&format!("{SELECT} WHERE d.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StorageError::not_found(format!("deployment {id}")))
}

/// The newest deployment of a release to an environment, whatever its state.
pub async fn latest_deployment(
    conn: &mut AnyConnection,
    release_id: i64,
    environment: &EnvironmentName,
) -> Result<Option<Deployment>, StorageError> {
    Ok(sqlx::query_as::<_, Deployment>(&format!(
        "{SELECT} WHERE d.release_id = $1 AND d.environment = $2 ORDER BY d.id DESC LIMIT 1"
    ))
    .bind(release_id)
    .bind(environment.as_str())
    .fetch_optional(conn)
    .await?)
}

/// What runs in the environment now: the newest deployment that is deploying, verifying,
/// healthy or faulty (a failed deploy left the previous one running).
pub async fn current_deployment(
    conn: &mut AnyConnection,
    app: &AppName,
    environment: &EnvironmentName,
) -> Result<Option<Deployment>, StorageError> {
    Ok(sqlx::query_as::<_, Deployment>(&format!(
        "{SELECT} WHERE d.app = $1 AND d.environment = $2 AND d.state IN {RUNNING} \
         ORDER BY d.id DESC LIMIT 1"
    ))
    .bind(app.as_str())
    .bind(environment.as_str())
    .fetch_optional(conn)
    .await?)
}

/// The newest approved deployment that was ever healthy in the environment, skipping
/// `except_sha` (the release running now): the default `/rollback` target. A deployment nobody
/// approved is never one (SPEC §10).
pub async fn last_healthy_deployment(
    conn: &mut AnyConnection,
    app: &AppName,
    environment: &EnvironmentName,
    except_sha: Option<&CommitSha>,
) -> Result<Option<Deployment>, StorageError> {
    Ok(sqlx::query_as::<_, Deployment>(&format!(
        "{SELECT} WHERE d.app = $1 AND d.environment = $2 AND d.healthy_at IS NOT NULL \
         AND d.approved = 1 AND ($3 IS NULL OR r.sha <> $3) ORDER BY d.id DESC LIMIT 1"
    ))
    .bind(app.as_str())
    .bind(environment.as_str())
    .bind(except_sha.map(CommitSha::as_str))
    .fetch_optional(conn)
    .await?)
}

/// Deployments that were ever healthy in the environment and whose SHA starts with
/// `sha_prefix` (hex, as people type it), newest first: the candidates for `/rollback … to`.
pub async fn healthy_deployments_by_sha_prefix(
    conn: &mut AnyConnection,
    app: &AppName,
    environment: &EnvironmentName,
    sha_prefix: &str,
    limit: u32,
) -> Result<Vec<Deployment>, StorageError> {
    if sha_prefix.is_empty() || !sha_prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StorageError::invalid("sha prefix", "must be hexadecimal"));
    }
    Ok(sqlx::query_as::<_, Deployment>(&format!(
        "{SELECT} WHERE d.app = $1 AND d.environment = $2 AND d.healthy_at IS NOT NULL \
         AND r.sha LIKE $3 ORDER BY d.id DESC LIMIT $4"
    ))
    .bind(app.as_str())
    .bind(environment.as_str())
    .bind(format!("{}%", sha_prefix.to_ascii_lowercase()))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?)
}

/// When the release first became healthy in the environment (the gate and the wait timer).
pub async fn healthy_since(
    conn: &mut AnyConnection,
    release_id: i64,
    environment: &EnvironmentName,
) -> Result<Option<DateTime<Utc>>, StorageError> {
    let first: Option<i64> = sqlx::query_scalar(
        "SELECT healthy_at FROM deployments WHERE release_id = $1 AND environment = $2 \
         AND healthy_at IS NOT NULL ORDER BY healthy_at LIMIT 1",
    )
    .bind(release_id)
    .bind(environment.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(first.and_then(DateTime::from_timestamp_millis))
}

/// Deployments still in progress, oldest first: resumed after a restart.
pub async fn unfinished_deployments(
    conn: &mut AnyConnection,
) -> Result<Vec<Deployment>, StorageError> {
    Ok(sqlx::query_as::<_, Deployment>(&format!(
        "{SELECT} WHERE d.state IN ('pending', 'deploying', 'verifying') ORDER BY d.id"
    ))
    .fetch_all(conn)
    .await?)
}

impl Storage {
    pub async fn insert_deployment(&self, new: NewDeployment) -> Result<Deployment, StorageError> {
        self.write(move |conn| Box::pin(async move { insert_deployment(conn, &new).await }))
            .await
    }

    /// See [`transition_deployment`].
    pub async fn transition_deployment(
        &self,
        id: i64,
        change: DeploymentTransition,
    ) -> Result<Deployment, StorageError> {
        self.write(move |conn| {
            Box::pin(async move { transition_deployment(conn, id, &change).await })
        })
        .await
    }

    pub async fn deployment(&self, id: i64) -> Result<Deployment, StorageError> {
        get_deployment(&mut *self.reader().await?, id).await
    }

    pub async fn current_deployment(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
    ) -> Result<Option<Deployment>, StorageError> {
        current_deployment(&mut *self.reader().await?, app, environment).await
    }

    pub async fn last_healthy_deployment(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
        except_sha: Option<&CommitSha>,
    ) -> Result<Option<Deployment>, StorageError> {
        last_healthy_deployment(&mut *self.reader().await?, app, environment, except_sha).await
    }

    pub async fn healthy_deployments_by_sha_prefix(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
        sha_prefix: &str,
        limit: u32,
    ) -> Result<Vec<Deployment>, StorageError> {
        healthy_deployments_by_sha_prefix(
            &mut *self.reader().await?,
            app,
            environment,
            sha_prefix,
            limit,
        )
        .await
    }

    pub async fn unfinished_deployments(&self) -> Result<Vec<Deployment>, StorageError> {
        unfinished_deployments(&mut *self.reader().await?).await
    }
}
