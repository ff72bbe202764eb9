//! What only SQLite has: the file, its PRAGMAs, group commit, backups.

use std::time::Duration;

use greenlight_storage::audit::append_audit;
use greenlight_storage::{AuditFilter, Backend, Storage, StorageError};
use sqlx::Row;

use crate::audit::entry;
use crate::support::{sqlite, sqlite_url};

fn everything() -> AuditFilter {
    AuditFilter {
        limit: 100_000,
        ..AuditFilter::default()
    }
}

#[tokio::test]
async fn the_database_file_is_created_if_missing() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("greenlight.db");
    assert!(!path.exists());
    // Both URL spellings of SPEC §3 work.
    let storage = Storage::connect(&format!("sqlite:{}", path.display()))
        .await
        .expect("connect");
    assert!(path.exists(), "connect creates the file");
    assert_eq!(storage.backend(), Backend::Sqlite);
    storage.migrate().await.expect("migrate");
    storage
        .migrate()
        .await
        .expect("migrating twice is harmless");
    storage
        .append_audit(entry(Some("shop"), None, 1))
        .await
        .expect("append");
    storage.close().await;

    let reopened = Storage::connect(&sqlite_url(&dir)).await.expect("reopen");
    assert_eq!(
        reopened
            .list_audit(&everything())
            .await
            .expect("list")
            .len(),
        1,
        "what was acknowledged is there"
    );
    reopened.close().await;
}

#[tokio::test]
async fn memory_and_unknown_urls_are_refused() {
    for url in ["sqlite::memory:", "mysql://localhost/db", "greenlight.db"] {
        let err = Storage::connect(url).await.expect_err("must be refused");
        assert!(
            matches!(err, StorageError::Invalid { .. }),
            "{url}: {err:?}"
        );
    }
}

async fn pragmas(conn: &mut sqlx::AnyConnection) -> (String, i64, i64, i64) {
    let journal: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .expect("journal_mode")
        .get(0);
    let synchronous: i64 = sqlx::query("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .expect("synchronous")
        .get(0);
    let foreign_keys: i64 = sqlx::query("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await
        .expect("foreign_keys")
        .get(0);
    let busy: i64 = sqlx::query("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await
        .expect("busy_timeout")
        .get(0);
    (journal, synchronous, foreign_keys, busy)
}

#[tokio::test]
async fn pragmas_are_in_force_on_writer_and_readers() {
    let (_dir, storage) = sqlite().await;
    let expected = ("wal".to_owned(), 2, 1, 5_000);
    let on_writer = storage
        .write(|conn| Box::pin(async move { Ok(pragmas(conn).await) }))
        .await
        .expect("writer pragmas");
    assert_eq!(
        on_writer, expected,
        "journal_mode, synchronous (2 = FULL), foreign_keys, busy_timeout"
    );
    let mut reader = storage.reader().await.expect("reader");
    assert_eq!(pragmas(&mut reader).await, expected);

    // Readers are query-only: every write goes through the group-commit writer.
    let err = sqlx::query("INSERT INTO webhook_deliveries VALUES ('x', 'y', 0)")
        .execute(&mut *reader)
        .await
        .expect_err("must be refused");
    assert!(
        err.to_string().contains("readonly") || err.to_string().contains("read-only"),
        "{err}"
    );
    drop(reader);
    storage.close().await;
}

#[tokio::test]
async fn foreign_keys_are_enforced() {
    let (_dir, storage) = sqlite().await;
    let err = storage
        .write(|conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO flag_changes (flag_id, enabled, rollout, actor, changed_at) VALUES (999, 1, 100, 'a', 0)")
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
        .expect_err("must be refused");
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    storage.close().await;
}

/// Occupies the writer so that writes sent meanwhile queue up and form one batch.
fn hold_the_writer(storage: &Storage) -> tokio::task::JoinHandle<Result<(), StorageError>> {
    let storage = storage.clone();
    tokio::spawn(async move {
        storage
            .write(|_conn| {
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok(())
                })
            })
            .await
    })
}

#[tokio::test]
async fn concurrent_writes_share_commits() {
    let (_dir, storage) = sqlite().await;
    let before = storage.write_stats();
    let tasks: Vec<_> = (0..64)
        .map(|n| {
            let storage = storage.clone();
            tokio::spawn(async move { storage.append_audit(entry(Some("shop"), None, n)).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("append");
    }
    let after = storage.write_stats();
    assert_eq!(after.writes - before.writes, 64);
    assert!(
        after.commits - before.commits < 64,
        "64 concurrent writes took {} commits",
        after.commits - before.commits
    );
    assert_eq!(
        storage.list_audit(&everything()).await.expect("list").len(),
        64
    );
    storage.close().await;
}

#[tokio::test]
async fn a_failing_or_panicking_write_does_not_affect_its_batch() {
    let (_dir, storage) = sqlite().await;
    let before = storage.write_stats();
    let holder = hold_the_writer(&storage);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let storage = storage.clone();
            tokio::spawn(async move {
                storage
                    .write(move |conn| {
                        Box::pin(async move {
                            let appended =
                                append_audit(conn, &entry(Some("shop"), None, n)).await?;
                            match n % 5 {
                                1 => Err(StorageError::conflict(format!("write {n} lost"))),
                                2 => {
                                    // A statement the database refuses, after a successful one.
                                    sqlx::query("INSERT INTO locks (app) VALUES ('x')")
                                        .execute(conn)
                                        .await?;
                                    Ok(appended.id)
                                }
                                3 if n == 3 => panic!("write {n} panics"),
                                _ => Ok(appended.id),
                            }
                        })
                    })
                    .await
            })
        })
        .collect();
    holder.await.expect("holder").expect("holder write");
    let mut kept = Vec::new();
    for (n, task) in tasks.into_iter().enumerate() {
        match (n % 5, task.await.expect("task")) {
            (1, Err(StorageError::Conflict { what })) => {
                assert_eq!(what, format!("write {n} lost"))
            }
            (2, Err(StorageError::Database(_))) => {}
            (3, Err(StorageError::WritePanicked)) if n == 3 => {}
            (_, Ok(id)) => kept.push(id),
            (_, other) => panic!("write {n}: unexpected {other:?}"),
        }
    }
    let after = storage.write_stats();
    // The holder commits alone; the 20 writes queued behind it share the next commit.
    assert_eq!(after.writes - before.writes, 21);
    assert!(
        after.commits - before.commits <= 2,
        "{before:?} -> {after:?}"
    );
    let mut listed: Vec<i64> = storage
        .list_audit(&everything())
        .await
        .expect("list")
        .iter()
        .map(|e| e.id)
        .collect();
    listed.sort_unstable();
    kept.sort_unstable();
    assert_eq!(kept.len(), 20 - 4 - 4 - 1);
    assert_eq!(listed, kept, "exactly the successful writes are stored");
    storage.close().await;
}

#[tokio::test]
async fn backup_is_a_readable_copy_taken_while_writing() {
    let (dir, storage) = sqlite().await;
    let writer = {
        let storage = storage.clone();
        tokio::spawn(async move {
            for n in 0..400 {
                storage
                    .append_audit(entry(Some("shop"), Some("production"), n))
                    .await
                    .expect("append");
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let target = dir.path().join("backup.db");
    storage.backup_to(&target).await.expect("backup");
    writer.await.expect("writer");

    let err = storage
        .backup_to(&target)
        .await
        .expect_err("must be refused");
    assert!(matches!(err, StorageError::Invalid { .. }), "{err:?}");

    let copy = Storage::connect(&format!("sqlite://{}", target.display()))
        .await
        .expect("open copy");
    copy.migrate()
        .await
        .expect("the copy has the migrations table already");
    let entries = copy.list_audit(&everything()).await.expect("read copy");
    // A consistent snapshot: a prefix of the appends, without holes.
    let mut ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=ids.len() as i64).collect::<Vec<_>>());
    assert_eq!(
        storage
            .list_audit(&everything())
            .await
            .expect("original")
            .len(),
        400
    );
    copy.close().await;
    storage.close().await;
}

#[tokio::test]
async fn the_writer_recovers_from_a_broken_batch() {
    let (_dir, storage) = sqlite().await;
    // A write that ends the writer's transaction behind its back makes COMMIT fail.
    let err = storage
        .write(|conn| {
            Box::pin(async move {
                sqlx::query("ROLLBACK").execute(conn).await?;
                Ok(())
            })
        })
        .await
        .expect_err("the batch cannot commit");
    assert!(matches!(err, StorageError::BatchFailed(_)), "{err:?}");
    // The writer reconnects and goes on.
    storage
        .append_audit(entry(Some("shop"), None, 1))
        .await
        .expect("writes work again");
    assert_eq!(
        storage.list_audit(&everything()).await.expect("list").len(),
        1
    );
    storage.ping().await.expect("ping");
    storage.close().await;
}

#[tokio::test]
async fn the_write_probe_fails_when_reads_work_but_writes_do_not() {
    let (_dir, storage) = sqlite().await;
    storage.ping().await.expect("reads work");
    // The writer's connection refuses writes from now on, as a full disk would.
    storage
        .write(|conn| {
            Box::pin(async move {
                sqlx::query("PRAGMA query_only = ON").execute(conn).await?;
                Ok(())
            })
        })
        .await
        .expect("pragma");
    storage.ping().await.expect("reads still work");
    let error = storage
        .ping_write()
        .await
        .expect_err("the write probe fails");
    assert!(error.to_string().contains("readonly"), "{error}");
    // Within the throttle window the answer is the same, without another write.
    assert!(storage.ping_write().await.is_err());
    storage.close().await;
}
