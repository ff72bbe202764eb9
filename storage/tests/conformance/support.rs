//! Runs each test body against SQLite (always) and PostgreSQL (when
//! `GREENLIGHT_TEST_POSTGRES_URL` is set; then an unreachable server fails the test).

use std::future::Future;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

use chrono::{DateTime, TimeZone, Utc};
use futures::FutureExt;
use greenlight_commands::{AppName, CommitSha, EnvironmentName};
use greenlight_storage::{NewRelease, Release, Storage};
use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;

pub const POSTGRES_URL_VAR: &str = "GREENLIGHT_TEST_POSTGRES_URL";

/// Runs `test` once per backend, each on a fresh, migrated database.
pub async fn each_backend<F, Fut>(test: F)
where
    F: Fn(Storage) -> Fut,
    Fut: Future<Output = ()>,
{
    let (_dir, storage) = sqlite().await;
    run_named("SQLite", storage, &test).await;

    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => {
            let database = PgDatabase::create(&url).await;
            let storage = Storage::connect(&database.url)
                .await
                .unwrap_or_else(|e| panic!("connecting to the test database failed: {e}"));
            storage.migrate().await.expect("migrating PostgreSQL");
            let outcome = AssertUnwindSafe(run_named("PostgreSQL", storage, &test))
                .catch_unwind()
                .await;
            database.drop().await;
            if let Err(panic) = outcome {
                std::panic::resume_unwind(panic);
            }
        }
        _ => note_postgres_not_tested(),
    }
}

async fn run_named<F, Fut>(backend: &str, storage: Storage, test: &F)
where
    F: Fn(Storage) -> Fut,
    Fut: Future<Output = ()>,
{
    let outcome = AssertUnwindSafe(test(storage.clone())).catch_unwind().await;
    storage.close().await;
    if let Err(panic) = outcome {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        panic!("[{backend}] {message}");
    }
}

fn note_postgres_not_tested() {
    static NOTE: Once = Once::new();
    NOTE.call_once(|| {
        // Straight to the stderr handle: the test harness captures `eprintln!`.
        let _ = writeln!(
            std::io::stderr(),
            "note: {POSTGRES_URL_VAR} is not set; storage tests ran on SQLite only, \
             PostgreSQL was NOT tested"
        );
    });
}

/// A migrated SQLite database in a temporary directory (kept while the `TempDir` lives).
pub async fn sqlite() -> (TempDir, Storage) {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::connect(&sqlite_url(&dir))
        .await
        .expect("open SQLite");
    storage.migrate().await.expect("migrate SQLite");
    (dir, storage)
}

pub fn sqlite_url(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.path().join("greenlight.db").display())
}

/// A database of its own on the test server, so tests run in parallel without seeing each other.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create(admin_url: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "gl_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            Utc::now().timestamp_micros() % 1_000_000_000
        );
        let mut admin = PgConnection::connect(admin_url).await.unwrap_or_else(|e| {
            panic!("{POSTGRES_URL_VAR} is set but PostgreSQL cannot be reached: {e}")
        });
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} failed: {e}"));
        admin.close().await.ok();
        let mut url = url::Url::parse(admin_url).expect("a URL");
        url.set_path(&format!("/{name}"));
        Self {
            admin_url: admin_url.to_owned(),
            name,
            url: url.to_string(),
        }
    }

    async fn drop(self) {
        if let Ok(mut admin) = PgConnection::connect(&self.admin_url).await {
            let _ = admin
                .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
                .await;
            admin.close().await.ok();
        }
    }
}

/// A fixed instant plus `seconds`, with millisecond precision like the database.
pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0)
        .single()
        .expect("valid")
        + chrono::Duration::seconds(seconds)
}

pub fn app(name: &str) -> AppName {
    AppName::parse(name).expect("app name")
}

pub fn env(name: &str) -> EnvironmentName {
    EnvironmentName::parse(name).expect("environment name")
}

/// A distinct full SHA per number.
pub fn sha(n: u32) -> CommitSha {
    CommitSha::parse(&format!("{n:08x}{}", "a".repeat(32))).expect("sha")
}

pub fn new_release(app_name: &str, n: u32, created_at: DateTime<Utc>) -> NewRelease {
    NewRelease {
        app: app(app_name),
        sha: sha(n),
        image: format!("ghcr.io/acme/{app_name}:{}", sha(n)),
        author: Some("alice".to_owned()),
        message: Some(format!("Change {n}")),
        git_ref: Some("refs/heads/main".to_owned()),
        commit_url: None,
        ci_url: Some(format!("https://ci.example/run/{n}")),
        committed_at: Some(created_at - chrono::Duration::minutes(5)),
        created_at,
    }
}

pub async fn release(
    storage: &Storage,
    app_name: &str,
    n: u32,
    created_at: DateTime<Utc>,
) -> Release {
    storage
        .insert_release(new_release(app_name, n, created_at))
        .await
        .expect("insert release")
        .into_inner()
}
