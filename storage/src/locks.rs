//! Locks: `/lock` (and rollbacks) stop new deploys to an environment until `/unlock`.

use chrono::{DateTime, Utc};
use greenlight_commands::{AppName, EnvironmentName};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::columns::{flag, millis, opt_time, parsed, time};
use crate::{Storage, StorageError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lock {
    pub id: i64,
    pub app: AppName,
    pub environment: EnvironmentName,
    pub locked_by: String,
    pub reason: String,
    /// Set by an automatic rollback rather than a person.
    pub automatic: bool,
    pub locked_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
    pub released_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLock {
    pub app: AppName,
    pub environment: EnvironmentName,
    pub locked_by: String,
    pub reason: String,
    pub automatic: bool,
    pub at: DateTime<Utc>,
}

/// What `/lock` did: took the lock, or found it held (and changed nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    Acquired(Lock),
    AlreadyHeld(Lock),
}

pub(crate) const COLUMNS: &str = "id, app, environment, locked_by, reason, automatic, locked_at, \
     released_at, released_by";

impl<'r> FromRow<'r, AnyRow> for Lock {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            app: parsed(row, "app", AppName::parse)?,
            environment: parsed(row, "environment", EnvironmentName::parse)?,
            locked_by: row.try_get("locked_by")?,
            reason: row.try_get("reason")?,
            automatic: flag(row, "automatic")?,
            locked_at: time(row, "locked_at")?,
            released_at: opt_time(row, "released_at")?,
            released_by: row.try_get("released_by")?,
        })
    }
}

/// Locks the environment, or reports who already holds its lock without changing anything.
pub async fn acquire_lock(
    conn: &mut AnyConnection,
    new: &NewLock,
) -> Result<LockOutcome, StorageError> {
    let inserted = sqlx::query_as::<_, Lock>(&format!(
        "INSERT INTO locks (app, environment, locked_by, reason, automatic, locked_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(new.app.as_str())
    .bind(new.environment.as_str())
    .bind(&new.locked_by)
    .bind(&new.reason)
    .bind(i64::from(new.automatic))
    .bind(millis(new.at))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(lock) = inserted {
        return Ok(LockOutcome::Acquired(lock));
    }
    let held = active_lock(conn, &new.app, &new.environment)
        .await?
        .ok_or_else(|| {
            StorageError::not_found(format!("lock on {}/{}", new.app, new.environment))
        })?;
    Ok(LockOutcome::AlreadyHeld(held))
}

/// Releases the environment's lock; `NotFound` if it is not locked.
pub async fn release_lock(
    conn: &mut AnyConnection,
    app: &AppName,
    environment: &EnvironmentName,
    released_by: &str,
    at: DateTime<Utc>,
) -> Result<Lock, StorageError> {
    sqlx::query_as::<_, Lock>(&format!(
        "UPDATE locks SET released_at = $3, released_by = $4 \
         WHERE app = $1 AND environment = $2 AND released_at IS NULL RETURNING {COLUMNS}"
    ))
    .bind(app.as_str())
    .bind(environment.as_str())
    .bind(millis(at))
    .bind(released_by)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StorageError::not_found(format!("lock on {app}/{environment}")))
}

pub async fn active_lock(
    conn: &mut AnyConnection,
    app: &AppName,
    environment: &EnvironmentName,
) -> Result<Option<Lock>, StorageError> {
    Ok(sqlx::query_as::<_, Lock>(&format!(
        "SELECT {COLUMNS} FROM locks WHERE app = $1 AND environment = $2 AND released_at IS NULL"
    ))
    .bind(app.as_str())
    .bind(environment.as_str())
    .fetch_optional(conn)
    .await?)
}

/// Every environment that is locked now.
pub async fn active_locks(conn: &mut AnyConnection) -> Result<Vec<Lock>, StorageError> {
    Ok(sqlx::query_as::<_, Lock>(&format!(
        "SELECT {COLUMNS} FROM locks WHERE released_at IS NULL ORDER BY app, environment"
    ))
    .fetch_all(conn)
    .await?)
}

impl Storage {
    /// See [`acquire_lock`].
    pub async fn acquire_lock(&self, new: NewLock) -> Result<LockOutcome, StorageError> {
        self.write(move |conn| Box::pin(async move { acquire_lock(conn, &new).await }))
            .await
    }

    /// See [`release_lock`].
    pub async fn release_lock(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
        released_by: &str,
        at: DateTime<Utc>,
    ) -> Result<Lock, StorageError> {
        let (app, environment, by) = (app.clone(), environment.clone(), released_by.to_owned());
        self.write(move |conn| {
            Box::pin(async move { release_lock(conn, &app, &environment, &by, at).await })
        })
        .await
    }

    pub async fn active_lock(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
    ) -> Result<Option<Lock>, StorageError> {
        active_lock(&mut *self.reader().await?, app, environment).await
    }

    pub async fn active_locks(&self) -> Result<Vec<Lock>, StorageError> {
        active_locks(&mut *self.reader().await?).await
    }
}
