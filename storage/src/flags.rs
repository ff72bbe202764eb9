//! Feature flags per (app, environment, key), changed from chat, read by applications (§7).

use chrono::{DateTime, Utc};
use greenlight_commands::{AppName, EnvironmentName};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::columns::{count, flag, millis, parsed, time};
use crate::{Storage, StorageError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flag {
    pub id: i64,
    pub app: AppName,
    pub environment: EnvironmentName,
    pub key: String,
    pub enabled: bool,
    /// Percentage of targeting keys that get `true` while enabled (0..=100).
    pub rollout: u8,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every change; part of the flags ETag.
    pub version: i64,
}

/// One change, with the flag's values after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagChange {
    pub id: i64,
    pub flag_id: i64,
    pub enabled: bool,
    pub rollout: u8,
    pub actor: String,
    pub reason: Option<String>,
    pub changed_at: DateTime<Utc>,
}

/// An environment's flags as of one version of them (see [`environment_flags`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentFlags {
    /// Bumped by every change of any flag of the environment; 0 before the first one.
    pub version: i64,
    /// By key.
    pub flags: Vec<Flag>,
}

/// Where one environment's flags stand (a row of `flag_versions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagVersion {
    pub app: AppName,
    pub environment: EnvironmentName,
    pub version: i64,
}

/// Which flag, who changes it and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagTarget {
    pub app: AppName,
    pub environment: EnvironmentName,
    pub key: String,
    pub actor: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, app, environment, key, enabled, rollout, updated_by, updated_at, version";

fn percent(row: &AnyRow, column: &str) -> Result<u8, sqlx::Error> {
    let value = count(row, column)?;
    u8::try_from(value).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    })
}

impl<'r> FromRow<'r, AnyRow> for Flag {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            app: parsed(row, "app", AppName::parse)?,
            environment: parsed(row, "environment", EnvironmentName::parse)?,
            key: row.try_get("key")?,
            enabled: flag(row, "enabled")?,
            rollout: percent(row, "rollout")?,
            updated_by: row.try_get("updated_by")?,
            updated_at: time(row, "updated_at")?,
            version: row.try_get("version")?,
        })
    }
}

impl<'r> FromRow<'r, AnyRow> for FlagChange {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            flag_id: row.try_get("flag_id")?,
            enabled: flag(row, "enabled")?,
            rollout: percent(row, "rollout")?,
            actor: row.try_get("actor")?,
            reason: row.try_get("reason")?,
            changed_at: time(row, "changed_at")?,
        })
    }
}

/// Turns a flag on or off, creating it (with rollout 100) if it does not exist.
pub async fn set_flag_enabled(
    conn: &mut AnyConnection,
    target: &FlagTarget,
    enabled: bool,
) -> Result<Flag, StorageError> {
    upsert(
        conn,
        target,
        "INSERT INTO flags (app, environment, key, enabled, rollout, updated_by, updated_at) \
         VALUES ($1, $2, $3, $4, 100, $5, $6) \
         ON CONFLICT (app, environment, key) DO UPDATE SET enabled = excluded.enabled, \
         updated_by = excluded.updated_by, updated_at = excluded.updated_at, \
         version = flags.version + 1",
        i64::from(enabled),
    )
    .await
}

/// Sets a flag's rollout percentage. A new flag created this way is enabled; an existing one
/// keeps its on/off state (off stays off until someone turns it on).
pub async fn set_flag_rollout(
    conn: &mut AnyConnection,
    target: &FlagTarget,
    rollout: u8,
) -> Result<Flag, StorageError> {
    if rollout > 100 {
        return Err(StorageError::invalid(
            "rollout",
            format!("{rollout} is not a percentage (0-100)"),
        ));
    }
    upsert(
        conn,
        target,
        "INSERT INTO flags (app, environment, key, enabled, rollout, updated_by, updated_at) \
         VALUES ($1, $2, $3, 1, $4, $5, $6) \
         ON CONFLICT (app, environment, key) DO UPDATE SET rollout = excluded.rollout, \
         updated_by = excluded.updated_by, updated_at = excluded.updated_at, \
         version = flags.version + 1",
        i64::from(rollout),
    )
    .await
}

/// Runs one of the upserts above (`$4` is the changed value), records the change and moves
/// the environment's version, all in the caller's transaction.
async fn upsert(
    conn: &mut AnyConnection,
    target: &FlagTarget,
    upsert_sql: &str,
    value: i64,
) -> Result<Flag, StorageError> {
    if target.key.is_empty() {
        return Err(StorageError::invalid("flag key", "must not be empty"));
    }
    let at = millis(target.at);
    let flag = sqlx::query_as::<_, Flag>(&format!("{upsert_sql} RETURNING {COLUMNS}"))
        .bind(target.app.as_str())
        .bind(target.environment.as_str())
        .bind(&target.key)
        .bind(value)
        .bind(&target.actor)
        .bind(at)
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO flag_changes (flag_id, enabled, rollout, actor, reason, changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(flag.id)
    .bind(i64::from(flag.enabled))
    .bind(i64::from(flag.rollout))
    .bind(&target.actor)
    .bind(target.reason.as_deref())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO flag_versions (app, environment, version) VALUES ($1, $2, 1) \
         ON CONFLICT (app, environment) DO UPDATE SET version = flag_versions.version + 1",
    )
    .bind(target.app.as_str())
    .bind(target.environment.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(flag)
}

/// The version of an environment's flags: 0 until one is first set.
pub async fn flag_version(
    conn: &mut AnyConnection,
    app: &AppName,
    environment: &EnvironmentName,
) -> Result<i64, StorageError> {
    let version: Option<i64> =
        sqlx::query_scalar("SELECT version FROM flag_versions WHERE app = $1 AND environment = $2")
            .bind(app.as_str())
            .bind(environment.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    Ok(version.unwrap_or(0))
}

/// Every environment's flag version (environments that never had a flag have none): what a
/// replica compares with the versions it holds in memory.
pub async fn flag_versions(conn: &mut AnyConnection) -> Result<Vec<FlagVersion>, StorageError> {
    let rows = sqlx::query("SELECT app, environment, version FROM flag_versions")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(FlagVersion {
                app: parsed(row, "app", AppName::parse)?,
                environment: parsed(row, "environment", EnvironmentName::parse)?,
                version: row.try_get("version")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StorageError::from)
}

/// The environment's flags with their version. The version is read first: a change committed
/// between the two reads then shows as newer flags under the older version, which the next
/// version check reloads, never as older flags under the newer version, which it would keep.
pub async fn environment_flags(
    conn: &mut AnyConnection,
    app: &AppName,
    environment: &EnvironmentName,
) -> Result<EnvironmentFlags, StorageError> {
    let version = flag_version(conn, app, environment).await?;
    let flags = list_flags(conn, app, environment).await?;
    Ok(EnvironmentFlags { version, flags })
}

pub async fn find_flag(
    conn: &mut AnyConnection,
    app: &AppName,
    environment: &EnvironmentName,
    key: &str,
) -> Result<Option<Flag>, StorageError> {
    Ok(sqlx::query_as::<_, Flag>(&format!(
        "SELECT {COLUMNS} FROM flags WHERE app = $1 AND environment = $2 AND key = $3"
    ))
    .bind(app.as_str())
    .bind(environment.as_str())
    .bind(key)
    .fetch_optional(conn)
    .await?)
}

/// The environment's flags, by key.
pub async fn list_flags(
    conn: &mut AnyConnection,
    app: &AppName,
    environment: &EnvironmentName,
) -> Result<Vec<Flag>, StorageError> {
    Ok(sqlx::query_as::<_, Flag>(&format!(
        "SELECT {COLUMNS} FROM flags WHERE app = $1 AND environment = $2 ORDER BY key"
    ))
    .bind(app.as_str())
    .bind(environment.as_str())
    .fetch_all(conn)
    .await?)
}

/// A flag's changes, newest first.
pub async fn flag_history(
    conn: &mut AnyConnection,
    flag_id: i64,
    limit: u32,
) -> Result<Vec<FlagChange>, StorageError> {
    Ok(sqlx::query_as::<_, FlagChange>(
        "SELECT id, flag_id, enabled, rollout, actor, reason, changed_at FROM flag_changes \
         WHERE flag_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(flag_id)
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?)
}

impl Storage {
    /// See [`set_flag_enabled`].
    pub async fn set_flag_enabled(
        &self,
        target: FlagTarget,
        enabled: bool,
    ) -> Result<Flag, StorageError> {
        self.write(move |conn| {
            Box::pin(async move { set_flag_enabled(conn, &target, enabled).await })
        })
        .await
    }

    /// See [`set_flag_rollout`].
    pub async fn set_flag_rollout(
        &self,
        target: FlagTarget,
        rollout: u8,
    ) -> Result<Flag, StorageError> {
        self.write(move |conn| {
            Box::pin(async move { set_flag_rollout(conn, &target, rollout).await })
        })
        .await
    }

    pub async fn flag(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
        key: &str,
    ) -> Result<Option<Flag>, StorageError> {
        find_flag(&mut *self.reader().await?, app, environment, key).await
    }

    pub async fn list_flags(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
    ) -> Result<Vec<Flag>, StorageError> {
        list_flags(&mut *self.reader().await?, app, environment).await
    }

    /// See [`environment_flags`].
    pub async fn environment_flags(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
    ) -> Result<EnvironmentFlags, StorageError> {
        environment_flags(&mut *self.reader().await?, app, environment).await
    }

    /// See [`flag_versions`].
    pub async fn flag_versions(&self) -> Result<Vec<FlagVersion>, StorageError> {
        flag_versions(&mut *self.reader().await?).await
    }

    pub async fn flag_history(
        &self,
        flag_id: i64,
        limit: u32,
    ) -> Result<Vec<FlagChange>, StorageError> {
        flag_history(&mut *self.reader().await?, flag_id, limit).await
    }
}
