use greenlight_storage::audit::append_audit;
use greenlight_storage::{decisions, AuditFilter, Backend, StorageError};

use crate::audit::entry;
use crate::support::{at, each_backend};

fn everything() -> AuditFilter {
    AuditFilter {
        limit: 1_000,
        ..AuditFilter::default()
    }
}

#[tokio::test]
async fn a_failing_write_keeps_nothing_it_did() {
    each_backend(|storage| async move {
        let err = storage
            .write(|conn| {
                Box::pin(async move {
                    append_audit(conn, &entry(Some("shop"), None, 1)).await?;
                    append_audit(conn, &entry(Some("shop"), None, 2)).await?;
                    Err::<(), _>(StorageError::conflict("changed my mind"))
                })
            })
            .await
            .expect_err("must be refused");
        assert!(
            err.is_conflict(),
            "the write's own error comes back: {err:?}"
        );
        assert!(storage
            .list_audit(&everything())
            .await
            .expect("list")
            .is_empty());

        let kept = storage
            .write(|conn| {
                Box::pin(async move {
                    let first = append_audit(conn, &entry(Some("shop"), None, 1)).await?;
                    let second = append_audit(conn, &entry(Some("shop"), None, 2)).await?;
                    Ok((first.id, second.id))
                })
            })
            .await
            .expect("commit");
        let listed: Vec<i64> = storage
            .list_audit(&everything())
            .await
            .expect("list")
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(listed, [kept.1, kept.0]);
    })
    .await;
}

#[tokio::test]
async fn a_write_refused_by_the_schema_is_a_database_error() {
    each_backend(|storage| async move {
        let err = storage
            .write(|conn| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO flags (app, environment, key, enabled, rollout, updated_by, updated_at) VALUES ('shop', 'production', 'x', 1, 101, 'a', 0)")
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
            .await
            .expect_err("must be refused");
        assert!(matches!(err, StorageError::Database(_)), "{err:?}");
        storage.ping().await.expect("still healthy");
    })
    .await;
}

#[tokio::test]
async fn ping_backend_and_close() {
    each_backend(|storage| async move {
        storage.ping().await.expect("ping");
        assert!(format!("{storage:?}").contains(&format!("{:?}", storage.backend())));
        let before = storage.write_stats().commits;
        storage
            .append_audit(entry(None, None, 1))
            .await
            .expect("append");
        assert!(storage.write_stats().commits > before);

        storage.close().await;
        let err = storage
            .append_audit(entry(None, None, 2))
            .await
            .expect_err("must be refused");
        assert!(
            matches!(err, StorageError::Closed | StorageError::Database(_)),
            "{err:?}"
        );
        assert!(storage.ping().await.is_err());
    })
    .await;
}

#[tokio::test]
async fn backup_is_refused_on_postgres_with_a_hint() {
    each_backend(|storage| async move {
        if storage.backend() != Backend::Postgres {
            return;
        }
        let dir = tempfile::tempdir().expect("dir");
        let err = storage
            .backup_to(&dir.path().join("copy.db"))
            .await
            .expect_err("must be refused");
        assert!(matches!(err, StorageError::Unsupported { .. }), "{err:?}");
        assert!(err.to_string().contains("pg_dump"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn postgresql_scheme_is_accepted() {
    let Ok(url) = std::env::var(crate::support::POSTGRES_URL_VAR) else {
        return;
    };
    let Some(rest) = url.strip_prefix("postgres://") else {
        return;
    };
    let storage = greenlight_storage::Storage::connect(&format!("postgresql://{rest}"))
        .await
        .expect("postgresql:// connects");
    assert_eq!(storage.backend(), Backend::Postgres);
    storage.ping().await.expect("ping");
    storage.close().await;
}

#[tokio::test]
async fn statements_sent_with_the_begin_are_part_of_the_write() {
    each_backend(|storage| async move {
        let delivery = [("slack", "trigger-1")];
        // The batch read records the delivery in the same hand-off as the BEGIN: when the
        // write then fails, the record goes with it.
        let err = storage
            .write_opening(move |opening| {
                Box::pin(async move {
                    let (reading, mut open) =
                        decisions::read_for_batch(opening, &delivery, &[], &[], &[], at(1)).await?;
                    assert_eq!(reading.first_seen.len(), 1, "first time seen");
                    append_audit(open.conn(), &entry(Some("shop"), None, 1)).await?;
                    Err::<(), _>(StorageError::conflict("changed my mind"))
                })
            })
            .await
            .expect_err("must be refused");
        assert!(err.is_conflict(), "{err:?}");
        assert!(storage
            .list_audit(&everything())
            .await
            .expect("audit")
            .is_empty());

        // A write that fails before any statement opens nothing, and the next one is whole.
        let err = storage
            .write_opening(|_opening| {
                Box::pin(async move { Err::<(), _>(StorageError::invalid("click", "bad")) })
            })
            .await
            .expect_err("refused before any statement");
        assert!(matches!(err, StorageError::Invalid { .. }), "{err:?}");
        let first_seen = storage
            .write_opening(move |opening| {
                Box::pin(async move {
                    let (reading, mut open) =
                        decisions::read_for_batch(opening, &delivery, &[], &[], &[], at(2)).await?;
                    append_audit(open.conn(), &entry(Some("shop"), None, 2)).await?;
                    Ok(reading.first_seen.len())
                })
            })
            .await
            .expect("write");
        assert_eq!(first_seen, 1, "the failed write did not keep the delivery");
        let again = storage
            .write_opening(move |opening| {
                Box::pin(async move {
                    let (reading, _) =
                        decisions::read_for_batch(opening, &delivery, &[], &[], &[], at(3)).await?;
                    Ok(reading.first_seen.len())
                })
            })
            .await
            .expect("write");
        assert_eq!(again, 0, "the committed write kept it");
        let entries = storage.list_audit(&everything()).await.expect("audit");
        assert_eq!(entries.len(), 1);
    })
    .await;
}
