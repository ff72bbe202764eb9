//! De-duplication of inbound events: webhook delivery ids and CI idempotency keys.
//!
//! Record them inside the same write as the event's effects, so a crash between the two can
//! neither lose the event nor apply it twice.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use crate::columns::{millis, to_json};
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
) -> Result<std::collections::HashSet<(String, String)>, StorageError> {
    if deliveries.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    let rows: Vec<String> = (0..deliveries.len())
        .map(|i| format!("(${}, ${}, $1)", 2 * i + 2, 2 * i + 3))
        .collect();
    let sql = format!(
        "INSERT INTO webhook_deliveries (source, delivery_id, received_at) VALUES {} \
         ON CONFLICT DO NOTHING RETURNING source, delivery_id",
        rows.join(", ")
    );
    let mut query = sqlx::query_as::<_, (String, String)>(&sql).bind(millis(at));
    for (source, id) in deliveries {
        query = query.bind(*source).bind(*id);
    }
    Ok(query.fetch_all(conn).await?.into_iter().collect())
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
