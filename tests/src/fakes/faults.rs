//! Failures a fake is told to answer with before behaving normally again, and a count of every
//! request it received (failed ones included, which its inbox does not keep).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

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
