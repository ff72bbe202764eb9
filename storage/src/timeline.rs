//! The release timeline of the page (SPEC §14): a page of releases, newest first, each with
//! everything that happened to it (deployments with their smoke checks, approval requests and
//! the decisions on them), the locks taken and released meanwhile, and the deployments that
//! finished in a window, for the charts.
//!
//! Every query follows an index: releases by id, the rest by release or by app.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::columns::{millis, opt_time, time};
use crate::releases::release_columns;
use crate::{
    ApprovalRequest, Decision, Deployment, DoraWindow, Lock, Release, Storage, StorageError,
};

/// The most releases one page holds, whatever the caller asks.
pub const MAX_STORIES: u32 = 100;

/// Which releases: of one app or all, older than a cursor (the previous page's last id).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoryFilter {
    pub app: Option<String>,
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// One release and what happened to it, each list oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseStory {
    pub release: Release,
    pub deployments: Vec<Deployment>,
    pub approval_requests: Vec<ApprovalRequest>,
    /// Decisions that counted (refused clicks are left out), on any of its requests.
    pub decisions: Vec<Decision>,
}

/// A page of releases, newest first, with their stories.
pub async fn release_stories(
    conn: &mut AnyConnection,
    filter: &StoryFilter,
) -> Result<Vec<ReleaseStory>, StorageError> {
    let app_condition = if filter.app.is_some() {
        "AND app = $3"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {} FROM releases WHERE id < $1 {app_condition} ORDER BY id DESC LIMIT $2",
        release_columns!()
    );
    let mut query = sqlx::query_as::<_, Release>(&sql)
        .bind(filter.before_id.unwrap_or(i64::MAX))
        .bind(i64::from(filter.limit.min(MAX_STORIES)));
    if let Some(app) = &filter.app {
        query = query.bind(app.as_str());
    }
    let releases = query.fetch_all(&mut *conn).await?;
    let mut stories = Vec::with_capacity(releases.len());
    for release in releases {
        let deployments = sqlx::query_as::<_, Deployment>(&format!(
            "{} WHERE d.release_id = $1 ORDER BY d.id",
            crate::deployments::SELECT
        ))
        .bind(release.id)
        .fetch_all(&mut *conn)
        .await?;
        let approval_requests = sqlx::query_as::<_, ApprovalRequest>(&format!(
            "{} WHERE a.release_id = $1 ORDER BY a.id",
            crate::approvals::SELECT
        ))
        .bind(release.id)
        .fetch_all(&mut *conn)
        .await?;
        let decisions = sqlx::query_as::<_, Decision>(&format!(
            "SELECT {} FROM decisions WHERE refused_reason IS NULL AND request_id IN \
             (SELECT id FROM approval_requests WHERE release_id = $1) ORDER BY id",
            crate::decisions::COLUMNS
        ))
        .bind(release.id)
        .fetch_all(&mut *conn)
        .await?;
        stories.push(ReleaseStory {
            release,
            deployments,
            approval_requests,
            decisions,
        });
    }
    Ok(stories)
}

/// Locks of `app` taken or released at or after `since`, oldest first.
pub async fn locks_since(
    conn: &mut AnyConnection,
    app: &str,
    since: DateTime<Utc>,
) -> Result<Vec<Lock>, StorageError> {
    Ok(sqlx::query_as::<_, Lock>(&format!(
        "SELECT {} FROM locks WHERE app = $1 AND (locked_at >= $2 OR released_at >= $2) \
         ORDER BY id",
        crate::locks::COLUMNS
    ))
    .bind(app)
    .bind(millis(since))
    .fetch_all(conn)
    .await?)
}

/// A deploy that finished in a window: when, how it ended, and its lead time if healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedDeploy {
    pub finished_at: DateTime<Utc>,
    pub outcome: DeployOutcome,
    /// Milliseconds from the release's commit (else its build) to healthy.
    pub lead_time_ms: Option<i64>,
    pub short_sha: String,
}

/// The three stacks of the deployments-per-day chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployOutcome {
    Healthy,
    Faulty,
    RolledBack,
}

/// The deploys (not rollbacks) to the window's environment that reached healthy or faulty and
/// finished inside it, oldest first: the same set the DORA measures count.
pub async fn finished_deploys(
    conn: &mut AnyConnection,
    window: &DoraWindow,
) -> Result<Vec<FinishedDeploy>, StorageError> {
    let rows = sqlx::query(
        "SELECT d.finished_at, d.state, d.healthy_at, d.faulty_at, r.sha, \
           COALESCE(r.committed_at, r.created_at) AS started_at \
         FROM deployments d JOIN releases r ON r.id = d.release_id \
         WHERE d.app = $1 AND d.environment = $2 AND d.finished_at >= $3 AND d.finished_at <= $4 \
         AND d.kind = 'deploy' AND (d.healthy_at IS NOT NULL OR d.faulty_at IS NOT NULL) \
         ORDER BY d.finished_at, d.id",
    )
    .bind(window.app.as_str())
    .bind(window.environment.as_str())
    .bind(millis(window.from))
    .bind(millis(window.to))
    .fetch_all(conn)
    .await?;
    rows.iter().map(finished_deploy).collect()
}

fn finished_deploy(row: &AnyRow) -> Result<FinishedDeploy, StorageError> {
    let state: String = row.try_get("state")?;
    let healthy_at = opt_time(row, "healthy_at")?;
    let faulty_at = opt_time(row, "faulty_at")?;
    let outcome = if state == "rolled_back" {
        DeployOutcome::RolledBack
    } else if faulty_at.is_some() {
        DeployOutcome::Faulty
    } else {
        DeployOutcome::Healthy
    };
    let started_at = time(row, "started_at")?;
    let sha: String = row.try_get("sha")?;
    Ok(FinishedDeploy {
        finished_at: time(row, "finished_at")?,
        outcome,
        lead_time_ms: healthy_at.map(|healthy| (healthy - started_at).num_milliseconds()),
        short_sha: sha.chars().take(7).collect(),
    })
}

impl Storage {
    /// See [`release_stories`].
    pub async fn release_stories(
        &self,
        filter: &StoryFilter,
    ) -> Result<Vec<ReleaseStory>, StorageError> {
        release_stories(&mut *self.reader().await?, filter).await
    }

    /// See [`locks_since`].
    pub async fn locks_since(
        &self,
        app: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Lock>, StorageError> {
        locks_since(&mut *self.reader().await?, app, since).await
    }

    /// See [`finished_deploys`].
    pub async fn finished_deploys(
        &self,
        window: &DoraWindow,
    ) -> Result<Vec<FinishedDeploy>, StorageError> {
        finished_deploys(&mut *self.reader().await?, window).await
    }
}
