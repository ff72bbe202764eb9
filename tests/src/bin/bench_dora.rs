//! Benchmark: DORA metrics (SPEC §14) over a million releases.
//! Usage: `bench_dora [RELEASES] [RUNS]` (build it with `--release`).
//!
//! Seeds RELEASES releases (default 1,000,000) of 10 apps over two years into a temporary
//! SQLite file (and a fresh PostgreSQL database when `GREENLIGHT_TEST_POSTGRES_URL` is set),
//! each deployed to staging and production; one production deploy in twenty turns faulty and
//! is rolled back 5 minutes later. Rows are written by SQL, one transaction per statement
//! over 100,000 releases. Then times RUNS (default 20) DORA queries of one app's production for a 30-day
//! and a 365-day window ending at the newest release.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use greenlight_commands::{AppName, EnvironmentName};
use greenlight_storage::{Backend, DoraWindow, Storage};
use greenlight_tests::database::{SharedDatabase, POSTGRES_URL_VAR};

const APPS: i64 = 10;
const SPAN_DAYS: i64 = 730;
const DAY_MS: i64 = 86_400_000;
const CHUNK: i64 = 100_000;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let releases: i64 = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("RELEASES"));
    let runs: usize = args.next().map_or(20, |n| n.parse().expect("RUNS"));
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = format!("sqlite://{}", dir.path().join("dora.db").display());
    bench(&sqlite, releases, runs).await;
    if std::env::var(POSTGRES_URL_VAR).is_ok_and(|url| !url.trim().is_empty()) {
        let database = SharedDatabase::create().await;
        bench(&database.url, releases, runs).await;
        database.remove().await;
    } else {
        println!("({POSTGRES_URL_VAR} is not set: PostgreSQL not measured)");
    }
}

async fn bench(url: &str, releases: i64, runs: usize) {
    let storage = Storage::connect(url).await.expect("open the database");
    storage.migrate().await.expect("migrate");
    let backend = storage.backend();
    let step = SPAN_DAYS * DAY_MS / releases;
    let start = Utc::now().timestamp_millis() - SPAN_DAYS * DAY_MS;
    let seeding = Instant::now();
    let mut low = 1;
    while low <= releases {
        let high = (low + CHUNK - 1).min(releases);
        seed(&storage, backend, low, high, start, step).await;
        low = high + 1;
    }
    if backend == Backend::Postgres {
        // What autovacuum would do soon after such a load.
        execute(&storage, "ANALYZE".to_owned(), Vec::new()).await;
    }
    let rows = count(&storage, "SELECT COUNT(*) FROM deployments").await;
    println!(
        "{backend}: seeded {releases} releases and {rows} deployments in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    let end = DateTime::from_timestamp_millis(start + releases * step).expect("a time");
    for days in [30, 365] {
        let window = DoraWindow {
            app: AppName::parse("app-3").expect("app"),
            environment: EnvironmentName::parse("production").expect("environment"),
            from: end - chrono::Duration::days(days),
            to: end,
        };
        let metrics = storage.dora_metrics(&window).await.expect("warm-up");
        let mut times: Vec<Duration> = (0..runs.max(1)).map(|_| Duration::ZERO).collect();
        for time in &mut times {
            let began = Instant::now();
            storage.dora_metrics(&window).await.expect("dora metrics");
            *time = began.elapsed();
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{backend}: {days}-day window ({} deployments, {} failed, {} restores): \
             median {:.1} ms, max {:.1} ms over {} runs",
            metrics.deployments,
            metrics.failed,
            metrics.time_to_restore.samples,
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1]),
            times.len()
        );
    }
    storage.close().await;
}

/// Releases `low..=high` (release `i` is app `i % 10`, built `i × step` after `start`, its
/// commit 30 minutes earlier except every third) with their deployments, in one write.
async fn seed(storage: &Storage, backend: Backend, low: i64, high: i64, start: i64, step: i64) {
    let (numbers, hex) = match backend {
        Backend::Sqlite => (
            "(WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) \
             SELECT i FROM n) AS n",
            "printf('%040x', i)",
        ),
        Backend::Postgres => (
            "(SELECT generate_series($1::BIGINT, $2::BIGINT) AS i) AS n",
            "lpad(to_hex(i), 40, '0')",
        ),
    };
    // The eighth release in twenty of each app turns faulty in production.
    let faulty = |table: &str| format!("({table}.id / {APPS}) % 20 = 7");
    let (release, failed) = (faulty("r"), faulty("f"));
    let statements = [
        (
            format!(
                "INSERT INTO releases (app, sha, image, author, message, git_ref, \
                 committed_at, created_at) \
                 SELECT 'app-' || (i % {APPS}), {hex}, 'ghcr.io/acme/app:' || {hex}, 'alice', \
                 'change ' || i, 'refs/heads/main', \
                 CASE WHEN i % 3 = 0 THEN NULL ELSE $3 + i * $4 - 1800000 END, $3 + i * $4 \
                 FROM {numbers}"
            ),
            vec![low, high, start, step],
        ),
        (
            "INSERT INTO deployments (release_id, app, environment, kind, state, created_at, \
             updated_at, healthy_at, finished_at) \
             SELECT r.id, r.app, 'staging', 'deploy', 'superseded', r.created_at + 60000, \
             r.created_at + 120000, r.created_at + 120000, r.created_at + 120000 \
             FROM releases r WHERE r.id BETWEEN $1 AND $2"
                .to_owned(),
            vec![low, high],
        ),
        (
            format!(
                "INSERT INTO deployments (release_id, app, environment, kind, state, \
                 created_at, updated_at, healthy_at, faulty_at, finished_at) \
                 SELECT r.id, r.app, 'production', 'deploy', \
                 CASE WHEN {release} THEN 'rolled_back' ELSE 'superseded' END, \
                 r.created_at + 300000, r.created_at + 600000, \
                 CASE WHEN {release} THEN NULL ELSE r.created_at + 600000 END, \
                 CASE WHEN {release} THEN r.created_at + 600000 END, r.created_at + 600000 \
                 FROM releases r WHERE r.id BETWEEN $1 AND $2"
            ),
            vec![low, high],
        ),
        // The rollback to the app's release before the faulty one, healthy 5 minutes later.
        (
            format!(
                "INSERT INTO deployments (release_id, app, environment, kind, state, \
                 previous_sha, created_at, updated_at, healthy_at, finished_at) \
                 SELECT p.id, p.app, 'production', 'rollback', 'superseded', f.sha, \
                 f.created_at + 660000, f.created_at + 900000, f.created_at + 900000, \
                 f.created_at + 900000 \
                 FROM releases f JOIN releases p ON p.id = f.id - {APPS} \
                 WHERE f.id BETWEEN $1 AND $2 AND {failed}"
            ),
            vec![low, high],
        ),
    ];
    for (sql, binds) in statements {
        execute(storage, sql, binds).await;
    }
}

/// One statement in a write of its own.
async fn execute(storage: &Storage, sql: String, binds: Vec<i64>) {
    storage
        .write(move |conn| {
            Box::pin(async move {
                let mut query = sqlx::query(&sql);
                for bind in binds {
                    query = query.bind(bind);
                }
                query.execute(&mut *conn).await?;
                Ok(())
            })
        })
        .await
        .unwrap_or_else(|error| panic!("seeding failed: {error}"));
}

async fn count(storage: &Storage, sql: &str) -> i64 {
    let mut reader = storage.reader().await.expect("a reader");
    sqlx::query_scalar(sql)
        .fetch_one(&mut *reader)
        .await
        .expect("count")
}
