//! Group commit for SQLite: one task owns the only writing connection and commits many writes
//! with one fsync (SPEC §8).
//!
//! The writer takes the first queued write, then whatever else is already queued (up to
//! `MAX_BATCH`) without waiting, and runs them in one `BEGIN IMMEDIATE` transaction, each inside
//! its own savepoint so a failing write is rolled back alone. Nobody is answered before `COMMIT`
//! has returned, so an acknowledged write is on disk. Under load the queue fills while a commit
//! is being fsynced, so batches grow exactly when it matters; when idle a write commits at once.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use sqlx::{AnyConnection, Connection};
use tokio::sync::{mpsc, oneshot};

use crate::opening::{Ends, Left, Opening};
use crate::{sqlite, StorageError};

/// Upper bound on writes per transaction, so one commit never holds the lock for long.
const MAX_BATCH: usize = 256;
/// Writes waiting for the writer; callers beyond this wait to enqueue (backpressure).
const QUEUE: usize = 4096;

/// Commits and writes counted since start, for tests, benchmarks and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteStats {
    /// Transactions committed.
    pub commits: u64,
    /// Writes that were part of a committed transaction (including ones rolled back to their
    /// savepoint because they failed).
    pub writes: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    commits: AtomicU64,
    writes: AtomicU64,
}

impl Counters {
    pub(crate) fn record_commit(&self, writes: usize) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes as u64, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> WriteStats {
        WriteStats {
            commits: self.commits.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }
}

/// One queued write with its result type erased, so writes of any type share one queue.
trait Job: Send {
    /// Runs the write on the writer's connection (inside its savepoint, or opening the
    /// transaction) and keeps its outcome. Returns whether its changes should be kept.
    fn run<'c>(&'c mut self, opening: Opening<'c>) -> BoxFuture<'c, bool>;
    /// Answers the caller once the batch's fate is known.
    fn finish(self: Box<Self>, batch: Result<(), &Arc<sqlx::Error>>);
}

struct TypedJob<T, F> {
    work: Option<F>,
    outcome: Option<Result<T, StorageError>>,
    reply: oneshot::Sender<Result<T, StorageError>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(Opening<'c>) -> BoxFuture<'c, Result<T, StorageError>> + Send + 'static,
{
    fn run<'c>(&'c mut self, opening: Opening<'c>) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let Some(work) = self.work.take() else {
                return false;
            };
            // A panicking write must not take the writer (and every other write) down with it.
            let outcome = match AssertUnwindSafe(async move { work(opening).await })
                .catch_unwind()
                .await
            {
                Ok(outcome) => outcome,
                Err(_) => Err(StorageError::WritePanicked),
            };
            let keep = outcome.is_ok();
            self.outcome = Some(outcome);
            keep
        })
    }

    fn finish(self: Box<Self>, batch: Result<(), &Arc<sqlx::Error>>) {
        let answer = match (self.outcome, batch) {
            // A write's own error explains it best, whether or not the batch committed.
            (Some(Err(own)), _) => Err(own),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(batch)) => Err(StorageError::BatchFailed(Arc::clone(batch))),
            (None, Ok(())) => Err(StorageError::Closed),
        };
        // The caller may have stopped waiting; the write happened all the same.
        let _ = self.reply.send(answer);
    }
}

enum Message {
    Job(Box<dyn Job>),
    Shutdown(oneshot::Sender<()>),
}

/// The handle `Storage` keeps; dropping every handle stops the writer after its queue drains.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Message>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Message::Job(_) => "Job",
            Message::Shutdown(_) => "Shutdown",
        })
    }
}

impl Writer {
    /// Starts the writer task on `conn`; `url` lets it reconnect after a failed batch.
    pub(crate) fn spawn(conn: AnyConnection, url: String, counters: Arc<Counters>) -> Self {
        let (queue, inbox) = mpsc::channel(QUEUE);
        tokio::spawn(run(inbox, Some(conn), url, counters));
        Self { queue }
    }

    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Opening<'c>) -> BoxFuture<'c, Result<T, StorageError>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = TypedJob {
            work: Some(work),
            outcome: None,
            reply,
        };
        self.queue
            .send(Message::Job(Box::new(job)))
            .await
            .map_err(|_| StorageError::Closed)?;
        answer.await.map_err(|_| StorageError::Closed)?
    }

    pub(crate) fn is_running(&self) -> bool {
        !self.queue.is_closed()
    }

    /// Stops accepting writes, commits what is queued, closes the connection.
    pub(crate) async fn shutdown(&self) {
        let (ack, done) = oneshot::channel();
        if self.queue.send(Message::Shutdown(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

async fn run(
    mut inbox: mpsc::Receiver<Message>,
    mut conn: Option<AnyConnection>,
    url: String,
    counters: Arc<Counters>,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut acks = Vec::new();
    while let Some(first) = inbox.recv().await {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Job(job) => batch.push(job),
                Message::Shutdown(ack) => {
                    // Senders now get `Closed`; what is already queued is still written below.
                    inbox.close();
                    acks.push(ack);
                }
            }
            if batch.len() < MAX_BATCH {
                next = inbox.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut conn, &url, &mut batch, &counters).await;
        }
    }
    if let Some(conn) = conn {
        if let Err(e) = conn.close().await {
            tracing::warn!(error = %e, "closing the SQLite writer connection failed");
        }
    }
    for ack in acks {
        let _ = ack.send(());
    }
}

async fn commit_batch(
    conn: &mut Option<AnyConnection>,
    url: &str,
    batch: &mut Vec<Box<dyn Job>>,
    counters: &Counters,
) {
    if conn.is_none() {
        match sqlite::open(url).await {
            Ok(fresh) => *conn = Some(fresh),
            Err(e) => return fail_all(batch, e),
        }
    }
    let Some(open) = conn.as_mut() else {
        return;
    };
    match run_transaction(open, batch).await {
        Ok(committed) => {
            if committed {
                counters.record_commit(batch.len());
            }
            for job in batch.drain(..) {
                job.finish(Ok(()));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, writes = batch.len(), "SQLite write batch failed");
            // The connection may be mid-transaction or broken; a fresh one is cheap and certain.
            *conn = None;
            fail_all(batch, e);
        }
    }
}

/// IMMEDIATE takes the write lock up front: a deferred transaction that upgrades from read to
/// write fails with SQLITE_BUSY at once instead of honouring busy_timeout.
const BEGIN: &str = "BEGIN IMMEDIATE";

/// Returns whether a transaction was committed (rather than rolled back with its only write,
/// or never opened by it).
async fn run_transaction(
    conn: &mut AnyConnection,
    batch: &mut [Box<dyn Job>],
) -> Result<bool, sqlx::Error> {
    if let [job] = batch {
        // Alone in its batch, a write needs no savepoint: its failure rolls back everything.
        // It opens its transaction with its first statements and may commit it with its last
        // (`Opening`), so the transaction is ended here by hand, if at all, rather than by a
        // `Transaction` that would have sent its own `BEGIN`.
        let ends = Ends::default();
        let left = Left {
            begin: Some(BEGIN),
            commit: Some("COMMIT"),
        };
        let keep = job.run(Opening::new(conn, left, &ends)).await;
        if ends.committed.load(Ordering::Acquire) {
            if !keep {
                tracing::error!("a write failed after committing; its changes stay");
            }
            return Ok(true);
        }
        if !ends.begun.load(Ordering::Acquire) {
            return Ok(false);
        }
        let end = if keep { "COMMIT" } else { "ROLLBACK" };
        sqlx::query(end).execute(&mut *conn).await?;
        return Ok(keep);
    }
    let mut tx = conn.begin_with(BEGIN).await?;
    for job in batch.iter_mut() {
        let mut savepoint = tx.begin().await?;
        let ends = Ends::default();
        if job
            .run(Opening::new(&mut savepoint, Left::NOTHING, &ends))
            .await
        {
            savepoint.commit().await?;
        } else {
            savepoint.rollback().await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

fn fail_all(batch: &mut Vec<Box<dyn Job>>, error: sqlx::Error) {
    let error = Arc::new(error);
    for job in batch.drain(..) {
        job.finish(Err(&error));
    }
}
