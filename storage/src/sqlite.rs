//! SQLite connections: URL handling and the PRAGMAs every connection runs with (SPEC §8).

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Executor};

use crate::StorageError;

/// How many connections serve reads; writes never use them.
const READ_CONNECTIONS: u32 = 4;

/// Order matters: the busy timeout must be in force before switching to WAL, which takes a lock.
/// `synchronous=FULL` makes every commit fsync the WAL: what is acknowledged survives a power cut.
const PRAGMAS: [&str; 4] = [
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
];

/// Accepts `sqlite://path` and `sqlite:path` and makes sqlx create the file if it is missing.
pub(crate) fn normalize_url(url: &str) -> Result<String, StorageError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StorageError::invalid("database url", "expected sqlite://PATH"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory") {
        // Each connection would get its own empty database: the writer and readers would
        // not see each other's data.
        return Err(StorageError::invalid(
            "database url",
            "in-memory SQLite is not supported; give a file path such as sqlite://greenlight.db",
        ));
    }
    let has_mode = query.split('&').any(|p| p.starts_with("mode="));
    Ok(match (query.is_empty(), has_mode) {
        (_, true) => format!("sqlite://{path}?{query}"),
        (true, false) => format!("sqlite://{path}?mode=rwc"),
        (false, false) => format!("sqlite://{path}?{query}&mode=rwc"),
    })
}

/// The URL of an SQLite database that must already exist, opened without creating anything
/// (`mode=rw`): for commands like `backup` that read a database a server made, where a
/// mistyped path must be an error rather than a new empty file.
pub(crate) fn existing_file_url(url: &str) -> Result<String, StorageError> {
    let normalized = normalize_url(url)?;
    let rest = normalized.trim_start_matches("sqlite://");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !std::path::Path::new(path).is_file() {
        return Err(StorageError::invalid(
            "database url",
            format!(
                "there is no SQLite database at {path}; check database.url (or \
                 GREENLIGHT_DATABASE_URL) and the working directory"
            ),
        ));
    }
    let query: Vec<&str> = query
        .split('&')
        .filter(|part| !part.is_empty() && !part.starts_with("mode="))
        .chain(["mode=rw"])
        .collect();
    Ok(format!("sqlite://{path}?{}", query.join("&")))
}

fn options(url: &str) -> Result<AnyConnectOptions, sqlx::Error> {
    AnyConnectOptions::from_str(url)
}

async fn apply_pragmas(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    for pragma in PRAGMAS {
        conn.execute(pragma).await?;
    }
    Ok(())
}

/// A dedicated read-write connection: the writer's, and the ones migrations and backups use.
pub(crate) async fn open(url: &str) -> Result<AnyConnection, sqlx::Error> {
    let mut conn = options(url)?.connect().await?;
    apply_pragmas(&mut conn).await?;
    Ok(conn)
}

/// A connection to a database another process may be serving: no WAL switch (it already is),
/// only the busy timeout, so it waits for the server's writer rather than fail.
pub(crate) async fn open_existing(url: &str) -> Result<AnyConnection, sqlx::Error> {
    let mut conn = options(url)?.connect().await?;
    conn.execute("PRAGMA busy_timeout = 5000").await?;
    Ok(conn)
}

/// The pool for reads. `query_only` enforces that every write goes through the single writer
/// (a second writing connection would bypass group commit and meet `SQLITE_BUSY`).
pub(crate) async fn read_pool(url: &str) -> Result<AnyPool, sqlx::Error> {
    AnyPoolOptions::new()
        .max_connections(READ_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                apply_pragmas(conn).await?;
                conn.execute("PRAGMA query_only = ON").await?;
                Ok(())
            })
        })
        .connect_with(options(url)?)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_create_mode() {
        let cases = [
            ("sqlite://greenlight.db", "sqlite://greenlight.db?mode=rwc"),
            ("sqlite:greenlight.db", "sqlite://greenlight.db?mode=rwc"),
            ("sqlite:///data/gl.db", "sqlite:///data/gl.db?mode=rwc"),
            (
                "sqlite:///data/gl.db?cache=private",
                "sqlite:///data/gl.db?cache=private&mode=rwc",
            ),
            ("sqlite://gl.db?mode=rw", "sqlite://gl.db?mode=rw"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_url(input).expect(input), expected);
        }
    }

    #[test]
    fn existing_files_open_without_create_mode_and_missing_ones_are_errors() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("greenlight.db");
        let url = format!("sqlite://{}", path.display());
        let error = existing_file_url(&url).expect_err("no file yet");
        assert!(
            error.to_string().contains("there is no SQLite database at"),
            "{error}"
        );
        std::fs::write(&path, b"").expect("file");
        assert_eq!(
            existing_file_url(&format!("{url}?mode=rwc&cache=private")).expect("exists"),
            format!("sqlite://{}?cache=private&mode=rw", path.display())
        );
    }

    #[test]
    fn memory_and_foreign_urls_are_refused() {
        for url in [
            "sqlite::memory:",
            "sqlite://",
            "sqlite://x.db?mode=memory",
            "x.db",
        ] {
            assert!(normalize_url(url).is_err(), "{url} accepted");
        }
    }
}
