//! A database that a test opens more than once, as replicas do: a fresh PostgreSQL database
//! when `GREENLIGHT_TEST_POSTGRES_URL` is set (then an unreachable server fails the test), else
//! a SQLite file in a temporary folder.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;

pub const POSTGRES_URL_VAR: &str = "GREENLIGHT_TEST_POSTGRES_URL";

pub struct SharedDatabase {
    /// What `Storage::connect` and `[database] url` take.
    pub url: String,
    /// Holds the SQLite file; removed when the test ends.
    _dir: TempDir,
    /// PostgreSQL: the server's URL and the database's name, to drop it.
    postgres: Option<(String, String)>,
}

impl SharedDatabase {
    pub async fn create() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        match std::env::var(POSTGRES_URL_VAR) {
            Ok(admin_url) if !admin_url.trim().is_empty() => {
                let name = unique_name();
                let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
                    panic!("{POSTGRES_URL_VAR} is set but PostgreSQL cannot be reached: {e}")
                });
                admin
                    .execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .unwrap_or_else(|e| panic!("CREATE DATABASE {name} failed: {e}"));
                admin.close().await.ok();
                let mut url = url::Url::parse(&admin_url).expect("a URL");
                url.set_path(&format!("/{name}"));
                Self {
                    url: url.to_string(),
                    _dir: dir,
                    postgres: Some((admin_url, name)),
                }
            }
            _ => Self {
                url: format!("sqlite://{}", dir.path().join("shared.db").display()),
                _dir: dir,
                postgres: None,
            },
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// Drops the PostgreSQL database (every connection to it must be closed or is cut).
    pub async fn remove(self) {
        if let Some((admin_url, name)) = self.postgres {
            if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                let _ = admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await;
                admin.close().await.ok();
            }
        }
    }
}

fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "gl_e2e_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        chrono::Utc::now().timestamp_micros() % 1_000_000_000
    )
}
