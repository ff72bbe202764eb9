//! Decisions: each reviewer's approve or reject, and every refused attempt, on a request.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use greenlight_commands::{DecisionVerdict, PersonName, Platform};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::approvals::{ApprovalRequest, DecisionContext};
use crate::columns::{millis, opt_parsed, parsed, time, word};
use crate::script::{Part, Script};
use crate::{approvals, deliveries, outbox};
use crate::{NewOutboxItem, Open, Opening, Storage, StorageError};

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

/// Adds to `script` the look-up of which of the `(request id, person)` pairs asked have a
/// counted approval, for a batch of clicks over one or many requests; read it with
/// [`approved_pairs`].
fn push_approved_among<'q>(
    script: &mut Script<'q>,
    asked: &[(i64, &'q PersonName)],
) -> Result<Option<Part>, StorageError> {
    if asked.is_empty() {
        return Ok(None);
    }
    // Each list's values once; the index on (request_id, person) then answers every
    // combination, and only the pairs asked are kept.
    let requests: BTreeSet<i64> = asked.iter().map(|(request, _)| *request).collect();
    let people: BTreeSet<&'q str> = asked.iter().map(|(_, person)| person.as_str()).collect();
    script
        .push(|values| {
            let requests: Vec<String> = requests.iter().map(|id| values.bind(*id)).collect();
            let people: Vec<String> = people.iter().map(|person| values.bind(*person)).collect();
            format!(
                "SELECT DISTINCT request_id, person FROM decisions WHERE verdict = 'approve' \
                 AND refused_reason IS NULL AND request_id IN ({}) AND person IN ({})",
                requests.join(", "),
                people.join(", ")
            )
        })
        .map(Some)
}

/// The pairs among `asked` that a [`push_approved_among`] statement found.
fn approved_pairs(
    rows: Vec<AnyRow>,
    asked: &[(i64, &PersonName)],
) -> Result<HashSet<(i64, PersonName)>, StorageError> {
    let asked: HashSet<(i64, &str)> = asked
        .iter()
        .map(|(request, person)| (*request, person.as_str()))
        .collect();
    let mut approved = HashSet::new();
    for row in &rows {
        let request: i64 = row.try_get("request_id")?;
        let person = parsed(row, "person", PersonName::parse)?;
        if asked.contains(&(request, person.as_str())) {
            approved.insert((request, person));
        }
    }
    Ok(approved)
}

/// What a batch of clicks reads before deciding, read together.
#[derive(Debug, Default)]
pub struct BatchReading {
    /// The deliveries recorded for the first time, as `(source, delivery_id)`.
    pub first_seen: HashSet<(String, String)>,
    /// The requests clicked on that exist, waiting or not; the waiting ones are claimed (on
    /// PostgreSQL locked in id order, see `approvals::push_lock_requests`).
    pub requests: HashMap<i64, ApprovalRequest>,
    /// What each request's decisions depend on besides the request.
    pub contexts: HashMap<i64, DecisionContext>,
    /// The `(request, person)` pairs asked that already have a counted approval.
    pub approved: HashSet<(i64, PersonName)>,
    /// For each of the `edits` asked about, whether an unclaimed item due now stands for it
    /// (as [`unclaimed_pending_outbox`](crate::outbox::unclaimed_pending_outbox) finds one).
    pub waiting_edits: Vec<bool>,
}

/// Records the batch's `deliveries`, claims its `requests` and reads their contexts, who
/// among `asked` approved before, and which of the outbox `edits` (`(kind, payload)`, e.g.
/// the requests' card edits) already have an item waiting: on SQLite in one round trip to the
/// connection's thread, since a batch is written while every click in it waits.
///
/// They are the batch's first statements: on SQLite they go with the `BEGIN` of its write
/// ([`Opening`]), and the open transaction comes back for the rest of the write.
pub async fn read_for_batch<'c>(
    opening: Opening<'c>,
    deliveries: &[(&str, &str)],
    requests: &[i64],
    asked: &[(i64, &PersonName)],
    edits: &[(String, serde_json::Value)],
    at: DateTime<Utc>,
) -> Result<(BatchReading, Open<'c>), StorageError> {
    let mut script = opening.script();
    let first_seen = deliveries::push_deliveries(&mut script, deliveries, at)?;
    let locked = approvals::push_lock_requests(&mut script, requests)?;
    let contexts = approvals::push_decision_contexts(&mut script, requests)?;
    let approved = push_approved_among(&mut script, asked)?;
    let waiting = outbox::push_unclaimed_pending(&mut script, edits, at)?;
    let (mut results, open) = opening.run(script).await?;
    let mut reading = BatchReading::default();
    if let Some(part) = first_seen {
        reading.first_seen = deliveries::first_seen(results.take(part))?;
    }
    if let Some(part) = locked {
        reading.requests = approvals::requests_by_id(results.take(part))?;
    }
    if let Some(part) = contexts {
        reading.contexts = approvals::contexts_by_id(results.take(part))?;
    }
    if let Some(part) = approved {
        reading.approved = approved_pairs(results.take(part), asked)?;
    }
    reading.waiting_edits = match waiting {
        Some(part) => outbox::unclaimed_found(results.take(part), edits)?,
        None => Vec::new(),
    };
    Ok((reading, open))
}

/// Records decisions in one statement, in order, and adds to each request's
/// `approvals_counted` its number in `new_approvers` in another, sent together. For the
/// decision batcher, which holds the requests locked and so knows itself which approvals are a
/// person's first and that the requests are waiting.
pub async fn record_decision_batch(
    conn: &mut AnyConnection,
    decisions: &[NewDecision],
    new_approvers: &BTreeMap<i64, u32>,
) -> Result<(), StorageError> {
    let mut script = Script::new(conn);
    push_decision_batch(&mut script, decisions, new_approvers)?;
    script.run(conn).await?;
    Ok(())
}

/// Ends a batch's write: [`record_decision_batch`] and the batch's new outbox items (its cards'
/// edits), as the write's last statements, so that on SQLite the `COMMIT` goes with them
/// ([`Open::finish`]).
pub async fn finish_batch<'q>(
    open: Open<'_>,
    decisions: &'q [NewDecision],
    new_approvers: &BTreeMap<i64, u32>,
    items: &'q [NewOutboxItem],
) -> Result<(), StorageError> {
    let mut script = open.script();
    push_decision_batch(&mut script, decisions, new_approvers)?;
    outbox::push_enqueue(&mut script, items)?;
    open.finish(script).await?;
    Ok(())
}

fn push_decision_batch<'q>(
    script: &mut Script<'q>,
    decisions: &'q [NewDecision],
    new_approvers: &BTreeMap<i64, u32>,
) -> Result<(), StorageError> {
    if let Some(unknown) = decisions
        .iter()
        .find(|new| new.person.is_none() && new.refused_reason.is_none())
    {
        return Err(StorageError::invalid(
            "decision",
            format!(
                "only a known person's decision can count; record unknown user {} as refused",
                unknown.platform_user
            ),
        ));
    }
    if !decisions.is_empty() {
        script.push(|values| {
            let rows: Vec<String> = decisions
                .iter()
                .map(|new| {
                    let row = [
                        values.bind(new.request_id),
                        values.bind(new.person.as_ref().map(PersonName::as_str)),
                        values.bind(new.platform.as_str()),
                        values.bind(new.platform_user.as_str()),
                        values.bind(new.verdict.as_str()),
                        values.bind(new.comment.as_deref()),
                        values.bind(new.refused_reason.as_deref()),
                        values.bind(millis(new.at)),
                    ];
                    format!("({})", row.join(", "))
                })
                .collect();
            format!(
                "INSERT INTO decisions (request_id, person, platform, platform_user, verdict, \
                 comment, refused_reason, decided_at) VALUES {}",
                rows.join(", ")
            )
        })?;
    }
    let counted: Vec<(i64, u32)> = new_approvers
        .iter()
        .filter(|(_, added)| **added > 0)
        .map(|(request, added)| (*request, *added))
        .collect();
    if !counted.is_empty() {
        script.push(|values| {
            let cases: Vec<String> = counted
                .iter()
                .map(|(request, added)| {
                    let request = values.bind(*request);
                    format!("WHEN {request} THEN {}", values.bind(i64::from(*added)))
                })
                .collect();
            let ids: Vec<String> = counted
                .iter()
                .map(|(request, _)| values.bind(*request))
                .collect();
            format!(
                "UPDATE approval_requests SET approvals_counted = approvals_counted + \
                 CASE id {} ELSE 0 END WHERE id IN ({})",
                cases.join(" "),
                ids.join(", ")
            )
        })?;
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
