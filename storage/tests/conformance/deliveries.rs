use greenlight_storage::deliveries::insert_idempotency_key;
use serde_json::json;

use crate::support::{at, each_backend};

#[tokio::test]
async fn webhook_deliveries_are_new_once() {
    each_backend(|storage| async move {
        assert!(storage
            .record_webhook_delivery("github", "d-1", at(0))
            .await
            .expect("first"));
        assert!(!storage
            .record_webhook_delivery("github", "d-1", at(1))
            .await
            .expect("duplicate"));
        assert!(storage
            .record_webhook_delivery("github", "d-2", at(2))
            .await
            .expect("other id"));
        assert!(storage
            .record_webhook_delivery("slack", "d-1", at(3))
            .await
            .expect("other source"));

        assert_eq!(
            storage
                .prune_webhook_deliveries(at(2))
                .await
                .expect("prune"),
            1
        );
        assert!(storage
            .record_webhook_delivery("github", "d-1", at(4))
            .await
            .expect("forgotten"));
    })
    .await;
}

#[tokio::test]
async fn idempotency_keys_store_the_reply_once() {
    each_backend(|storage| async move {
        assert_eq!(
            storage.find_idempotency_key("k1").await.expect("none"),
            None
        );
        let reply = json!({"release": {"id": 1}, "deployment": null});
        let stored = reply.clone();
        storage
            .write(move |conn| {
                Box::pin(async move { insert_idempotency_key(conn, "k1", &stored, at(0)).await })
            })
            .await
            .expect("first");
        assert_eq!(
            storage.find_idempotency_key("k1").await.expect("found"),
            Some(reply)
        );

        let err = storage
            .write(|conn| {
                Box::pin(async move { insert_idempotency_key(conn, "k1", &json!({}), at(1)).await })
            })
            .await
            .expect_err("must be refused");
        assert!(err.is_conflict(), "{err:?}");
    })
    .await;
}
