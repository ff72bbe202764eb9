//! One `greenlight serve` per SQLite file (SPEC §11). Two servers on one file would each think
//! they are the only replica: both would deliver the outbox and time out each other's deploys.
//! `serve` holds an exclusive lock on `<database>.lock` while it runs; the operating system
//! drops it when the process ends, however it ends. `backup` and the read-only commands take no
//! lock, so they work beside a running server.
//!
//! The lock is on a file of its own, not on the database: SQLite's own locks are POSIX record
//! locks on the database file, which a second descriptor of that file could disturb.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::config::{DatabaseBackend, DatabaseUrl};

/// Held while serving; dropping it (or the process ending) releases the file.
#[derive(Debug)]
pub struct ServeLock {
    _file: File,
    path: PathBuf,
}

impl ServeLock {
    /// Locks `url`'s SQLite file for this process, noting its pid in the lock file for whoever
    /// is refused next. `None` for PostgreSQL, which several replicas share by design.
    pub fn acquire(url: &DatabaseUrl) -> anyhow::Result<Option<Self>> {
        if url.backend() != DatabaseBackend::Sqlite {
            return Ok(None);
        }
        let Some(database) = sqlite_path(url.expose()) else {
            return Ok(None);
        };
        let path = lock_path(&database);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|error| {
                anyhow::anyhow!(
                    "cannot open {} to lock the database: {error}",
                    path.display()
                )
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut other = String::new();
                let _ = file.read_to_string(&mut other);
                let other = other.trim();
                let by = if other.is_empty() {
                    String::new()
                } else {
                    format!(" ({other})")
                };
                anyhow::bail!(
                    "{} is already being served by another greenlight process{by}. A SQLite \
                     database is for one process; to run several replicas, give them one \
                     PostgreSQL database (database.url = \"postgres://…\", see the README's \
                     \"Running several replicas\"). `greenlight backup` works beside the \
                     running server.",
                    database.display()
                );
            }
            Err(TryLockError::Error(error)) => {
                anyhow::bail!("cannot lock {}: {error}", path.display());
            }
        }
        // Only the holder writes, so whoever is refused reads a whole line.
        let note = format!(
            "pid {}, since {}\n",
            std::process::id(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(note.as_bytes()));
        if let Err(error) = written {
            tracing::warn!(%error, lock = %path.display(), "could not note the lock's holder");
        }
        Ok(Some(Self { _file: file, path }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The file of `sqlite://PATH?query` / `sqlite:PATH`.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(path: &Path) -> DatabaseUrl {
        DatabaseUrl::parse(&format!("sqlite://{}?mode=rwc", path.display())).expect("url")
    }

    #[test]
    fn a_second_server_on_one_file_is_refused_until_the_first_stops() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let database = dir.path().join("greenlight.db");
        let first = ServeLock::acquire(&url(&database))
            .expect("the first server locks")
            .expect("SQLite is locked");
        assert_eq!(first.path(), dir.path().join("greenlight.db.lock"));

        let refused = ServeLock::acquire(&url(&database)).expect_err("refused");
        let message = refused.to_string();
        assert!(message.contains("already being served"), "{message}");
        let pid = format!("pid {}", std::process::id());
        assert!(message.contains(&pid), "{message}");
        assert!(message.contains("PostgreSQL"), "{message}");

        drop(first);
        let again = ServeLock::acquire(&url(&database)).expect("free again");
        assert!(again.is_some());
    }

    #[test]
    fn postgres_takes_no_lock() {
        let url = DatabaseUrl::parse("postgres://postgres@127.0.0.1/test").expect("url");
        assert!(ServeLock::acquire(&url).expect("no error").is_none());
    }

    #[test]
    fn paths_come_from_either_url_form() {
        assert_eq!(
            sqlite_path("sqlite://data/g.db?mode=rwc"),
            Some(PathBuf::from("data/g.db"))
        );
        assert_eq!(sqlite_path("sqlite:g.db"), Some(PathBuf::from("g.db")));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
