//! The outbox worker: delivers effects that state changes wrote to the outbox (chat posts,
//! deploy triggers, GitHub callbacks), with retries, backoff and `Retry-After`, under a lease so
//! that two workers (or two replicas) never deliver the same item at once.
//!
//! Architecture invariant: nothing else in the bot talks to Slack, Discord, GitHub or a
//! deployer on behalf of a state change; each kind of effect has one `Deliverer`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use greenlight_storage::{OutboxDeferral, OutboxItem, OutboxRetry, Storage, StorageError};
use tokio::sync::{watch, Notify};

use crate::background::StopSignal;
use crate::clock::{span, Clock};
use crate::replica::Replica;

#[cfg(test)]
mod tests;

/// Why a delivery did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// Try again: the platform was down, slow or throttling. `after` is its `Retry-After`.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Trying again cannot help (refused by the platform, malformed item).
    Permanent(String),
    /// Not tried: the platform paused this call (for every item, not just this one) until
    /// `until`. The item waits for then without using one of its attempts, so pauses never
    /// make an item dead.
    Deferred {
        until: DateTime<Utc>,
        reason: String,
    },
}

impl DeliveryError {
    pub fn retry(reason: impl Into<String>) -> Self {
        Self::Retry {
            after: None,
            reason: reason.into(),
        }
    }
}

/// Delivers one kind of effect. Must be idempotent per item: a crash after the effect but
/// before `delivered` is recorded delivers it again, with the same idempotency key.
/// Reads an item's payload as the shape its `kind` stores; the error names the kind and what is
/// wrong, for a permanent failure of the item.
pub fn read_payload<T: serde::de::DeserializeOwned>(
    kind: &str,
    payload: &serde_json::Value,
) -> Result<T, String> {
    T::deserialize(payload).map_err(|error| format!("bad {kind} payload: {error}"))
}

pub trait Deliverer: Send + Sync + 'static {
    fn deliver<'a>(&'a self, item: &'a OutboxItem) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// How persistent the worker is.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// After this many failed attempts the item is given up on (`dead`).
    pub max_attempts: u32,
    /// How long a claimed item is ours without renewal; renewed every third of it while it is
    /// being delivered, so a slow delivery keeps it and a dead worker's items come due soon.
    pub lease: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(5 * 60),
            // With the caps above, about a day of trying: outages delay messages, lose none.
            max_attempts: 300,
            lease: crate::config::DatabaseConfig::DEFAULT_LEASE,
        }
    }
}

impl RetryPolicy {
    /// When to try again after failed attempt number `attempt` (1-based) of item `id`.
    /// `Retry-After` is honoured as a minimum; otherwise exponential backoff with a small
    /// per-item spread so a burst of failures does not retry in lockstep.
    pub fn next_attempt(
        &self,
        id: i64,
        attempt: u32,
        retry_after: Option<Duration>,
        now: DateTime<Utc>,
    ) -> OutboxRetry {
        if attempt >= self.max_attempts {
            return OutboxRetry::Never;
        }
        let exponential = self
            .first_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_delay);
        let spread = Duration::from_millis(id.unsigned_abs() % 7 * 100);
        let delay = match retry_after {
            Some(after) => after.max(Duration::from_millis(100)),
            None => exponential + spread,
        };
        OutboxRetry::At(now + span(delay))
    }
}

/// What one pass delivered, for tests and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassSummary {
    pub delivered: u32,
    pub retried: u32,
    pub dead: u32,
    /// Waiting for a platform's pause, attempts unchanged.
    pub deferred: u32,
}

impl PassSummary {
    /// Items this pass claimed.
    pub fn claimed(&self) -> u32 {
        self.delivered + self.retried + self.dead + self.deferred
    }
}

/// Claims due items and hands each to the deliverer of its kind (the part before the first
/// `.`, e.g. `slack` for `slack.post`).
#[derive(Clone)]
pub struct OutboxWorker {
    storage: Storage,
    clock: Clock,
    name: String,
    deliverers: Arc<HashMap<String, Arc<dyn Deliverer>>>,
    policy: RetryPolicy,
    wakeup: Arc<Notify>,
    /// Passes in progress, so callers can wait until nothing is in flight.
    in_flight: Arc<watch::Sender<usize>>,
    /// When the depth gauges were last set (wall time: they are only metrics).
    gauges_at: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// The replica this worker claims for, which counts what it holds.
    replica: Option<Replica>,
}

/// How many items one pass claims.
const BATCH: u32 = 32;
/// The longest the worker sleeps without looking, in case a wake-up was missed.
const MAX_IDLE: Duration = Duration::from_secs(5);
/// How stale the outbox depth gauges may get while nothing is delivered.
const GAUGES_EVERY: Duration = Duration::from_secs(5);

impl OutboxWorker {
    pub fn new(storage: Storage, clock: Clock, policy: RetryPolicy) -> Self {
        Self {
            storage,
            clock,
            name: format!("worker-{}", uuid::Uuid::new_v4()),
            deliverers: Arc::new(HashMap::new()),
            policy,
            wakeup: Arc::new(Notify::new()),
            in_flight: Arc::new(watch::channel(0).0),
            gauges_at: Arc::default(),
            replica: None,
        }
    }

    /// Claims in `replica`'s name and under its lease, and counts what it holds there.
    pub fn for_replica(mut self, replica: Replica) -> Self {
        self.name = replica.name().to_owned();
        self.policy.lease = replica.lease();
        self.replica = Some(replica);
        self
    }

    /// The name items are leased to (`outbox.leased_by`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Routes items of `kind` (e.g. `slack`) to `deliverer`.
    pub fn with_deliverer(mut self, kind: &str, deliverer: Arc<dyn Deliverer>) -> Self {
        Arc::make_mut(&mut self.deliverers).insert(kind.to_owned(), deliverer);
        self
    }

    /// Call after enqueueing, so delivery starts at once instead of at the next poll.
    pub fn wake(&self) {
        self.wakeup.notify_one();
    }

    pub fn wakeup_handle(&self) -> Arc<Notify> {
        self.wakeup.clone()
    }

    /// Resolves once no pass of this worker (or its clones) is delivering: what was claimed has
    /// been delivered or rescheduled. Tests use it before moving a manual clock.
    pub async fn idle(&self) {
        let mut passes = self.in_flight.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = passes.wait_for(|count| *count == 0).await;
    }

    /// Delivers everything due now. Tests call this to drive the outbox step by step.
    pub async fn run_once(&self) -> Result<PassSummary, StorageError> {
        self.in_flight.send_modify(|count| *count += 1);
        let _done = InFlight(&self.in_flight);
        let now = self.clock.now();
        let lease_until = now + span(self.policy.lease);
        let items = self
            .storage
            .claim_due_outbox(&self.name, now, lease_until, BATCH)
            .await?;
        let _held = self
            .replica
            .as_ref()
            .map(|replica| replica.hold_outbox_items(items.len()));
        let deliveries = futures::future::join_all(items.iter().map(|item| self.deliver_one(item)));
        let outcomes = if items.is_empty() {
            deliveries.await
        } else {
            self.renewing_leases(deliveries).await
        };
        let mut summary = PassSummary::default();
        let mut deferrals = Vec::new();
        for outcome in outcomes {
            match outcome? {
                Outcome::Delivered => summary.delivered += 1,
                Outcome::Retried => summary.retried += 1,
                Outcome::Dead => summary.dead += 1,
                Outcome::Deferred(deferral) => deferrals.push(deferral),
            }
        }
        summary.deferred = self.record_deferrals(&items, deferrals).await?;
        self.refresh_gauges(!items.is_empty()).await;
        Ok(summary)
    }

    /// Records the pass's deferrals in one write: when a platform pauses, every item of the
    /// pass that calls it defers at once, and a write each would compete with the decisions
    /// for the database. Returns how many were recorded; one whose claim was lost meanwhile
    /// is left as the new claim has it.
    async fn record_deferrals(
        &self,
        items: &[OutboxItem],
        deferrals: Vec<OutboxDeferral>,
    ) -> Result<u32, StorageError> {
        if deferrals.is_empty() {
            return Ok(0);
        }
        let results = self
            .storage
            .mark_outbox_deferrals(deferrals.clone())
            .await?;
        let mut recorded = 0;
        for (deferral, result) in deferrals.iter().zip(results) {
            let kind = items
                .iter()
                .find(|item| item.id == deferral.id)
                .map_or("", |item| item.kind.as_str());
            match result {
                Ok(_) => {
                    recorded += 1;
                    tracing::info!(item = deferral.id, kind, reason = %deferral.reason, retry_at = %deferral.until, "delivery deferred until the platform's pause ends");
                    metrics::counter!("greenlight_outbox_deliveries_total", "kind" => kind.to_owned(), "outcome" => "deferred").increment(1);
                }
                Err(error) => {
                    tracing::warn!(item = deferral.id, kind, %error, "deferral not recorded");
                }
            }
        }
        Ok(recorded)
    }

    /// Runs `deliveries`, renewing the leases of this worker's items every third of a lease
    /// until they are done: a slow platform call must not let another worker deliver the same
    /// item again.
    async fn renewing_leases<T>(&self, deliveries: impl Future<Output = T>) -> T {
        let every = self.policy.lease / 3;
        let mut renewals = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tokio::pin!(deliveries);
        loop {
            tokio::select! {
                outcomes = &mut deliveries => return outcomes,
                _ = renewals.tick() => {
                    let until = self.clock.now() + span(self.policy.lease);
                    if let Err(error) = self.storage.renew_outbox_leases(&self.name, until).await {
                        tracing::warn!(%error, worker = %self.name, "renewing outbox leases failed");
                    }
                }
            }
        }
    }

    /// Sets the outbox depth gauges after a pass that delivered something, else at most every
    /// `GAUGES_EVERY`: counting is a scan, and passes can follow each other closely.
    async fn refresh_gauges(&self, changed: bool) {
        {
            let mut last = self
                .gauges_at
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !changed && last.is_some_and(|at| at.elapsed() < GAUGES_EVERY) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        if let Ok(counts) = self.storage.outbox_counts().await {
            metrics::gauge!("greenlight_outbox_pending").set(counts.pending as f64);
            metrics::gauge!("greenlight_outbox_dead").set(counts.dead as f64);
        }
    }

    /// Runs until the app stops.
    pub async fn run(self, mut stop: StopSignal) {
        loop {
            let busy = match self.run_once().await {
                Ok(summary) => summary.claimed() >= BATCH,
                Err(error) => {
                    tracing::error!(%error, "outbox pass failed");
                    false
                }
            };
            if stop.is_stopping() {
                return;
            }
            if busy {
                continue;
            }
            let idle = match self.storage.next_outbox_due().await {
                Ok(Some(at)) => (at - self.clock.now()).to_std().unwrap_or_default(),
                _ => MAX_IDLE,
            }
            .min(MAX_IDLE);
            tokio::select! {
                () = stop.stopped() => return,
                () = self.wakeup.notified() => {}
                () = tokio::time::sleep(idle) => {}
            }
        }
    }

    async fn deliver_one(&self, item: &OutboxItem) -> Result<Outcome, StorageError> {
        let kind = item.kind.split('.').next().unwrap_or_default();
        let result = match self.deliverers.get(kind) {
            Some(deliverer) => deliverer.deliver(item).await,
            None => Err(DeliveryError::Permanent(format!(
                "no deliverer for {:?} (is that platform configured?)",
                item.kind
            ))),
        };
        let now = self.clock.now();
        let (outcome, label) = match result {
            Ok(()) => {
                self.storage.mark_outbox_delivered(item.id, now).await?;
                (Outcome::Delivered, "delivered")
            }
            Err(DeliveryError::Deferred { until, reason }) => {
                // Recorded with the pass's other deferrals, and counted then.
                return Ok(Outcome::Deferred(OutboxDeferral {
                    id: item.id,
                    claim: item.claim(),
                    reason,
                    until,
                }));
            }
            Err(DeliveryError::Retry { after, reason }) => {
                let retry = self.policy.next_attempt(item.id, item.attempts, after, now);
                self.fail(item, &reason, retry).await?
            }
            Err(DeliveryError::Permanent(reason)) => {
                self.fail(item, &reason, OutboxRetry::Never).await?
            }
        };
        metrics::counter!("greenlight_outbox_deliveries_total", "kind" => item.kind.clone(), "outcome" => label).increment(1);
        Ok(outcome)
    }

    /// Records a failed attempt: retried at `retry`, or dead.
    async fn fail(
        &self,
        item: &OutboxItem,
        reason: &str,
        retry: OutboxRetry,
    ) -> Result<(Outcome, &'static str), StorageError> {
        self.storage
            .mark_outbox_failed(item.id, item.claim(), reason, retry)
            .await?;
        Ok(match retry {
            OutboxRetry::At(at) => {
                tracing::warn!(item = item.id, kind = %item.kind, attempt = item.attempts, %reason, retry_at = %at, "delivery failed; will retry");
                (Outcome::Retried, "retried")
            }
            OutboxRetry::Never => {
                tracing::error!(item = item.id, kind = %item.kind, attempt = item.attempts, %reason, "delivery failed for good");
                (Outcome::Dead, "dead")
            }
        })
    }
}

/// Counts a pass as finished however it ends (error, panic, cancellation).
struct InFlight<'a>(&'a watch::Sender<usize>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|count| *count = count.saturating_sub(1));
    }
}

enum Outcome {
    Delivered,
    Retried,
    Dead,
    /// Not yet recorded: the pass records its deferrals together.
    Deferred(OutboxDeferral),
}
