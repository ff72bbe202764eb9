//! Replicas sharing one database (SPEC §11): each keeps its row alive while it runs, and command
//! deploys name the replica whose child process runs them. A deploy whose replica stopped
//! renewing is an orphan: nobody watches its command any more.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::columns::{millis, time};
use crate::{Storage, StorageError};

/// A replica's row: alive until `alive_until` unless it renews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRow {
    pub name: String,
    pub started_at: DateTime<Utc>,
    pub alive_until: DateTime<Utc>,
}

impl<'r> FromRow<'r, AnyRow> for ReplicaRow {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            name: row.try_get("name")?,
            started_at: time(row, "started_at")?,
            alive_until: time(row, "alive_until")?,
        })
    }
}

/// Records that replica `name` (started at `started_at`) is alive until `alive_until`.
pub async fn renew_replica(
    conn: &mut AnyConnection,
    name: &str,
    started_at: DateTime<Utc>,
    alive_until: DateTime<Utc>,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO replicas (name, started_at, alive_until) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET alive_until = excluded.alive_until",
    )
    .bind(name)
    .bind(millis(started_at))
    .bind(millis(alive_until))
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes replica `name` (a clean stop), and rows of replicas dead since before `dead_before`.
pub async fn forget_replica(
    conn: &mut AnyConnection,
    name: &str,
    dead_before: DateTime<Utc>,
) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM replicas WHERE name = $1 OR alive_until < $2")
        .bind(name)
        .bind(millis(dead_before))
        .execute(conn)
        .await?;
    Ok(())
}

/// Every other replica counts as dead from now: for SQLite, where one process at a time serves a
/// file, so rows left by earlier processes are stale however recent.
pub async fn forget_other_replicas(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<u64, StorageError> {
    let removed = sqlx::query("DELETE FROM replicas WHERE name <> $1")
        .bind(name)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(removed)
}

/// Replicas alive at `now`, oldest first.
pub async fn live_replicas(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
) -> Result<Vec<ReplicaRow>, StorageError> {
    Ok(sqlx::query_as::<_, ReplicaRow>(
        "SELECT name, started_at, alive_until FROM replicas WHERE alive_until > $1 \
         ORDER BY started_at, name",
    )
    .bind(millis(now))
    .fetch_all(conn)
    .await?)
}

/// Records that `replica` runs the command of deployment `deployment_id`. Call it in the write
/// that marks the deployment started.
pub async fn record_command_run(
    conn: &mut AnyConnection,
    deployment_id: i64,
    replica: &str,
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO command_runs (deployment_id, replica, started_at) VALUES ($1, $2, $3)",
    )
    .bind(deployment_id)
    .bind(replica)
    .bind(millis(at))
    .execute(conn)
    .await?;
    Ok(())
}

/// Command deploys marked started and still deploying whose replica is not alive at `now` (or
/// unknown: started before replicas were recorded), with that replica's name when one was
/// recorded. Their commands are nobody's any more.
pub async fn orphaned_command_deploys(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
) -> Result<Vec<(i64, Option<String>)>, StorageError> {
    Ok(sqlx::query_as(
        "SELECT d.id, c.replica FROM deployments d \
         LEFT JOIN command_runs c ON c.deployment_id = d.id \
         WHERE d.state = 'deploying' AND d.deployer = 'command' AND d.deployer_ref IS NOT NULL \
         AND (c.replica IS NULL OR NOT EXISTS (\
           SELECT 1 FROM replicas r WHERE r.name = c.replica AND r.alive_until > $1)) \
         ORDER BY d.id",
    )
    .bind(millis(now))
    .fetch_all(conn)
    .await?)
}

impl Storage {
    /// See [`renew_replica`].
    pub async fn renew_replica(
        &self,
        name: &str,
        started_at: DateTime<Utc>,
        alive_until: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let name = name.to_owned();
        self.write(move |conn| {
            Box::pin(async move { renew_replica(conn, &name, started_at, alive_until).await })
        })
        .await
    }

    /// See [`forget_replica`].
    pub async fn forget_replica(
        &self,
        name: &str,
        dead_before: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let name = name.to_owned();
        self.write(move |conn| {
            Box::pin(async move { forget_replica(conn, &name, dead_before).await })
        })
        .await
    }

    /// See [`forget_other_replicas`].
    pub async fn forget_other_replicas(&self, name: &str) -> Result<u64, StorageError> {
        let name = name.to_owned();
        self.write(move |conn| Box::pin(async move { forget_other_replicas(conn, &name).await }))
            .await
    }

    /// See [`live_replicas`].
    pub async fn live_replicas(&self, now: DateTime<Utc>) -> Result<Vec<ReplicaRow>, StorageError> {
        live_replicas(&mut *self.reader().await?, now).await
    }

    /// See [`orphaned_command_deploys`].
    pub async fn orphaned_command_deploys(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(i64, Option<String>)>, StorageError> {
        orphaned_command_deploys(&mut *self.reader().await?, now).await
    }
}
