//! The commits an approval card lists (SPEC §14, "Card context"): what GitHub's compare API
//! said lies between the environment's running SHA (`base_sha`) and the release, fetched once
//! per request through the outbox. Only the lines a card shows are kept, with the total.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::columns::{json, millis, time, to_json};
use crate::{Storage, StorageError};

/// One commit line: its SHA, who wrote it, the first line of its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardCommit {
    pub sha: String,
    /// The GitHub login, else the commit author's name; empty when GitHub gave neither.
    pub author: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardCommits {
    pub request_id: i64,
    /// What ran in the environment when the list was fetched (the compare's base).
    pub base_sha: String,
    /// Every commit between base and release, counted by GitHub (more than `commits` holds).
    pub total_commits: u64,
    /// Oldest first, as GitHub lists them.
    pub commits: Vec<CardCommit>,
    pub fetched_at: DateTime<Utc>,
}

const COLUMNS: &str = "request_id, base_sha, total_commits, commits, fetched_at";

impl<'r> FromRow<'r, AnyRow> for CardCommits {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        let total: i64 = row.try_get("total_commits")?;
        Ok(Self {
            request_id: row.try_get("request_id")?,
            base_sha: row.try_get("base_sha")?,
            total_commits: u64::try_from(total).unwrap_or_default(),
            commits: json(row, "commits")?,
            fetched_at: time(row, "fetched_at")?,
        })
    }
}

/// Stores the list of a request, replacing an earlier one (a repeated delivery).
pub async fn record_card_commits(
    conn: &mut AnyConnection,
    commits: &CardCommits,
) -> Result<(), StorageError> {
    let total = i64::try_from(commits.total_commits)
        .map_err(|_| StorageError::invalid("total_commits", "too large"))?;
    sqlx::query(
        "INSERT INTO card_commits (request_id, base_sha, total_commits, commits, fetched_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (request_id) DO UPDATE SET base_sha = excluded.base_sha, \
         total_commits = excluded.total_commits, commits = excluded.commits, \
         fetched_at = excluded.fetched_at",
    )
    .bind(commits.request_id)
    .bind(&commits.base_sha)
    .bind(total)
    .bind(to_json("commits", &commits.commits)?)
    .bind(millis(commits.fetched_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// The list fetched for request `request_id`, if any.
pub async fn card_commits(
    conn: &mut AnyConnection,
    request_id: i64,
) -> Result<Option<CardCommits>, StorageError> {
    Ok(sqlx::query_as::<_, CardCommits>(&format!(
        "SELECT {COLUMNS} FROM card_commits WHERE request_id = $1"
    ))
    .bind(request_id)
    .fetch_optional(conn)
    .await?)
}

impl Storage {
    pub async fn record_card_commits(&self, commits: CardCommits) -> Result<(), StorageError> {
        self.write(move |conn| Box::pin(async move { record_card_commits(conn, &commits).await }))
            .await
    }

    pub async fn card_commits(&self, request_id: i64) -> Result<Option<CardCommits>, StorageError> {
        card_commits(&mut *self.reader().await?, request_id).await
    }
}
