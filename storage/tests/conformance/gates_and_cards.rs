use greenlight_commands::Platform;
use greenlight_storage::{GateAnswer, NewGithubGate, StorageError};

use crate::support::{app, at, each_backend, env, sha};

fn gate(url: &str) -> NewGithubGate {
    NewGithubGate {
        app: app("shop"),
        environment: env("production"),
        sha: sha(1),
        callback_url: url.to_owned(),
        installation_id: Some(4_200_000_001),
        github_environment: "Production".to_owned(),
        received_at: at(0),
        expires_at: at(86_400),
    }
}

#[tokio::test]
async fn github_gates_are_recorded_once_and_answered_once() {
    each_backend(|storage| async move {
        let first = storage
            .record_github_gate(gate("https://api.github.test/cb/1"))
            .await
            .expect("first");
        assert!(first.is_created());
        assert_eq!(
            first.get().installation_id,
            Some(4_200_000_001),
            "ids beyond i32 survive"
        );
        assert!(!storage
            .record_github_gate(gate("https://api.github.test/cb/1"))
            .await
            .expect("again")
            .is_created());
        storage
            .record_github_gate(gate("https://api.github.test/cb/2"))
            .await
            .expect("second job");

        let waiting = storage
            .waiting_github_gates(&app("shop"), &env("production"), &sha(1))
            .await
            .expect("waiting");
        assert_eq!(waiting.len(), 2);
        assert!(waiting.iter().all(|g| g.answer.is_none()));

        let id = first.get().id;
        let answered = storage
            .write(move |conn| {
                Box::pin(greenlight_storage::gates::answer_github_gate(
                    conn,
                    id,
                    GateAnswer::Rejected,
                    Some("staging smoke failed"),
                    at(10),
                ))
            })
            .await
            .expect("answer");
        assert_eq!(answered.answer, Some(GateAnswer::Rejected));
        assert_eq!(answered.comment.as_deref(), Some("staging smoke failed"));
        assert_eq!(storage.github_gate(id).await.expect("by id"), answered);
        assert!(storage
            .github_gate(id + 1000)
            .await
            .expect_err("no such gate")
            .is_not_found());
        let err = storage
            .write(move |conn| {
                Box::pin(greenlight_storage::gates::answer_github_gate(
                    conn,
                    id,
                    GateAnswer::Approved,
                    None,
                    at(11),
                ))
            })
            .await
            .expect_err("must be refused");
        assert!(err.is_conflict(), "{err:?}");
        assert_eq!(
            storage
                .due_github_gates(at(86_400), 10)
                .await
                .expect("due")
                .len(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn chat_messages_remember_where_cards_are() {
    each_backend(|storage| async move {
        let slack = storage
            .record_chat_message(
                "approval:1",
                Platform::Slack,
                "C0DEPLOYS",
                "1700000000.000100",
                at(0),
            )
            .await
            .expect("slack");
        storage
            .record_chat_message(
                "approval:1",
                Platform::Discord,
                "1100000000000000000",
                "1200000000000000001",
                at(1),
            )
            .await
            .expect("discord");
        let reposted = storage
            .record_chat_message(
                "approval:1",
                Platform::Slack,
                "C0DEPLOYS",
                "1700000000.000200",
                at(2),
            )
            .await
            .expect("repost");
        assert_eq!(reposted.id, slack.id);
        assert_eq!((reposted.created_at, reposted.updated_at), (at(0), at(2)));

        let messages = storage.chat_messages("approval:1").await.expect("list");
        assert_eq!(
            messages
                .iter()
                .map(|m| (m.platform, m.message_ref.as_str()))
                .collect::<Vec<_>>(),
            [
                (Platform::Slack, "1700000000.000200"),
                (Platform::Discord, "1200000000000000001")
            ]
        );
        let err = storage
            .record_chat_message("approval:1", Platform::Cli, "x", "y", at(3))
            .await
            .expect_err("must be refused");
        assert!(matches!(err, StorageError::Invalid { .. }), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn card_commits_are_stored_per_request_and_replaced() {
    use greenlight_storage::{CardCommit, CardCommits};
    each_backend(|storage| async move {
        let release = crate::support::release(&storage, "shop", 1, at(0)).await;
        let request = storage
            .insert_approval_request(crate::approvals::new_request(release.id, "production"))
            .await
            .expect("request");
        assert_eq!(storage.card_commits(request.id).await.expect("read"), None);
        let mut list = CardCommits {
            request_id: request.id,
            base_sha: sha(0).to_string(),
            total_commits: 5_000_000_000,
            commits: vec![CardCommit {
                sha: sha(1).to_string(),
                author: "Zoë <z@example>".to_owned(),
                title: "Fix \"quotes\" & émojis 🚀".to_owned(),
            }],
            fetched_at: at(5),
        };
        storage
            .record_card_commits(list.clone())
            .await
            .expect("store");
        assert_eq!(
            storage.card_commits(request.id).await.expect("read"),
            Some(list.clone())
        );
        list.total_commits = 2;
        list.commits.push(list.commits[0].clone());
        list.fetched_at = at(9);
        storage
            .record_card_commits(list.clone())
            .await
            .expect("again");
        assert_eq!(
            storage.card_commits(request.id).await.expect("read"),
            Some(list)
        );
        let orphan = CardCommits {
            request_id: request.id + 1000,
            base_sha: String::new(),
            total_commits: 0,
            commits: Vec::new(),
            fetched_at: at(0),
        };
        assert!(
            storage.record_card_commits(orphan).await.is_err(),
            "a list belongs to a request"
        );
    })
    .await;
}

#[tokio::test]
async fn a_decision_reads_the_author_lock_and_waiting_gates_in_one_look_up() {
    each_backend(|storage| async move {
        let release = crate::support::release(&storage, "shop", 1, at(0)).await;
        let request = storage
            .insert_approval_request(crate::approvals::new_request(release.id, "production"))
            .await
            .expect("request");
        let context = |storage: greenlight_storage::Storage, request| async move {
            let mut conn = storage.reader().await.expect("reader");
            greenlight_storage::approvals::decision_context(&mut conn, &request)
                .await
                .expect("context")
        };
        let plain = context(storage.clone(), request.clone()).await;
        assert_eq!(plain.author.as_deref(), Some("alice"));
        assert_eq!((plain.lock_reason, plain.github_gate), (None, false));

        storage
            .record_github_gate(gate("https://api.github.test/cb/1"))
            .await
            .expect("gate");
        storage
            .acquire_lock(greenlight_storage::NewLock {
                app: app("shop"),
                environment: env("production"),
                locked_by: "carol".to_owned(),
                reason: "db migration".to_owned(),
                automatic: false,
                at: at(10),
            })
            .await
            .expect("lock");
        let held = context(storage.clone(), request.clone()).await;
        assert_eq!(held.lock_reason.as_deref(), Some("db migration"));
        assert!(held.github_gate);

        // Another environment's lock and gate are not this request's.
        let staging = storage
            .insert_approval_request(crate::approvals::new_request(release.id, "staging"))
            .await
            .expect("staging request");
        let other = context(storage.clone(), staging).await;
        assert_eq!((other.lock_reason, other.github_gate), (None, false));
    })
    .await;
}
