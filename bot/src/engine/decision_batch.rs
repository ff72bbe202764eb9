//! Reviewers' clicks decided together, over every request (SPEC §13: decisions at write speed).
//!
//! While a batch of clicks is being written, the clicks that arrive queue behind it and go into
//! the next write together, whichever requests they are on. A batch reads what its decisions
//! depend on once for all its requests (the requests, their release, lock and gates, who of the
//! clickers approved before), decides every click in arrival order with the pure core against
//! that state (kept current in memory), and stores all the decision rows and counts in one
//! statement each. A hot card or a thousand busy ones then cost the single writer a few
//! statements per batch rather than a dozen per click, and clicks never conflict with each
//! other, so nothing is retried. Each click is answered only after the write holding it
//! committed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use greenlight_commands::{
    approval, Actor, Approvals, Decision, Effect, PersonName, Platform, Refusal, RequestSnapshot,
    Verdict,
};
use greenlight_storage::{
    decisions, AnyConnection, ApprovalRequest, Backend, NewDecision, Open, Opening, StorageError,
};
use tokio::sync::watch;

use super::batch_queue::{runners_for, BatchQueue};
use super::decisions::{accepted_text, count, ChatActor, DecisionReply, InboundDelivery};
use super::effects::{self, Context};
use super::snapshot::{load_approvals, snapshot_from, Reading};
use super::Engine;
use crate::cards::CardKey;
use crate::config::Config;
use crate::stored_policy::PolicyCache;

/// One reviewer's click, waiting for its batch.
#[derive(Debug, Clone)]
pub(super) struct Click {
    pub request_id: i64,
    pub actor: ChatActor,
    pub verdict: Verdict,
    /// Recorded in the batch's write; a click whose delivery was seen before is answered
    /// `None` and changes nothing.
    pub delivery: Option<InboundDelivery>,
}

/// What a click is answered: its reply, or `None` for a redelivery.
type Answer = Result<Option<DecisionReply>, StorageError>;

/// The most clicks one write decides, so a batch's statements stay small (8 parameters a row).
const MAX_CLICKS: usize = 128;

/// How many times a batch is written again when another process decided on one of its
/// requests first (PostgreSQL with several replicas); within one process batches take turns.
const ATTEMPTS: usize = 8;

/// Clicks waiting for a batch, over all requests.
pub(crate) type DecisionQueue = BatchQueue<Click, Option<DecisionReply>>;

pub(super) fn decision_queue(backend: Backend) -> DecisionQueue {
    BatchQueue::new(
        "greenlight_decision_clicks_waiting",
        MAX_CLICKS,
        runners_for(backend),
    )
}

impl Engine {
    /// Clicks taken and not answered yet (queued, or in a batch being written), as it changes.
    pub fn clicks_waiting(&self) -> watch::Receiver<usize> {
        self.decision_queue.waiting()
    }

    /// Decides `click` in the next batch.
    pub(super) async fn decide_in_batch(&self, click: Click) -> Answer {
        let writer = || {
            let engine = self.clone();
            move |clicks: Vec<Click>| {
                let engine = engine.clone();
                async move { engine.write_batch(clicks).await }
            }
        };
        self.decision_queue
            .submit(click, &self.background, "decision batches", writer)
            .await
    }

    async fn write_batch(&self, clicks: Vec<Click>) -> Result<Vec<Answer>, StorageError> {
        let platforms: Vec<_> = clicks.iter().map(|click| click.actor.platform).collect();
        let started = std::time::Instant::now();
        let clicks = Arc::new(clicks);
        let mut last_conflict = None;
        for _ in 0..ATTEMPTS {
            let now = self.clock.now();
            let config = Arc::clone(&self.config);
            let policies = Arc::clone(&self.policies);
            let clicks = Arc::clone(&clicks);
            let written = self
                .storage
                .write_opening(move |opening| {
                    Box::pin(
                        async move { decide_all(opening, &config, &policies, &clicks, now).await },
                    )
                })
                .await;
            match written {
                Err(error) if error.is_conflict() => last_conflict = Some(error),
                Err(error) => return Err(error),
                Ok(Written { answers, enqueued }) => {
                    tracing::debug!(
                        clicks = answers.len(),
                        enqueued,
                        took_ms = started.elapsed().as_secs_f64() * 1e3,
                        "decision batch written"
                    );
                    // Waking the outbox for nothing would cost the writer a claim: under a
                    // platform's pause most batches only count on cards already waiting.
                    if enqueued {
                        self.outbox_wakeup.notify_one();
                    }
                    for (answer, platform) in answers.iter().zip(platforms) {
                        if let Ok(reply) = answer {
                            count(platform, reply.as_ref());
                        }
                    }
                    return Ok(answers);
                }
            }
        }
        Err(last_conflict.unwrap_or_else(|| StorageError::conflict("decisions kept conflicting")))
    }
}

/// What a batch's write answers, and whether it gave the outbox something new to deliver.
struct Written {
    answers: Vec<Answer>,
    enqueued: bool,
}

/// One request of a batch: as read, then kept current as its clicks are decided.
struct OnRequest {
    request: ApprovalRequest,
    snapshot: RequestSnapshot,
    /// Its card has a waiting edit from this batch.
    card_marked: bool,
}

/// Decides and stores `clicks`, in order, in the caller's write. A click on a request that
/// cannot be read (gone, an unreadable policy) is answered with that error alone.
async fn decide_all(
    opening: Opening<'_>,
    config: &Config,
    policies: &PolicyCache,
    clicks: &[Click],
    now: DateTime<Utc>,
) -> Result<Written, StorageError> {
    let people: Vec<Option<&PersonName>> = clicks
        .iter()
        .map(|click| config.person_on(click.actor.platform, &click.actor.user_id))
        .collect();
    let (
        BatchRead {
            fresh,
            mut on_requests,
            waiting_edits,
        },
        mut open,
    ) = read_batch(opening, config, policies, clicks, &people, now).await?;

    let mut rows = DecisionRows::default();
    let mut cards = Vec::new();
    let mut enqueued = false;
    let mut answers = Vec::with_capacity(clicks.len());
    for ((click, person), fresh) in clicks.iter().zip(&people).zip(fresh) {
        if !fresh {
            answers.push(Ok(None));
            continue;
        }
        let on = match on_requests.get_mut(&click.request_id) {
            Some(Ok(on)) => on,
            Some(Err(error)) => {
                answers.push(Err(error.for_another_caller()));
                continue;
            }
            None => {
                let what = format!("approval request {}", click.request_id);
                answers.push(Err(StorageError::not_found(what)));
                continue;
            }
        };
        let required = on.snapshot.policy.required_approvals;
        if !on.snapshot.approvals.complete
            && Approvals::names_needed(on.snapshot.approvals.count, required)
        {
            // One more approval completes the request, and its announcement names everyone.
            rows.store(open.conn()).await?;
            let everyone = decisions::approvers(open.conn(), click.request_id).await?;
            on.snapshot.approvals = Approvals::all(everyone.into_iter().collect());
        }
        let actor = Actor {
            person: person.cloned(),
            platform: click.actor.platform,
            platform_user_id: click.actor.user_id.clone(),
        };
        let decided = approval::decide(&on.snapshot, &actor, &click.verdict, now);
        let transition = approval::transition(&on.snapshot, &decided);
        // A click on a final request changes nothing; recording it would only be noise.
        if !matches!(&decided, Err(Refusal::Final { .. })) {
            rows.push(decision_row(click, *person, &decided, now));
        }
        if let (Ok(Decision::Counted { .. } | Decision::Approved { .. }), Some(person)) =
            (&decided, person)
        {
            on.snapshot.approvals.count += 1;
            on.snapshot.approvals.named.insert((*person).clone());
            *rows.new_approvers.entry(click.request_id).or_default() += 1;
        }
        let only_the_card = transition.change.is_none()
            && transition
                .effects
                .iter()
                .all(|effect| matches!(effect, Effect::UpdateCard));
        if only_the_card {
            // One waiting edit renders the card as it stands when delivered: one per batch,
            // all the batch's cards looked up together at the end.
            if !transition.effects.is_empty() && !on.card_marked {
                cards.push(click.request_id);
                on.card_marked = true;
            }
        } else {
            // A state change or a message: stored after the decisions before it, as one
            // click's write would.
            rows.store(open.conn()).await?;
            let request = on.request.clone();
            on.request =
                effects::apply_change(open.conn(), request, transition.change.as_ref(), now)
                    .await?;
            on.snapshot.state = on.request.state;
            let effects: Vec<Effect> = transition
                .effects
                .into_iter()
                .filter(|effect| !(on.card_marked && matches!(effect, Effect::UpdateCard)))
                .collect();
            on.card_marked |= effects.contains(&Effect::UpdateCard);
            let actor_label = click.actor.name(*person);
            let context = Context {
                config,
                request: &on.request,
                actor: &actor_label,
                reply_to: &click.actor.reply_to,
                now,
            };
            effects::enqueue_effects(open.conn(), &context, &effects).await?;
            enqueued |= !effects.is_empty();
        }
        answers.push(Ok(Some(match decided {
            Ok(decision) => DecisionReply::Accepted(accepted_text(&decision)),
            Err(refusal) => DecisionReply::Refused(refusal),
        })));
    }
    let cards: Vec<_> = cards
        .iter()
        .filter_map(|id| match on_requests.get(id) {
            Some(Ok(on)) => Some((&on.request.app, CardKey::Approval(*id))),
            _ => None,
        })
        .collect();
    let edits = effects::card_edit_items(config, &cards, &waiting_edits, now);
    enqueued |= !edits.is_empty();
    // The write's last statements: on SQLite its COMMIT goes with them.
    decisions::finish_batch(open, &rows.rows, &rows.new_approvers, &edits).await?;
    Ok(Written { answers, enqueued })
}

/// What a batch reads before deciding.
struct BatchRead {
    /// For each click, whether it is its delivery's first (a click without a delivery id
    /// always is; of two clicks with one id in a batch, the first).
    fresh: Vec<bool>,
    on_requests: HashMap<i64, Result<OnRequest, StorageError>>,
    /// The requests' cards that have an edit waiting, by platform.
    waiting_edits: HashSet<(Platform, CardKey)>,
}

/// Records the clicks' deliveries and reads every request they are on, with what their
/// decisions depend on and which of their cards have an edit waiting: one round trip whatever
/// the number of requests.
///
/// They are the write's first statements, sent with the `BEGIN` of its transaction; the
/// open transaction comes back for the rest of the write.
async fn read_batch<'c>(
    opening: Opening<'c>,
    config: &Config,
    policies: &PolicyCache,
    clicks: &[Click],
    people: &[Option<&PersonName>],
    now: DateTime<Utc>,
) -> Result<(BatchRead, Open<'c>), StorageError> {
    let deliveries: Vec<(&str, &str)> = clicks
        .iter()
        .filter_map(|click| click.delivery.as_ref())
        .map(|delivery| (delivery.source, delivery.id.as_str()))
        .collect();
    let mut ids: Vec<i64> = clicks.iter().map(|click| click.request_id).collect();
    ids.sort_unstable();
    ids.dedup();
    // Who among the clickers approved before, asked before knowing which requests still need
    // it, so that every read goes in the one round trip.
    let asked: HashSet<(i64, &PersonName)> = clicks
        .iter()
        .zip(people)
        .filter_map(|(click, person)| Some((click.request_id, (*person)?)))
        .collect();
    let asked: Vec<(i64, &PersonName)> = asked.into_iter().collect();
    let cards: Vec<CardKey> = ids.iter().map(|id| CardKey::Approval(*id)).collect();
    let edits = effects::card_edits(&cards);
    let (mut reading, mut open) =
        decisions::read_for_batch(opening, &deliveries, &ids, &asked, &edits.items, now).await?;
    let waiting_edits = edits
        .cards
        .into_iter()
        .zip(&reading.waiting_edits)
        .filter_map(|(card, waiting)| waiting.then_some(card))
        .collect();
    let fresh = clicks
        .iter()
        .map(|click| match &click.delivery {
            None => true,
            Some(delivery) => reading
                .first_seen
                .remove(&(delivery.source.to_owned(), delivery.id.clone())),
        })
        .collect();

    let mut on_requests = HashMap::with_capacity(ids.len());
    for id in ids {
        let (Some(request), Some(context)) =
            (reading.requests.remove(&id), reading.contexts.remove(&id))
        else {
            continue;
        };
        let policy = match policies.get(open.conn(), &request).await {
            Ok(policy) => policy,
            // This request's policy alone is unreadable: only its clicks fail.
            Err(error @ StorageError::Invalid { .. }) => {
                on_requests.insert(id, Err(error));
                continue;
            }
            Err(error) => return Err(error),
        };
        let approvals = load_approvals(open.conn(), &request, Reading::DecisionBy(None)).await?;
        let snapshot = snapshot_from(config, &request, &policy, context, approvals);
        on_requests.insert(
            id,
            Ok(OnRequest {
                request,
                snapshot,
                card_marked: false,
            }),
        );
    }
    for (id, person) in reading.approved {
        if let Some(Ok(on)) = on_requests.get_mut(&id) {
            // A complete snapshot already names everyone.
            if !on.snapshot.approvals.complete {
                on.snapshot.approvals.named.insert(person);
            }
        }
    }
    Ok((
        BatchRead {
            fresh,
            on_requests,
            waiting_edits,
        },
        open,
    ))
}

fn decision_row(
    click: &Click,
    person: Option<&PersonName>,
    decided: &Result<Decision, Refusal>,
    now: DateTime<Utc>,
) -> NewDecision {
    let comment = match &click.verdict {
        Verdict::Reject { reason } => Some(reason.trim().to_owned()).filter(|r| !r.is_empty()),
        Verdict::Approve => None,
    };
    NewDecision {
        request_id: click.request_id,
        person: person.cloned(),
        platform: click.actor.platform,
        platform_user: click.actor.user_id.clone(),
        verdict: click.verdict.word(),
        comment,
        refused_reason: decided.as_ref().err().map(|r| r.as_str().to_owned()),
        at: now,
    }
}

/// Decision rows not yet stored, and how many of them are a person's first counted approval
/// on each request.
#[derive(Default)]
struct DecisionRows {
    rows: Vec<NewDecision>,
    new_approvers: BTreeMap<i64, u32>,
}

impl DecisionRows {
    fn push(&mut self, row: NewDecision) {
        self.rows.push(row);
    }

    /// Stores what is pending in one statement (and the counts in another).
    async fn store(&mut self, conn: &mut AnyConnection) -> Result<(), StorageError> {
        decisions::record_decision_batch(conn, &self.rows, &self.new_approvers).await?;
        self.rows.clear();
        self.new_approvers.clear();
        Ok(())
    }
}
