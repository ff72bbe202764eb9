//! Reviewers' clicks on one request decided together (SPEC §13: decisions at write speed).
//!
//! While one batch of a request's clicks is being written, the clicks that arrive queue behind
//! it and go into the next write together. The batch reads the request, its policy and what a
//! decision depends on once, decides every click in arrival order with the pure core against
//! that state (kept current in memory), and stores all the decision rows in one statement. A
//! hot card then costs the single writer a few statements per batch rather than a dozen per
//! click, and clicks on one request never conflict with each other, so nothing is retried.
//! Each click is answered only after the write holding it committed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use greenlight_commands::{
    approval, Actor, Approvals, Decision, Effect, PersonName, Refusal, Verdict,
};
use greenlight_storage::{
    approvals, decisions, deliveries, AnyConnection, NewDecision, StorageError,
};
use tokio::sync::{oneshot, watch};

use super::decisions::{accepted_text, count, ChatActor, DecisionReply, InboundDelivery};
use super::effects::{self, Context};
use super::snapshot::{snapshot_with, Reading};
use super::Engine;
use crate::cards::CardKey;
use crate::config::Config;
use crate::stored_policy::PolicyCache;

/// One reviewer's click, waiting for its batch.
#[derive(Debug, Clone)]
pub(super) struct Click {
    pub actor: ChatActor,
    pub verdict: Verdict,
    /// Recorded in the batch's write; a click whose delivery was seen before is answered
    /// `None` and changes nothing.
    pub delivery: Option<InboundDelivery>,
}

/// What a click is answered: its reply, or `None` for a redelivery.
type Answer = Result<Option<DecisionReply>, StorageError>;

/// A click waiting for its batch, and where its answer goes.
type Waiting = (Click, oneshot::Sender<Answer>);

/// The most clicks one write decides, so a batch's statement stays small (7 parameters a row).
const MAX_CLICKS: usize = 128;

/// How many times a batch is written again when another process decided on the request first
/// (PostgreSQL with several replicas); within one process a request's batches take turns.
const ATTEMPTS: usize = 8;

/// Clicks waiting per request. A request has an entry exactly while a runner is writing its
/// batches; the runner removes it when it finds nothing more to write.
#[derive(Debug)]
pub(crate) struct DecisionQueues {
    by_request: Mutex<HashMap<i64, Vec<Waiting>>>,
    /// Clicks queued over all requests, changed under the lock above; watchable, so a caller
    /// can wait for a backlog rather than poll for it.
    waiting: watch::Sender<usize>,
}

impl Default for DecisionQueues {
    fn default() -> Self {
        Self {
            by_request: Mutex::default(),
            waiting: watch::Sender::new(0),
        }
    }
}

impl DecisionQueues {
    /// Queues `click`; `true` when no runner is writing this request's batches, so the caller
    /// must start one.
    fn join(&self, request_id: i64, click: Click, answer: oneshot::Sender<Answer>) -> bool {
        let mut queues = self.lock();
        self.count_waiting(1, 0);
        match queues.get_mut(&request_id) {
            Some(queue) => {
                queue.push((click, answer));
                false
            }
            None => {
                queues.insert(request_id, vec![(click, answer)]);
                true
            }
        }
    }

    /// The next batch of the request's clicks; `None` (and the entry gone) when none wait.
    fn next_batch(&self, request_id: i64) -> Option<Vec<Waiting>> {
        let mut queues = self.lock();
        let queue = queues.get_mut(&request_id)?;
        if queue.is_empty() {
            queues.remove(&request_id);
            return None;
        }
        let take = queue.len().min(MAX_CLICKS);
        self.count_waiting(0, take);
        Some(queue.drain(..take).collect())
    }

    /// Adds `joined` and removes `left` clicks from the count (called under the lock).
    fn count_waiting(&self, joined: usize, left: usize) {
        self.waiting
            .send_modify(|waiting| *waiting = *waiting + joined - left);
        waiting_clicks().set(*self.waiting.borrow() as f64);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Vec<Waiting>>> {
        // Every change under the lock is a single push, drain or remove.
        self.by_request
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// `greenlight_decision_clicks_waiting`: clicks queued for their request's next batch.
fn waiting_clicks() -> metrics::Gauge {
    metrics::gauge!("greenlight_decision_clicks_waiting")
}

/// Removes a request's queue if its runner stops without emptying it (a panic, an abort):
/// the waiting clicks are then answered `Closed` instead of waiting forever, and the next
/// click starts a new runner.
struct RunnerGuard<'a> {
    queues: &'a DecisionQueues,
    request_id: i64,
    finished: bool,
}

impl Drop for RunnerGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let mut queues = self.queues.lock();
            if let Some(dropped) = queues.remove(&self.request_id) {
                self.queues.count_waiting(0, dropped.len());
            }
        }
    }
}

impl Engine {
    /// Clicks queued behind a batch being written, over all requests, as it changes.
    pub fn clicks_waiting(&self) -> watch::Receiver<usize> {
        self.decision_queues.waiting.subscribe()
    }

    /// Decides `click` on request `request_id` in the request's next batch.
    pub(super) async fn decide_in_batch(&self, request_id: i64, click: Click) -> Answer {
        let (answer, answered) = oneshot::channel();
        if self.decision_queues.join(request_id, click, answer) {
            // Its own task, so a caller that stops waiting (a dropped connection) cannot leave
            // the clicks queued behind it unanswered.
            let engine = self.clone();
            self.background.spawn("decision batches", async move {
                engine.write_batches(request_id).await;
            });
        }
        answered.await.map_err(|_| StorageError::Closed)?
    }

    /// Writes the request's batches one after another until no click waits.
    async fn write_batches(&self, request_id: i64) {
        let mut guard = RunnerGuard {
            queues: &self.decision_queues,
            request_id,
            finished: false,
        };
        while let Some(batch) = self.decision_queues.next_batch(request_id) {
            let (clicks, answers): (Vec<Click>, Vec<_>) = batch.into_iter().unzip();
            let platforms: Vec<_> = clicks.iter().map(|click| click.actor.platform).collect();
            let started = std::time::Instant::now();
            let written = self.write_batch(request_id, clicks).await;
            tracing::debug!(
                request_id,
                clicks = platforms.len(),
                took_ms = started.elapsed().as_secs_f64() * 1e3,
                "decision batch written"
            );
            match written {
                Ok(replies) => {
                    self.outbox_wakeup.notify_one();
                    for ((answer, reply), platform) in
                        answers.into_iter().zip(replies).zip(platforms)
                    {
                        count(platform, reply.as_ref());
                        // A caller that stopped waiting was decided all the same.
                        let _ = answer.send(Ok(reply));
                    }
                }
                Err(error) => {
                    for answer in answers {
                        let _ = answer.send(Err(error.for_another_caller()));
                    }
                }
            }
        }
        guard.finished = true;
    }

    async fn write_batch(
        &self,
        request_id: i64,
        clicks: Vec<Click>,
    ) -> Result<Vec<Option<DecisionReply>>, StorageError> {
        let clicks = Arc::new(clicks);
        let mut last_conflict = None;
        for _ in 0..ATTEMPTS {
            let now = self.clock.now();
            let config = Arc::clone(&self.config);
            let policies = Arc::clone(&self.policies);
            let clicks = Arc::clone(&clicks);
            let written = self
                .storage
                .write(move |conn| {
                    Box::pin(async move {
                        decide_all(conn, &config, &policies, request_id, &clicks, now).await
                    })
                })
                .await;
            match written {
                Err(error) if error.is_conflict() => last_conflict = Some(error),
                other => return other,
            }
        }
        Err(last_conflict.unwrap_or_else(|| StorageError::conflict("decisions kept conflicting")))
    }
}

/// Decides and stores `clicks` on request `request_id`, in order, in the caller's write.
async fn decide_all(
    conn: &mut AnyConnection,
    config: &Config,
    policies: &PolicyCache,
    request_id: i64,
    clicks: &[Click],
    now: DateTime<Utc>,
) -> Result<Vec<Option<DecisionReply>>, StorageError> {
    let fresh = first_deliveries(conn, clicks, now).await?;
    if !fresh.iter().any(|fresh| *fresh) {
        return Ok(vec![None; clicks.len()]);
    }
    // Locking the waiting request makes another process's deciders wait for this write; a
    // request that no longer waits is read as it is (its clicks are then refused).
    let mut request = match approvals::lock_waiting_request(conn, request_id).await {
        Err(error) if error.is_conflict() => {
            approvals::get_approval_request(conn, request_id).await?
        }
        locked => locked?,
    };
    let policy = policies.get(conn, &request).await?;
    let mut snapshot =
        snapshot_with(conn, config, &request, &policy, Reading::DecisionBy(None)).await?;
    let people: Vec<Option<&PersonName>> = clicks
        .iter()
        .map(|click| config.person_on(click.actor.platform, &click.actor.user_id))
        .collect();
    if !snapshot.approvals.complete {
        // Who among the batch approved before: one look-up for all of them.
        let asked: HashSet<&PersonName> = people.iter().flatten().copied().collect();
        let asked: Vec<&PersonName> = asked.into_iter().collect();
        let approved = decisions::approved_among(conn, request_id, &asked).await?;
        snapshot.approvals.named.extend(approved);
    }

    let mut rows = DecisionRows::new(request_id);
    let mut card_marked = false;
    let mut replies = Vec::with_capacity(clicks.len());
    for ((click, person), fresh) in clicks.iter().zip(&people).zip(fresh) {
        if !fresh {
            replies.push(None);
            continue;
        }
        let required = snapshot.policy.required_approvals;
        if !snapshot.approvals.complete
            && Approvals::names_needed(snapshot.approvals.count, required)
        {
            // One more approval completes the request, and its announcement names everyone.
            rows.store(conn).await?;
            let everyone = decisions::approvers(conn, request_id).await?;
            snapshot.approvals = Approvals::all(everyone.into_iter().collect());
        }
        let actor = Actor {
            person: person.cloned(),
            platform: click.actor.platform,
            platform_user_id: click.actor.user_id.clone(),
        };
        let decided = approval::decide(&snapshot, &actor, &click.verdict, now);
        let transition = approval::transition(&snapshot, &decided);
        // A click on a final request changes nothing; recording it would only be noise.
        if !matches!(&decided, Err(Refusal::Final { .. })) {
            rows.push(decision_row(request_id, click, *person, &decided, now));
        }
        if let (Ok(Decision::Counted { .. } | Decision::Approved { .. }), Some(person)) =
            (&decided, person)
        {
            snapshot.approvals.count += 1;
            snapshot.approvals.named.insert((*person).clone());
            rows.new_approvers += 1;
        }
        let only_the_card = transition.change.is_none()
            && transition
                .effects
                .iter()
                .all(|effect| matches!(effect, Effect::UpdateCard));
        if only_the_card {
            // One waiting edit renders the card as it stands when delivered: one per batch.
            if !transition.effects.is_empty() && !card_marked {
                let card = CardKey::Approval(request_id);
                effects::update_card_at(conn, config, &request.app, card, now, None).await?;
                card_marked = true;
            }
        } else {
            // A state change or a message: stored after the decisions before it, as one
            // click's write would.
            rows.store(conn).await?;
            request = effects::apply_change(conn, request, transition.change.as_ref(), now).await?;
            snapshot.state = request.state;
            let effects: Vec<Effect> = transition
                .effects
                .into_iter()
                .filter(|effect| !(card_marked && matches!(effect, Effect::UpdateCard)))
                .collect();
            card_marked |= effects.contains(&Effect::UpdateCard);
            let actor_label = click.actor.name(*person);
            let context = Context {
                config,
                request: &request,
                actor: &actor_label,
                reply_to: &click.actor.reply_to,
                now,
            };
            effects::enqueue_effects(conn, &context, &effects).await?;
        }
        replies.push(Some(match decided {
            Ok(decision) => DecisionReply::Accepted(accepted_text(&decision)),
            Err(refusal) => DecisionReply::Refused(refusal),
        }));
    }
    rows.store(conn).await?;
    Ok(replies)
}

/// Records the clicks' deliveries; for each click, whether it is the first delivery (a click
/// without a delivery id always is; of two clicks with one id in a batch, the first).
async fn first_deliveries(
    conn: &mut AnyConnection,
    clicks: &[Click],
    now: DateTime<Utc>,
) -> Result<Vec<bool>, StorageError> {
    let keys: Vec<(&str, &str)> = clicks
        .iter()
        .filter_map(|click| click.delivery.as_ref())
        .map(|delivery| (delivery.source, delivery.id.as_str()))
        .collect();
    let mut fresh = deliveries::record_webhook_deliveries(conn, &keys, now).await?;
    Ok(clicks
        .iter()
        .map(|click| match &click.delivery {
            None => true,
            Some(delivery) => fresh.remove(&(delivery.source.to_owned(), delivery.id.clone())),
        })
        .collect())
}

fn decision_row(
    request_id: i64,
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
        request_id,
        person: person.cloned(),
        platform: click.actor.platform,
        platform_user: click.actor.user_id.clone(),
        verdict: click.verdict.word(),
        comment,
        refused_reason: decided.as_ref().err().map(|r| r.as_str().to_owned()),
        at: now,
    }
}

/// Decision rows not yet stored, and how many of them are a person's first counted approval.
struct DecisionRows {
    request_id: i64,
    rows: Vec<NewDecision>,
    new_approvers: u32,
}

impl DecisionRows {
    fn new(request_id: i64) -> Self {
        Self {
            request_id,
            rows: Vec::new(),
            new_approvers: 0,
        }
    }

    fn push(&mut self, row: NewDecision) {
        self.rows.push(row);
    }

    /// Stores what is pending in one statement (and the count in another).
    async fn store(&mut self, conn: &mut AnyConnection) -> Result<(), StorageError> {
        decisions::record_decision_batch(conn, self.request_id, &self.rows, self.new_approvers)
            .await?;
        self.rows.clear();
        self.new_approvers = 0;
        Ok(())
    }
}
