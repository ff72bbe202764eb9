use greenlight_storage::{FlagTarget, LockOutcome, NewLock, StorageError};

use crate::support::{app, at, each_backend, env};

fn lock_by(who: &str, reason: &str, secs: i64) -> NewLock {
    NewLock {
        app: app("shop"),
        environment: env("production"),
        locked_by: who.to_owned(),
        reason: reason.to_owned(),
        automatic: false,
        at: at(secs),
    }
}

#[tokio::test]
async fn locking_a_locked_environment_says_who_holds_it() {
    each_backend(|storage| async move {
        let (shop, production) = (app("shop"), env("production"));
        let LockOutcome::Acquired(lock) = storage
            .acquire_lock(lock_by("alice", "incident 42", 0))
            .await
            .expect("lock")
        else {
            panic!("the first lock must be acquired");
        };
        assert!(!lock.automatic);

        let again = storage
            .acquire_lock(lock_by("bob", "deploy freeze", 5))
            .await
            .expect("second lock");
        assert_eq!(
            again,
            LockOutcome::AlreadyHeld(lock.clone()),
            "nothing changes"
        );
        assert_eq!(
            storage
                .active_lock(&shop, &production)
                .await
                .expect("active"),
            Some(lock.clone())
        );

        // Another environment locks independently; an automatic lock is marked as such.
        let mut staging = lock_by("greenlight", "rolled back", 6);
        staging.environment = env("staging");
        staging.automatic = true;
        let LockOutcome::Acquired(auto) = storage.acquire_lock(staging).await.expect("staging")
        else {
            panic!("staging was not locked");
        };
        assert!(auto.automatic);
        assert_eq!(storage.active_locks().await.expect("all").len(), 2);

        let released = storage
            .release_lock(&shop, &production, "bob", at(10))
            .await
            .expect("unlock");
        assert_eq!(released.released_by.as_deref(), Some("bob"));
        assert_eq!(released.released_at, Some(at(10)));
        assert_eq!(
            storage.active_lock(&shop, &production).await.expect("none"),
            None
        );
        let err = storage
            .release_lock(&shop, &production, "bob", at(11))
            .await
            .expect_err("must be refused");
        assert!(err.is_not_found(), "{err:?}");

        let relocked = storage
            .acquire_lock(lock_by("bob", "again", 12))
            .await
            .expect("relock");
        assert!(matches!(relocked, LockOutcome::Acquired(ref l) if l.locked_by == "bob"));
    })
    .await;
}

#[tokio::test]
async fn concurrent_locks_have_exactly_one_holder() {
    each_backend(|storage| async move {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let storage = storage.clone();
                tokio::spawn(async move {
                    storage
                        .acquire_lock(lock_by(&format!("p{i}"), "race", i))
                        .await
                })
            })
            .collect();
        let mut holders = Vec::new();
        let mut told = Vec::new();
        for task in tasks {
            match task.await.expect("task").expect("lock call") {
                LockOutcome::Acquired(lock) => holders.push(lock.locked_by),
                LockOutcome::AlreadyHeld(lock) => told.push(lock.locked_by),
            }
        }
        assert_eq!(holders.len(), 1);
        assert!(
            told.iter().all(|who| *who == holders[0]),
            "{told:?} vs {holders:?}"
        );
    })
    .await;
}

fn target(key: &str, actor: &str, secs: i64) -> FlagTarget {
    FlagTarget {
        app: app("shop"),
        environment: env("production"),
        key: key.to_owned(),
        actor: actor.to_owned(),
        reason: Some(format!("{key} by {actor}")),
        at: at(secs),
    }
}

#[tokio::test]
async fn flags_change_and_keep_history() {
    each_backend(|storage| async move {
        let (shop, production) = (app("shop"), env("production"));
        let on = storage
            .set_flag_enabled(target("new_checkout", "alice", 1), true)
            .await
            .expect("on");
        assert!(on.enabled);
        assert_eq!((on.rollout, on.version), (100, 0));

        let half = storage
            .set_flag_rollout(target("new_checkout", "bob", 2), 50)
            .await
            .expect("rollout");
        assert_eq!((half.enabled, half.rollout, half.version), (true, 50, 1));
        assert_eq!(half.id, on.id);
        assert_eq!(half.updated_by, "bob");

        let off = storage
            .set_flag_enabled(target("new_checkout", "carol", 3), false)
            .await
            .expect("off");
        assert_eq!(
            (off.enabled, off.rollout),
            (false, 50),
            "rollout kept while off"
        );

        let fresh = storage
            .set_flag_rollout(target("banner", "alice", 4), 10)
            .await
            .expect("new by rollout");
        assert!(fresh.enabled, "a flag created by a rollout is on");

        let err = storage
            .set_flag_rollout(target("banner", "alice", 5), 101)
            .await
            .expect_err("must be refused");
        assert!(matches!(err, StorageError::Invalid { .. }), "{err:?}");

        let flags = storage.list_flags(&shop, &production).await.expect("list");
        assert_eq!(
            flags.iter().map(|f| f.key.as_str()).collect::<Vec<_>>(),
            ["banner", "new_checkout"]
        );
        assert!(storage
            .list_flags(&shop, &env("staging"))
            .await
            .expect("empty")
            .is_empty());
        assert_eq!(
            storage
                .flag(&shop, &production, "new_checkout")
                .await
                .expect("one"),
            Some(off.clone())
        );
        assert_eq!(
            storage
                .flag(&shop, &production, "nope")
                .await
                .expect("none"),
            None
        );

        let history = storage.flag_history(on.id, 10).await.expect("history");
        let summary: Vec<_> = history
            .iter()
            .map(|c| (c.actor.as_str(), c.enabled, c.rollout, c.changed_at))
            .collect();
        assert_eq!(
            summary,
            [
                ("carol", false, 50, at(3)),
                ("bob", true, 50, at(2)),
                ("alice", true, 100, at(1))
            ]
        );
        assert_eq!(history[0].reason.as_deref(), Some("new_checkout by carol"));
    })
    .await;
}

#[tokio::test]
async fn every_flag_change_moves_its_environments_version_and_no_other() {
    each_backend(|storage| async move {
        let (shop, production, staging) = (app("shop"), env("production"), env("staging"));
        let versions = |storage: greenlight_storage::Storage| async move {
            let mut versions: Vec<(String, String, i64)> = storage
                .flag_versions()
                .await
                .expect("versions")
                .into_iter()
                .map(|v| (v.app.to_string(), v.environment.to_string(), v.version))
                .collect();
            versions.sort();
            versions
        };
        assert!(versions(storage.clone()).await.is_empty());
        let never = storage
            .environment_flags(&shop, &production)
            .await
            .expect("read");
        assert_eq!((never.version, never.flags.len()), (0, 0));

        storage
            .set_flag_enabled(target("new_checkout", "alice", 1), true)
            .await
            .expect("on");
        storage
            .set_flag_rollout(target("banner", "alice", 2), 10)
            .await
            .expect("rollout");
        let mut in_staging = target("new_checkout", "bob", 3);
        in_staging.environment = staging.clone();
        storage
            .set_flag_enabled(in_staging, true)
            .await
            .expect("staging on");
        assert_eq!(
            versions(storage.clone()).await,
            [
                ("shop".to_owned(), "production".to_owned(), 2),
                ("shop".to_owned(), "staging".to_owned(), 1)
            ]
        );

        // Setting a flag to what it already is is still a change (a new history entry).
        storage
            .set_flag_enabled(target("new_checkout", "carol", 4), true)
            .await
            .expect("again");
        let now = storage
            .environment_flags(&shop, &production)
            .await
            .expect("read");
        assert_eq!(now.version, 3);
        assert_eq!(
            now.flags.iter().map(|f| f.key.as_str()).collect::<Vec<_>>(),
            ["banner", "new_checkout"]
        );
        let staging_now = storage
            .environment_flags(&shop, &staging)
            .await
            .expect("read");
        assert_eq!(staging_now.version, 1, "another environment's change");

        // A refused change moves nothing.
        storage
            .set_flag_rollout(target("banner", "alice", 5), 101)
            .await
            .expect_err("not a percentage");
        assert_eq!(
            storage
                .environment_flags(&shop, &production)
                .await
                .expect("read")
                .version,
            3
        );
    })
    .await;
}
