use greenlight_commands::{ApprovalState, DecisionVerdict, PersonName, Platform};
use greenlight_storage::{approvals, decisions, ApprovalTransition, NewDecision, StorageError};

use crate::approvals::{ended, new_request};
use crate::support::{at, each_backend, release};

fn click(
    request_id: i64,
    person: Option<&str>,
    platform: Platform,
    verdict: DecisionVerdict,
) -> NewDecision {
    NewDecision {
        request_id,
        person: person.map(|p| PersonName::parse(p).expect("person")),
        platform,
        platform_user: format!("{platform}-user-{}", person.unwrap_or("stranger")),
        verdict,
        comment: None,
        refused_reason: None,
        at: at(400),
    }
}

#[tokio::test]
async fn decisions_count_people_once_and_keep_refusals() {
    each_backend(|storage| async move {
        let release = release(&storage, "shop", 1, at(0)).await;
        let request = storage
            .insert_approval_request(new_request(release.id, "production"))
            .await
            .expect("request");

        let alice_slack = storage
            .record_decision(click(
                request.id,
                Some("alice"),
                Platform::Slack,
                DecisionVerdict::Approve,
            ))
            .await
            .expect("alice on slack");
        assert_eq!(alice_slack.refused_reason, None);
        assert_eq!(alice_slack.decided_at, at(400));
        storage
            .record_decision(click(
                request.id,
                Some("alice"),
                Platform::Discord,
                DecisionVerdict::Approve,
            ))
            .await
            .expect("alice on discord");

        let mut stranger = click(request.id, None, Platform::Slack, DecisionVerdict::Approve);
        stranger.refused_reason = Some("not in [people]".to_owned());
        let refused = storage
            .record_decision(stranger)
            .await
            .expect("refusal recorded");
        assert_eq!(refused.person, None);
        assert_eq!(refused.refused_reason.as_deref(), Some("not in [people]"));

        let mut author = click(
            request.id,
            Some("bob"),
            Platform::Discord,
            DecisionVerdict::Approve,
        );
        author.refused_reason = Some("self-review".to_owned());
        storage
            .record_decision(author)
            .await
            .expect("self-review recorded");

        let people = storage.approvers(request.id).await.expect("approvers");
        assert_eq!(people, vec![PersonName::parse("alice").expect("alice")]);
        assert_eq!(storage.decisions(request.id).await.expect("all").len(), 4);
        // The request keeps the count the click path reads, without listing approvers:
        // alice twice (two platforms) and two refusals make one.
        let stored = storage.approval_request(request.id).await.expect("request");
        assert_eq!(stored.approvals_counted, 1);
        let mut conn = storage.reader().await.expect("reader");
        for (name, approved) in [("alice", true), ("bob", false), ("carol", false)] {
            let person = PersonName::parse(name).expect("person");
            assert_eq!(
                decisions::has_approved(&mut conn, request.id, &person)
                    .await
                    .expect("has approved"),
                approved,
                "{name}"
            );
        }

        // An unknown user's click can only be a refusal.
        let err = storage
            .record_decision(click(
                request.id,
                None,
                Platform::Slack,
                DecisionVerdict::Reject,
            ))
            .await
            .expect_err("must be refused");
        assert!(matches!(err, StorageError::Invalid { .. }), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn decisions_after_the_outcome_are_conflicts_but_refusals_are_kept() {
    each_backend(|storage| async move {
        let release = release(&storage, "shop", 1, at(0)).await;
        let request = storage
            .insert_approval_request(new_request(release.id, "production"))
            .await
            .expect("request");
        let mut reject = click(
            request.id,
            Some("carol"),
            Platform::Discord,
            DecisionVerdict::Reject,
        );
        reject.comment = Some("breaks checkout".to_owned());
        let decision = storage.record_decision(reject).await.expect("reject");
        assert_eq!(decision.comment.as_deref(), Some("breaks checkout"));
        storage
            .transition_approval_request(request.id, ended(ApprovalState::Rejected, 401))
            .await
            .expect("rejected");

        let err = storage
            .record_decision(click(
                request.id,
                Some("alice"),
                Platform::Slack,
                DecisionVerdict::Approve,
            ))
            .await
            .expect_err("must be refused");
        assert!(err.is_conflict(), "{err:?}");
        assert!(err.to_string().contains("rejected"), "{err}");

        let mut late = click(
            request.id,
            Some("alice"),
            Platform::Slack,
            DecisionVerdict::Approve,
        );
        late.refused_reason = Some("request already rejected".to_owned());
        storage
            .record_decision(late)
            .await
            .expect("late refusal recorded");
        assert_eq!(storage.decisions(request.id).await.expect("all").len(), 2);

        let err = storage
            .record_decision(click(
                777_777,
                Some("alice"),
                Platform::Slack,
                DecisionVerdict::Approve,
            ))
            .await
            .expect_err("must be refused");
        assert!(err.is_not_found(), "{err:?}");
    })
    .await;
}

/// Many reviewers approve at once on several connections (several replicas on PostgreSQL):
/// each decider locks the request first, so every decider sees the approvals committed before
/// it and exactly one of them ends the request.
#[tokio::test]
async fn concurrent_deciders_take_turns_and_exactly_one_approves() {
    each_backend(|storage| async move {
        let release = release(&storage, "shop", 1, at(0)).await;
        let request = storage
            .insert_approval_request(new_request(release.id, "production"))
            .await
            .expect("request");
        let deciders = (0..16).map(|n| {
            let storage = storage.clone();
            async move {
                storage
                    .write(move |conn| {
                        Box::pin(async move {
                            approvals::lock_waiting_request(conn, request.id).await?;
                            let person = format!("reviewer{n}");
                            decisions::record_decision(
                                conn,
                                &click(
                                    request.id,
                                    Some(&person),
                                    Platform::Slack,
                                    DecisionVerdict::Approve,
                                ),
                            )
                            .await?;
                            // The count kept with the request, as the click path reads it.
                            let count = approvals::get_approval_request(conn, request.id)
                                .await?
                                .approvals_counted;
                            if count >= 2 {
                                let change = ApprovalTransition {
                                    to: ApprovalState::Approved,
                                    comment: None,
                                    at: at(500),
                                };
                                approvals::transition_approval_request(conn, request.id, &change)
                                    .await?;
                                return Ok(true);
                            }
                            Ok(false)
                        })
                    })
                    .await
            }
        });
        let outcomes = futures::future::join_all(deciders).await;
        let approved = outcomes.iter().filter(|o| matches!(o, Ok(true))).count();
        let counted = outcomes.iter().filter(|o| matches!(o, Ok(false))).count();
        let late = outcomes
            .iter()
            .filter(|o| matches!(o, Err(error) if error.is_conflict()))
            .count();
        assert_eq!(approved, 1, "{outcomes:?}");
        assert_eq!(
            counted, 1,
            "exactly one approval before the deciding one: {outcomes:?}"
        );
        assert_eq!(late, 14, "{outcomes:?}");
        let ended = storage.approval_request(request.id).await.expect("request");
        assert_eq!(ended.state, ApprovalState::Approved);
        assert_eq!(
            storage
                .approvers(request.id)
                .await
                .expect("approvers")
                .len(),
            2
        );
    })
    .await;
}

/// A batch of clicks over several requests reads everything it decides with in one call: the
/// deliveries seen for the first time (a repeat within the batch or a redelivery is not), the
/// requests whether or not they still wait, their contexts, and exactly the asked pairs that
/// approved before. Its rows and counts are then stored per request.
#[tokio::test]
async fn a_batch_over_several_requests_reads_and_records_each_request_apart() {
    each_backend(|storage| async move {
        let shop = release(&storage, "shop", 1, at(0)).await;
        let cart = release(&storage, "cart", 1, at(0)).await;
        let waiting = storage
            .insert_approval_request(new_request(shop.id, "production"))
            .await
            .expect("shop request");
        let other = storage
            .insert_approval_request(new_request(cart.id, "production"))
            .await
            .expect("cart request");
        storage
            .record_decision(click(
                waiting.id,
                Some("alice"),
                Platform::Slack,
                DecisionVerdict::Approve,
            ))
            .await
            .expect("alice approved the shop before");
        storage
            .transition_approval_request(other.id, ended(ApprovalState::Rejected, 450))
            .await
            .expect("cart rejected");
        storage
            .record_webhook_delivery("slack", "seen-before", at(100))
            .await
            .expect("an earlier delivery");
        // The shop's card has an edit waiting on Slack; the cart's has none.
        let card = |id: i64| serde_json::json!({"card": format!("approval:{id}")});
        storage
            .enqueue_outbox(greenlight_storage::NewOutboxItem {
                kind: "slack.update_card".to_owned(),
                idempotency_key: "edit-shop".to_owned(),
                payload: card(waiting.id),
                at: at(200),
                not_before: None,
            })
            .await
            .expect("an edit waiting");
        let edits: Vec<(String, serde_json::Value)> = [
            ("slack.update_card", card(waiting.id)),
            ("discord.update_card", card(waiting.id)),
            ("slack.update_card", card(other.id)),
        ]
        .into_iter()
        .map(|(kind, payload)| (kind.to_owned(), payload))
        .collect();

        let (waiting_id, other_id) = (waiting.id, other.id);
        let reading = storage
            .write_opening(move |opening| {
                Box::pin(async move {
                    let alice = PersonName::parse("alice").expect("alice");
                    let bob = PersonName::parse("bob").expect("bob");
                    decisions::read_for_batch(
                        opening,
                        &[("slack", "new"), ("slack", "seen-before"), ("slack", "new")],
                        &[waiting_id, other_id, 999_999],
                        // Alice approved the shop, not the cart; Bob approved nothing.
                        &[(waiting_id, &alice), (other_id, &alice), (waiting_id, &bob)],
                        &edits,
                        at(500),
                    )
                    .await
                    .map(|(reading, _)| reading)
                })
            })
            .await
            .expect("batch read");
        let first_seen: Vec<_> = reading.first_seen.iter().cloned().collect();
        assert_eq!(first_seen, vec![("slack".to_owned(), "new".to_owned())]);
        assert_eq!(reading.requests.len(), 2, "the unknown id is not there");
        assert_eq!(reading.requests[&waiting.id].state, ApprovalState::Waiting);
        assert_eq!(reading.requests[&other.id].state, ApprovalState::Rejected);
        assert_eq!(reading.contexts.len(), 2);
        assert_eq!(reading.contexts[&waiting.id].lock_reason, None);
        let approved: Vec<_> = reading.approved.iter().cloned().collect();
        assert_eq!(
            approved,
            vec![(waiting.id, PersonName::parse("alice").expect("alice"))]
        );
        assert_eq!(reading.waiting_edits, vec![true, false, false]);

        let rows = vec![
            click(
                waiting.id,
                Some("bob"),
                Platform::Slack,
                DecisionVerdict::Approve,
            ),
            click(
                other.id,
                Some("carol"),
                Platform::Discord,
                DecisionVerdict::Approve,
            ),
            click(
                waiting.id,
                Some("dave"),
                Platform::Slack,
                DecisionVerdict::Approve,
            ),
        ];
        let counts = std::collections::BTreeMap::from([(waiting.id, 2), (other.id, 1)]);
        storage
            .write(move |conn| {
                Box::pin(
                    async move { decisions::record_decision_batch(conn, &rows, &counts).await },
                )
            })
            .await
            .expect("batch recorded");
        let shop_approvers = storage.approvers(waiting.id).await.expect("approvers");
        assert_eq!(shop_approvers.len(), 3, "{shop_approvers:?}");
        let shop_now = storage.approval_request(waiting.id).await.expect("shop");
        assert_eq!(shop_now.approvals_counted, 3);
        let cart_now = storage.approval_request(other.id).await.expect("cart");
        assert_eq!(cart_now.approvals_counted, 1);
        let cart_decisions = storage.decisions(other.id).await.expect("cart decisions");
        assert_eq!(cart_decisions.len(), 1);
        assert_eq!(cart_decisions[0].platform, Platform::Discord);
    })
    .await;
}

/// Concurrent batches over the same requests, named in opposite orders, take turns on the
/// requests (PostgreSQL: row locks taken in id order, so no deadlock) and each counts what
/// the ones before it committed.
#[tokio::test]
async fn concurrent_batches_over_the_same_requests_take_turns() {
    each_backend(|storage| async move {
        let mut ids = Vec::new();
        for app in ["shop", "cart", "blog"] {
            let release = release(&storage, app, 1, at(0)).await;
            let request = storage
                .insert_approval_request(new_request(release.id, "production"))
                .await
                .expect("request");
            ids.push(request.id);
        }
        let batches = (0..8).map(|n| {
            let storage = storage.clone();
            let mut ids = ids.clone();
            if n % 2 == 1 {
                ids.reverse();
            }
            async move {
                storage
                    .write_opening(move |opening| {
                        Box::pin(async move {
                            let (reading, mut open) =
                                decisions::read_for_batch(opening, &[], &ids, &[], &[], at(500))
                                    .await?;
                            let person = format!("reviewer{n}");
                            let rows: Vec<NewDecision> = ids
                                .iter()
                                .map(|id| {
                                    click(
                                        *id,
                                        Some(&person),
                                        Platform::Slack,
                                        DecisionVerdict::Approve,
                                    )
                                })
                                .collect();
                            let counts = ids.iter().map(|id| (*id, 1)).collect();
                            decisions::record_decision_batch(open.conn(), &rows, &counts).await?;
                            // What this batch saw before it added its own.
                            Ok(ids
                                .iter()
                                .map(|id| reading.requests[id].approvals_counted)
                                .collect::<Vec<_>>())
                        })
                    })
                    .await
            }
        });
        let seen = futures::future::join_all(batches).await;
        let mut first_request_counts: Vec<u32> = seen
            .iter()
            .map(|outcome| {
                *outcome
                    .as_ref()
                    .expect("batch")
                    .iter()
                    .min()
                    .expect("counts")
            })
            .collect();
        first_request_counts.sort_unstable();
        // Each batch saw a distinct number of earlier batches: none read a stale count.
        for request in &ids {
            let now = storage.approval_request(*request).await.expect("request");
            assert_eq!(now.approvals_counted, 8);
        }
        let mut distinct = first_request_counts.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), 8, "{seen:?}");
    })
    .await;
}

/// A batch ends with its decisions, counts and card edits as its last statements (on SQLite
/// with the COMMIT): all of them are kept together, or, when one is refused, none.
#[tokio::test]
async fn a_batch_finishes_with_its_decisions_counts_and_card_edits_together() {
    each_backend(|storage| async move {
        let shop = release(&storage, "shop", 1, at(0)).await;
        let request = storage
            .insert_approval_request(new_request(shop.id, "production"))
            .await
            .expect("request");
        let id = request.id;
        let edit = |key: &str| greenlight_storage::NewOutboxItem {
            kind: "slack.update_card".to_owned(),
            idempotency_key: key.to_owned(),
            payload: serde_json::json!({"card": format!("approval:{id}")}),
            at: at(500),
            not_before: None,
        };
        let finish = |rows: Vec<NewDecision>, items: Vec<greenlight_storage::NewOutboxItem>| {
            let storage = storage.clone();
            async move {
                storage
                    .write_opening(move |opening| {
                        Box::pin(async move {
                            let (_, open) =
                                decisions::read_for_batch(opening, &[], &[id], &[], &[], at(500))
                                    .await?;
                            let counts = std::collections::BTreeMap::from([(id, 1)]);
                            decisions::finish_batch(open, &rows, &counts, &items).await
                        })
                    })
                    .await
            }
        };

        // A stranger's decision cannot count: refused before anything is sent, nothing kept.
        let stranger = click(id, None, Platform::Slack, DecisionVerdict::Approve);
        let err = finish(vec![stranger], vec![edit("edit-0")])
            .await
            .expect_err("refused");
        assert!(matches!(err, StorageError::Invalid { .. }), "{err:?}");
        assert!(storage.decisions(id).await.expect("decisions").is_empty());

        let bob = click(id, Some("bob"), Platform::Slack, DecisionVerdict::Approve);
        finish(vec![bob], vec![edit("edit-1")])
            .await
            .expect("finished");
        assert_eq!(storage.decisions(id).await.expect("decisions").len(), 1);
        let now = storage.approval_request(id).await.expect("request");
        assert_eq!(now.approvals_counted, 1);
        let pending = storage.outbox_counts().await.expect("outbox").pending;
        assert_eq!(pending, 1, "the card edit is stored with the decision");

        // The same edit again (its idempotency key) keeps the first; the next write is whole.
        let carol = click(id, Some("carol"), Platform::Slack, DecisionVerdict::Approve);
        finish(vec![carol], vec![edit("edit-1")])
            .await
            .expect("finished");
        assert_eq!(storage.outbox_counts().await.expect("outbox").pending, 1);
        let now = storage.approval_request(id).await.expect("request");
        assert_eq!(now.approvals_counted, 2);
    })
    .await;
}
