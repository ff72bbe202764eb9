//! De-duplication of inbound events: webhook delivery ids and CI idempotency keys.
//!
//! Record them inside the same write as the event's effects, so a crash between the two can
//! neither lose the event nor apply it twice.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::columns::{millis, to_json};
use crate::script::{Part, Script};
use crate::{Storage, StorageError};

/// Records that `source` (e.g. `github`) delivered `delivery_id`. Returns `true` the first time,
/// `false` for a duplicate.
pub async fn record_webhook_delivery(
    conn: &mut AnyConnection,
    source: &str,
    delivery_id: &str,
    at: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let inserted = sqlx::query(
        "INSERT INTO webhook_deliveries (source, delivery_id, received_at) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(source)
    .bind(delivery_id)
    .bind(millis(at))
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Records many deliveries in one statement (a batch of clicks); returns those seen for the
/// first time, as `(source, delivery_id)`. A pair repeated within `deliveries` is new once.
pub async fn record_webhook_deliveries(
    conn: &mut AnyConnection,
    deliveries: &[(&str, &str)],
    at: DateTime<Utc>,
) -> Result<HashSet<(String, String)>, StorageError> {
    let mut script = Script::new(conn);
    let Some(part) = push_deliveries(&mut script, deliveries, at)? else {
        return Ok(HashSet::new());
    };
    first_seen(script.run(conn).await?.take(part))
}

/// Adds [`record_webhook_deliveries`]'s statement to `script`; `None` when there is nothing to
/// record. Read its rows with [`first_seen`].
pub(crate) fn push_deliveries<'q>(
    script: &mut Script<'q>,
    deliveries: &[(&'q str, &'q str)],
    at: DateTime<Utc>,
) -> Result<Option<Part>, StorageError> {
    if deliveries.is_empty() {
        return Ok(None);
    }
    script
        .push(|values| {
            let at = values.bind(millis(at));
            let rows: Vec<String> = deliveries
                .iter()
                .map(|(source, id)| {
                    format!("({}, {}, {at})", values.bind(*source), values.bind(*id))
                })
                .collect();
            format!(
                "INSERT INTO webhook_deliveries (source, delivery_id, received_at) VALUES {} \
                 ON CONFLICT DO NOTHING RETURNING source, delivery_id",
                rows.join(", ")
            )
        })
        .map(Some)
}

/// The deliveries [`push_deliveries`]'s statement recorded for the first time.
pub(crate) fn first_seen(rows: Vec<AnyRow>) -> Result<HashSet<(String, String)>, StorageError> {
    rows.iter()
        .map(|row| Ok((row.try_get("source")?, row.try_get("delivery_id")?)))
        .collect()
}

/// Whether `source` already delivered `delivery_id` (checked before applying an event whose
/// delivery is recorded only if it applies).
pub async fn webhook_delivery_seen(
    conn: &mut AnyConnection,
    source: &str,
    delivery_id: &str,
) -> Result<bool, StorageError> {
    let seen: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM webhook_deliveries WHERE source = $1 AND delivery_id = $2",
    )
    .bind(source)
    .bind(delivery_id)
    .fetch_optional(conn)
    .await?;
    Ok(seen.is_some())
}

/// Forgets deliveries received before `before` (senders stop retrying long before that).
pub async fn prune_webhook_deliveries(
    conn: &mut AnyConnection,
    before: DateTime<Utc>,
) -> Result<u64, StorageError> {
    Ok(
        sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < $1")
            .bind(millis(before))
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// The reply stored for an idempotency key that was already applied.
pub async fn find_idempotency_key(
    conn: &mut AnyConnection,
    key: &str,
) -> Result<Option<serde_json::Value>, StorageError> {
    let stored: Option<String> =
        sqlx::query_scalar("SELECT response FROM idempotency_keys WHERE key = $1")
            .bind(key)
            .fetch_optional(conn)
            .await?;
    stored
        .map(|text| {
            serde_json::from_str(&text).map_err(|e| {
                StorageError::Database(sqlx::Error::ColumnDecode {
                    index: "response".to_owned(),
                    source: Box::new(e),
                })
            })
        })
        .transpose()
}

/// Marks `key` as applied with the reply to repeat for duplicates. `Conflict` if another
/// request applied it first (its write must then be rolled back: return the error).
pub async fn insert_idempotency_key(
    conn: &mut AnyConnection,
    key: &str,
    response: &serde_json::Value,
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (key, response, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(key)
    .bind(to_json("response", response)?)
    .bind(millis(at))
    .execute(conn)
    .await?;
    if inserted.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StorageError::conflict(format!(
            "idempotency key {key:?} was already used"
        )))
    }
}

impl Storage {
    /// See [`record_webhook_delivery`]. Prefer calling it inside the write that applies the event.
    pub async fn record_webhook_delivery(
        &self,
        source: &str,
        delivery_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let (source, delivery_id) = (source.to_owned(), delivery_id.to_owned());
        self.write(move |conn| {
            Box::pin(async move { record_webhook_delivery(conn, &source, &delivery_id, at).await })
        })
        .await
    }

    pub async fn prune_webhook_deliveries(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        self.write(move |conn| {
            Box::pin(async move { prune_webhook_deliveries(conn, before).await })
        })
        .await
    }

    pub async fn find_idempotency_key(
        &self,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StorageError> {
        find_idempotency_key(&mut *self.reader().await?, key).await
    }
}
