//! Work that arrives while a batch is being written waits here and goes into the next write
//! together (SPEC §13: many small writes cost the single writer a few statements per batch,
//! not per item).
//!
//! Up to `runners` tasks take batches one after another while work waits; each stops when it
//! finds the queue empty, and the next item starts one again. More than one helps only where
//! the database takes several writes at once (PostgreSQL); behind SQLite's one writer a second
//! runner only queues, and splits the waiting items into smaller batches.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use greenlight_storage::{Backend, StorageError};
use tokio::sync::{oneshot, watch};

use crate::background::Background;

/// How many batches to write at once on `backend`: one behind SQLite's single writer (a second
/// would only queue there, and the items arriving meanwhile make the next batch bigger), two on
/// PostgreSQL, whose connections write side by side.
pub(crate) fn runners_for(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 2,
    }
}

/// An item waiting for its batch, and where its answer goes.
type Waiting<T, A> = (T, oneshot::Sender<Result<A, StorageError>>);

struct Queue<T, A> {
    items: VecDeque<Waiting<T, A>>,
    /// Tasks writing batches; each stops when it finds nothing waiting.
    runners: usize,
    /// Items taken into batches and not answered yet.
    in_batches: usize,
}

pub(crate) struct BatchQueue<T, A> {
    queue: Mutex<Queue<T, A>>,
    /// Items submitted and not answered yet (queued or in a batch being written), changed under
    /// the lock above; watchable, so a caller can wait for a backlog rather than poll for it.
    waiting: watch::Sender<usize>,
    /// The gauge of items waiting, e.g. `greenlight_decision_clicks_waiting`.
    gauge: &'static str,
    /// The most items one write takes.
    max_batch: usize,
    /// Batches written at once.
    runners: usize,
}

impl<T, A> std::fmt::Debug for BatchQueue<T, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchQueue")
            .field("gauge", &self.gauge)
            .field("waiting", &*self.waiting.borrow())
            .finish()
    }
}

impl<T, A> BatchQueue<T, A>
where
    T: Send + 'static,
    A: Send + 'static,
{
    pub(crate) fn new(gauge: &'static str, max_batch: usize, runners: usize) -> Self {
        Self {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                runners: 0,
                in_batches: 0,
            }),
            waiting: watch::Sender::new(0),
            gauge,
            max_batch,
            runners,
        }
    }

    /// Items submitted and not answered yet, as it changes.
    pub(crate) fn waiting(&self) -> watch::Receiver<usize> {
        self.waiting.subscribe()
    }

    /// Queues `item` for the next batch and waits for its answer. When no runner is free to
    /// take it, one is started with the writer `writer()` makes: it writes a batch and answers
    /// each of its items in order. Runners run in `background` (named `task`), so a caller
    /// that stops waiting (a dropped connection) cannot strand the items behind it.
    pub(crate) async fn submit<M, W, F>(
        self: &Arc<Self>,
        item: T,
        background: &Background,
        task: &'static str,
        writer: M,
    ) -> Result<A, StorageError>
    where
        M: FnOnce() -> W,
        W: Fn(Vec<T>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Vec<Result<A, StorageError>>, StorageError>> + Send,
    {
        let (answer, answered) = oneshot::channel();
        if self.join((item, answer)) {
            let queue = Arc::clone(self);
            let write = writer();
            background.spawn(task, async move { queue.run(write).await });
        }
        answered.await.map_err(|_| StorageError::Closed)?
    }

    /// Writes batches one after another until nothing waits.
    async fn run<W, F>(&self, write: W)
    where
        W: Fn(Vec<T>) -> F,
        F: Future<Output = Result<Vec<Result<A, StorageError>>, StorageError>>,
    {
        let mut guard = RunnerGuard {
            queue: self,
            in_batch: 0,
            finished: false,
        };
        while let Some(batch) = self.next_batch() {
            guard.in_batch = batch.len();
            let (items, answers): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
            let written = write(items).await;
            self.answered(std::mem::take(&mut guard.in_batch));
            match written {
                Ok(replies) => {
                    let mut replies = replies.into_iter();
                    for answer in answers {
                        let reply = replies.next().unwrap_or(Err(StorageError::Closed));
                        // A caller that stopped waiting was written all the same.
                        let _ = answer.send(reply);
                    }
                }
                Err(error) => {
                    for answer in answers {
                        let _ = answer.send(Err(error.for_another_caller()));
                    }
                }
            }
        }
        guard.finished = true;
    }

    /// Queues an item; `true` when the caller must start another runner.
    fn join(&self, waiting: Waiting<T, A>) -> bool {
        let mut queue = self.lock();
        queue.items.push_back(waiting);
        self.publish(&queue);
        let start = queue.runners < self.runners;
        if start {
            queue.runners += 1;
        }
        start
    }

    /// The next batch; `None` when nothing waits, and the runner asking then stops.
    fn next_batch(&self) -> Option<Vec<Waiting<T, A>>> {
        let mut queue = self.lock();
        if queue.items.is_empty() {
            queue.runners -= 1;
            return None;
        }
        let take = queue.items.len().min(self.max_batch);
        let batch = queue.items.drain(..take).collect();
        queue.in_batches += take;
        Some(batch)
    }

    /// A batch of `count` items was written (or failed) and is about to be answered.
    fn answered(&self, count: usize) {
        let mut queue = self.lock();
        queue.in_batches -= count;
        self.publish(&queue);
    }

    /// A runner stopped without emptying the queue (a panic, an abort), its batch of
    /// `in_batch` items unanswered (they get `Closed`). When it was the last runner, the
    /// waiting items are answered `Closed` too rather than waiting forever; the next item
    /// starts a new runner.
    fn runner_failed(&self, in_batch: usize) {
        let mut queue = self.lock();
        queue.runners -= 1;
        queue.in_batches -= in_batch;
        if queue.runners == 0 {
            queue.items.clear();
        }
        self.publish(&queue);
    }

    /// Tells watchers how many items are not answered yet (called under the lock).
    fn publish(&self, queue: &Queue<T, A>) {
        let waiting = queue.items.len() + queue.in_batches;
        self.waiting.send_replace(waiting);
        metrics::gauge!(self.gauge).set(waiting as f64);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<T, A>> {
        // Every change under the lock is a single push, drain or count.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Tells the queue when its runner stops other than by finding it empty.
struct RunnerGuard<'a, T, A>
where
    T: Send + 'static,
    A: Send + 'static,
{
    queue: &'a BatchQueue<T, A>,
    /// Items of the batch being written, unanswered.
    in_batch: usize,
    finished: bool,
}

impl<T, A> Drop for RunnerGuard<'_, T, A>
where
    T: Send + 'static,
    A: Send + 'static,
{
    fn drop(&mut self) {
        if !self.finished {
            self.queue.runner_failed(self.in_batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items submitted while a batch is being written go into the next batch together, and
    /// each is answered with its own reply.
    #[tokio::test]
    async fn items_arriving_during_a_write_share_the_next_batch() {
        let queue: Arc<BatchQueue<u32, u32>> = Arc::new(BatchQueue::new("test_waiting", 64, 1));
        let background = Background::default();
        let (release, released) = tokio::sync::watch::channel(false);
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let write = {
            let sizes = Arc::clone(&sizes);
            move |items: Vec<u32>| {
                let sizes = Arc::clone(&sizes);
                let mut released = released.clone();
                async move {
                    sizes.lock().expect("sizes").push(items.len());
                    // The first batch waits until the others have queued behind it.
                    let _ = released.wait_for(|go| *go).await;
                    Ok(items.into_iter().map(|n| Ok(n * 10)).collect())
                }
            }
        };
        let mut waiting = queue.waiting();
        let mut calls = Vec::new();
        for n in 0..5u32 {
            let queue = Arc::clone(&queue);
            let background = background.clone();
            let write = write.clone();
            calls.push(tokio::spawn(async move {
                queue.submit(n, &background, "test batches", || write).await
            }));
            if n == 0 {
                // The first item is taken alone before the rest arrive.
                while sizes.lock().expect("sizes").is_empty() {
                    tokio::task::yield_now().await;
                }
            }
        }
        // Every item is in: one being written, four queued behind it.
        waiting
            .wait_for(|n| *n == 5)
            .await
            .expect("the queue is alive");
        release.send(true).expect("the writer listens");
        let mut answers = Vec::new();
        for call in calls {
            answers.push(call.await.expect("the caller finished").expect("answered"));
        }
        assert_eq!(answers, vec![0, 10, 20, 30, 40]);
        assert_eq!(*sizes.lock().expect("sizes"), vec![1, 4]);
        assert_eq!(*queue.waiting().borrow(), 0, "every item answered");
    }

    /// A failed batch answers every item in it with the batch's error, and the queue keeps
    /// working for the items after it.
    #[tokio::test]
    async fn a_failed_batch_answers_each_of_its_items_with_the_error() {
        let queue: Arc<BatchQueue<u32, u32>> = Arc::new(BatchQueue::new("test_waiting", 64, 2));
        let background = Background::default();
        let write = |items: Vec<u32>| async move {
            if items.contains(&13) {
                return Err(StorageError::conflict("thirteen"));
            }
            Ok(items.into_iter().map(Ok).collect())
        };
        let failed = queue
            .submit(13, &background, "test batches", || write)
            .await;
        assert!(failed.is_err_and(|error| error.is_conflict()));
        let next = queue.submit(7, &background, "test batches", || write).await;
        assert_eq!(next.expect("the next batch is written"), 7);
    }
}
