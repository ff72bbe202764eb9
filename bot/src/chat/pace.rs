//! A platform's rate limits, shared by every delivery to it: when the platform pauses a kind of
//! call (a 429's `Retry-After`, a bucket with no calls left), every item making that call waits
//! for the pause's end instead of hitting the platform again; posts to one channel are spaced;
//! and only a few calls are in flight at once.
//!
//! Platform-neutral: the adapter says which limits a call counts against (a [`Route`]) and
//! what the answer said about them ([`Limits`]). Pauses are read on the injected clock, never
//! `Instant::now()`, so tests move them with a manual clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::clock::{span, Clock};

/// Calls in flight to one platform at once. Slack and Discord both throttle bursts (Discord:
/// 50 calls per second per bot; Slack: per-method tiers), and an outbox pass hands over up to 32
/// items together: four at a time keeps a pass fast without provoking 429s, and leaves the
/// connection pool to the platform small.
pub const IN_FLIGHT_PER_PLATFORM: usize = 4;

/// How long a 429 without a `Retry-After` pauses that kind of call: long enough to stop a burst,
/// short enough that a platform's forgotten header costs little.
pub const PAUSE_WITHOUT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Past this many remembered pauses or spacings, those already over are forgotten.
const PRUNE_ABOVE: usize = 1024;

/// Which limits one call counts against, as its adapter says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The kind of call as the platform limits it: a Slack Web API method (`chat.update`), a
    /// Discord route (`PATCH /channels/{channel}/messages/{message}`).
    pub name: &'static str,
    /// The part of the call with limits of its own (Discord's major parameter, the channel).
    pub major: Option<String>,
    /// Calls with the same spacing key go at most `burst` at once, then one per `every`
    /// (Slack: about one post per second per channel).
    pub spacing: Option<Spacing>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spacing {
    pub key: String,
    pub every: Duration,
    pub burst: u32,
}

/// What one answer said about the platform's limits (Discord's `X-RateLimit-*` headers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// The platform's name for the limit the route counts against (`X-RateLimit-Bucket`):
    /// routes naming the same bucket share its pauses.
    pub bucket: Option<String>,
    /// No calls are left in the bucket for this long (`Remaining: 0`, `Reset-After`).
    pub exhausted_for: Option<Duration>,
    /// A 429 in this answer pauses every call to the platform, not just this route.
    pub global: bool,
}

/// Why a call may not go now: paused or spaced until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paused {
    pub until: DateTime<Utc>,
    pub reason: String,
}

/// One platform's shared limits.
pub struct Pace {
    clock: Clock,
    in_flight: Semaphore,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Every call waits until then (Discord's global limit).
    global: Option<DateTime<Utc>>,
    /// Pause key (bucket or route, and major parameter) → end of its pause.
    paused: HashMap<String, DateTime<Utc>>,
    /// Route name → the platform's bucket, once an answer named it.
    buckets: HashMap<&'static str, String>,
    /// Spacing key → when its next call would be due if calls went one per `every` (GCRA).
    spaced: HashMap<String, DateTime<Utc>>,
}

impl State {
    fn pause_key(&self, route: &Route) -> String {
        let limit = self
            .buckets
            .get(route.name)
            .map_or(route.name, String::as_str);
        format!("{limit} {}", route.major.as_deref().unwrap_or_default())
    }

    fn pause(&mut self, key: String, until: DateTime<Utc>) {
        let end = self.paused.entry(key).or_insert(until);
        *end = (*end).max(until);
    }

    fn prune(&mut self, now: DateTime<Utc>) {
        if self.paused.len() > PRUNE_ABOVE {
            self.paused.retain(|_, until| *until > now);
        }
        if self.spaced.len() > PRUNE_ABOVE {
            self.spaced.retain(|_, due| *due > now);
        }
    }
}

impl Pace {
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            in_flight: Semaphore::new(IN_FLIGHT_PER_PLATFORM),
            state: Mutex::default(),
        }
    }

    /// The pause `route` is under now, if any, without taking a place or counting a call: a
    /// caller with work to do before the call (reading and rendering a card) asks first, so a
    /// paused call costs nothing but its deferral.
    pub fn pause_of(&self, route: &Route) -> Option<Paused> {
        let now = self.clock.now();
        let state = self.lock();
        let until = Self::paused_until(&state, route, now)?;
        Some(self.paused(route, until, "paused"))
    }

    /// The latest end of the pauses (global or of its route) that `route` is under at `now`.
    fn paused_until(state: &State, route: &Route, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let key = state.pause_key(route);
        [state.global, state.paused.get(&key).copied()]
            .into_iter()
            .flatten()
            .filter(|until| *until > now)
            .max()
    }

    /// Waits for a place among the calls in flight, then lets the call go (counting it in its
    /// spacing) unless its route is paused or spaced: then `Paused` says until when. The
    /// permit is the call's place; drop it when the answer is in.
    pub async fn start(&self, route: &Route) -> Result<SemaphorePermit<'_>, Paused> {
        let permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let now = self.clock.now();
        let mut state = self.lock();
        state.prune(now);
        if let Some(until) = Self::paused_until(&state, route, now) {
            return Err(self.paused(route, until, "paused"));
        }
        if let Some(spacing) = &route.spacing {
            let every = span(spacing.every);
            let due = state
                .spaced
                .get(&spacing.key)
                .copied()
                .unwrap_or(now)
                .max(now);
            let allowed_from = due - every * (spacing.burst.max(1) as i32 - 1);
            if allowed_from > now {
                return Err(self.paused(route, allowed_from, "spaced"));
            }
            state.spaced.insert(spacing.key.clone(), due + every);
        }
        Ok(permit)
    }

    /// Learns from an answer: the bucket its route counts against, an exhausted bucket, and
    /// for a 429 (`throttled`, with its `Retry-After` if any) the pause it starts: of the route,
    /// or of every call when `limits.global`. Returns that pause for a 429.
    pub fn finish(
        &self,
        route: &Route,
        limits: &Limits,
        throttled: Option<Option<Duration>>,
    ) -> Option<Paused> {
        let now = self.clock.now();
        let mut state = self.lock();
        if let Some(bucket) = &limits.bucket {
            state.buckets.insert(route.name, bucket.clone());
        }
        let key = state.pause_key(route);
        if let Some(wait) = limits.exhausted_for {
            state.pause(key.clone(), now + span(wait));
        }
        let wait = throttled?.unwrap_or(PAUSE_WITHOUT_RETRY_AFTER);
        let until = now + span(wait);
        if limits.global {
            state.global = state.global.max(Some(until));
        } else {
            state.pause(key, until);
        }
        let scope = if limits.global {
            "every call paused"
        } else {
            "paused"
        };
        Some(self.paused(route, until, scope))
    }

    fn paused(&self, route: &Route, until: DateTime<Utc>, what: &str) -> Paused {
        Paused {
            until,
            reason: format!(
                "{} {what} by the platform's rate limit until {}",
                route.name,
                until.to_rfc3339()
            ),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests;
