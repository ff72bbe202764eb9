//! Decisions: each reviewer's approve or reject, and every refused attempt, on a request.

use chrono::{DateTime, Utc};
use greenlight_commands::{DecisionVerdict, PersonName, Platform};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::columns::{millis, opt_parsed, parsed, time, word};
use crate::{Storage, StorageError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub id: i64,
    pub request_id: i64,
    /// `None` for a chat user who is not in `[people]`.
    pub person: Option<PersonName>,
    pub platform: Platform,
    /// The platform's own user id, kept even for known people.
    pub platform_user: String,
    pub verdict: DecisionVerdict,
    pub comment: Option<String>,
    /// Why the attempt was refused (not a reviewer, self-review, too early, ...); `None` when
    /// the decision counted.
    pub refused_reason: Option<String>,
    pub decided_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDecision {
    pub request_id: i64,
    pub person: Option<PersonName>,
    pub platform: Platform,
    pub platform_user: String,
    pub verdict: DecisionVerdict,
    pub comment: Option<String>,
    pub refused_reason: Option<String>,
    pub at: DateTime<Utc>,
}

pub(crate) const COLUMNS: &str =
    "id, request_id, person, platform, platform_user, verdict, comment, \
     refused_reason, decided_at";

impl<'r> FromRow<'r, AnyRow> for Decision {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            request_id: row.try_get("request_id")?,
            person: opt_parsed(row, "person", PersonName::parse)?,
            platform: word(row, "platform")?,
            platform_user: row.try_get("platform_user")?,
            verdict: word(row, "verdict")?,
            comment: row.try_get("comment")?,
            refused_reason: row.try_get("refused_reason")?,
            decided_at: time(row, "decided_at")?,
        })
    }
}

impl Decision {
    /// An approval that counted (a known person's, not refused).
    fn counts_as_approval(&self) -> bool {
        self.verdict == DecisionVerdict::Approve
            && self.refused_reason.is_none()
            && self.person.is_some()
    }
}

/// Adds one to the request's `approvals_counted` when `decision` is its person's first counted
/// approval there: one person approving on Slack and on Discord counts once.
async fn count_new_approver(
    conn: &mut AnyConnection,
    decision: &Decision,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE approval_requests SET approvals_counted = approvals_counted + 1 \
         WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM decisions WHERE request_id = $1 \
         AND person = $2 AND verdict = 'approve' AND refused_reason IS NULL AND id <> $3)",
    )
    .bind(decision.request_id)
    .bind(decision.person.as_ref().map(PersonName::as_str))
    .bind(decision.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether `person`'s approval of request `request_id` already counted: an index look-up,
/// whatever the number of approvals.
pub async fn has_approved(
    conn: &mut AnyConnection,
    request_id: i64,
    person: &PersonName,
) -> Result<bool, StorageError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM decisions WHERE request_id = $1 AND person = $2 \
         AND verdict = 'approve' AND refused_reason IS NULL LIMIT 1",
    )
    .bind(request_id)
    .bind(person.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// Records a decision. One that counts (no `refused_reason`) is accepted only while the request
/// is waiting, in the same statement, so a click racing the request's end gets `Conflict`.
/// Refused attempts are always recorded (they are audit).
pub async fn record_decision(
    conn: &mut AnyConnection,
    new: &NewDecision,
) -> Result<Decision, StorageError> {
    if new.person.is_none() && new.refused_reason.is_none() {
        return Err(StorageError::invalid(
            "decision",
            "only a known person's decision can count; record unknown users as refused",
        ));
    }
    let inserted = sqlx::query_as::<_, Decision>(&format!(
        "INSERT INTO decisions (request_id, person, platform, platform_user, verdict, comment, \
         refused_reason, decided_at) \
         SELECT id, $2, $3, $4, $5, $6, $7, $8 FROM approval_requests \
         WHERE id = $1 AND (state = 'waiting' OR $7 IS NOT NULL) RETURNING {COLUMNS}"
    ))
    .bind(new.request_id)
    .bind(new.person.as_ref().map(PersonName::as_str))
    .bind(new.platform.as_str())
    .bind(&new.platform_user)
    .bind(new.verdict.as_str())
    .bind(new.comment.as_deref())
    .bind(new.refused_reason.as_deref())
    .bind(millis(new.at))
    .fetch_optional(&mut *conn)
    .await?;
    match inserted {
        Some(decision) => {
            if decision.counts_as_approval() {
                count_new_approver(conn, &decision).await?;
            }
            Ok(decision)
        }
        None => {
            let request = crate::approvals::get_approval_request(conn, new.request_id).await?;
            Err(StorageError::conflict(format!(
                "approval request {} is already {}",
                request.id, request.state
            )))
        }
    }
}

/// Which of `people` already have a counted approval on request `request_id`: one index
/// look-up per person, in one statement (a batch of clicks).
pub async fn approved_among(
    conn: &mut AnyConnection,
    request_id: i64,
    people: &[&PersonName],
) -> Result<Vec<PersonName>, StorageError> {
    if people.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..people.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT DISTINCT person FROM decisions WHERE request_id = $1 AND verdict = 'approve' \
         AND refused_reason IS NULL AND person IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(request_id);
    for person in people {
        query = query.bind(person.as_str());
    }
    let rows = query.fetch_all(conn).await?;
    rows.iter()
        .map(|row| Ok(parsed(row, "person", PersonName::parse)?))
        .collect()
}

/// Records decisions on one request in one statement, in order, and adds `new_approvers` to
/// its `approvals_counted`. For the decision batcher, which holds the request locked and so
/// knows itself which approvals are a person's first and that the request is waiting.
pub async fn record_decision_batch(
    conn: &mut AnyConnection,
    request_id: i64,
    decisions: &[NewDecision],
    new_approvers: u32,
) -> Result<(), StorageError> {
    if decisions.is_empty() {
        return Ok(());
    }
    const PER_ROW: usize = 7;
    let mut rows = Vec::with_capacity(decisions.len());
    for (i, new) in decisions.iter().enumerate() {
        if new.person.is_none() && new.refused_reason.is_none() {
            return Err(StorageError::invalid(
                "decision",
                "only a known person's decision can count; record unknown users as refused",
            ));
        }
        if new.request_id != request_id {
            return Err(StorageError::invalid(
                "decision",
                "a batch holds decisions on one request",
            ));
        }
        let first = 2 + i * PER_ROW;
        let columns: Vec<String> = (first..first + PER_ROW).map(|n| format!("${n}")).collect();
        rows.push(format!("($1, {})", columns.join(", ")));
    }
    let sql = format!(
        "INSERT INTO decisions (request_id, person, platform, platform_user, verdict, comment, \
         refused_reason, decided_at) VALUES {}",
        rows.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(request_id);
    for new in decisions {
        query = query
            .bind(new.person.as_ref().map(PersonName::as_str))
            .bind(new.platform.as_str())
            .bind(&new.platform_user)
            .bind(new.verdict.as_str())
            .bind(new.comment.as_deref())
            .bind(new.refused_reason.as_deref())
            .bind(millis(new.at));
    }
    query.execute(&mut *conn).await?;
    if new_approvers > 0 {
        sqlx::query(
            "UPDATE approval_requests SET approvals_counted = approvals_counted + $2 WHERE id = $1",
        )
        .bind(request_id)
        .bind(i64::from(new_approvers))
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Every decision and refused attempt on a request, oldest first.
pub async fn list_decisions(
    conn: &mut AnyConnection,
    request_id: i64,
) -> Result<Vec<Decision>, StorageError> {
    Ok(sqlx::query_as::<_, Decision>(&format!(
        "SELECT {COLUMNS} FROM decisions WHERE request_id = $1 ORDER BY id"
    ))
    .bind(request_id)
    .fetch_all(conn)
    .await?)
}

/// The distinct people whose approval counts, in the order they first approved: one person
/// approving on both Slack and Discord counts once.
pub async fn approvers(
    conn: &mut AnyConnection,
    request_id: i64,
) -> Result<Vec<PersonName>, StorageError> {
    let rows = sqlx::query(
        "SELECT person, MIN(id) AS first FROM decisions WHERE request_id = $1 \
         AND verdict = 'approve' AND refused_reason IS NULL AND person IS NOT NULL \
         GROUP BY person ORDER BY first",
    )
    .bind(request_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| Ok(parsed(row, "person", PersonName::parse)?))
        .collect()
}

impl Storage {
    /// See [`record_decision`].
    pub async fn record_decision(&self, new: NewDecision) -> Result<Decision, StorageError> {
        self.write(move |conn| Box::pin(async move { record_decision(conn, &new).await }))
            .await
    }

    pub async fn decisions(&self, request_id: i64) -> Result<Vec<Decision>, StorageError> {
        list_decisions(&mut *self.reader().await?, request_id).await
    }

    pub async fn approvers(&self, request_id: i64) -> Result<Vec<PersonName>, StorageError> {
        approvers(&mut *self.reader().await?, request_id).await
    }
}
