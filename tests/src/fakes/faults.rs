//! Failures a fake is told to answer with before behaving normally again, and a count of every
//! request it received (failed ones included, which its inbox does not keep).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What a platform fake answers to its next API calls before behaving normally again.
#[derive(Debug, Clone)]
pub enum Hiccup {
    /// `429 Too Many Requests` with `Retry-After: seconds` and the platform's JSON body.
    RateLimited { retry_after_secs: u64 },
    /// A bare HTTP error status, e.g. 500 or 503.
    Status(u16),
    /// The platform's own refusal with this code (Slack: HTTP 200 `{"ok": false, "error": …}`,
    /// e.g. `channel_not_found`; Discord: HTTP 400 with the code as its message).
    ApiError(String),
    /// Discord: the call succeeds, and its route's bucket says it has no calls left
    /// (`X-RateLimit-Remaining: 0`) for `reset_after_secs` (`X-RateLimit-Reset-After`).
    /// Slack has no such headers and answers as usual.
    BucketExhausted { reset_after_secs: u64 },
    /// Discord: `429` for the whole bot (`X-RateLimit-Global: true`, `"global": true`).
    /// Slack answers it as [`Hiccup::RateLimited`].
    GlobalRateLimited { retry_after_secs: u64 },
    /// Slack: the call is carried out (and recorded) at once, but answered only after
    /// `secs`: a platform slow enough that a caller dies or gives up before hearing back.
    /// Discord answers as usual.
    Slow { secs: u64 },
}

impl Hiccup {
    /// A short outage: throttled (retry after 30 s), then two server errors.
    pub fn outage() -> [Hiccup; 3] {
        [
            Hiccup::RateLimited {
                retry_after_secs: 30,
            },
            Hiccup::Status(500),
            Hiccup::Status(503),
        ]
    }
}

pub struct Faults<F> {
    queued: Mutex<VecDeque<F>>,
    requests: AtomicUsize,
}

impl<F> Default for Faults<F> {
    fn default() -> Self {
        Self {
            queued: Mutex::new(VecDeque::new()),
            requests: AtomicUsize::new(0),
        }
    }
}

impl<F> Faults<F> {
    /// The next requests get these failures, in order.
    pub fn queue(&self, faults: impl IntoIterator<Item = F>) {
        self.lock().extend(faults);
    }

    /// Counts a request that just arrived and returns the failure it gets, if any.
    pub fn arrived(&self) -> Option<F> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.lock().pop_front()
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<F>> {
        self.queued
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}
