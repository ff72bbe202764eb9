use greenlight_commands::ApprovalState;
use greenlight_storage::{ApprovalSource, ApprovalTransition, NewApprovalRequest, StorageError};
use serde_json::json;

use crate::support::{app, at, each_backend, env, release};

pub fn new_request(release_id: i64, environment: &str) -> NewApprovalRequest {
    NewApprovalRequest {
        release_id,
        environment: env(environment),
        source: ApprovalSource::Ci,
        policy: json!({"reviewers": ["group:sre", "carol"], "required_approvals": 2}),
        required_approvals: 2,
        opens_at: at(300),
        expires_at: at(86_400),
        next_reminder_at: Some(at(7_200)),
        at: at(0),
    }
}

pub fn ended(to: ApprovalState, secs: i64) -> ApprovalTransition {
    ApprovalTransition {
        to,
        comment: Some(format!("{to} by test")),
        at: at(secs),
    }
}

#[tokio::test]
async fn approval_request_round_trips() {
    each_backend(|storage| async move {
        let release = release(&storage, "shop", 1, at(0)).await;
        let request = storage
            .insert_approval_request(new_request(release.id, "production"))
            .await
            .expect("insert");
        assert_eq!(request.state, ApprovalState::Waiting);
        assert_eq!(request.sha, release.sha);
        assert_eq!(request.source, ApprovalSource::Ci);
        let policy = storage.approval_policy(request.id).await.expect("policy");
        assert_eq!(policy["reviewers"][1], "carol");
        assert_eq!(request.approvals_counted, 0);
        assert_eq!(request.required_approvals, 2);
        assert_eq!(
            (request.opens_at, request.expires_at),
            (at(300), at(86_400))
        );
        assert_eq!(request.next_reminder_at, Some(at(7_200)));
        assert_eq!(
            storage
                .waiting_approval_request(&app("shop"), &env("production"))
                .await
                .expect("waiting"),
            Some(request.clone())
        );
        assert_eq!(
            storage.approval_request(request.id).await.expect("by id"),
            request
        );
    })
    .await;
}

#[tokio::test]
async fn only_one_request_waits_per_environment() {
    each_backend(|storage| async move {
        let r1 = release(&storage, "shop", 1, at(0)).await;
        let r2 = release(&storage, "shop", 2, at(10)).await;
        let first = storage
            .insert_approval_request(new_request(r1.id, "production"))
            .await
            .expect("first");
        let err = storage
            .insert_approval_request(new_request(r2.id, "production"))
            .await
            .expect_err("must be refused");
        assert!(err.is_conflict(), "{err:?}");
        assert!(err.to_string().contains(&first.id.to_string()), "{err}");

        // Another environment or app is independent.
        storage
            .insert_approval_request(new_request(r2.id, "canary"))
            .await
            .expect("other env");

        // Superseding and opening the new one in one write.
        let (first_id, r2_id) = (first.id, r2.id);
        let opened = storage
            .write(move |conn| {
                Box::pin(async move {
                    greenlight_storage::approvals::transition_approval_request(
                        conn,
                        first_id,
                        &ended(ApprovalState::Superseded, 20),
                    )
                    .await?;
                    greenlight_storage::approvals::insert_approval_request(
                        conn,
                        &new_request(r2_id, "production"),
                    )
                    .await
                })
            })
            .await
            .expect("supersede and open");
        assert_eq!(opened.sha, r2.sha);
        let old = storage.approval_request(first.id).await.expect("old");
        assert_eq!(old.state, ApprovalState::Superseded);
        assert_eq!(old.decided_at, Some(at(20)));
        assert_eq!(old.next_reminder_at, None, "no reminders once final");
    })
    .await;
}

#[tokio::test]
async fn concurrent_outcomes_have_exactly_one_winner() {
    each_backend(|storage| async move {
        let release = release(&storage, "shop", 1, at(0)).await;
        let request = storage
            .insert_approval_request(new_request(release.id, "production"))
            .await
            .expect("insert");
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let storage = storage.clone();
                let to = if i % 2 == 0 {
                    ApprovalState::Approved
                } else {
                    ApprovalState::Rejected
                };
                tokio::spawn(async move {
                    storage
                        .transition_approval_request(request.id, ended(to, i))
                        .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.expect("task") {
                Ok(request) => winners.push(request.state),
                Err(StorageError::Conflict { .. }) => {}
                Err(other) => panic!("unexpected: {other}"),
            }
        }
        assert_eq!(winners.len(), 1);
        let stored = storage.approval_request(request.id).await.expect("read");
        assert_eq!(stored.state, winners[0]);
        assert_eq!(stored.version, 1);

        let err = storage
            .transition_approval_request(request.id, ended(ApprovalState::Waiting, 99))
            .await
            .expect_err("must be refused");
        assert!(matches!(err, StorageError::Invalid { .. }), "{err:?}");
        let err = storage
            .transition_approval_request(424_242, ended(ApprovalState::Expired, 99))
            .await
            .expect_err("must be refused");
        assert!(err.is_not_found(), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn timers_find_due_expirations_and_reminders() {
    each_backend(|storage| async move {
        let r1 = release(&storage, "shop", 1, at(0)).await;
        let r2 = release(&storage, "blog", 2, at(0)).await;
        let mut soon = new_request(r1.id, "production");
        soon.expires_at = at(1_000);
        soon.next_reminder_at = Some(at(500));
        let soon = storage.insert_approval_request(soon).await.expect("soon");
        let mut late = new_request(r2.id, "production");
        late.next_reminder_at = None;
        storage.insert_approval_request(late).await.expect("late");

        assert!(storage
            .due_expirations(at(999), 10)
            .await
            .expect("none")
            .is_empty());
        let due = storage.due_expirations(at(1_000), 10).await.expect("due");
        assert_eq!(due.iter().map(|r| r.id).collect::<Vec<_>>(), vec![soon.id]);
        let reminders = storage.due_reminders(at(600), 10).await.expect("reminders");
        assert_eq!(
            reminders.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![soon.id]
        );

        let id = soon.id;
        let moved = storage
            .write(move |conn| {
                Box::pin(greenlight_storage::approvals::set_next_reminder(
                    conn,
                    id,
                    Some(at(900)),
                    at(600),
                ))
            })
            .await
            .expect("next reminder");
        assert_eq!(moved.next_reminder_at, Some(at(900)));
        assert!(storage
            .due_reminders(at(600), 10)
            .await
            .expect("none")
            .is_empty());

        storage
            .transition_approval_request(id, ended(ApprovalState::Expired, 1_000))
            .await
            .expect("expire");
        assert!(storage
            .due_expirations(at(5_000), 10)
            .await
            .expect("none")
            .is_empty());
        let err = storage
            .write(move |conn| {
                Box::pin(greenlight_storage::approvals::set_next_reminder(
                    conn,
                    id,
                    None,
                    at(1_001),
                ))
            })
            .await
            .expect_err("must be refused");
        assert!(err.is_conflict(), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn the_latest_approved_request_is_found_per_environment() {
    each_backend(|storage| async move {
        let (shop, production) = (app("shop"), env("production"));
        let r1 = release(&storage, "shop", 1, at(0)).await;
        let r2 = release(&storage, "shop", 2, at(0)).await;
        assert_eq!(
            storage
                .latest_approved_request(&shop, &production)
                .await
                .expect("none yet"),
            None
        );
        let first = storage
            .insert_approval_request(new_request(r1.id, "production"))
            .await
            .expect("first");
        storage
            .transition_approval_request(first.id, ended(ApprovalState::Approved, 100))
            .await
            .expect("approve first");
        let second = storage
            .insert_approval_request(new_request(r2.id, "production"))
            .await
            .expect("second");
        let latest = storage
            .latest_approved_request(&shop, &production)
            .await
            .expect("latest");
        assert_eq!(
            latest.map(|r| r.id),
            Some(first.id),
            "a waiting one does not count"
        );
        storage
            .transition_approval_request(second.id, ended(ApprovalState::Approved, 200))
            .await
            .expect("approve second");
        let latest = storage
            .latest_approved_request(&shop, &production)
            .await
            .expect("latest");
        assert_eq!(latest.map(|r| r.id), Some(second.id));
        assert_eq!(
            storage
                .latest_approved_request(&shop, &env("staging"))
                .await
                .expect("other environment"),
            None
        );
    })
    .await;
}
