use greenlight_commands::{DeploymentKind, DeploymentState};
use greenlight_storage::{DeploymentTransition, NewDeployment, SmokeResult, Storage, StorageError};

use crate::support::{app, at, each_backend, env, release, sha};

pub fn new_deployment(release_id: i64, environment: &str, state: DeploymentState) -> NewDeployment {
    NewDeployment {
        release_id,
        environment: env(environment),
        kind: DeploymentKind::Deploy,
        state,
        previous_sha: None,
        deployer: Some("http".to_owned()),
        deployer_ref: None,
        triggered_by: Some("alice".to_owned()),
        smoke: Vec::new(),
        detail: None,
        approved: true,
        at: at(10),
    }
}

pub fn passed(name: &str) -> SmokeResult {
    SmokeResult {
        name: name.to_owned(),
        status: "passed".to_owned(),
        duration_ms: Some(12),
        detail: Some("200 OK".to_owned()),
    }
}

async fn step(storage: &Storage, id: i64, from: DeploymentState, to: DeploymentState, secs: i64) {
    storage
        .transition_deployment(id, DeploymentTransition::new(from, to, at(secs)))
        .await
        .unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
}

#[tokio::test]
async fn deployment_moves_through_its_states() {
    each_backend(|storage| async move {
        let release = release(&storage, "shop", 1, at(0)).await;
        let created = storage
            .insert_deployment(new_deployment(
                release.id,
                "staging",
                DeploymentState::Pending,
            ))
            .await
            .expect("insert");
        assert_eq!(created.state, DeploymentState::Pending);
        assert_eq!(
            (created.sha.clone(), created.image.clone()),
            (release.sha.clone(), release.image.clone())
        );
        assert_eq!(created.app, release.app);
        assert_eq!(created.version, 0);
        assert_eq!(created.finished_at, None);

        step(
            &storage,
            created.id,
            DeploymentState::Pending,
            DeploymentState::Deploying,
            20,
        )
        .await;
        step(
            &storage,
            created.id,
            DeploymentState::Deploying,
            DeploymentState::Verifying,
            30,
        )
        .await;
        let mut verified =
            DeploymentTransition::new(DeploymentState::Verifying, DeploymentState::Healthy, at(40));
        verified.smoke = Some(vec![passed("health"), passed("status")]);
        verified.deployer_ref = Some("run-17".to_owned());
        let healthy = storage
            .transition_deployment(created.id, verified)
            .await
            .expect("healthy");
        assert_eq!(healthy.state, DeploymentState::Healthy);
        assert_eq!(healthy.smoke, vec![passed("health"), passed("status")]);
        assert_eq!(healthy.deployer_ref.as_deref(), Some("run-17"));
        assert_eq!(healthy.healthy_at, Some(at(40)));
        assert_eq!(healthy.finished_at, Some(at(40)));
        assert_eq!(healthy.updated_at, at(40));
        assert_eq!(healthy.version, 3);

        // Superseded later: it stays known as once healthy, first finish time kept.
        step(
            &storage,
            created.id,
            DeploymentState::Healthy,
            DeploymentState::Superseded,
            50,
        )
        .await;
        let superseded = storage.deployment(created.id).await.expect("read");
        assert_eq!(superseded.healthy_at, Some(at(40)));
        assert_eq!(superseded.finished_at, Some(at(40)));
        assert_eq!(
            superseded.smoke.len(),
            2,
            "smoke results are kept when not given"
        );
    })
    .await;
}

#[tokio::test]
async fn transition_from_a_state_already_left_is_a_conflict() {
    each_backend(|storage| async move {
        let release = release(&storage, "shop", 1, at(0)).await;
        let d = storage
            .insert_deployment(new_deployment(
                release.id,
                "production",
                DeploymentState::Pending,
            ))
            .await
            .expect("insert");
        step(
            &storage,
            d.id,
            DeploymentState::Pending,
            DeploymentState::Deploying,
            1,
        )
        .await;
        let err = storage
            .transition_deployment(
                d.id,
                DeploymentTransition::new(
                    DeploymentState::Pending,
                    DeploymentState::Deploying,
                    at(2),
                ),
            )
            .await
            .expect_err("must be refused");
        assert!(err.is_conflict(), "{err:?}");
        assert!(err.to_string().contains("deploying"), "{err}");

        let err = storage
            .transition_deployment(
                999_999,
                DeploymentTransition::new(
                    DeploymentState::Pending,
                    DeploymentState::Deploying,
                    at(2),
                ),
            )
            .await
            .expect_err("must be refused");
        assert!(err.is_not_found(), "{err:?}");

        let err = storage
            .insert_deployment(new_deployment(
                999_999,
                "production",
                DeploymentState::Pending,
            ))
            .await
            .expect_err("must be refused");
        assert!(err.is_not_found(), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn concurrent_transitions_have_exactly_one_winner() {
    each_backend(|storage| async move {
        let release = release(&storage, "shop", 1, at(0)).await;
        let d = storage
            .insert_deployment(new_deployment(
                release.id,
                "production",
                DeploymentState::Pending,
            ))
            .await
            .expect("insert");
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let storage = storage.clone();
                tokio::spawn(async move {
                    storage
                        .transition_deployment(
                            d.id,
                            DeploymentTransition::new(
                                DeploymentState::Pending,
                                DeploymentState::Deploying,
                                at(i),
                            ),
                        )
                        .await
                })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(_) => wins += 1,
                Err(StorageError::Conflict { .. }) => {}
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert_eq!(wins, 1);
        assert_eq!(storage.deployment(d.id).await.expect("read").version, 1);
    })
    .await;
}

#[tokio::test]
async fn current_and_rollback_target_follow_health() {
    each_backend(|storage| async move {
        let (shop, production) = (app("shop"), env("production"));
        assert_eq!(
            storage
                .current_deployment(&shop, &production)
                .await
                .expect("none"),
            None
        );

        let r1 = release(&storage, "shop", 1, at(0)).await;
        let r2 = release(&storage, "shop", 2, at(100)).await;
        let d1 = storage
            .insert_deployment(new_deployment(
                r1.id,
                "production",
                DeploymentState::Healthy,
            ))
            .await
            .expect("d1");
        assert_eq!(
            d1.healthy_at,
            Some(at(10)),
            "inserted healthy counts as healthy"
        );
        let d2 = storage
            .insert_deployment(new_deployment(
                r2.id,
                "production",
                DeploymentState::Pending,
            ))
            .await
            .expect("d2");
        // Pending: the old release still runs.
        let current = storage
            .current_deployment(&shop, &production)
            .await
            .expect("current");
        assert_eq!(current.map(|d| d.id), Some(d1.id));

        step(
            &storage,
            d2.id,
            DeploymentState::Pending,
            DeploymentState::Deploying,
            110,
        )
        .await;
        step(
            &storage,
            d2.id,
            DeploymentState::Deploying,
            DeploymentState::Verifying,
            120,
        )
        .await;
        step(
            &storage,
            d2.id,
            DeploymentState::Verifying,
            DeploymentState::Faulty,
            130,
        )
        .await;
        step(
            &storage,
            d1.id,
            DeploymentState::Healthy,
            DeploymentState::Superseded,
            130,
        )
        .await;
        let current = storage
            .current_deployment(&shop, &production)
            .await
            .expect("current");
        assert_eq!(
            current.as_ref().map(|d| d.state),
            Some(DeploymentState::Faulty)
        );

        let target = storage
            .last_healthy_deployment(&shop, &production, Some(&sha(2)))
            .await
            .expect("target")
            .expect("there is one");
        assert_eq!(
            target.sha,
            sha(1),
            "a superseded deployment that was healthy is the target"
        );
        assert_eq!(
            storage
                .last_healthy_deployment(&shop, &production, Some(&sha(1)))
                .await
                .expect("none"),
            None
        );

        let unfinished = storage.unfinished_deployments().await.expect("unfinished");
        assert!(unfinished.is_empty(), "{unfinished:?}");
    })
    .await;
}

#[tokio::test]
async fn rollback_targets_are_found_by_sha_prefix() {
    each_backend(|storage| async move {
        let (shop, production) = (app("shop"), env("production"));
        let r1 = release(&storage, "shop", 1, at(0)).await;
        let r2 = release(&storage, "shop", 2, at(1)).await;
        let r3 = release(&storage, "shop", 0x100, at(2)).await;
        let d1 = storage
            .insert_deployment(new_deployment(
                r1.id,
                "production",
                DeploymentState::Healthy,
            ))
            .await
            .expect("d1");
        storage
            .insert_deployment(new_deployment(r2.id, "production", DeploymentState::Failed))
            .await
            .expect("d2");
        let d3 = storage
            .insert_deployment(new_deployment(
                r3.id,
                "production",
                DeploymentState::Healthy,
            ))
            .await
            .expect("d3");
        storage
            .insert_deployment(new_deployment(r2.id, "staging", DeploymentState::Healthy))
            .await
            .expect("staging");

        let by_prefix = |prefix: &'static str| {
            let (storage, shop, production) = (storage.clone(), shop.clone(), production.clone());
            async move {
                storage
                    .healthy_deployments_by_sha_prefix(&shop, &production, prefix, 10)
                    .await
                    .expect("query")
                    .into_iter()
                    .map(|d| d.id)
                    .collect::<Vec<_>>()
            }
        };
        // sha(1) = 00000001…, sha(0x100) = 00000100…: "00000" matches both, newest first.
        assert_eq!(by_prefix("00000").await, vec![d3.id, d1.id]);
        assert_eq!(by_prefix("00000001").await, vec![d1.id]);
        assert_eq!(
            by_prefix("00000001AAAA").await,
            vec![d1.id],
            "case does not matter"
        );
        assert!(
            by_prefix("00000002").await.is_empty(),
            "never healthy in production (only in staging)"
        );
        let refused = storage
            .healthy_deployments_by_sha_prefix(&shop, &production, "0000%", 10)
            .await
            .expect_err("not hex");
        assert!(
            matches!(refused, StorageError::Invalid { .. }),
            "{refused:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn unapproved_deployments_are_kept_but_never_the_rollback_target() {
    each_backend(|storage| async move {
        let (shop, production) = (app("shop"), env("production"));
        let approved = release(&storage, "shop", 1, at(0)).await;
        let around_the_gate = release(&storage, "shop", 2, at(1)).await;
        let faulty = release(&storage, "shop", 3, at(2)).await;
        storage
            .insert_deployment(new_deployment(
                approved.id,
                "production",
                DeploymentState::Healthy,
            ))
            .await
            .expect("approved deploy");
        let mut unapproved =
            new_deployment(around_the_gate.id, "production", DeploymentState::Healthy);
        unapproved.approved = false;
        let recorded = storage
            .insert_deployment(unapproved)
            .await
            .expect("unapproved deploy");
        assert!(!recorded.approved, "the flag is stored");
        assert!(
            !storage
                .deployment(recorded.id)
                .await
                .expect("read back")
                .approved
        );
        storage
            .insert_deployment(new_deployment(
                faulty.id,
                "production",
                DeploymentState::Faulty,
            ))
            .await
            .expect("faulty deploy");

        let target = storage
            .last_healthy_deployment(&shop, &production, Some(&sha(3)))
            .await
            .expect("target")
            .expect("there is one");
        assert_eq!(target.sha, sha(1), "the newer unapproved one is skipped");
        // Looked up by SHA it is still found (so `/rollback to` can say why it refuses).
        let by_prefix = storage
            .healthy_deployments_by_sha_prefix(&shop, &production, &sha(2).as_str()[..12], 5)
            .await
            .expect("by prefix");
        assert_eq!(by_prefix.len(), 1);
        assert!(!by_prefix[0].approved);
    })
    .await;
}
