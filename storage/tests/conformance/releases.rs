use greenlight_commands::CommitSha;
use greenlight_storage::{NewRelease, StorageError, Upserted};

use crate::support::{app, at, each_backend, new_release, sha};

#[tokio::test]
async fn release_insert_is_idempotent() {
    each_backend(|storage| async move {
        let first = storage
            .insert_release(new_release("shop", 1, at(0)))
            .await
            .expect("first insert");
        assert!(first.is_created());

        let mut again = new_release("shop", 1, at(60));
        again.image = "ghcr.io/acme/shop@sha256:other".to_owned();
        let second = storage.insert_release(again).await.expect("second insert");
        let Upserted::Existing(existing) = second else {
            panic!("the same app+sha was inserted twice");
        };
        assert_eq!(&existing, first.get(), "the stored release must not change");

        // Same sha, other app: a different release.
        let other = storage
            .insert_release(new_release("blog", 1, at(0)))
            .await
            .expect("other app");
        assert!(other.is_created());
    })
    .await;
}

#[tokio::test]
async fn release_round_trips_every_column() {
    each_backend(|storage| async move {
        let full = new_release("shop", 7, at(3));
        let stored = storage
            .insert_release(full.clone())
            .await
            .expect("insert")
            .into_inner();
        assert_eq!(stored.app, full.app);
        assert_eq!(stored.sha, full.sha);
        assert_eq!(stored.image, full.image);
        assert_eq!(stored.author, full.author);
        assert_eq!(stored.message, full.message);
        assert_eq!(stored.git_ref, full.git_ref);
        assert_eq!(stored.commit_url, None);
        assert_eq!(stored.ci_url, full.ci_url);
        assert_eq!(stored.committed_at, full.committed_at);
        assert_eq!(stored.created_at, full.created_at);

        let sparse = NewRelease {
            author: None,
            message: None,
            git_ref: None,
            ci_url: None,
            committed_at: None,
            ..new_release("shop", 8, at(4))
        };
        storage.insert_release(sparse).await.expect("insert sparse");
        let read = storage
            .release(&app("shop"), &sha(8))
            .await
            .expect("read back");
        assert_eq!(read.author, None);
        assert_eq!(read.committed_at, None);
        assert_eq!(storage.release_by_id(read.id).await.expect("by id"), read);
    })
    .await;
}

#[tokio::test]
async fn unknown_release_is_not_found() {
    each_backend(|storage| async move {
        let missing = CommitSha::parse(&"f".repeat(40)).expect("sha");
        let err = storage
            .release(&app("shop"), &missing)
            .await
            .expect_err("must be refused");
        assert!(matches!(err, StorageError::NotFound { .. }), "{err:?}");
        let err = storage
            .release_by_id(4242)
            .await
            .expect_err("must be refused");
        assert!(err.is_not_found(), "{err:?}");
    })
    .await;
}
