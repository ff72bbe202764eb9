//! The one place the bot reads the time, so tests can move it (wait timers, expiry) at will.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

#[derive(Clone)]
pub struct Clock(Source);

#[derive(Clone)]
enum Source {
    System,
    Manual(Arc<Mutex<DateTime<Utc>>>),
}

impl Clock {
    pub fn system() -> Self {
        Self(Source::System)
    }

    /// A clock that stands still at `start` until `advance`d.
    pub fn manual(start: DateTime<Utc>) -> Self {
        Self(Source::Manual(Arc::new(Mutex::new(start))))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            Source::System => Utc::now(),
            Source::Manual(now) => *now.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Moves a manual clock forward; a no-op on the system clock.
    pub fn advance(&self, by: Duration) {
        if let Source::Manual(now) = &self.0 {
            let mut now = now.lock().unwrap_or_else(|p| p.into_inner());
            *now += by;
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Source::System => f.write_str("Clock::system"),
            Source::Manual(_) => write!(f, "Clock::manual({})", self.now()),
        }
    }
}

/// A configuration duration as a span to add to a time. Configured durations are capped at a
/// year, so the fallback (ten years) is never reached in practice but cannot overflow either.
pub fn span(duration: std::time::Duration) -> Duration {
    Duration::from_std(duration).unwrap_or_else(|_| Duration::days(3650))
}
