//! Background tasks owned by the app: started with it, stopped on shutdown, and never allowed
//! to die silently (a panic is logged, counted and reported by `shutdown`).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

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

/// A background task that panicked, by name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("background task {task:?} panicked: {message}")]
pub struct TaskPanic {
    pub task: String,
    pub message: String,
}

#[derive(Clone)]
pub struct Background {
    stop: Arc<watch::Sender<bool>>,
    tasks: Arc<Mutex<JoinSet<Result<(), TaskPanic>>>>,
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
            tasks: Arc::new(Mutex::new(JoinSet::new())),
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
        let supervised = async move {
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
        self.lock_tasks().spawn(supervised);
    }

    /// Panics that already happened, without stopping anything. Finished tasks are collected.
    pub fn panics_so_far(&self) -> Vec<TaskPanic> {
        let mut tasks = self.lock_tasks();
        let mut panics = Vec::new();
        while let Some(done) = tasks.try_join_next() {
            if let Ok(Err(panic)) = done {
                panics.push(panic);
            }
        }
        panics
    }

    /// Signals every task to stop and waits up to `grace` for them. Returns the panics seen.
    pub async fn shutdown(&self, grace: Duration) -> Vec<TaskPanic> {
        self.stop.send_replace(true);
        let mut tasks = std::mem::take(&mut *self.lock_tasks());
        let mut panics = Vec::new();
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

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, JoinSet<Result<(), TaskPanic>>> {
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
