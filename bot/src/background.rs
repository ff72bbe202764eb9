//! Background tasks owned by the app: started with it, stopped on shutdown, and never allowed
//! to die silently (a panic is logged, counted and reported by `shutdown`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Tells a background task that the app is stopping; tasks finish their current unit of work
/// and return.
#[derive(Clone)]
pub struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    pub fn is_stopping(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown has begun.
    pub async fn stopped(&mut self) {
        // An error means the sender is gone, which only happens when the app is dropped.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Aborts a task when dropped (a no-op once it finished).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A background task that panicked, by name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("background task {task:?} panicked: {message}")]
pub struct TaskPanic {
    pub task: String,
    pub message: String,
}

/// The task behind a [`TaskResult`] never answered: it panicked (reported by name like any
/// background panic) or was aborted at shutdown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the task ended without a result")]
pub struct TaskLost;

/// The output of a task started with [`Background::spawn_with_result`], for whoever waits on
/// it; dropping it leaves the task running.
pub struct TaskResult<T>(oneshot::Receiver<T>);

impl<T> Future for TaskResult<T> {
    type Output = Result<T, TaskLost>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|result| result.map_err(|_| TaskLost))
    }
}

/// What [`Background::within`] saw by the deadline.
pub enum Deadline<T> {
    /// The work finished in time (or its task was lost).
    Done(Result<T, TaskLost>),
    /// Still running: it completes on its own; await this for its output.
    Late(TaskResult<T>),
}

#[derive(Clone)]
pub struct Background {
    stop: Arc<watch::Sender<bool>>,
    tasks: Arc<Mutex<Tasks>>,
}

/// Running tasks, and the panics of those already collected.
#[derive(Default)]
struct Tasks {
    running: JoinSet<Result<(), TaskPanic>>,
    panicked: Vec<TaskPanic>,
}

impl Tasks {
    /// Collects finished tasks, so a long-running app does not keep one entry per request.
    fn reap(&mut self) {
        while let Some(done) = self.running.try_join_next() {
            if let Ok(Err(panic)) = done {
                self.panicked.push(panic);
            }
        }
    }
}

impl Default for Background {
    fn default() -> Self {
        Self::new()
    }
}

impl Background {
    pub fn new() -> Self {
        let (stop, _) = watch::channel(false);
        Self {
            stop: Arc::new(stop),
            tasks: Arc::new(Mutex::new(Tasks::default())),
        }
    }

    pub fn stop_signal(&self) -> StopSignal {
        StopSignal(self.stop.subscribe())
    }

    /// Runs `task` until it returns. Its panic is caught here so it can be named in reports.
    pub fn spawn<F>(&self, name: &str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let name = name.to_owned();
        let inner = tokio::spawn(task);
        // Dropping a JoinHandle detaches its task: aborting the supervisor (shutdown's
        // deadline, `abort_all`) must stop the task itself.
        let abort = AbortOnDrop(inner.abort_handle());
        let supervised = async move {
            let _abort = abort;
            inner.await.map_err(|error| {
                let message = panic_message(error);
                tracing::error!(task = %name, %message, "background task panicked");
                metrics::counter!("greenlight_background_panics_total", "task" => name.clone())
                    .increment(1);
                TaskPanic {
                    task: name,
                    message,
                }
            })
        };
        let mut tasks = self.lock_tasks();
        tasks.reap();
        tasks.running.spawn(supervised);
        metrics::gauge!("greenlight_background_tasks").set(tasks.running.len() as f64);
    }

    /// Runs `work` as a tracked task (counted, awaited at shutdown, its panic reported) whose
    /// output the caller may await.
    pub fn spawn_with_result<T, F>(&self, name: &str, work: F) -> TaskResult<T>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let (sender, receiver) = oneshot::channel();
        self.spawn(name, async move {
            // Nobody waiting any more (the answer was sent without it) is fine.
            let _ = sender.send(work.await);
        });
        TaskResult(receiver)
    }

    /// Answers within a deadline: runs `work` as a tracked task and waits for it until
    /// `deadline`. Work that is late goes on; its effects reach people through the outbox.
    pub async fn within<T, F>(&self, name: &str, deadline: Instant, work: F) -> Deadline<T>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let mut task = self.spawn_with_result(name, work);
        match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(result) => Deadline::Done(result),
            Err(_) => {
                tracing::warn!(task = name, "still running after the answer's deadline");
                Deadline::Late(task)
            }
        }
    }

    /// Stops every task where it is, recording nothing: what `kill -9` leaves behind. Tests of
    /// several replicas use it to crash one; the app itself always shuts down gracefully.
    pub fn abort_all(&self) {
        self.lock_tasks().running.abort_all();
    }

    /// Panics that already happened, without stopping anything. Finished tasks are collected.
    pub fn panics_so_far(&self) -> Vec<TaskPanic> {
        let mut tasks = self.lock_tasks();
        tasks.reap();
        std::mem::take(&mut tasks.panicked)
    }

    /// Signals every task to stop and waits up to `grace` for them. Returns the panics seen.
    pub async fn shutdown(&self, grace: Duration) -> Vec<TaskPanic> {
        self.stop.send_replace(true);
        let Tasks {
            running: mut tasks,
            panicked: mut panics,
        } = std::mem::take(&mut *self.lock_tasks());
        let drain = async {
            while let Some(done) = tasks.join_next().await {
                if let Ok(Err(panic)) = done {
                    panics.push(panic);
                }
            }
        };
        if tokio::time::timeout(grace, drain).await.is_err() {
            tracing::warn!(
                ?grace,
                "background tasks did not stop in time; aborting them"
            );
        }
        panics
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Tasks> {
        // A poisoned lock only means another thread panicked while holding it; the set itself
        // is still consistent.
        self.tasks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    if error.is_cancelled() {
        return "cancelled".to_owned();
    }
    let panic = error.into_panic();
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown panic".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_reported_by_name() {
        let background = Background::new();
        background.spawn("exploder", async { panic!("boom") });
        let mut stop = background.stop_signal();
        background.spawn("well-behaved", async move { stop.stopped().await });
        let panics = background.shutdown(Duration::from_secs(5)).await;
        assert_eq!(
            panics,
            vec![TaskPanic {
                task: "exploder".into(),
                message: "boom".into()
            }]
        );
    }

    #[tokio::test]
    async fn work_within_the_deadline_answers_and_late_work_goes_on() {
        let background = Background::new();
        let soon = Instant::now() + Duration::from_secs(5);
        match background.within("quick", soon, async { 7 }).await {
            Deadline::Done(result) => assert_eq!(result, Ok(7)),
            Deadline::Late(_) => panic!("quick work was late"),
        }
        let (release, wait) = oneshot::channel::<()>();
        let now = Instant::now();
        let late = background
            .within("slow", now, async move {
                let _ = wait.await;
                8
            })
            .await;
        let Deadline::Late(task) = late else {
            panic!("slow work answered before its deadline");
        };
        release.send(()).expect("slow task waits");
        assert_eq!(task.await, Ok(8));
        assert!(background.shutdown(Duration::from_secs(5)).await.is_empty());
    }

    #[tokio::test]
    async fn a_panic_in_awaited_work_is_lost_to_the_caller_and_reported_by_name() {
        let background = Background::new();
        let result = background
            .spawn_with_result("doomed", async { panic!("kaput") })
            .await;
        assert_eq!(result, Err::<(), _>(TaskLost));
        let panics = background.shutdown(Duration::from_secs(5)).await;
        assert_eq!(panics.len(), 1, "{panics:?}");
        assert_eq!(panics[0].task, "doomed");
    }

    #[tokio::test]
    async fn finished_tasks_do_not_pile_up() {
        let background = Background::new();
        for _ in 0..100 {
            background
                .spawn_with_result("tiny", async {})
                .await
                .expect("ran");
        }
        background.spawn("one more", async {});
        assert!(background.lock_tasks().running.len() <= 5);
    }

    #[tokio::test]
    async fn shutdown_waits_for_tasks_to_observe_the_stop_signal() {
        let background = Background::new();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let mut stop = background.stop_signal();
        background.spawn("worker", async move {
            stop.stopped().await;
            let _ = done_tx.send(());
        });
        assert!(background.shutdown(Duration::from_secs(5)).await.is_empty());
        assert!(
            done_rx.await.is_ok(),
            "worker did not finish before shutdown returned"
        );
    }
}
