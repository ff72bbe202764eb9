//! Release log read latency with a million rows (SPEC §9: "release log queries under 5 ms with
//! a million rows"), on a SQLite file.
//!
//! `cargo bench -p greenlight-storage --bench release_log`. Fills 1,000,000 audit entries
//! (`GREENLIGHT_BENCH_AUDIT_ROWS`) and 100,000 releases with 200,000 deployments and 100,000
//! approval requests over 10 apps, then reports p50/p99 of the read queries the API serves.

use std::future::Future;
use std::time::{Duration, Instant};

use greenlight_commands::{AppName, EnvironmentName};
use greenlight_storage::{AuditFilter, ReleaseFilter, Storage};

const RELEASES: i64 = 100_000;
const ITERATIONS: usize = 300;

fn main() {
    let audit_rows: i64 = std::env::var("GREENLIGHT_BENCH_AUDIT_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(bench(audit_rows));
}

async fn bench(audit_rows: i64) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir under target/");
    let url = format!("sqlite://{}", dir.path().join("release_log.db").display());
    let storage = Storage::connect(&url).await.expect("open SQLite");
    storage.migrate().await.expect("migrate");

    let started = Instant::now();
    fill(&storage, audit_rows).await;
    println!(
        "filled {audit_rows} audit entries, {RELEASES} releases in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let app = |name: &str| Some(name.to_owned());
    let audit =
        |app: Option<String>, environment: Option<String>, before_id: Option<i64>| AuditFilter {
            app,
            environment,
            before_id,
            limit: 50,
        };
    let releases = |app: Option<String>, environment: Option<String>| ReleaseFilter {
        app,
        environment,
        limit: 20,
    };
    println!("{:<48} {:>9} {:>9}", "query", "p50 ms", "p99 ms");
    let prod = || Some("production".to_owned());
    let middle = Some(audit_rows / 2);
    let cases: [(&str, AuditFilter); 4] = [
        (
            "audit: app+environment, 50 newest",
            audit(app("app-3"), prod(), None),
        ),
        ("audit: app, 50 newest", audit(app("app-3"), None, None)),
        ("audit: everything, 50 newest", audit(None, None, None)),
        (
            "audit: app+environment, page in the middle",
            audit(app("app-3"), prod(), middle),
        ),
    ];
    for (name, filter) in cases {
        report(name, || {
            let storage = storage.clone();
            let filter = filter.clone();
            async move { storage.list_audit(&filter).await.map(|r| r.len()) }
        })
        .await;
    }
    let cases: [(&str, ReleaseFilter); 3] = [
        ("releases: all apps, 20 newest", releases(None, None)),
        ("releases: app, 20 newest", releases(app("app-3"), None)),
        (
            "releases: app+environment, 20 newest",
            releases(app("app-3"), prod()),
        ),
    ];
    for (name, filter) in cases {
        report(name, || {
            let storage = storage.clone();
            let filter = filter.clone();
            async move { storage.list_releases(&filter).await.map(|r| r.len()) }
        })
        .await;
    }
    let (shop, production) = (
        AppName::parse("app-3").expect("app"),
        EnvironmentName::parse("production").expect("environment"),
    );
    report("environment status", || {
        let (storage, shop, production) = (storage.clone(), shop.clone(), production.clone());
        async move {
            storage
                .environment_status(&shop, &production)
                .await
                .map(|s| usize::from(s.current.is_some()))
        }
    })
    .await;
    storage.close().await;
}

async fn report<F, Fut, E>(name: &str, query: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<usize, E>>,
    E: std::fmt::Debug,
{
    let mut times: Vec<Duration> = Vec::with_capacity(ITERATIONS);
    let mut rows = 0;
    for _ in 0..ITERATIONS {
        let began = Instant::now();
        rows = query().await.expect("query");
        times.push(began.elapsed());
    }
    times.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{:<48} {:>9.3} {:>9.3}   ({rows} rows)",
        name,
        ms(times[ITERATIONS / 2]),
        ms(times[ITERATIONS * 99 / 100])
    );
}

/// Bulk rows written by SQL in one write each: a million single writes would take minutes.
async fn fill(storage: &Storage, audit_rows: i64) {
    let statements = [
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO releases (app, sha, image, author, message, git_ref, created_at) \
         SELECT 'app-' || (i % 10), printf('%040x', i), 'ghcr.io/acme/app:' || printf('%040x', i), \
         'alice', 'change ' || i, 'refs/heads/main', 1700000000000 + i * 60000 FROM n",
        "INSERT INTO deployments (release_id, app, environment, kind, state, smoke, created_at, \
         updated_at, healthy_at, finished_at) \
         SELECT id, app, e.name, 'deploy', 'healthy', \
         '[{\"name\":\"health\",\"status\":\"passed\",\"duration_ms\":12,\"detail\":\"200 OK\"}]', \
         created_at + e.offset, created_at + e.offset, created_at + e.offset, created_at + e.offset \
         FROM releases, (SELECT 'staging' AS name, 1000 AS offset UNION ALL \
         SELECT 'production', 5000) AS e WHERE $1 > 0",
        "INSERT INTO approval_requests (release_id, app, environment, state, source, policy, \
         required_approvals, opens_at, expires_at, created_at, updated_at) \
         SELECT id, app, 'production', 'approved', 'ci', '{}', 1, created_at, created_at + 86400000, \
         created_at + 2000, created_at + 3000 FROM releases WHERE $1 > 0",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO audit_log (occurred_at, actor, app, environment, sha, kind, detail) \
         SELECT 1700000000000 + i * 1000, 'alice', 'app-' || (i % 10), \
         CASE i % 3 WHEN 0 THEN 'staging' WHEN 1 THEN 'production' ELSE NULL END, \
         printf('%040x', i % 100000), 'deployment.state_changed', '{\"n\":' || i || '}' FROM n",
    ];
    for (sql, count) in statements.into_iter().zip([RELEASES, 1, 1, audit_rows]) {
        storage
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(sql).bind(count).execute(conn).await?;
                    Ok(())
                })
            })
            .await
            .expect("fill");
    }
}
