//! The moment tests start at on a manual clock, so card times ("opens 12:05 UTC") are known.

use chrono::{DateTime, TimeZone, Utc};
use greenlight::clock::Clock;

/// 2026-11-27 12:00:00 UTC.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
        .single()
        .expect("a valid time")
}

/// A manual clock at [`start_time`]; tests move it with `advance`.
pub fn manual_clock() -> Clock {
    Clock::manual(start_time())
}
