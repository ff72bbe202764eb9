//! `Storage`: the handle the rest of Greenlight holds, chosen by the database URL.

use std::path::Path;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection};

use crate::opening::{Ends, Left, Opening};
use crate::writer::{Counters, WriteStats, Writer};
use crate::{sqlite, StorageError};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// Connections per replica on PostgreSQL; the server is shared by every replica.
const POSTGRES_CONNECTIONS: u32 = 10;
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How often [`Storage::ping_write`] really writes; calls in between get the last answer.
pub const WRITE_PROBE_EVERY: Duration = Duration::from_secs(1);

/// Which database a `Storage` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    fn from_url(url: &str) -> Result<Self, StorageError> {
        let scheme = url.split_once(':').map(|(scheme, _)| scheme);
        match scheme {
            Some("sqlite") => Ok(Backend::Sqlite),
            Some("postgres" | "postgresql") => Ok(Backend::Postgres),
            _ => Err(StorageError::invalid(
                "database url",
                "expected sqlite://PATH or postgres://USER@HOST/DB",
            )),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        })
    }
}

/// Greenlight's database. Cheap to clone; every clone shares the same connections and writer.
///
/// Reads go to a pool. Writes go through [`Storage::write`]: on SQLite to the single group-commit
/// writer, on PostgreSQL to a transaction on a pooled connection.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    /// The normalized URL; on PostgreSQL it may hold a password, so it is never logged.
    url: String,
    /// SQLite: read-only connections. PostgreSQL: every connection.
    pool: AnyPool,
    /// SQLite only.
    writer: Option<Writer>,
    counters: Arc<Counters>,
    /// The last write probe: when, and its failure if it failed (see [`Storage::ping_write`]).
    write_probe: tokio::sync::Mutex<Option<(Instant, Option<String>)>>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("backend", &self.inner.backend)
            .finish_non_exhaustive()
    }
}

fn install_drivers() {
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
}

impl Storage {
    /// Opens `sqlite://PATH` / `sqlite:PATH` (the file is created if missing) or
    /// `postgres://…` / `postgresql://…`. Does not migrate; call [`Storage::migrate`].
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        install_drivers();
        let backend = Backend::from_url(url)?;
        let counters = Arc::new(Counters::default());
        let (url, pool, writer) = match backend {
            Backend::Sqlite => {
                let url = sqlite::normalize_url(url)?;
                // The writer's connection opens first: it creates the file and switches it to
                // WAL before any reader sees it.
                let conn = sqlite::open(&url).await?;
                let pool = sqlite::read_pool(&url).await?;
                let writer = Writer::spawn(conn, url.clone(), Arc::clone(&counters));
                (url, pool, Some(writer))
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(POSTGRES_CONNECTIONS)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(url)
                    .await?;
                (url.to_owned(), pool, None)
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                backend,
                url,
                pool,
                writer,
                counters,
                write_probe: tokio::sync::Mutex::new(None),
            }),
        })
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Applies the embedded migrations of this backend's dialect.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        match self.inner.backend {
            Backend::Sqlite => {
                // Readers are query-only; migrations get a read-write connection of their own.
                let mut conn = sqlite::open(&self.inner.url).await?;
                SQLITE_MIGRATIONS.run(&mut conn).await?;
                conn.close().await?;
            }
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.inner.pool).await?,
        }
        Ok(())
    }

    /// A trivial query, for `/api/v1/status`: fails when the database (or the writer) is gone.
    pub async fn ping(&self) -> Result<(), StorageError> {
        if let Some(writer) = &self.inner.writer {
            if !writer.is_running() {
                return Err(StorageError::Closed);
            }
        }
        // Bounded, so a status page answers "database: error" instead of hanging on a dead server.
        match tokio::time::timeout(
            PING_TIMEOUT,
            sqlx::query("SELECT 1").execute(&self.inner.pool),
        )
        .await
        {
            Ok(result) => result.map(drop).map_err(StorageError::from),
            Err(_) => Err(sqlx::Error::PoolTimedOut.into()),
        }
    }

    /// Proves the database takes writes, which [`Self::ping`] cannot: a full disk or a
    /// read-only file still answers reads. One committed write at most every
    /// [`WRITE_PROBE_EVERY`], shared by concurrent callers, so an unauthenticated status page
    /// cannot make the writer busy; bounded by the ping timeout.
    pub async fn ping_write(&self) -> Result<(), StorageError> {
        let mut last = self.inner.write_probe.lock().await;
        if let Some((at, failure)) = &*last {
            if at.elapsed() < WRITE_PROBE_EVERY {
                return match failure {
                    None => Ok(()),
                    Some(message) => Err(StorageError::Database(sqlx::Error::Protocol(
                        message.clone(),
                    ))),
                };
            }
        }
        let now = chrono::Utc::now().timestamp_millis();
        let probe = self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO health_probes (id, checked_at) VALUES (1, $1) \
                     ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                )
                .bind(now)
                .execute(conn)
                .await?;
                Ok(())
            })
        });
        let outcome = match tokio::time::timeout(PING_TIMEOUT, probe).await {
            Ok(outcome) => outcome,
            Err(_) => Err(sqlx::Error::PoolTimedOut.into()),
        };
        *last = Some((
            Instant::now(),
            outcome.as_ref().err().map(ToString::to_string),
        ));
        outcome
    }

    /// Runs `work` as one atomic write and returns its value once it is committed.
    ///
    /// If `work` returns an error nothing it did is kept. Inside, use the operation functions of
    /// this crate's modules (they take `&mut AnyConnection`), so several changes and their outbox
    /// items commit together. `work` must only talk to the database: on SQLite it runs on the
    /// single writer, and anything slow in it delays every other write.
    ///
    /// ```no_run
    /// # use greenlight_storage::{audit, outbox, NewAuditEntry, NewOutboxItem, Storage, StorageError};
    /// # async fn example(storage: Storage, entry: NewAuditEntry, item: NewOutboxItem)
    /// # -> Result<(), StorageError> {
    /// // The release-log entry and the chat post commit together, or neither does.
    /// let (logged, queued) = storage
    ///     .write(move |conn| {
    ///         Box::pin(async move {
    ///             let logged = audit::append_audit(conn, &entry).await?;
    ///             let queued = outbox::enqueue_outbox(conn, &item).await?;
    ///             Ok((logged, queued))
    ///         })
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn write<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, StorageError>>
            + Send
            + 'static,
    {
        self.write_opening(move |opening| {
            Box::pin(async move {
                let conn = opening.begin().await?;
                work(conn).await
            })
        })
        .await
    }

    /// [`write`](Self::write) for a write that may send its first statements with the
    /// `BEGIN` of its transaction ([`Opening`]): the hot paths' batches, whose first
    /// statements are their reads.
    pub async fn write_opening<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Opening<'c>) -> BoxFuture<'c, Result<T, StorageError>> + Send + 'static,
    {
        if let Some(writer) = &self.inner.writer {
            return writer.write(work).await;
        }
        // PostgreSQL batches commits itself; each write is its own transaction.
        let mut tx = self.inner.pool.begin().await?;
        let ends = Ends::default();
        match work(Opening::new(&mut tx, Left::NOTHING, &ends)).await {
            Ok(value) => {
                tx.commit().await?;
                self.inner.counters.record_commit(1);
                Ok(value)
            }
            Err(e) => {
                tx.rollback().await?;
                Err(e)
            }
        }
    }

    /// A pooled connection for reads (query-only on SQLite); pass it to the modules' functions.
    pub async fn reader(&self) -> Result<PoolConnection<Any>, StorageError> {
        Ok(self.inner.pool.acquire().await?)
    }

    /// Commits and writes since start: shows group commit at work.
    pub fn write_stats(&self) -> WriteStats {
        self.inner.counters.snapshot()
    }

    /// A consistent copy of the SQLite database at `target`, taken while serving
    /// (`VACUUM INTO`). Refuses to overwrite an existing file.
    pub async fn backup_to(&self, target: &Path) -> Result<(), StorageError> {
        sqlite_only(self.inner.backend)?;
        let target = backup_target(target)?;
        vacuum_into(sqlite::open(&self.inner.url).await?, target).await
    }

    /// Copies the SQLite database at `url` to `target` (as [`Self::backup_to`]) without
    /// opening it as a server would: nothing is created or migrated, so a mistyped path or a
    /// file that is not Greenlight's is an error, never an empty backup.
    pub async fn backup_sqlite_file(url: &str, target: &Path) -> Result<(), StorageError> {
        install_drivers();
        sqlite_only(Backend::from_url(url)?)?;
        let target = backup_target(target)?;
        let url = sqlite::existing_file_url(url)?;
        let mut conn = sqlite::open_existing(&url).await?;
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'releases'",
        )
        .fetch_one(&mut conn)
        .await?;
        if tables == 0 {
            conn.close().await?;
            return Err(StorageError::invalid(
                "database url",
                "the file is not a Greenlight database (it has no release log)",
            ));
        }
        vacuum_into(conn, target).await
    }

    /// Commits queued writes, then closes every connection. Later calls fail with `Closed`.
    pub async fn close(&self) {
        if let Some(writer) = &self.inner.writer {
            writer.shutdown().await;
        }
        self.inner.pool.close().await;
    }
}

/// Backups copy a SQLite file; PostgreSQL has its own tools.
fn sqlite_only(backend: Backend) -> Result<(), StorageError> {
    if backend == Backend::Sqlite {
        return Ok(());
    }
    Err(StorageError::Unsupported {
        backend,
        hint: "backups copy a SQLite file; for PostgreSQL use pg_dump".to_owned(),
    })
}

/// Where a backup may be written: a new file (never over an existing one), as UTF-8 for SQL.
fn backup_target(target: &Path) -> Result<&str, StorageError> {
    if target.exists() {
        return Err(StorageError::invalid(
            "backup path",
            format!(
                "{} already exists; refusing to overwrite it",
                target.display()
            ),
        ));
    }
    target
        .to_str()
        .ok_or_else(|| StorageError::invalid("backup path", "the path must be valid UTF-8"))
}

/// A consistent copy of the database `conn` is open on, written to `target`.
async fn vacuum_into(mut conn: sqlx::AnyConnection, target: &str) -> Result<(), StorageError> {
    sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}
