//! The durable outbox: outgoing effects written in the same transaction as the state change,
//! then delivered with retries by a worker holding a lease (SPEC §8).
//!
//! While an item is leased, its `next_attempt_at` is the lease's end: if the worker dies, the
//! item simply comes due again. The claim number ([`OutboxItem::claim`]) fences later updates, so
//! a worker whose lease ran out cannot overwrite what the next worker decided.
//!
//! A claim ends delivered, failed (one attempt used, retried later or dead) or deferred: the
//! platform had paused the call, so the item waits for the pause without using an attempt.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use greenlight_commands::states::UnknownWord;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::columns::{count, dialect, json, millis, opt_time, time, to_json, word};
use crate::script::{Part, Script};
use crate::{Backend, Storage, StorageError, Upserted};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    Pending,
    Delivered,
    /// Given up on; kept for operators to inspect.
    Dead,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
}

impl FromStr for OutboxState {
    type Err = UnknownWord;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "dead" => Ok(Self::Dead),
            _ => Err(UnknownWord {
                kind: "outbox state",
                value: value.to_owned(),
            }),
        }
    }
}

impl fmt::Display for OutboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxItem {
    pub id: i64,
    /// What to do, e.g. `slack.post`, `deploy.trigger`, `github.callback`.
    pub kind: String,
    /// Sent along (e.g. as `Idempotency-Key`) so a repeated delivery has no second effect.
    pub idempotency_key: String,
    pub payload: serde_json::Value,
    pub state: OutboxState,
    /// Claims that were not deferred: failed tries, plus the current one while claimed. The
    /// retry budget counts these.
    pub attempts: u32,
    /// Claims deferred because the platform had paused the call ([`mark_outbox_deferred`]).
    pub deferrals: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub leased_by: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewOutboxItem {
    pub kind: String,
    pub idempotency_key: String,
    pub payload: serde_json::Value,
    pub at: DateTime<Utc>,
    /// Not before this time (e.g. after `smoke_settle`); `None` means at once.
    pub not_before: Option<DateTime<Utc>>,
}

/// What to do after a failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxRetry {
    /// Try again then (the caller computes backoff and honours `Retry-After`).
    At(DateTime<Utc>),
    /// Give up: the item becomes `dead`.
    Never,
}

/// How many items wait, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct OutboxCounts {
    pub pending: u64,
    pub dead: u64,
}

const COLUMNS: &str = "id, kind, idempotency_key, payload, state, attempts, deferrals, \
     next_attempt_at, leased_by, last_error, created_at, delivered_at";

/// The claim number: every claim adds one and nothing takes one away (a deferral moves one
/// from `attempts` to `deferrals`), so a late report from an earlier claim never matches.
const CLAIM: &str = "attempts + deferrals";

impl OutboxItem {
    /// This claim's number, which fences [`mark_outbox_failed`] and [`mark_outbox_deferred`].
    pub fn claim(&self) -> u32 {
        self.attempts.saturating_add(self.deferrals)
    }
}

impl<'r> FromRow<'r, AnyRow> for OutboxItem {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            idempotency_key: row.try_get("idempotency_key")?,
            payload: json(row, "payload")?,
            state: word(row, "state")?,
            attempts: count(row, "attempts")?,
            deferrals: count(row, "deferrals")?,
            next_attempt_at: time(row, "next_attempt_at")?,
            leased_by: row.try_get("leased_by")?,
            last_error: row.try_get("last_error")?,
            created_at: time(row, "created_at")?,
            delivered_at: opt_time(row, "delivered_at")?,
        })
    }
}

impl NewOutboxItem {
    /// When the item is first due: at `not_before`, but never before it was added.
    fn first_attempt_at(&self) -> DateTime<Utc> {
        self.not_before.unwrap_or(self.at).max(self.at)
    }
}

/// Adds an item; call it inside the write that makes the state change. The same idempotency
/// key twice returns the existing item unchanged.
pub async fn enqueue_outbox(
    conn: &mut AnyConnection,
    new: &NewOutboxItem,
) -> Result<Upserted<OutboxItem>, StorageError> {
    if new.idempotency_key.is_empty() {
        return Err(StorageError::invalid(
            "idempotency key",
            "must not be empty",
        ));
    }
    let inserted = sqlx::query_as::<_, OutboxItem>(&format!(
        "INSERT INTO outbox (kind, idempotency_key, payload, state, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, 'pending', $4, $5) ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(&new.kind)
    .bind(&new.idempotency_key)
    .bind(to_json("payload", &new.payload)?)
    .bind(millis(new.first_attempt_at()))
    .bind(millis(new.at))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(item) = inserted {
        return Ok(Upserted::Created(item));
    }
    let existing = sqlx::query_as::<_, OutboxItem>(&format!(
        "SELECT {COLUMNS} FROM outbox WHERE idempotency_key = $1"
    ))
    .bind(&new.idempotency_key)
    .fetch_one(conn)
    .await?;
    Ok(Upserted::Existing(existing))
}

/// Adds `items` to `script` as one statement, each as [`enqueue_outbox`] adds it (an
/// idempotency key already there keeps its item), for a write that needs none of them back.
pub(crate) fn push_enqueue<'q>(
    script: &mut Script<'q>,
    items: &'q [NewOutboxItem],
) -> Result<(), StorageError> {
    if items.is_empty() {
        return Ok(());
    }
    if items.iter().any(|item| item.idempotency_key.is_empty()) {
        return Err(StorageError::invalid(
            "idempotency key",
            "must not be empty",
        ));
    }
    let payloads = items
        .iter()
        .map(|item| to_json("payload", &item.payload))
        .collect::<Result<Vec<String>, StorageError>>()?;
    script.push(|values| {
        let rows: Vec<String> = items
            .iter()
            .zip(payloads)
            .map(|(item, payload)| {
                let row = [
                    values.bind(item.kind.as_str()),
                    values.bind(item.idempotency_key.as_str()),
                    values.bind(payload),
                    values.bind(millis(item.first_attempt_at())),
                    values.bind(millis(item.at)),
                ];
                format!(
                    "({}, 'pending', {}, {})",
                    row[..3].join(", "),
                    row[3],
                    row[4]
                )
            })
            .collect();
        format!(
            "INSERT INTO outbox (kind, idempotency_key, payload, state, next_attempt_at, \
             created_at) VALUES {} ON CONFLICT DO NOTHING",
            rows.join(", ")
        )
    })?;
    Ok(())
}

/// When a new item would be delivered, for [`unclaimed_pending_outbox`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// As soon as possible (it is `now`).
    Now(DateTime<Utc>),
    /// Not before this time.
    NotBefore(DateTime<Utc>),
}

/// A pending item of `kind` with exactly `payload` that no worker holds now and that will be
/// delivered no earlier than a new one `due` then would be, and no later than it would
/// except while a platform makes it wait (a retry): an item that renders what it shows at
/// delivery (a card edit) makes a second one redundant. An item scheduled for later does not
/// stand for one due now, and one due now does not stand for one scheduled later. An item
/// waiting for a retry (`attempts > 0`) or for a platform's pause (`deferrals > 0`) stands for
/// one due now: the platform makes every such call wait anyway.
///
/// On PostgreSQL the row stays locked until the caller's write commits, so a worker cannot
/// claim and render it before the change that would have needed a new one is visible.
pub async fn unclaimed_pending_outbox(
    conn: &mut AnyConnection,
    kind: &str,
    payload: &serde_json::Value,
    due: Due,
) -> Result<Option<OutboxItem>, StorageError> {
    let lock = match dialect(conn) {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let (when, at) = match due {
        Due::Now(now) => (stands_for_due_now("$3"), now),
        Due::NotBefore(at) => ("next_attempt_at >= $3".to_owned(), at),
    };
    Ok(sqlx::query_as::<_, OutboxItem>(&format!(
        "SELECT {COLUMNS} FROM outbox WHERE state = 'pending' AND leased_by IS NULL \
         AND kind = $1 AND payload = $2 AND {when} ORDER BY id LIMIT 1{lock}"
    ))
    .bind(kind)
    .bind(to_json("payload", payload)?)
    .bind(millis(at))
    .fetch_optional(conn)
    .await?)
}

/// The condition on a pending item that stands for one due at `now` (a placeholder): due by
/// then, or waiting for a retry or a platform's pause, which every such call waits for anyway.
fn stands_for_due_now(now: &str) -> String {
    format!("(next_attempt_at <= {now} OR attempts > 0 OR deferrals > 0)")
}

/// Adds to `script` the look-up of [`unclaimed_pending_outbox`] for several items at once:
/// `items` as `(kind, payload)`, due `now`. Read the rows with [`unclaimed_found`]. On
/// PostgreSQL the rows found stay locked until the caller's write commits, as there.
pub(crate) fn push_unclaimed_pending<'q>(
    script: &mut Script<'q>,
    items: &[(String, serde_json::Value)],
    now: DateTime<Utc>,
) -> Result<Option<Part>, StorageError> {
    if items.is_empty() {
        return Ok(None);
    }
    let lock = match script.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let kinds: BTreeSet<&str> = items.iter().map(|(kind, _)| kind.as_str()).collect();
    let payloads = items
        .iter()
        .map(|(_, payload)| to_json("payload", payload))
        .collect::<Result<BTreeSet<_>, _>>()?;
    script
        .push(|values| {
            let now = values.bind(millis(now));
            let kinds: Vec<String> = kinds
                .iter()
                .map(|kind| values.bind((*kind).to_owned()))
                .collect();
            let payloads: Vec<String> = payloads
                .into_iter()
                .map(|payload| values.bind(payload))
                .collect();
            format!(
                "SELECT kind, payload FROM outbox WHERE state = 'pending' AND leased_by IS NULL \
                 AND {} AND kind IN ({}) AND payload IN ({}){lock}",
                stands_for_due_now(&now),
                kinds.join(", "),
                payloads.join(", ")
            )
        })
        .map(Some)
}

/// For each of `items` (as given to [`push_unclaimed_pending`]), whether its statement found an
/// item standing for it.
pub(crate) fn unclaimed_found(
    rows: Vec<AnyRow>,
    items: &[(String, serde_json::Value)],
) -> Result<Vec<bool>, StorageError> {
    let found = rows
        .iter()
        .map(|row| Ok((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?)))
        .collect::<Result<HashSet<(String, String)>, sqlx::Error>>()?;
    items
        .iter()
        .map(|(kind, payload)| Ok(found.contains(&(kind.clone(), to_json("payload", payload)?))))
        .collect()
}

/// Leases up to `limit` due items to `worker` until `lease_until` and counts an attempt for
/// each. Two workers never get the same item while its lease holds.
pub async fn claim_due_outbox(
    conn: &mut AnyConnection,
    worker: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<OutboxItem>, StorageError> {
    if lease_until <= now {
        return Err(StorageError::invalid("lease", "must end after now"));
    }
    // The outer conditions repeat the inner ones: on PostgreSQL a worker that waited for another's
    // row lock re-checks them against the row as the other left it, and so skips it.
    let skip_locked = match dialect(conn) {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let mut items = sqlx::query_as::<_, OutboxItem>(&format!(
        "UPDATE outbox SET next_attempt_at = $2, leased_by = $1, attempts = attempts + 1 \
         WHERE state = 'pending' AND next_attempt_at <= $3 AND id IN (\
           SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $3 \
           ORDER BY next_attempt_at, id LIMIT $4{skip_locked}) \
         RETURNING {COLUMNS}"
    ))
    .bind(worker)
    .bind(millis(lease_until))
    .bind(millis(now))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?;
    items.sort_by_key(|item| item.id);
    Ok(items)
}

/// Pushes the lease of every item `worker` still holds to `lease_until`: a live worker renews
/// while it delivers, so a slow call never loses its item to another worker, while a dead
/// worker's items come due when their lease ends. Returns how many leases were renewed.
pub async fn renew_outbox_leases(
    conn: &mut AnyConnection,
    worker: &str,
    lease_until: DateTime<Utc>,
) -> Result<u64, StorageError> {
    Ok(sqlx::query(
        "UPDATE outbox SET next_attempt_at = $2 WHERE leased_by = $1 AND state = 'pending'",
    )
    .bind(worker)
    .bind(millis(lease_until))
    .execute(conn)
    .await?
    .rows_affected())
}

/// Marks an item delivered. Repeating it is harmless; `NotFound` if there is no such item,
/// `Conflict` if it was already given up on.
pub async fn mark_outbox_delivered(
    conn: &mut AnyConnection,
    id: i64,
    at: DateTime<Utc>,
) -> Result<OutboxItem, StorageError> {
    let updated = sqlx::query_as::<_, OutboxItem>(&format!(
        "UPDATE outbox SET state = 'delivered', delivered_at = $2, leased_by = NULL \
         WHERE id = $1 AND state = 'pending' RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(millis(at))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(item) = updated {
        return Ok(item);
    }
    let item = get_outbox_item(conn, id).await?;
    match item.state {
        OutboxState::Delivered => Ok(item),
        _ => Err(StorageError::conflict(format!(
            "outbox item {id} is {}",
            item.state
        ))),
    }
}

/// Records that claim `claim` ([`OutboxItem::claim`]) failed and when to retry, or that the
/// item is dead. `Conflict` if the item was claimed again since, or is no longer pending.
pub async fn mark_outbox_failed(
    conn: &mut AnyConnection,
    id: i64,
    claim: u32,
    error: &str,
    retry: OutboxRetry,
) -> Result<OutboxItem, StorageError> {
    let (state, next) = match retry {
        OutboxRetry::At(at) => (OutboxState::Pending, Some(millis(at))),
        OutboxRetry::Never => (OutboxState::Dead, None),
    };
    let updated = sqlx::query_as::<_, OutboxItem>(&format!(
        "UPDATE outbox SET state = $3, next_attempt_at = COALESCE($4, next_attempt_at), \
         last_error = $5, leased_by = NULL \
         WHERE id = $1 AND {CLAIM} = $2 AND state = 'pending' RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(i64::from(claim))
    .bind(state.as_str())
    .bind(next)
    .bind(error)
    .fetch_optional(&mut *conn)
    .await?;
    match updated {
        Some(item) => Ok(item),
        None => Err(lost_claim(conn, id, claim).await),
    }
}

/// A claim that made no call because the platform had paused it, to record with
/// [`mark_outbox_deferrals`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxDeferral {
    pub id: i64,
    /// The claim ([`OutboxItem::claim`]) that was deferred.
    pub claim: u32,
    pub reason: String,
    /// When the pause ends: the item is due again then.
    pub until: DateTime<Utc>,
}

/// Records that claim `claim` made no call because the platform had paused it, and that the
/// item is due again `until` (the pause's end). The claim's attempt is given back (`attempts`
/// as before the claim, `deferrals` one more), so however long or often a platform pauses us,
/// the item is never dead for it. `Conflict` as for [`mark_outbox_failed`].
pub async fn mark_outbox_deferred(
    conn: &mut AnyConnection,
    id: i64,
    claim: u32,
    reason: &str,
    until: DateTime<Utc>,
) -> Result<OutboxItem, StorageError> {
    let deferral = OutboxDeferral {
        id,
        claim,
        reason: reason.to_owned(),
        until,
    };
    mark_outbox_deferrals(conn, std::slice::from_ref(&deferral))
        .await?
        .remove(0)
}

/// [`mark_outbox_deferred`] for several claims at once, one statement per pause (a pass whose
/// platform is paused defers its items together). The results follow `deferrals`; a claim
/// that was lost is that item's `Conflict` and leaves the others recorded.
pub async fn mark_outbox_deferrals(
    conn: &mut AnyConnection,
    deferrals: &[OutboxDeferral],
) -> Result<Vec<Result<OutboxItem, StorageError>>, StorageError> {
    // Two values per claim; well under both backends' limit on values per statement.
    const CLAIMS_PER_STATEMENT: usize = 256;
    let mut pauses: Vec<(DateTime<Utc>, &str, Vec<&OutboxDeferral>)> = Vec::new();
    for deferral in deferrals {
        let same = |(until, reason, _): &&mut (DateTime<Utc>, &str, Vec<&OutboxDeferral>)| {
            *until == deferral.until && *reason == deferral.reason
        };
        match pauses.iter_mut().find(same) {
            Some((_, _, claims)) => claims.push(deferral),
            None => pauses.push((deferral.until, &deferral.reason, vec![deferral])),
        }
    }
    let mut recorded: HashMap<i64, OutboxItem> = HashMap::with_capacity(deferrals.len());
    for (until, reason, claims) in &pauses {
        for chunk in claims.chunks(CLAIMS_PER_STATEMENT) {
            let matches = (0..chunk.len())
                .map(|n| format!("(id = ${} AND {CLAIM} = ${})", 3 + 2 * n, 4 + 2 * n))
                .collect::<Vec<_>>()
                .join(" OR ");
            let sql = format!(
                "UPDATE outbox SET attempts = attempts - 1, deferrals = deferrals + 1, \
                 next_attempt_at = $1, last_error = $2, leased_by = NULL \
                 WHERE state = 'pending' AND attempts > 0 AND ({matches}) RETURNING {COLUMNS}"
            );
            let mut query = sqlx::query_as::<_, OutboxItem>(&sql)
                .bind(millis(*until))
                .bind(*reason);
            for deferral in chunk {
                query = query.bind(deferral.id).bind(i64::from(deferral.claim));
            }
            for item in query.fetch_all(&mut *conn).await? {
                recorded.insert(item.id, item);
            }
        }
    }
    let mut results = Vec::with_capacity(deferrals.len());
    for deferral in deferrals {
        results.push(match recorded.remove(&deferral.id) {
            Some(item) => Ok(item),
            None => Err(lost_claim(conn, deferral.id, deferral.claim).await),
        });
    }
    Ok(results)
}

/// Why a report of claim `claim` changed nothing: the item is gone, or no longer that claim's.
async fn lost_claim(conn: &mut AnyConnection, id: i64, claim: u32) -> StorageError {
    match get_outbox_item(conn, id).await {
        Ok(item) => StorageError::conflict(format!(
            "outbox item {id} is {} at claim {}, not pending at claim {claim}",
            item.state,
            item.claim()
        )),
        Err(error) => error,
    }
}

pub async fn get_outbox_item(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<OutboxItem, StorageError> {
    sqlx::query_as::<_, OutboxItem>(&format!("SELECT {COLUMNS} FROM outbox WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StorageError::not_found(format!("outbox item {id}")))
}

pub async fn outbox_counts(conn: &mut AnyConnection) -> Result<OutboxCounts, StorageError> {
    let mut counts = OutboxCounts::default();
    for (state, slot) in [("pending", &mut counts.pending), ("dead", &mut counts.dead)] {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = $1")
            .bind(state)
            .fetch_one(&mut *conn)
            .await?;
        *slot = u64::try_from(n).unwrap_or_default();
    }
    Ok(counts)
}

/// When the next pending item comes due (a lease's end counts), for the worker's sleep.
pub async fn next_outbox_due(
    conn: &mut AnyConnection,
) -> Result<Option<DateTime<Utc>>, StorageError> {
    let next: Option<i64> = sqlx::query_scalar(
        "SELECT next_attempt_at FROM outbox WHERE state = 'pending' \
         ORDER BY next_attempt_at LIMIT 1",
    )
    .fetch_optional(conn)
    .await?;
    Ok(next.and_then(DateTime::from_timestamp_millis))
}

/// Dead items, newest first, for operators.
pub async fn dead_outbox_items(
    conn: &mut AnyConnection,
    limit: u32,
) -> Result<Vec<OutboxItem>, StorageError> {
    Ok(sqlx::query_as::<_, OutboxItem>(&format!(
        "SELECT {COLUMNS} FROM outbox WHERE state = 'dead' ORDER BY id DESC LIMIT $1"
    ))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?)
}

impl Storage {
    /// Enqueues in a write of its own; to enqueue with a state change use [`enqueue_outbox`]
    /// inside that change's write.
    pub async fn enqueue_outbox(
        &self,
        new: NewOutboxItem,
    ) -> Result<Upserted<OutboxItem>, StorageError> {
        self.write(move |conn| Box::pin(async move { enqueue_outbox(conn, &new).await }))
            .await
    }

    /// See [`claim_due_outbox`].
    pub async fn claim_due_outbox(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StorageError> {
        let worker = worker.to_owned();
        self.write(move |conn| {
            Box::pin(async move { claim_due_outbox(conn, &worker, now, lease_until, limit).await })
        })
        .await
    }

    /// See [`renew_outbox_leases`].
    pub async fn renew_outbox_leases(
        &self,
        worker: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        let worker = worker.to_owned();
        self.write(move |conn| {
            Box::pin(async move { renew_outbox_leases(conn, &worker, lease_until).await })
        })
        .await
    }

    pub async fn mark_outbox_delivered(
        &self,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<OutboxItem, StorageError> {
        self.write(move |conn| Box::pin(async move { mark_outbox_delivered(conn, id, at).await }))
            .await
    }

    /// See [`mark_outbox_failed`].
    pub async fn mark_outbox_failed(
        &self,
        id: i64,
        claim: u32,
        error: &str,
        retry: OutboxRetry,
    ) -> Result<OutboxItem, StorageError> {
        let error = error.to_owned();
        self.write(move |conn| {
            Box::pin(async move { mark_outbox_failed(conn, id, claim, &error, retry).await })
        })
        .await
    }

    /// See [`mark_outbox_deferred`].
    pub async fn mark_outbox_deferred(
        &self,
        id: i64,
        claim: u32,
        reason: &str,
        until: DateTime<Utc>,
    ) -> Result<OutboxItem, StorageError> {
        let reason = reason.to_owned();
        self.write(move |conn| {
            Box::pin(async move { mark_outbox_deferred(conn, id, claim, &reason, until).await })
        })
        .await
    }

    /// See [`mark_outbox_deferrals`]: one write for all of them.
    pub async fn mark_outbox_deferrals(
        &self,
        deferrals: Vec<OutboxDeferral>,
    ) -> Result<Vec<Result<OutboxItem, StorageError>>, StorageError> {
        self.write(move |conn| {
            Box::pin(async move { mark_outbox_deferrals(conn, &deferrals).await })
        })
        .await
    }

    pub async fn outbox_item(&self, id: i64) -> Result<OutboxItem, StorageError> {
        get_outbox_item(&mut *self.reader().await?, id).await
    }

    pub async fn outbox_counts(&self) -> Result<OutboxCounts, StorageError> {
        outbox_counts(&mut *self.reader().await?).await
    }

    pub async fn next_outbox_due(&self) -> Result<Option<DateTime<Utc>>, StorageError> {
        next_outbox_due(&mut *self.reader().await?).await
    }

    pub async fn dead_outbox_items(&self, limit: u32) -> Result<Vec<OutboxItem>, StorageError> {
        dead_outbox_items(&mut *self.reader().await?, limit).await
    }
}
