//! An ordered record of requests a fake received, with waiting reads ("next message") so
//! tests never sleep.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// One request as a fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

#[derive(Clone, Default)]
pub struct Inbox {
    items: Arc<Mutex<VecDeque<Recorded>>>,
    arrived: Arc<Notify>,
}

impl Inbox {
    pub fn push(&self, item: Recorded) {
        self.lock().push_back(item);
        self.arrived.notify_waiters();
    }

    /// The oldest unread request matching `matches`, waiting up to `timeout` for one to arrive.
    pub async fn next_matching(
        &self,
        timeout: Duration,
        matches: impl Fn(&Recorded) -> bool,
    ) -> Option<Recorded> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            // Register before checking so an arrival between check and wait is not missed.
            notified.as_mut().enable();
            {
                let mut items = self.lock();
                if let Some(index) = items.iter().position(&matches) {
                    return items.remove(index);
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Requests not yet read by the test.
    pub fn unread(&self) -> Vec<Recorded> {
        self.lock().iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Recorded>> {
        self.items
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}
