use std::collections::HashSet;

use greenlight_storage::outbox::enqueue_outbox;
use greenlight_storage::{
    NewOutboxItem, OutboxCounts, OutboxDeferral, OutboxItem, OutboxRetry, OutboxState, StorageError,
};
use serde_json::json;

use crate::audit::entry;
use crate::support::{at, each_backend};

fn item(key: &str, secs: i64) -> NewOutboxItem {
    NewOutboxItem {
        kind: "slack.post".to_owned(),
        idempotency_key: key.to_owned(),
        payload: json!({"channel": "C0DEPLOYS", "text": key}),
        at: at(secs),
        not_before: None,
    }
}

#[tokio::test]
async fn enqueue_is_idempotent_per_key() {
    each_backend(|storage| async move {
        let first = storage
            .enqueue_outbox(item("post:1", 0))
            .await
            .expect("first");
        assert!(first.is_created());
        let created = first.get();
        assert_eq!((created.state, created.attempts), (OutboxState::Pending, 0));
        assert_eq!(created.payload["text"], "post:1");
        assert_eq!(created.next_attempt_at, at(0));

        let mut changed = item("post:1", 5);
        changed.payload = json!({"other": true});
        let again = storage.enqueue_outbox(changed).await.expect("again");
        assert!(!again.is_created());
        assert_eq!(again.get(), created);
        assert_eq!(
            storage.outbox_counts().await.expect("counts"),
            OutboxCounts {
                pending: 1,
                dead: 0
            }
        );
    })
    .await;
}

#[tokio::test]
async fn leases_keep_two_workers_from_one_item() {
    each_backend(|storage| async move {
        storage.enqueue_outbox(item("a", 0)).await.expect("a");
        storage.enqueue_outbox(item("b", 1)).await.expect("b");
        let mut later = item("c", 0);
        later.not_before = Some(at(100));
        storage.enqueue_outbox(later).await.expect("c");

        let claimed = storage
            .claim_due_outbox("w1", at(10), at(40), 10)
            .await
            .expect("claim");
        assert_eq!(
            claimed
                .iter()
                .map(|i| i.idempotency_key.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(claimed
            .iter()
            .all(|i| i.attempts == 1 && i.leased_by.as_deref() == Some("w1")));
        assert!(
            storage
                .claim_due_outbox("w2", at(20), at(50), 10)
                .await
                .expect("second")
                .is_empty(),
            "leased items are not handed out again"
        );
        assert_eq!(storage.next_outbox_due().await.expect("next"), Some(at(40)));

        // w1 dies; after the lease w2 gets both, and w1's late report is fenced off.
        let retaken = storage
            .claim_due_outbox("w2", at(41), at(70), 10)
            .await
            .expect("retake");
        assert_eq!(retaken.len(), 2);
        assert!(retaken.iter().all(|i| i.attempts == 2));
        let a = &claimed[0];
        let err = storage
            .mark_outbox_failed(a.id, a.attempts, "timeout", OutboxRetry::At(at(60)))
            .await
            .expect_err("must be refused");
        assert!(err.is_conflict(), "{err:?}");

        let delivered = storage
            .mark_outbox_delivered(a.id, at(45))
            .await
            .expect("delivered");
        assert_eq!(
            (delivered.state, delivered.delivered_at),
            (OutboxState::Delivered, Some(at(45)))
        );
        let twice = storage
            .mark_outbox_delivered(a.id, at(46))
            .await
            .expect("idempotent");
        assert_eq!(twice.delivered_at, Some(at(45)));

        let c = storage
            .claim_due_outbox("w2", at(100), at(130), 10)
            .await
            .expect("c due");
        assert_eq!(
            c.iter()
                .map(|i| i.idempotency_key.as_str())
                .collect::<Vec<_>>(),
            ["b", "c"]
        );
    })
    .await;
}

#[tokio::test]
async fn failures_retry_then_die() {
    each_backend(|storage| async move {
        let created = storage
            .enqueue_outbox(item("deploy:7", 0))
            .await
            .expect("enqueue")
            .into_inner();
        let first = storage
            .claim_due_outbox("w", at(0), at(30), 1)
            .await
            .expect("claim")
            .remove(0);
        let retried = storage
            .mark_outbox_failed(
                first.id,
                first.attempts,
                "429 Retry-After: 20",
                OutboxRetry::At(at(20)),
            )
            .await
            .expect("retry");
        assert_eq!(retried.state, OutboxState::Pending);
        assert_eq!(retried.next_attempt_at, at(20));
        assert_eq!(retried.leased_by, None);
        assert_eq!(retried.last_error.as_deref(), Some("429 Retry-After: 20"));
        assert!(storage
            .claim_due_outbox("w", at(19), at(49), 1)
            .await
            .expect("not yet")
            .is_empty());

        let second = storage
            .claim_due_outbox("w", at(20), at(50), 1)
            .await
            .expect("again")
            .remove(0);
        assert_eq!(second.attempts, 2);
        let dead = storage
            .mark_outbox_failed(second.id, second.attempts, "500", OutboxRetry::Never)
            .await
            .expect("dead");
        assert_eq!(dead.state, OutboxState::Dead);
        assert_eq!(
            storage.outbox_counts().await.expect("counts"),
            OutboxCounts {
                pending: 0,
                dead: 1
            }
        );
        assert!(storage
            .claim_due_outbox("w", at(1_000), at(1_030), 10)
            .await
            .expect("none")
            .is_empty());
        assert_eq!(
            storage.dead_outbox_items(10).await.expect("dead list")[0].id,
            created.id
        );
        let err = storage
            .mark_outbox_delivered(created.id, at(60))
            .await
            .expect_err("must be refused");
        assert!(err.is_conflict(), "{err:?}");
        let err = storage
            .mark_outbox_delivered(987_654, at(60))
            .await
            .expect_err("must be refused");
        assert!(err.is_not_found(), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn concurrent_workers_never_share_an_item() {
    each_backend(|storage| async move {
        for n in 0..40 {
            storage
                .enqueue_outbox(item(&format!("k{n}"), n))
                .await
                .expect("enqueue");
        }
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let storage = storage.clone();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let batch = storage
                            .claim_due_outbox(&format!("w{w}"), at(100), at(200), 3)
                            .await
                            .expect("claim");
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch.into_iter().map(|i| i.id));
                    }
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for worker in workers {
            for id in worker.await.expect("worker") {
                assert!(seen.insert(id), "item {id} was claimed twice");
            }
        }
        assert_eq!(seen.len(), 40);
    })
    .await;
}

#[tokio::test]
async fn outbox_items_commit_or_vanish_with_their_write() {
    each_backend(|storage| async move {
        let err = storage
            .write(|conn| {
                Box::pin(async move {
                    greenlight_storage::audit::append_audit(conn, &entry(Some("shop"), None, 1))
                        .await?;
                    enqueue_outbox(conn, &item("effect:1", 1)).await?;
                    Err::<(), _>(StorageError::conflict("lost the race"))
                })
            })
            .await
            .expect_err("must be refused");
        assert!(err.is_conflict());
        assert_eq!(storage.outbox_counts().await.expect("counts").pending, 0);

        storage
            .write(|conn| {
                Box::pin(async move {
                    greenlight_storage::audit::append_audit(conn, &entry(Some("shop"), None, 2))
                        .await?;
                    enqueue_outbox(conn, &item("effect:2", 2)).await
                })
            })
            .await
            .expect("committed");
        assert_eq!(storage.outbox_counts().await.expect("counts").pending, 1);
    })
    .await;
}

/// What `unclaimed_pending_outbox` finds for an edit `due` then, read in a write as the engine
/// does.
async fn unclaimed(
    storage: &greenlight_storage::Storage,
    payload: serde_json::Value,
    due: greenlight_storage::Due,
) -> Option<i64> {
    storage
        .write(move |conn| {
            Box::pin(async move {
                greenlight_storage::outbox::unclaimed_pending_outbox(
                    conn,
                    "slack.update_card",
                    &payload,
                    due,
                )
                .await
            })
        })
        .await
        .expect("look-up")
        .map(|item| item.id)
}

#[tokio::test]
async fn a_waiting_edit_is_found_until_a_worker_holds_or_delivers_it() {
    use greenlight_storage::Due::{NotBefore, Now};
    each_backend(|storage| async move {
        let card = json!({"card": "approval:42"});
        let edit = |key: &str, not_before: Option<i64>| {
            let mut edit = item(key, 0);
            edit.kind = "slack.update_card".to_owned();
            edit.payload = card.clone();
            edit.not_before = not_before.map(at);
            edit
        };
        let id = storage
            .enqueue_outbox(edit("edit:1", None))
            .await
            .expect("edit")
            .into_inner()
            .id;
        assert_eq!(
            unclaimed(&storage, card.clone(), Now(at(0))).await,
            Some(id)
        );
        assert_eq!(
            unclaimed(&storage, json!({"card": "approval:7"}), Now(at(0))).await,
            None
        );
        // An edit due now does not stand for one scheduled later (the window opening).
        assert_eq!(
            unclaimed(&storage, card.clone(), NotBefore(at(30))).await,
            None
        );

        // Held by a worker: it may have rendered already, so it does not stand for a new edit.
        let claimed = storage
            .claim_due_outbox("w", at(0), at(30), 10)
            .await
            .expect("claim")
            .remove(0);
        assert_eq!(unclaimed(&storage, card.clone(), Now(at(1))).await, None);

        // Released after a 429: it renders afresh at its next attempt, so it serves an edit
        // now (the platform makes every edit wait) and one scheduled up to that attempt...
        storage
            .mark_outbox_failed(claimed.id, claimed.attempts, "429", OutboxRetry::At(at(60)))
            .await
            .expect("retry");
        assert_eq!(
            unclaimed(&storage, card.clone(), Now(at(2))).await,
            Some(id)
        );
        assert_eq!(
            unclaimed(&storage, card.clone(), NotBefore(at(60))).await,
            Some(id)
        );
        // ...but not one scheduled after it, which must not be shown early.
        assert_eq!(
            unclaimed(&storage, card.clone(), NotBefore(at(61))).await,
            None
        );

        let again = storage
            .claim_due_outbox("w", at(60), at(90), 10)
            .await
            .expect("claim again")
            .remove(0);
        storage
            .mark_outbox_delivered(again.id, at(61))
            .await
            .expect("delivered");
        assert_eq!(unclaimed(&storage, card.clone(), Now(at(100))).await, None);

        // A refresh scheduled for later does not stand for an edit due now.
        let later = storage
            .enqueue_outbox(edit("edit:2", Some(200)))
            .await
            .expect("scheduled")
            .into_inner()
            .id;
        assert_eq!(unclaimed(&storage, card.clone(), Now(at(100))).await, None);
        assert_eq!(
            unclaimed(&storage, card, NotBefore(at(150))).await,
            Some(later)
        );
    })
    .await;
}

#[tokio::test]
async fn a_deferred_claim_uses_no_attempt_and_still_fences_late_reports() {
    use greenlight_storage::Due::{NotBefore, Now};
    each_backend(|storage| async move {
        let card = json!({"card": "approval:42"});
        let mut edit = item("edit:1", 0);
        edit.kind = "slack.update_card".to_owned();
        edit.payload = card.clone();
        let id = storage
            .enqueue_outbox(edit)
            .await
            .expect("edit")
            .into_inner()
            .id;

        // The platform has paused the call: the item waits for the pause, attempts unchanged.
        let mut claim = storage
            .claim_due_outbox("w", at(0), at(30), 10)
            .await
            .expect("claim")
            .remove(0);
        for round in 1..=5u32 {
            assert_eq!((claim.attempts, claim.claim()), (1, round));
            let deferred = storage
                .mark_outbox_deferred(
                    id,
                    claim.claim(),
                    "chat.update paused",
                    at(60 * i64::from(round)),
                )
                .await
                .expect("deferred");
            assert_eq!(
                (deferred.state, deferred.attempts, deferred.deferrals),
                (OutboxState::Pending, 0, round)
            );
            assert_eq!(deferred.next_attempt_at, at(60 * i64::from(round)));
            assert_eq!(deferred.leased_by, None);
            assert_eq!(deferred.last_error.as_deref(), Some("chat.update paused"));
            // Waiting for a pause, it stands for an edit due now, but not for a refresh
            // scheduled after the pause ends.
            assert_eq!(
                unclaimed(&storage, card.clone(), Now(at(1))).await,
                Some(id)
            );
            assert_eq!(
                unclaimed(
                    &storage,
                    card.clone(),
                    NotBefore(at(60 * i64::from(round) + 1))
                )
                .await,
                None
            );
            assert!(storage
                .claim_due_outbox("w", at(60 * i64::from(round) - 1), at(600), 10)
                .await
                .expect("not yet")
                .is_empty());
            let stale = claim.claim();
            claim = storage
                .claim_due_outbox(
                    "w",
                    at(60 * i64::from(round)),
                    at(60 * i64::from(round) + 30),
                    10,
                )
                .await
                .expect("claim again")
                .remove(0);
            // A report of an earlier claim changes nothing, deferral or failure.
            let err = storage
                .mark_outbox_deferred(id, stale, "late", at(999))
                .await
                .expect_err("fenced");
            assert!(err.is_conflict(), "{err:?}");
            let err = storage
                .mark_outbox_failed(id, stale, "late", OutboxRetry::Never)
                .await
                .expect_err("fenced");
            assert!(err.is_conflict(), "{err:?}");
        }

        // A real failure uses the attempt; the retry budget counts only those.
        let failed = storage
            .mark_outbox_failed(id, claim.claim(), "500", OutboxRetry::At(at(400)))
            .await
            .expect("failed");
        assert_eq!((failed.attempts, failed.deferrals), (1, 5));
        let claim = storage
            .claim_due_outbox("w", at(400), at(430), 10)
            .await
            .expect("claim")
            .remove(0);
        assert_eq!((claim.attempts, claim.claim()), (2, 7));
        let delivered = storage
            .mark_outbox_delivered(id, at(401))
            .await
            .expect("delivered");
        assert_eq!(delivered.state, OutboxState::Delivered);
        let err = storage
            .mark_outbox_deferred(id, claim.claim(), "too late", at(500))
            .await
            .expect_err("delivered items are not deferred");
        assert!(err.is_conflict(), "{err:?}");
        let err = storage
            .mark_outbox_deferred(987_654, 1, "none", at(500))
            .await
            .expect_err("no such item");
        assert!(err.is_not_found(), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn deferrals_recorded_together_keep_each_claim_fenced() {
    each_backend(|storage| async move {
        let mut ids = Vec::new();
        for n in 0..4 {
            ids.push(
                storage
                    .enqueue_outbox(item(&format!("edit:{n}"), 0))
                    .await
                    .expect("enqueue")
                    .into_inner()
                    .id,
            );
        }
        let claims = storage
            .claim_due_outbox("w", at(0), at(30), 10)
            .await
            .expect("claim");
        assert_eq!(claims.len(), 4);
        let deferral = |item: &OutboxItem, claim: u32, until: i64, reason: &str| OutboxDeferral {
            id: item.id,
            claim,
            reason: reason.to_owned(),
            until: at(until),
        };
        // Two pauses among the first three; the fourth is reported with a claim it never had.
        let deferrals = vec![
            deferral(&claims[0], claims[0].claim(), 60, "chat.update paused"),
            deferral(&claims[1], claims[1].claim(), 90, "chat.postMessage paused"),
            deferral(&claims[2], claims[2].claim(), 60, "chat.update paused"),
            deferral(&claims[3], claims[3].claim() + 1, 60, "chat.update paused"),
        ];
        let results = storage
            .mark_outbox_deferrals(deferrals)
            .await
            .expect("one write");
        assert_eq!(results.len(), 4);
        for (result, (until, reason)) in results.iter().zip([
            (60, "chat.update paused"),
            (90, "chat.postMessage paused"),
            (60, "chat.update paused"),
        ]) {
            let item = result.as_ref().expect("recorded");
            assert_eq!(
                (item.attempts, item.deferrals, item.next_attempt_at),
                (0, 1, at(until))
            );
            assert_eq!(item.last_error.as_deref(), Some(reason));
            assert_eq!(item.leased_by, None);
        }
        let err = results[3].as_ref().expect_err("a claim it never had");
        assert!(err.is_conflict(), "{err:?}");
        // The fenced one is untouched: still leased, its attempt still counted.
        let untouched = storage.outbox_item(ids[3]).await.expect("item");
        assert_eq!(
            (
                untouched.attempts,
                untouched.deferrals,
                untouched.leased_by.as_deref()
            ),
            (1, 0, Some("w"))
        );
        assert!(storage
            .mark_outbox_deferrals(Vec::new())
            .await
            .expect("nothing to record")
            .is_empty());
    })
    .await;
}
