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
