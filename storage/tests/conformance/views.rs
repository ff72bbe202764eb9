use greenlight_commands::{ApprovalState, DecisionVerdict, DeploymentState, PersonName, Platform};
use greenlight_storage::{
    EnvironmentState, LockOutcome, NewDecision, NewLock, ReleaseFilter, SmokeResult, Storage,
};
use serde_json::json;

use crate::approvals::{ended, new_request};
use crate::deployments::{new_deployment, passed};
use crate::support::{app, at, each_backend, env, release};

fn failed(name: &str) -> SmokeResult {
    SmokeResult {
        name: name.to_owned(),
        status: "failed".to_owned(),
        duration_ms: Some(5_000),
        detail: Some("timeout".to_owned()),
    }
}

async fn deployed(
    storage: &Storage,
    release_id: i64,
    environment: &str,
    state: DeploymentState,
    smoke: Vec<SmokeResult>,
) -> i64 {
    let mut new = new_deployment(release_id, environment, state);
    new.smoke = smoke;
    storage.insert_deployment(new).await.expect("deployment").id
}

/// shop r1 healthy in staging and production; shop r2 healthy in staging, waiting for
/// production; blog b1 pending in staging; shop r3 faulty in staging.
pub async fn history(storage: &Storage) -> [i64; 4] {
    let r1 = release(storage, "shop", 1, at(0)).await;
    deployed(
        storage,
        r1.id,
        "staging",
        DeploymentState::Healthy,
        vec![passed("health")],
    )
    .await;
    let request = storage
        .insert_approval_request(new_request(r1.id, "production"))
        .await
        .expect("r1 request");
    storage
        .transition_approval_request(request.id, ended(ApprovalState::Approved, 50))
        .await
        .expect("approved");
    deployed(
        storage,
        r1.id,
        "production",
        DeploymentState::Healthy,
        vec![passed("prod-health")],
    )
    .await;

    let r2 = release(storage, "shop", 2, at(100)).await;
    deployed(
        storage,
        r2.id,
        "staging",
        DeploymentState::Healthy,
        vec![passed("health"), passed("status")],
    )
    .await;
    storage
        .insert_approval_request(new_request(r2.id, "production"))
        .await
        .expect("r2 request");

    let b1 = release(storage, "blog", 1, at(150)).await;
    deployed(
        storage,
        b1.id,
        "staging",
        DeploymentState::Pending,
        Vec::new(),
    )
    .await;

    let r3 = release(storage, "shop", 3, at(200)).await;
    deployed(
        storage,
        r3.id,
        "staging",
        DeploymentState::Faulty,
        vec![failed("health")],
    )
    .await;
    [r1.id, r2.id, b1.id, r3.id]
}

fn filter(app: Option<&str>, environment: Option<&str>, limit: u32) -> ReleaseFilter {
    ReleaseFilter {
        app: app.map(str::to_owned),
        environment: environment.map(str::to_owned),
        limit,
    }
}

#[tokio::test]
async fn releases_list_newest_first_with_state_per_environment() {
    each_backend(|storage| async move {
        let [r1, r2, b1, r3] = history(&storage).await;

        let all = storage
            .list_releases(&filter(None, None, 10))
            .await
            .expect("all");
        assert_eq!(
            all.iter().map(|s| s.release.id).collect::<Vec<_>>(),
            [r3, b1, r2, r1]
        );

        let states = |i: usize| -> Vec<(String, &'static str, usize)> {
            all[i]
                .environments
                .iter()
                .map(|(e, o)| (e.to_string(), o.state.as_str(), o.smoke.len()))
                .collect()
        };
        assert_eq!(states(0), [("staging".to_owned(), "faulty", 1)]);
        assert_eq!(states(1), [("staging".to_owned(), "pending", 0)]);
        assert_eq!(
            states(2),
            [
                ("production".to_owned(), "waiting", 0),
                ("staging".to_owned(), "healthy", 2)
            ]
        );
        assert_eq!(
            states(3),
            [
                ("production".to_owned(), "healthy", 1),
                ("staging".to_owned(), "healthy", 1)
            ]
        );
        assert_eq!(
            all[2].environments[&env("production")].state,
            EnvironmentState::Approval(ApprovalState::Waiting)
        );

        let shop_production = storage
            .list_releases(&filter(Some("shop"), Some("production"), 10))
            .await
            .expect("filtered");
        assert_eq!(
            shop_production
                .iter()
                .map(|s| s.release.id)
                .collect::<Vec<_>>(),
            [r2, r1]
        );
        assert!(shop_production
            .iter()
            .all(|s| s.environments.keys().all(|e| e.as_str() == "production")));

        let blog = storage
            .list_releases(&filter(Some("blog"), None, 10))
            .await
            .expect("blog");
        assert_eq!(blog.iter().map(|s| s.release.id).collect::<Vec<_>>(), [b1]);
        let two = storage
            .list_releases(&filter(None, None, 2))
            .await
            .expect("limit");
        assert_eq!(
            two.iter().map(|s| s.release.id).collect::<Vec<_>>(),
            [r3, b1]
        );
        assert!(storage
            .list_releases(&filter(None, Some("nowhere"), 10))
            .await
            .expect("none")
            .is_empty());

        // The shape GET /api/v1/releases serves (SPEC §5.3).
        let shown = serde_json::to_value(&all[3]).expect("json");
        assert_eq!(shown["app"], "shop");
        assert_eq!(shown["sha"], all[3].release.sha.as_str());
        assert_eq!(shown["author"], "alice");
        assert_eq!(shown["created_at"], "2026-11-26T10:00:00Z");
        assert_eq!(shown["environments"]["production"]["state"], "healthy");
        assert_eq!(
            shown["environments"]["staging"]["smoke"],
            json!([{"name": "health", "status": "passed", "duration_ms": 12, "detail": "200 OK"}])
        );
    })
    .await;
}

#[tokio::test]
async fn environment_status_shows_current_pending_approval_and_lock() {
    each_backend(|storage| async move {
        let (shop, production) = (app("shop"), env("production"));
        let empty = storage
            .environment_status(&shop, &production)
            .await
            .expect("empty");
        assert!(
            empty.current.is_none() && empty.pending_approval.is_none() && empty.lock.is_none()
        );

        history(&storage).await;
        let waiting = storage
            .waiting_approval_request(&shop, &production)
            .await
            .expect("w")
            .expect("waiting");
        storage
            .record_decision(NewDecision {
                request_id: waiting.id,
                person: Some(PersonName::parse("alice").expect("alice")),
                platform: Platform::Slack,
                platform_user: "U012AB3CD".to_owned(),
                verdict: DecisionVerdict::Approve,
                comment: None,
                refused_reason: None,
                at: at(400),
            })
            .await
            .expect("decision");
        let locked = storage
            .acquire_lock(NewLock {
                app: shop.clone(),
                environment: production.clone(),
                locked_by: "bob".to_owned(),
                reason: "incident".to_owned(),
                automatic: false,
                at: at(500),
            })
            .await
            .expect("lock");
        assert!(matches!(locked, LockOutcome::Acquired(_)));

        let status = storage
            .environment_status(&shop, &production)
            .await
            .expect("status");
        let current = status.current.expect("current");
        assert_eq!(
            (current.sha.clone(), current.state),
            (crate::support::sha(1), DeploymentState::Healthy)
        );
        let pending = status.pending_approval.expect("pending");
        assert_eq!(pending.request.sha, crate::support::sha(2));
        assert_eq!(
            pending.approvals,
            [PersonName::parse("alice").expect("alice")]
        );
        assert_eq!(status.lock.expect("lock").locked_by, "bob");
    })
    .await;
}
