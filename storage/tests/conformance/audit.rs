use greenlight_storage::{AuditFilter, NewAuditEntry, StorageError};
use serde_json::json;

use crate::support::{app, at, each_backend, env, sha};

pub fn entry(app_name: Option<&str>, environment: Option<&str>, n: i64) -> NewAuditEntry {
    NewAuditEntry {
        occurred_at: at(n),
        actor: "alice".to_owned(),
        app: app_name.map(app),
        environment: environment.map(env),
        sha: Some(sha(u32::try_from(n).unwrap_or(0))),
        kind: "test.event".to_owned(),
        detail: json!({"n": n, "nested": {"ok": true}}),
    }
}

fn filter(app: Option<&str>, environment: Option<&str>, limit: u32) -> AuditFilter {
    AuditFilter {
        app: app.map(str::to_owned),
        environment: environment.map(str::to_owned),
        before_id: None,
        limit,
    }
}

#[tokio::test]
async fn audit_entries_list_newest_first_by_app_and_environment() {
    each_backend(|storage| async move {
        let plan = [
            (Some("shop"), Some("staging")),
            (Some("shop"), Some("production")),
            (Some("blog"), Some("production")),
            (Some("shop"), None),
            (None, None),
            (Some("shop"), Some("production")),
        ];
        let mut ids = Vec::new();
        for (n, (a, e)) in plan.iter().enumerate() {
            let stored = storage
                .append_audit(entry(*a, *e, n as i64))
                .await
                .expect("append");
            ids.push(stored.id);
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

        let all = storage
            .list_audit(&filter(None, None, 100))
            .await
            .expect("all");
        assert_eq!(all.iter().map(|e| e.id).rev().collect::<Vec<_>>(), ids);
        assert_eq!(all[0].detail, json!({"n": 5, "nested": {"ok": true}}));
        assert_eq!(all[0].occurred_at, at(5));
        assert_eq!(all[0].sha, Some(sha(5)));

        let shop_prod = storage
            .list_audit(&filter(Some("shop"), Some("production"), 100))
            .await
            .expect("shop prod");
        assert_eq!(
            shop_prod.iter().map(|e| e.id).collect::<Vec<_>>(),
            [ids[5], ids[1]]
        );
        let shop = storage
            .list_audit(&filter(Some("shop"), None, 100))
            .await
            .expect("shop");
        assert_eq!(shop.len(), 4);
        let production = storage
            .list_audit(&filter(None, Some("production"), 2))
            .await
            .expect("prod");
        assert_eq!(
            production.iter().map(|e| e.id).collect::<Vec<_>>(),
            [ids[5], ids[2]]
        );
        assert!(storage
            .list_audit(&filter(Some("nope"), None, 10))
            .await
            .expect("none")
            .is_empty());

        let page = storage
            .list_audit(&AuditFilter {
                before_id: Some(ids[3]),
                ..filter(None, None, 2)
            })
            .await
            .expect("page");
        assert_eq!(
            page.iter().map(|e| e.id).collect::<Vec<_>>(),
            [ids[2], ids[1]]
        );
    })
    .await;
}

#[tokio::test]
async fn audit_log_refuses_updates_and_deletes() {
    each_backend(|storage| async move {
        let stored = storage
            .append_audit(entry(Some("shop"), None, 1))
            .await
            .expect("append");
        for sql in [
            "UPDATE audit_log SET actor = 'mallory'",
            "DELETE FROM audit_log",
        ] {
            let err = storage
                .write(move |conn| {
                    Box::pin(async move {
                        sqlx::query(sql).execute(conn).await?;
                        Ok(())
                    })
                })
                .await
                .expect_err("must be refused");
            assert!(matches!(err, StorageError::Database(_)), "{sql}: {err:?}");
            assert!(err.to_string().contains("append-only"), "{err}");
        }
        let all = storage
            .list_audit(&filter(None, None, 10))
            .await
            .expect("list");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0], stored);
    })
    .await;
}

#[tokio::test]
async fn an_entry_recorded_without_reading_it_back_is_stored_the_same() {
    each_backend(|storage| async move {
        let returned = storage
            .append_audit(entry(Some("shop"), Some("production"), 1))
            .await
            .expect("append");
        let recorded = entry(Some("shop"), Some("production"), 2);
        storage
            .write({
                let recorded = recorded.clone();
                move |conn| {
                    Box::pin(async move {
                        greenlight_storage::audit::record_audit(conn, &recorded).await
                    })
                }
            })
            .await
            .expect("record");
        let listed = storage
            .list_audit(&filter(Some("shop"), Some("production"), 10))
            .await
            .expect("list");
        assert_eq!(listed.len(), 2);
        let stored = &listed[0];
        assert_eq!(stored.id, returned.id + 1);
        assert_eq!(
            (
                &stored.kind,
                &stored.actor,
                &stored.detail,
                stored.occurred_at
            ),
            (
                &recorded.kind,
                &recorded.actor,
                &recorded.detail,
                recorded.occurred_at
            )
        );
        let mut nameless = entry(None, None, 3);
        nameless.kind.clear();
        let refused = storage
            .write(move |conn| {
                Box::pin(
                    async move { greenlight_storage::audit::record_audit(conn, &nameless).await },
                )
            })
            .await
            .expect_err("an entry needs a kind");
        assert!(refused.to_string().contains("audit kind"), "{refused}");
    })
    .await;
}
