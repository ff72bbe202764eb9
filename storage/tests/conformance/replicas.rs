//! Replicas (SPEC §11): a replica is alive while it renews; a command deploy belongs to the
//! replica that started it and is an orphan once that replica lapsed; outbox leases are renewed
//! only for the worker that holds them.

use chrono::Duration;
use greenlight_commands::DeploymentState;
use greenlight_storage::{replicas, NewOutboxItem, Storage};

use crate::deployments::new_deployment;
use crate::support::{at, each_backend, release};

/// A command deploy marked started (`deployer_ref`), run by `replica` when one is given.
async fn started_command(storage: &Storage, n: u32, replica: Option<&'static str>) -> i64 {
    let release = release(storage, "shop", n, at(0)).await;
    let mut new = new_deployment(release.id, "production", DeploymentState::Deploying);
    new.deployer = Some("command".to_owned());
    new.deployer_ref = Some("command started".to_owned());
    let deployment = storage.insert_deployment(new).await.expect("insert");
    if let Some(replica) = replica {
        let id = deployment.id;
        storage
            .write(move |conn| {
                Box::pin(
                    async move { replicas::record_command_run(conn, id, replica, at(1)).await },
                )
            })
            .await
            .expect("record the run");
    }
    deployment.id
}

#[tokio::test]
async fn a_command_deploy_is_orphaned_once_its_replica_stops_renewing() {
    each_backend(|storage| async move {
        storage
            .renew_replica("a", at(0), at(20))
            .await
            .expect("a joins");
        storage
            .renew_replica("b", at(0), at(20))
            .await
            .expect("b joins");
        // a renews throughout, so its deploy is never in the lists below.
        let _on_a = started_command(&storage, 1, Some("a")).await;
        let on_b = started_command(&storage, 2, Some("b")).await;
        let unknown = started_command(&storage, 3, None).await;
        // Both alive: only the deploy no replica claimed is nobody's.
        assert_eq!(
            storage
                .orphaned_command_deploys(at(10))
                .await
                .expect("orphans"),
            vec![(unknown, None)]
        );
        // a renews, b does not: b's lapses at 20 s.
        storage
            .renew_replica("a", at(0), at(40))
            .await
            .expect("a renews");
        assert_eq!(
            storage
                .orphaned_command_deploys(at(25))
                .await
                .expect("orphans"),
            vec![(on_b, Some("b".to_owned())), (unknown, None)]
        );
        let alive: Vec<String> = storage
            .live_replicas(at(25))
            .await
            .expect("live")
            .into_iter()
            .map(|replica| replica.name)
            .collect();
        assert_eq!(alive, vec!["a".to_owned()]);

        // A clean stop forgets a replica at once, and long-dead ones with it.
        storage
            .forget_replica("a", at(25) - Duration::seconds(1))
            .await
            .expect("a leaves");
        assert!(storage.live_replicas(at(0)).await.expect("live").is_empty());
    })
    .await;
}

#[tokio::test]
async fn only_the_holder_renews_an_outbox_lease() {
    each_backend(|storage| async move {
        let item = storage
            .enqueue_outbox(NewOutboxItem {
                kind: "slack.update_card".to_owned(),
                idempotency_key: "card-1".to_owned(),
                payload: serde_json::json!({}),
                at: at(0),
                not_before: None,
            })
            .await
            .expect("enqueue")
            .into_inner();
        let claimed = storage
            .claim_due_outbox("worker-a", at(1), at(21), 10)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1);

        assert_eq!(
            storage
                .renew_outbox_leases("worker-b", at(60))
                .await
                .expect("renew"),
            0,
            "not b's to renew"
        );
        assert_eq!(
            storage
                .renew_outbox_leases("worker-a", at(41))
                .await
                .expect("renew"),
            1
        );
        let renewed = storage.outbox_item(item.id).await.expect("item");
        assert_eq!(renewed.next_attempt_at, at(41));
        // Renewed: nobody else can claim it before then.
        assert!(storage
            .claim_due_outbox("worker-b", at(30), at(50), 10)
            .await
            .expect("claim")
            .is_empty());

        storage
            .mark_outbox_delivered(item.id, at(31))
            .await
            .expect("delivered");
        assert_eq!(
            storage
                .renew_outbox_leases("worker-a", at(61))
                .await
                .expect("renew"),
            0,
            "a delivered item has no lease left"
        );
    })
    .await;
}
