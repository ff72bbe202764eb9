use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::TimeZone;
use greenlight_storage::{NewOutboxItem, OutboxState};

use super::*;

/// Answers deliveries from a script, then succeeds; records what it was asked to deliver.
#[derive(Default)]
struct Scripted {
    answers: Mutex<VecDeque<Result<(), DeliveryError>>>,
    seen: Mutex<Vec<(i64, u32)>>,
}

impl Scripted {
    fn with(answers: Vec<Result<(), DeliveryError>>) -> Arc<Self> {
        Arc::new(Self {
            answers: Mutex::new(answers.into()),
            seen: Mutex::default(),
        })
    }

    fn seen(&self) -> Vec<(i64, u32)> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Deliverer for Scripted {
    fn deliver<'a>(&'a self, item: &'a OutboxItem) -> BoxFuture<'a, Result<(), DeliveryError>> {
        self.seen
            .lock()
            .expect("lock")
            .push((item.id, item.attempts));
        let answer = self
            .answers
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or(Ok(()));
        Box::pin(async move { answer })
    }
}

struct Fixture {
    storage: Storage,
    clock: Clock,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("outbox.db").display());
    let storage = Storage::connect(&url).await.expect("open");
    storage.migrate().await.expect("migrate");
    let clock = Clock::manual(
        Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
            .single()
            .expect("time"),
    );
    Fixture {
        storage,
        clock,
        _dir: dir,
    }
}

async fn enqueue(fixture: &Fixture, kind: &str, key: &str) -> i64 {
    fixture
        .storage
        .enqueue_outbox(NewOutboxItem {
            kind: kind.to_owned(),
            idempotency_key: key.to_owned(),
            payload: serde_json::json!({"text": key}),
            at: fixture.clock.now(),
            not_before: None,
        })
        .await
        .expect("enqueue")
        .into_inner()
        .id
}

fn worker(fixture: &Fixture, deliverer: Arc<Scripted>) -> OutboxWorker {
    OutboxWorker::new(
        fixture.storage.clone(),
        fixture.clock.clone(),
        RetryPolicy::default(),
    )
    .with_deliverer("slack", deliverer)
}

#[tokio::test]
async fn retry_after_is_honoured_then_the_item_is_delivered_once() {
    let fixture = fixture().await;
    let deliverer = Scripted::with(vec![
        Err(DeliveryError::Retry {
            after: Some(Duration::from_secs(30)),
            reason: "429 Too Many Requests".into(),
        }),
        Err(DeliveryError::retry("500 Internal Server Error")),
    ]);
    let worker = worker(&fixture, deliverer.clone());
    let id = enqueue(&fixture, "slack.post", "card-1").await;

    assert_eq!(worker.run_once().await.expect("pass").retried, 1);
    // Not before Retry-After has passed.
    fixture.clock.advance(chrono::Duration::seconds(29));
    assert_eq!(
        worker.run_once().await.expect("pass"),
        PassSummary::default()
    );
    fixture.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(worker.run_once().await.expect("pass").retried, 1);
    // Exponential backoff after the 500: the second failure waits at least 2 s.
    fixture.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(
        worker.run_once().await.expect("pass"),
        PassSummary::default()
    );
    fixture.clock.advance(chrono::Duration::seconds(10));
    assert_eq!(worker.run_once().await.expect("pass").delivered, 1);

    assert_eq!(deliverer.seen(), vec![(id, 1), (id, 2), (id, 3)]);
    let item = fixture.storage.outbox_item(id).await.expect("item");
    assert_eq!(item.state, OutboxState::Delivered);
    // Nothing is delivered twice.
    fixture.clock.advance(chrono::Duration::hours(1));
    assert_eq!(
        worker.run_once().await.expect("pass"),
        PassSummary::default()
    );
}

#[tokio::test]
async fn permanent_failures_and_unknown_kinds_are_given_up_on() {
    let fixture = fixture().await;
    let deliverer = Scripted::with(vec![Err(DeliveryError::Permanent(
        "channel_not_found".into(),
    ))]);
    let worker = worker(&fixture, deliverer);
    let refused = enqueue(&fixture, "slack.post", "card-1").await;
    let unknown = enqueue(&fixture, "pager.page", "page-1").await;
    let summary = worker.run_once().await.expect("pass");
    assert_eq!(summary.dead, 2);
    for id in [refused, unknown] {
        let item = fixture.storage.outbox_item(id).await.expect("item");
        assert_eq!(item.state, OutboxState::Dead);
        assert!(item.last_error.is_some());
    }
}

#[tokio::test]
async fn an_item_leased_by_a_crashed_worker_is_delivered_after_the_lease() {
    let fixture = fixture().await;
    let id = enqueue(&fixture, "slack.post", "card-1").await;
    // A worker claims the item and dies without answering.
    let lease = RetryPolicy::default().lease;
    let now = fixture.clock.now();
    let claimed = fixture
        .storage
        .claim_due_outbox("crashed", now, now + span(lease), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);

    let deliverer = Scripted::with(vec![]);
    let survivor = worker(&fixture, deliverer.clone());
    assert_eq!(
        survivor.run_once().await.expect("pass"),
        PassSummary::default()
    );
    fixture
        .clock
        .advance(span(lease) + chrono::Duration::seconds(1));
    assert_eq!(survivor.run_once().await.expect("pass").delivered, 1);
    assert_eq!(deliverer.seen(), vec![(id, 2)]);
}

/// Delivers only once told to, so a delivery can outlast its lease.
#[derive(Default)]
struct Held {
    started: Notify,
    release: Notify,
    seen: Mutex<Vec<i64>>,
}

impl Deliverer for Held {
    fn deliver<'a>(&'a self, item: &'a OutboxItem) -> BoxFuture<'a, Result<(), DeliveryError>> {
        self.seen.lock().expect("lock").push(item.id);
        Box::pin(async move {
            self.started.notify_one();
            self.release.notified().await;
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_delivery_slower_than_the_lease_keeps_its_item_by_renewing_the_lease() {
    let fixture = fixture().await;
    let id = enqueue(&fixture, "slack.post", "card-1").await;
    let policy = RetryPolicy {
        lease: Duration::from_secs(3),
        ..RetryPolicy::default()
    };
    let held = Arc::new(Held::default());
    let slow = OutboxWorker::new(fixture.storage.clone(), fixture.clock.clone(), policy)
        .with_deliverer("slack", held.clone());
    let pass = tokio::spawn({
        let slow = slow.clone();
        async move { slow.run_once().await }
    });
    held.started.notified().await;
    let first_lease = fixture.storage.outbox_item(id).await.expect("item");

    // The delivery takes longer than the lease; the worker renews it meanwhile.
    fixture.clock.advance(chrono::Duration::seconds(10));
    let renewed = loop {
        let item = fixture.storage.outbox_item(id).await.expect("item");
        if item.next_attempt_at > first_lease.next_attempt_at {
            break item;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(renewed.leased_by.as_deref(), Some(slow.name()));
    assert!(renewed.next_attempt_at > fixture.clock.now());

    let other = worker(&fixture, Scripted::with(vec![]));
    assert_eq!(
        other.run_once().await.expect("pass"),
        PassSummary::default(),
        "another worker must not take a renewed item"
    );
    held.release.notify_one();
    let summary = pass.await.expect("task").expect("pass");
    assert_eq!(summary.delivered, 1);
    assert_eq!(*held.seen.lock().expect("lock"), vec![id]);
    let item = fixture.storage.outbox_item(id).await.expect("item");
    assert_eq!(item.state, OutboxState::Delivered);
    assert_eq!(item.leased_by, None);
}

#[tokio::test]
async fn two_workers_never_deliver_the_same_item() {
    let fixture = fixture().await;
    for n in 0..40 {
        enqueue(&fixture, "slack.post", &format!("card-{n}")).await;
    }
    let deliverer = Scripted::with(vec![]);
    let a = worker(&fixture, deliverer.clone());
    let b = worker(&fixture, deliverer.clone());
    let (x, y) = tokio::join!(a.run_once(), b.run_once());
    let (x, y) = (x.expect("pass"), y.expect("pass"));
    let more = a.run_once().await.expect("pass");
    assert_eq!(x.delivered + y.delivered + more.delivered, 40);
    let mut ids: Vec<i64> = deliverer.seen().into_iter().map(|(id, _)| id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40, "every item exactly once");
    assert_eq!(deliverer.seen().len(), 40);
}

#[tokio::test]
async fn pauses_longer_than_the_retry_budget_never_make_an_item_dead() {
    let fixture = fixture().await;
    let policy = RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::default()
    };
    let pause = chrono::Duration::minutes(10);
    let mut answers: Vec<Result<(), DeliveryError>> = (1..=6)
        .map(|n| {
            Err(DeliveryError::Deferred {
                until: fixture.clock.now() + pause * n,
                reason: "chat.update paused".into(),
            })
        })
        .collect();
    // One real failure uses one of the two attempts; the pauses used none.
    answers.push(Err(DeliveryError::retry("503 Service Unavailable")));
    let deliverer = Scripted::with(answers);
    let worker = OutboxWorker::new(fixture.storage.clone(), fixture.clock.clone(), policy)
        .with_deliverer("slack", deliverer.clone());
    let id = enqueue(&fixture, "slack.update_card", "edit-1").await;

    for round in 1..=6u32 {
        let summary = worker.run_once().await.expect("pass");
        assert_eq!(
            summary,
            PassSummary {
                deferred: 1,
                ..PassSummary::default()
            }
        );
        let item = fixture.storage.outbox_item(id).await.expect("item");
        assert_eq!(
            (item.state, item.attempts, item.deferrals),
            (OutboxState::Pending, 0, round)
        );
        // Not before the pause ends.
        fixture.clock.advance(pause - chrono::Duration::seconds(1));
        assert_eq!(worker.run_once().await.expect("pass").claimed(), 0);
        fixture.clock.advance(chrono::Duration::seconds(1));
    }
    assert_eq!(worker.run_once().await.expect("pass").retried, 1);
    fixture.clock.advance(chrono::Duration::minutes(1));
    assert_eq!(worker.run_once().await.expect("pass").delivered, 1);
    let item = fixture.storage.outbox_item(id).await.expect("item");
    assert_eq!(
        (item.state, item.attempts, item.deferrals),
        (OutboxState::Delivered, 2, 6)
    );
    // Every claim the deliverer saw carried the attempt it was on, pauses not counted.
    let attempts: Vec<u32> = deliverer.seen().into_iter().map(|(_, n)| n).collect();
    assert_eq!(attempts, [1, 1, 1, 1, 1, 1, 1, 2]);
}

#[tokio::test]
async fn a_pass_records_its_deferrals_in_one_write_beside_the_other_outcomes() {
    let fixture = fixture().await;
    let pause_end = fixture.clock.now() + chrono::Duration::seconds(60);
    let paused = || {
        Err(DeliveryError::Deferred {
            until: pause_end,
            reason: "chat.update paused".into(),
        })
    };
    // Ten items: the first delivered, the second failing, the other eight deferred.
    let mut answers = vec![Ok(()), Err(DeliveryError::retry("503"))];
    answers.extend((0..8).map(|_| paused()));
    let deliverer = Scripted::with(answers);
    let worker = worker(&fixture, deliverer.clone());
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(enqueue(&fixture, "slack.update_card", &format!("edit-{n}")).await);
    }
    let before = fixture.storage.write_stats().writes;

    let summary = worker.run_once().await.expect("pass");

    assert_eq!(
        summary,
        PassSummary {
            delivered: 1,
            retried: 1,
            dead: 0,
            deferred: 8,
        }
    );
    // The claim, one write per delivered or failed item, and one for all eight deferrals.
    assert_eq!(fixture.storage.write_stats().writes - before, 4);
    for id in &ids[2..] {
        let item = fixture.storage.outbox_item(*id).await.expect("item");
        assert_eq!(
            (
                item.state,
                item.attempts,
                item.deferrals,
                item.next_attempt_at
            ),
            (OutboxState::Pending, 0, 1, pause_end)
        );
        assert_eq!(item.leased_by, None);
        assert_eq!(item.last_error.as_deref(), Some("chat.update paused"));
    }
    let failed = fixture.storage.outbox_item(ids[1]).await.expect("item");
    assert_eq!((failed.attempts, failed.deferrals), (1, 0));
    let delivered = fixture.storage.outbox_item(ids[0]).await.expect("item");
    assert_eq!(delivered.state, OutboxState::Delivered);
}

#[test]
fn backoff_grows_caps_and_gives_up() {
    let policy = RetryPolicy::default();
    let now = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("time");
    let delay = |attempt| match policy.next_attempt(0, attempt, None, now) {
        OutboxRetry::At(at) => (at - now).num_seconds(),
        OutboxRetry::Never => -1,
    };
    assert_eq!(delay(1), 2);
    assert_eq!(delay(2), 4);
    assert_eq!(delay(5), 32);
    assert_eq!(delay(30), 300, "capped at max_delay");
    assert_eq!(delay(policy.max_attempts), -1);
    match policy.next_attempt(0, 1, Some(Duration::from_secs(90)), now) {
        OutboxRetry::At(at) => assert_eq!((at - now).num_seconds(), 90),
        OutboxRetry::Never => panic!("gave up"),
    }
}
