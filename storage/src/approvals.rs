//! Approval requests: the gate before a gated environment; left `waiting` only by a
//! conditional update, so concurrent clicks and replicas produce one outcome (SPEC §1, §2).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use greenlight_commands::states::UnknownWord;
use greenlight_commands::{AppName, ApprovalState, CommitSha, EnvironmentName};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::columns::{count, dialect, millis, opt_time, parsed, time, to_json, word};
use crate::script::{Part, Script};
use crate::{Backend, Storage, StorageError};

/// What opened the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalSource {
    /// A CI `deployed` event (or GitHub `deployment_status`) for the previous environment.
    Ci,
    /// A GitHub deployment protection rule.
    Github,
}

impl ApprovalSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ci => "ci",
            Self::Github => "github",
        }
    }
}

impl FromStr for ApprovalSource {
    type Err = UnknownWord;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "ci" => Ok(Self::Ci),
            "github" => Ok(Self::Github),
            _ => Err(UnknownWord {
                kind: "approval source",
                value: value.to_owned(),
            }),
        }
    }
}

impl fmt::Display for ApprovalSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalRequest {
    pub id: i64,
    pub release_id: i64,
    pub app: AppName,
    pub environment: EnvironmentName,
    pub sha: CommitSha,
    pub state: ApprovalState,
    pub source: ApprovalSource,
    pub required_approvals: u32,
    /// Distinct people whose approval counted so far (kept by `record_decision`).
    pub approvals_counted: u32,
    pub opens_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub next_reminder_at: Option<DateTime<Utc>>,
    /// Said with the final state: the reject reason, "expired", what superseded it.
    pub outcome_comment: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// The SHA-256 (hex) of the stored policy's text, which a reader that parsed an equal text
    /// can use instead of reading it; `None` for requests opened by older versions.
    pub policy_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewApprovalRequest {
    pub release_id: i64,
    pub environment: EnvironmentName,
    pub source: ApprovalSource,
    pub policy: serde_json::Value,
    pub required_approvals: u32,
    pub opens_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub next_reminder_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// Ends a waiting request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalTransition {
    pub to: ApprovalState,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
}

/// Every column but the policy: with a 20,000-person group that JSON is hundreds of KB, and a
/// click reads the request several times. [`get_policy`] reads it where it is needed.
pub(crate) const SELECT: &str =
    "SELECT a.id, a.release_id, a.app, a.environment, r.sha, a.state, a.source, \
     a.required_approvals, a.approvals_counted, a.opens_at, a.expires_at, a.next_reminder_at, \
     a.outcome_comment, a.decided_at, a.created_at, a.updated_at, a.version, a.policy_digest \
     FROM approval_requests a JOIN releases r ON r.id = a.release_id";

impl<'r> FromRow<'r, AnyRow> for ApprovalRequest {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            release_id: row.try_get("release_id")?,
            app: parsed(row, "app", AppName::parse)?,
            environment: parsed(row, "environment", EnvironmentName::parse)?,
            sha: parsed(row, "sha", CommitSha::parse)?,
            state: word(row, "state")?,
            source: word(row, "source")?,
            required_approvals: count(row, "required_approvals")?,
            approvals_counted: count(row, "approvals_counted")?,
            opens_at: time(row, "opens_at")?,
            expires_at: time(row, "expires_at")?,
            next_reminder_at: opt_time(row, "next_reminder_at")?,
            outcome_comment: row.try_get("outcome_comment")?,
            decided_at: opt_time(row, "decided_at")?,
            created_at: time(row, "created_at")?,
            updated_at: time(row, "updated_at")?,
            version: row.try_get("version")?,
            policy_digest: row.try_get("policy_digest")?,
        })
    }
}

/// Opens a request in `waiting`. `Conflict` if one is already waiting for the app and
/// environment: supersede it first, in the same write.
pub async fn insert_approval_request(
    conn: &mut AnyConnection,
    new: &NewApprovalRequest,
) -> Result<ApprovalRequest, StorageError> {
    if new.required_approvals == 0 {
        return Err(StorageError::invalid(
            "required_approvals",
            "at least one approval is required",
        ));
    }
    let at = millis(new.at);
    let policy = to_json("policy", &new.policy)?;
    let digest = policy_digest(&policy);
    sqlx::query(
        "INSERT INTO review_policies (digest, policy) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(&digest)
    .bind(&policy)
    .execute(&mut *conn)
    .await?;
    // DO NOTHING rather than failing on the one-waiting index: a failed statement would abort
    // the whole PostgreSQL transaction, and the caller may want to react inside it.
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO approval_requests (release_id, app, environment, state, source, policy, \
         required_approvals, opens_at, expires_at, next_reminder_at, created_at, updated_at, \
         policy_digest) \
         SELECT id, app, $2, 'waiting', $3, '', $4, $5, $6, $7, $8, $8, $9 FROM releases \
         WHERE id = $1 ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(new.release_id)
    .bind(new.environment.as_str())
    .bind(new.source.as_str())
    .bind(i64::from(new.required_approvals))
    .bind(millis(new.opens_at))
    .bind(millis(new.expires_at))
    .bind(new.next_reminder_at.map(millis))
    .bind(at)
    .bind(&digest)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = id {
        return get_approval_request(conn, id).await;
    }
    let release = crate::releases::get_release(conn, new.release_id).await?;
    let waiting = waiting_approval_request(conn, &release.app, &new.environment).await?;
    Err(StorageError::conflict(match waiting {
        Some(other) => format!(
            "approval request {} for {} is already waiting in {}/{}",
            other.id,
            other.sha.short(),
            other.app,
            other.environment
        ),
        None => format!(
            "an approval request is already waiting in {}/{}",
            release.app, new.environment
        ),
    }))
}

pub async fn get_approval_request(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<ApprovalRequest, StorageError> {
    sqlx::query_as::<_, ApprovalRequest>(&format!("{SELECT} WHERE a.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StorageError::not_found(format!("approval request {id}")))
}

/// The digest stored with a policy's text: SHA-256, in hex.
pub fn policy_digest(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The text of the review policy stored with request `id`, unparsed: requests share their
/// policies' texts, so a reader can keep one parse per distinct text.
pub async fn get_policy_text(conn: &mut AnyConnection, id: i64) -> Result<String, StorageError> {
    let policy: Option<String> = sqlx::query_scalar(
        "SELECT COALESCE(p.policy, a.policy) FROM approval_requests a \
             LEFT JOIN review_policies p ON p.digest = a.policy_digest WHERE a.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    policy.ok_or_else(|| StorageError::not_found(format!("approval request {id}")))
}

/// The review policy stored with request `id` when it opened (the JSON `NewApprovalRequest`
/// gave). It never changes afterwards, so callers may keep it.
pub async fn get_policy(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<serde_json::Value, StorageError> {
    let policy = get_policy_text(conn, id).await?;
    serde_json::from_str(&policy).map_err(|error| {
        StorageError::invalid("policy", format!("stored policy of request {id}: {error}"))
    })
}

/// The request waiting for the app and environment, if any (there is at most one).
pub async fn waiting_approval_request(
    conn: &mut AnyConnection,
    app: &AppName,
    environment: &EnvironmentName,
) -> Result<Option<ApprovalRequest>, StorageError> {
    Ok(sqlx::query_as::<_, ApprovalRequest>(&format!(
        "{SELECT} WHERE a.app = $1 AND a.environment = $2 AND a.state = 'waiting'"
    ))
    .bind(app.as_str())
    .bind(environment.as_str())
    .fetch_optional(conn)
    .await?)
}

/// The newest request for a release in an environment, whatever its state.
pub async fn latest_approval_request(
    conn: &mut AnyConnection,
    release_id: i64,
    environment: &EnvironmentName,
) -> Result<Option<ApprovalRequest>, StorageError> {
    Ok(sqlx::query_as::<_, ApprovalRequest>(&format!(
        "{SELECT} WHERE a.release_id = $1 AND a.environment = $2 ORDER BY a.id DESC LIMIT 1"
    ))
    .bind(release_id)
    .bind(environment.as_str())
    .fetch_optional(conn)
    .await?)
}

/// The newest approved request of release `release_id` for `environment`, if it was ever
/// approved there: what makes a reported deployment of it to that environment approved.
pub async fn approved_request_of_release(
    conn: &mut AnyConnection,
    release_id: i64,
    environment: &EnvironmentName,
) -> Result<Option<ApprovalRequest>, StorageError> {
    Ok(sqlx::query_as::<_, ApprovalRequest>(&format!(
        "{SELECT} WHERE a.release_id = $1 AND a.environment = $2 AND a.state = 'approved' \
         ORDER BY a.id DESC LIMIT 1"
    ))
    .bind(release_id)
    .bind(environment.as_str())
    .fetch_optional(conn)
    .await?)
}

/// The most recently approved request for the app and environment: the one a lock may be
/// holding back until `/unlock`.
pub async fn latest_approved_request(
    conn: &mut AnyConnection,
    app: &AppName,
    environment: &EnvironmentName,
) -> Result<Option<ApprovalRequest>, StorageError> {
    Ok(sqlx::query_as::<_, ApprovalRequest>(&format!(
        "{SELECT} WHERE a.app = $1 AND a.environment = $2 AND a.state = 'approved' \
         ORDER BY a.decided_at DESC, a.id DESC LIMIT 1"
    ))
    .bind(app.as_str())
    .bind(environment.as_str())
    .fetch_optional(conn)
    .await?)
}

/// Ends waiting request `id` (approved, rejected, expired, superseded, cancelled). Exactly one
/// of several concurrent callers wins; the others get `Conflict`.
pub async fn transition_approval_request(
    conn: &mut AnyConnection,
    id: i64,
    change: &ApprovalTransition,
) -> Result<ApprovalRequest, StorageError> {
    if change.to == ApprovalState::Waiting {
        return Err(StorageError::invalid(
            "approval state",
            "a request cannot go back to waiting",
        ));
    }
    let updated: Option<i64> = sqlx::query_scalar(
        "UPDATE approval_requests SET state = $2, outcome_comment = $3, decided_at = $4, \
         updated_at = $4, next_reminder_at = NULL, version = version + 1 \
         WHERE id = $1 AND state = 'waiting' RETURNING id",
    )
    .bind(id)
    .bind(change.to.as_str())
    .bind(change.comment.as_deref())
    .bind(millis(change.at))
    .fetch_optional(&mut *conn)
    .await?;
    match updated {
        Some(id) => get_approval_request(conn, id).await,
        None => {
            let current = get_approval_request(conn, id).await?;
            Err(StorageError::conflict(format!(
                "approval request {id} is already {}",
                current.state
            )))
        }
    }
}

/// Claims waiting request `id` for one decision. On PostgreSQL it bumps the version, which
/// holds the row lock until the write commits, so concurrent deciders on several replicas take
/// turns and each counts the approvals the previous one committed. SQLite's single writer
/// already serializes them, so there it only reads. `Conflict` when the request is no longer
/// waiting.
pub async fn lock_waiting_request(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<ApprovalRequest, StorageError> {
    let waiting = match dialect(conn) {
        Backend::Postgres => {
            let locked: Option<i64> = sqlx::query_scalar(
                "UPDATE approval_requests SET version = version + 1 \
                 WHERE id = $1 AND state = 'waiting' RETURNING id",
            )
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
            Some(locked.is_some())
        }
        Backend::Sqlite => None,
    };
    let request = get_approval_request(conn, id).await?;
    if waiting.unwrap_or(request.state == ApprovalState::Waiting) {
        Ok(request)
    } else {
        Err(StorageError::conflict(format!(
            "approval request {id} is already {}",
            request.state
        )))
    }
}

/// Adds to `script` the claim of requests `ids` for one batch of decisions, as
/// [`lock_waiting_request`] claims one, and the read of every one of them that exists,
/// waiting or not (read them with [`requests_by_id`]). On PostgreSQL the waiting ones are
/// locked in id order, so two replicas claiming overlapping batches take turns instead of
/// deadlocking; the caller refuses clicks on those no longer waiting.
pub(crate) fn push_lock_requests(
    script: &mut Script<'_>,
    ids: &[i64],
) -> Result<Option<Part>, StorageError> {
    if ids.is_empty() {
        return Ok(None);
    }
    if script.backend() == Backend::Postgres {
        script.push(|values| {
            let ids: Vec<String> = ids.iter().map(|id| values.bind(*id)).collect();
            format!(
                "UPDATE approval_requests SET version = version + 1 WHERE id IN (\
                 SELECT id FROM approval_requests WHERE id IN ({}) AND state = 'waiting' \
                 ORDER BY id FOR UPDATE)",
                ids.join(", ")
            )
        })?;
    }
    script
        .push(|values| {
            let ids: Vec<String> = ids.iter().map(|id| values.bind(*id)).collect();
            format!("{SELECT} WHERE a.id IN ({})", ids.join(", "))
        })
        .map(Some)
}

/// The requests a [`push_lock_requests`] statement read, by id.
pub(crate) fn requests_by_id(
    rows: Vec<AnyRow>,
) -> Result<HashMap<i64, ApprovalRequest>, StorageError> {
    rows.iter()
        .map(|row| {
            let request = ApprovalRequest::from_row(row)?;
            Ok((request.id, request))
        })
        .collect()
}

/// What a decision on a request depends on besides the request itself, read in one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionContext {
    /// The release's author as CI or GitHub named them.
    pub author: Option<String>,
    /// The environment's lock, if it is locked.
    pub lock_reason: Option<String>,
    /// A GitHub deployment protection rule waits on this request's release and environment.
    pub github_gate: bool,
}

/// See [`DecisionContext`]: the release, the lock and the gates in one statement rather than
/// three, since every click reads them.
pub async fn decision_context(
    conn: &mut AnyConnection,
    request: &ApprovalRequest,
) -> Result<DecisionContext, StorageError> {
    decision_contexts(conn, &[request.id])
        .await?
        .remove(&request.id)
        .ok_or_else(|| StorageError::not_found(format!("approval request {}", request.id)))
}

/// The [`DecisionContext`] of each of requests `ids` that exists, by request id, in one
/// statement (a batch of clicks over many requests).
pub async fn decision_contexts(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> Result<HashMap<i64, DecisionContext>, StorageError> {
    let mut script = Script::new(conn);
    let Some(part) = push_decision_contexts(&mut script, ids)? else {
        return Ok(HashMap::new());
    };
    contexts_by_id(script.run(conn).await?.take(part))
}

/// Adds [`decision_contexts`]'s statement to `script`; read it with [`contexts_by_id`].
pub(crate) fn push_decision_contexts(
    script: &mut Script<'_>,
    ids: &[i64],
) -> Result<Option<Part>, StorageError> {
    if ids.is_empty() {
        return Ok(None);
    }
    script
        .push(|values| {
            let ids: Vec<String> = ids.iter().map(|id| values.bind(*id)).collect();
            format!(
                "SELECT a.id, r.author, \
                 (SELECT l.reason FROM locks l WHERE l.app = a.app \
                  AND l.environment = a.environment AND l.released_at IS NULL) AS lock_reason, \
                 (SELECT COUNT(*) FROM github_gates g WHERE g.app = a.app \
                  AND g.environment = a.environment AND g.sha = r.sha \
                  AND g.state = 'waiting') AS gates \
                 FROM approval_requests a JOIN releases r ON r.id = a.release_id \
                 WHERE a.id IN ({})",
                ids.join(", ")
            )
        })
        .map(Some)
}

/// The contexts a [`push_decision_contexts`] statement read, by request id.
pub(crate) fn contexts_by_id(
    rows: Vec<AnyRow>,
) -> Result<HashMap<i64, DecisionContext>, StorageError> {
    rows.iter()
        .map(|row| {
            let gates: i64 = row.try_get("gates")?;
            let context = DecisionContext {
                author: row.try_get("author")?,
                lock_reason: row.try_get("lock_reason")?,
                github_gate: gates > 0,
            };
            Ok((row.try_get("id")?, context))
        })
        .collect()
}

/// Sets when the next reminder is due (`None`: no more reminders) on a waiting request.
pub async fn set_next_reminder(
    conn: &mut AnyConnection,
    id: i64,
    next_reminder_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Result<ApprovalRequest, StorageError> {
    let updated: Option<i64> = sqlx::query_scalar(
        "UPDATE approval_requests SET next_reminder_at = $2, updated_at = $3, \
         version = version + 1 WHERE id = $1 AND state = 'waiting' RETURNING id",
    )
    .bind(id)
    .bind(next_reminder_at.map(millis))
    .bind(millis(at))
    .fetch_optional(&mut *conn)
    .await?;
    match updated {
        Some(id) => get_approval_request(conn, id).await,
        None => {
            let current = get_approval_request(conn, id).await?;
            Err(StorageError::conflict(format!(
                "approval request {id} is {}, no reminders",
                current.state
            )))
        }
    }
}

/// Waiting requests whose `approval_timeout` has passed, oldest first.
pub async fn due_expirations(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<ApprovalRequest>, StorageError> {
    Ok(sqlx::query_as::<_, ApprovalRequest>(&format!(
        "{SELECT} WHERE a.state = 'waiting' AND a.expires_at <= $1 ORDER BY a.expires_at LIMIT $2"
    ))
    .bind(millis(now))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?)
}

/// Waiting requests whose reminder is due, oldest first.
pub async fn due_reminders(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<ApprovalRequest>, StorageError> {
    Ok(sqlx::query_as::<_, ApprovalRequest>(&format!(
        "{SELECT} WHERE a.state = 'waiting' AND a.next_reminder_at <= $1 \
         ORDER BY a.next_reminder_at LIMIT $2"
    ))
    .bind(millis(now))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?)
}

impl Storage {
    pub async fn insert_approval_request(
        &self,
        new: NewApprovalRequest,
    ) -> Result<ApprovalRequest, StorageError> {
        self.write(move |conn| Box::pin(async move { insert_approval_request(conn, &new).await }))
            .await
    }

    /// See [`transition_approval_request`].
    pub async fn transition_approval_request(
        &self,
        id: i64,
        change: ApprovalTransition,
    ) -> Result<ApprovalRequest, StorageError> {
        self.write(move |conn| {
            Box::pin(async move { transition_approval_request(conn, id, &change).await })
        })
        .await
    }

    pub async fn approval_request(&self, id: i64) -> Result<ApprovalRequest, StorageError> {
        get_approval_request(&mut *self.reader().await?, id).await
    }

    /// See [`get_policy`].
    pub async fn approval_policy(&self, id: i64) -> Result<serde_json::Value, StorageError> {
        get_policy(&mut *self.reader().await?, id).await
    }

    pub async fn waiting_approval_request(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
    ) -> Result<Option<ApprovalRequest>, StorageError> {
        waiting_approval_request(&mut *self.reader().await?, app, environment).await
    }

    pub async fn latest_approved_request(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
    ) -> Result<Option<ApprovalRequest>, StorageError> {
        latest_approved_request(&mut *self.reader().await?, app, environment).await
    }

    pub async fn due_expirations(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ApprovalRequest>, StorageError> {
        due_expirations(&mut *self.reader().await?, now, limit).await
    }

    pub async fn due_reminders(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ApprovalRequest>, StorageError> {
        due_reminders(&mut *self.reader().await?, now, limit).await
    }
}
