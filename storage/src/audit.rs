//! The release log: the append-only history of everything, with actor and time (SPEC §1).
//! Rows are never updated or deleted; triggers in the schema refuse it.

use chrono::{DateTime, Utc};
use greenlight_commands::{AppName, CommitSha, EnvironmentName};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::columns::{json, millis, opt_parsed, time, to_json};
use crate::params::tuples;
use crate::{Storage, StorageError};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Increases with every append: the order things happened in.
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    /// A person, `ci`, `github`, `greenlight`, or a chat user id for unknown users.
    pub actor: String,
    pub app: Option<AppName>,
    pub environment: Option<EnvironmentName>,
    pub sha: Option<CommitSha>,
    /// What happened, e.g. `release.recorded`, `approval.refused`, `flag.changed`.
    pub kind: String,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub app: Option<AppName>,
    pub environment: Option<EnvironmentName>,
    pub sha: Option<CommitSha>,
    pub kind: String,
    pub detail: serde_json::Value,
}

/// Which entries to list, newest first. Unknown app or environment names simply match nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditFilter {
    pub app: Option<String>,
    pub environment: Option<String>,
    /// Only entries older than this id (the previous page's last id).
    pub before_id: Option<i64>,
    pub limit: u32,
}

pub(crate) const COLUMNS: &str = "id, occurred_at, actor, app, environment, sha, kind, detail";

impl<'r> FromRow<'r, AnyRow> for AuditEntry {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            occurred_at: time(row, "occurred_at")?,
            actor: row.try_get("actor")?,
            app: opt_parsed(row, "app", AppName::parse)?,
            environment: opt_parsed(row, "environment", EnvironmentName::parse)?,
            sha: opt_parsed(row, "sha", CommitSha::parse)?,
            kind: row.try_get("kind")?,
            detail: json(row, "detail")?,
        })
    }
}

/// Appends an entry and returns it as stored.
pub async fn append_audit(
    conn: &mut AnyConnection,
    new: &NewAuditEntry,
) -> Result<AuditEntry, StorageError> {
    let sql = format!("{INSERT} RETURNING {COLUMNS}");
    let row = bound(&sql, new)?.fetch_one(conn).await?;
    Ok(AuditEntry::from_row(&row)?)
}

/// Appends an entry without reading it back: what the engine's writes do, on hot paths too
/// (reading the row back would decode its JSON again).
pub async fn record_audit(
    conn: &mut AnyConnection,
    new: &NewAuditEntry,
) -> Result<(), StorageError> {
    bound(INSERT, new)?.execute(conn).await?;
    Ok(())
}

/// Appends entries in as few statements as the database's limit on values allows, in order,
/// without reading them back (a batch of webhook deliveries).
pub async fn record_audits(
    conn: &mut AnyConnection,
    entries: &[&NewAuditEntry],
) -> Result<(), StorageError> {
    /// Rows a statement carries: 7 values each, well under SQLite's 32,766.
    const ROWS: usize = 512;
    if let Some(unnamed) = entries.iter().find(|new| new.kind.is_empty()) {
        return Err(StorageError::invalid(
            "audit kind",
            format!("must not be empty (entry by {})", unnamed.actor),
        ));
    }
    for chunk in entries.chunks(ROWS) {
        let sql = format!(
            "INSERT INTO audit_log (occurred_at, actor, app, environment, sha, kind, detail) \
             VALUES {}",
            tuples(1, chunk.len(), 7)
        );
        let mut query = sqlx::query(&sql);
        for new in chunk {
            query = bind_entry(query, new)?;
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `sql` (an [`INSERT`]) with the entry's values bound; refuses an entry without a kind.
fn bound<'q>(sql: &'q str, new: &'q NewAuditEntry) -> Result<AnyQuery<'q>, StorageError> {
    if new.kind.is_empty() {
        return Err(StorageError::invalid("audit kind", "must not be empty"));
    }
    bind_entry(sqlx::query(sql), new)
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds the entry's seven values, in the column order of [`INSERT`], after `query`'s.
fn bind_entry<'q>(
    query: AnyQuery<'q>,
    new: &'q NewAuditEntry,
) -> Result<AnyQuery<'q>, StorageError> {
    Ok(query
        .bind(millis(new.occurred_at))
        .bind(&new.actor)
        .bind(new.app.as_ref().map(AppName::as_str))
        .bind(new.environment.as_ref().map(EnvironmentName::as_str))
        .bind(new.sha.as_ref().map(CommitSha::as_str))
        .bind(&new.kind)
        .bind(to_json("audit detail", &new.detail)?))
}

const INSERT: &str = "INSERT INTO audit_log (occurred_at, actor, app, environment, sha, kind, \
     detail) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Entries matching the filter, newest first.
pub async fn list_audit(
    conn: &mut AnyConnection,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, StorageError> {
    // Only the filters given appear in the statement, so each shape uses its own index.
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    for (column, value) in [("app", &filter.app), ("environment", &filter.environment)] {
        if let Some(value) = value {
            values.push(value.as_str());
            conditions.push(format!("{column} = ${}", values.len()));
        }
    }
    conditions.push(format!("id < ${}", values.len() + 1));
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log WHERE {} ORDER BY id DESC LIMIT ${}",
        conditions.join(" AND "),
        values.len() + 2
    );
    let mut query = sqlx::query_as::<_, AuditEntry>(&sql);
    for value in values {
        query = query.bind(value);
    }
    Ok(query
        .bind(filter.before_id.unwrap_or(i64::MAX))
        .bind(i64::from(filter.limit))
        .fetch_all(conn)
        .await?)
}

impl Storage {
    /// Appends one entry in its own write; inside a larger write use [`append_audit`].
    pub async fn append_audit(&self, new: NewAuditEntry) -> Result<AuditEntry, StorageError> {
        self.write(move |conn| Box::pin(async move { append_audit(conn, &new).await }))
            .await
    }

    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StorageError> {
        list_audit(&mut *self.reader().await?, filter).await
    }
}
