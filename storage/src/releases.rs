//! Releases: one build of an app, identified by (app, sha); inserted once, never changed.

use chrono::{DateTime, Utc};
use greenlight_commands::{AppName, CommitSha};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::columns::{millis, opt_time, parsed, time};
use crate::{Storage, StorageError, Upserted};

/// A recorded build (SPEC §1 "Release").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    pub id: i64,
    pub app: AppName,
    pub sha: CommitSha,
    /// The immutable image reference, checked before it was recorded.
    pub image: String,
    /// As CI or GitHub reported it; map it through `[people]` before using it for policy.
    pub author: Option<String>,
    pub message: Option<String>,
    pub git_ref: Option<String>,
    pub commit_url: Option<String>,
    pub ci_url: Option<String>,
    pub committed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// What CI told us about a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelease {
    pub app: AppName,
    pub sha: CommitSha,
    pub image: String,
    pub author: Option<String>,
    pub message: Option<String>,
    pub git_ref: Option<String>,
    pub commit_url: Option<String>,
    pub ci_url: Option<String>,
    pub committed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

macro_rules! release_columns {
    () => {
        "id, app, sha, image, author, message, git_ref, commit_url, ci_url, committed_at, created_at"
    };
}
pub(crate) use release_columns;

impl<'r> FromRow<'r, AnyRow> for Release {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            app: parsed(row, "app", AppName::parse)?,
            sha: parsed(row, "sha", CommitSha::parse)?,
            image: row.try_get("image")?,
            author: row.try_get("author")?,
            message: row.try_get("message")?,
            git_ref: row.try_get("git_ref")?,
            commit_url: row.try_get("commit_url")?,
            ci_url: row.try_get("ci_url")?,
            committed_at: opt_time(row, "committed_at")?,
            created_at: time(row, "created_at")?,
        })
    }
}

/// Records a release, or returns the one already recorded for the same app and sha (unchanged,
/// even if this call carries a different image: a release is immutable).
pub async fn insert_release(
    conn: &mut AnyConnection,
    new: &NewRelease,
) -> Result<Upserted<Release>, StorageError> {
    let inserted = sqlx::query_as::<_, Release>(concat!(
        "INSERT INTO releases (app, sha, image, author, message, git_ref, commit_url, ci_url, \
         committed_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (app, sha) DO NOTHING RETURNING ",
        release_columns!()
    ))
    .bind(new.app.as_str())
    .bind(new.sha.as_str())
    .bind(&new.image)
    .bind(new.author.as_deref())
    .bind(new.message.as_deref())
    .bind(new.git_ref.as_deref())
    .bind(new.commit_url.as_deref())
    .bind(new.ci_url.as_deref())
    .bind(new.committed_at.map(millis))
    .bind(millis(new.created_at))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(release) = inserted {
        return Ok(Upserted::Created(release));
    }
    let existing = find_release(conn, &new.app, &new.sha)
        .await?
        .ok_or_else(|| StorageError::not_found(format!("release {}@{}", new.app, new.sha)))?;
    Ok(Upserted::Existing(existing))
}

pub async fn find_release(
    conn: &mut AnyConnection,
    app: &AppName,
    sha: &CommitSha,
) -> Result<Option<Release>, StorageError> {
    Ok(sqlx::query_as::<_, Release>(concat!(
        "SELECT ",
        release_columns!(),
        " FROM releases WHERE app = $1 AND sha = $2"
    ))
    .bind(app.as_str())
    .bind(sha.as_str())
    .fetch_optional(conn)
    .await?)
}

pub async fn get_release(conn: &mut AnyConnection, id: i64) -> Result<Release, StorageError> {
    sqlx::query_as::<_, Release>(concat!(
        "SELECT ",
        release_columns!(),
        " FROM releases WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StorageError::not_found(format!("release {id}")))
}

impl Storage {
    /// See [`insert_release`].
    pub async fn insert_release(&self, new: NewRelease) -> Result<Upserted<Release>, StorageError> {
        self.write(move |conn| Box::pin(async move { insert_release(conn, &new).await }))
            .await
    }

    /// The release of `app` at `sha`; `NotFound` if CI never reported it.
    pub async fn release(&self, app: &AppName, sha: &CommitSha) -> Result<Release, StorageError> {
        find_release(&mut *self.reader().await?, app, sha)
            .await?
            .ok_or_else(|| StorageError::not_found(format!("release {app}@{sha}")))
    }

    pub async fn release_by_id(&self, id: i64) -> Result<Release, StorageError> {
        get_release(&mut *self.reader().await?, id).await
    }
}
