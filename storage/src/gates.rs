//! GitHub deployment protection rule gates: GitHub's callbacks waiting for our answer (§5.2).
//!
//! Kept apart from approval requests: GitHub may ask before the sha is healthy in the previous
//! environment (the request does not exist yet), and asks once per job.

use chrono::{DateTime, Utc};
use greenlight_commands::{AppName, CommitSha, EnvironmentName};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::columns::{millis, opt_time, opt_word, parsed, time};
use crate::{Storage, StorageError, Upserted};

/// What we tell GitHub (`state` of the callback); the pure core's word.
pub use greenlight_commands::GateAnswer;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GithubGate {
    pub id: i64,
    pub app: AppName,
    pub environment: EnvironmentName,
    pub sha: CommitSha,
    pub callback_url: String,
    pub installation_id: Option<i64>,
    /// The environment name as GitHub spells it, echoed in the callback.
    pub github_environment: String,
    /// `None` while waiting.
    pub answer: Option<GateAnswer>,
    pub comment: Option<String>,
    pub received_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGithubGate {
    pub app: AppName,
    pub environment: EnvironmentName,
    pub sha: CommitSha,
    pub callback_url: String,
    pub installation_id: Option<i64>,
    pub github_environment: String,
    pub received_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, app, environment, sha, callback_url, installation_id, \
     github_environment, answer, comment, received_at, expires_at, answered_at, version";

impl<'r> FromRow<'r, AnyRow> for GithubGate {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            app: parsed(row, "app", AppName::parse)?,
            environment: parsed(row, "environment", EnvironmentName::parse)?,
            sha: parsed(row, "sha", CommitSha::parse)?,
            callback_url: row.try_get("callback_url")?,
            installation_id: row.try_get("installation_id")?,
            github_environment: row.try_get("github_environment")?,
            answer: opt_word(row, "answer")?,
            comment: row.try_get("comment")?,
            received_at: time(row, "received_at")?,
            expires_at: time(row, "expires_at")?,
            answered_at: opt_time(row, "answered_at")?,
            version: row.try_get("version")?,
        })
    }
}

/// Records a gate; the same callback URL again (a redelivered webhook) returns the existing one.
pub async fn record_github_gate(
    conn: &mut AnyConnection,
    new: &NewGithubGate,
) -> Result<Upserted<GithubGate>, StorageError> {
    let inserted = sqlx::query_as::<_, GithubGate>(&format!(
        "INSERT INTO github_gates (app, environment, sha, callback_url, installation_id, \
         github_environment, state, received_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'waiting', $7, $8) \
         ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(new.app.as_str())
    .bind(new.environment.as_str())
    .bind(new.sha.as_str())
    .bind(&new.callback_url)
    .bind(new.installation_id)
    .bind(&new.github_environment)
    .bind(millis(new.received_at))
    .bind(millis(new.expires_at))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(gate) = inserted {
        return Ok(Upserted::Created(gate));
    }
    let existing = sqlx::query_as::<_, GithubGate>(&format!(
        "SELECT {COLUMNS} FROM github_gates WHERE callback_url = $1"
    ))
    .bind(&new.callback_url)
    .fetch_one(conn)
    .await?;
    Ok(Upserted::Existing(existing))
}

/// One gate by id, whatever its state (the outbox reads the answer to send from here).
pub async fn get_github_gate(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<GithubGate, StorageError> {
    sqlx::query_as::<_, GithubGate>(&format!("SELECT {COLUMNS} FROM github_gates WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StorageError::not_found(format!("github gate {id}")))
}

/// Gates waiting for an answer about this sha in this environment.
pub async fn waiting_github_gates(
    conn: &mut AnyConnection,
    app: &AppName,
    environment: &EnvironmentName,
    sha: &CommitSha,
) -> Result<Vec<GithubGate>, StorageError> {
    Ok(sqlx::query_as::<_, GithubGate>(&format!(
        "SELECT {COLUMNS} FROM github_gates WHERE app = $1 AND environment = $2 AND sha = $3 \
         AND state = 'waiting' ORDER BY id"
    ))
    .bind(app.as_str())
    .bind(environment.as_str())
    .bind(sha.as_str())
    .fetch_all(conn)
    .await?)
}

/// Every gate waiting for an answer in this environment, whatever its sha, oldest first (the
/// gates a lock held back, answered at `/unlock`).
pub async fn waiting_github_gates_in(
    conn: &mut AnyConnection,
    app: &AppName,
    environment: &EnvironmentName,
) -> Result<Vec<GithubGate>, StorageError> {
    Ok(sqlx::query_as::<_, GithubGate>(&format!(
        "SELECT {COLUMNS} FROM github_gates WHERE app = $1 AND environment = $2 \
         AND state = 'waiting' ORDER BY id"
    ))
    .bind(app.as_str())
    .bind(environment.as_str())
    .fetch_all(conn)
    .await?)
}

/// Waiting gates past their deadline, oldest first: answer them `rejected`.
pub async fn due_github_gates(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<GithubGate>, StorageError> {
    Ok(sqlx::query_as::<_, GithubGate>(&format!(
        "SELECT {COLUMNS} FROM github_gates WHERE state = 'waiting' AND expires_at <= $1 \
         ORDER BY expires_at LIMIT $2"
    ))
    .bind(millis(now))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?)
}

/// Answers a waiting gate (enqueue the callback in the same write). `Conflict` if it was
/// already answered.
pub async fn answer_github_gate(
    conn: &mut AnyConnection,
    id: i64,
    answer: GateAnswer,
    comment: Option<&str>,
    at: DateTime<Utc>,
) -> Result<GithubGate, StorageError> {
    let updated = sqlx::query_as::<_, GithubGate>(&format!(
        "UPDATE github_gates SET state = 'answered', answer = $2, comment = $3, answered_at = $4, \
         version = version + 1 WHERE id = $1 AND state = 'waiting' RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(answer.as_str())
    .bind(comment)
    .bind(millis(at))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(gate) = updated {
        return Ok(gate);
    }
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM github_gates WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Err(match exists {
        Some(_) => StorageError::conflict(format!("github gate {id} was already answered")),
        None => StorageError::not_found(format!("github gate {id}")),
    })
}

impl Storage {
    pub async fn record_github_gate(
        &self,
        new: NewGithubGate,
    ) -> Result<Upserted<GithubGate>, StorageError> {
        self.write(move |conn| Box::pin(async move { record_github_gate(conn, &new).await }))
            .await
    }

    pub async fn github_gate(&self, id: i64) -> Result<GithubGate, StorageError> {
        get_github_gate(&mut *self.reader().await?, id).await
    }

    pub async fn waiting_github_gates(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
        sha: &CommitSha,
    ) -> Result<Vec<GithubGate>, StorageError> {
        waiting_github_gates(&mut *self.reader().await?, app, environment, sha).await
    }

    pub async fn due_github_gates(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<GithubGate>, StorageError> {
        due_github_gates(&mut *self.reader().await?, now, limit).await
    }
}
