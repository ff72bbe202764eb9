//! This process as one replica among several sharing a database (SPEC §11): its name, its
//! lease, the heartbeat that keeps its claims alive, and what it holds right now (for
//! `/api/v1/status`).
//!
//! Work a replica claims is held under a lease: outbox items by their own lease (renewed by the
//! worker while it delivers), command deploys by the replica's row in `replicas` (renewed by
//! [`run_heartbeat`]). When a replica dies, both lapse and another replica takes over within a
//! lease: it delivers the items, and marks the command deploys interrupted (their commands were
//! the dead replica's children; nobody can tell how far they got).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use greenlight_storage::{Storage, StorageError};

use crate::background::StopSignal;
use crate::clock::{span, Clock};

/// Rows of replicas dead this long are removed when a replica stops cleanly.
const KEEP_DEAD: chrono::Duration = chrono::Duration::days(1);

#[derive(Clone)]
pub struct Replica(Arc<Inner>);

struct Inner {
    name: String,
    lease: Duration,
    started_at: DateTime<Utc>,
    outbox_items: AtomicUsize,
    command_deploys: Mutex<BTreeSet<i64>>,
}

/// What a replica holds at one moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Holdings {
    /// Outbox items it is delivering (leased to it).
    pub outbox_items: usize,
    /// Deployments whose deploy command runs as its child process.
    pub command_deploys: Vec<i64>,
}

impl Replica {
    /// A replica named after this host, with a random suffix so two processes on one host (or a
    /// restarted one) are never taken for each other.
    pub fn new(lease: Duration, started_at: DateTime<Utc>) -> Self {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        Self::named(
            format!("{}-{}", host_name(), &suffix[..8]),
            lease,
            started_at,
        )
    }

    pub fn named(name: String, lease: Duration, started_at: DateTime<Utc>) -> Self {
        Self(Arc::new(Inner {
            name,
            lease,
            started_at,
            outbox_items: AtomicUsize::new(0),
            command_deploys: Mutex::default(),
        }))
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn lease(&self) -> Duration {
        self.0.lease
    }

    pub fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }

    /// How often leases are renewed: three renewals fit in a lease, so one slow or failed
    /// write does not lose it.
    pub fn renew_every(&self) -> Duration {
        self.0.lease / 3
    }

    /// Counts `count` outbox items as held until the guard is dropped.
    pub fn hold_outbox_items(&self, count: usize) -> OutboxHold {
        self.0.outbox_items.fetch_add(count, Ordering::Relaxed);
        OutboxHold {
            replica: self.clone(),
            count,
        }
    }

    /// Records that deployment `id`'s command runs here until the guard is dropped.
    pub fn run_command_deploy(&self, id: i64) -> CommandHold {
        self.commands().insert(id);
        CommandHold {
            replica: self.clone(),
            id,
        }
    }

    pub fn holdings(&self) -> Holdings {
        Holdings {
            outbox_items: self.0.outbox_items.load(Ordering::Relaxed),
            command_deploys: self.commands().iter().copied().collect(),
        }
    }

    fn commands(&self) -> std::sync::MutexGuard<'_, BTreeSet<i64>> {
        self.0
            .command_deploys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records this replica alive for one more lease from `now`.
    pub async fn renew(&self, storage: &Storage, now: DateTime<Utc>) -> Result<(), StorageError> {
        storage
            .renew_replica(self.name(), self.started_at(), now + span(self.lease()))
            .await
    }

    /// A clean stop: this replica's row goes (nothing it held is left to take over), and so do
    /// rows of replicas long dead.
    pub async fn forget(&self, storage: &Storage, now: DateTime<Utc>) -> Result<(), StorageError> {
        storage.forget_replica(self.name(), now - KEEP_DEAD).await
    }
}

pub struct OutboxHold {
    replica: Replica,
    count: usize,
}

impl Drop for OutboxHold {
    fn drop(&mut self) {
        self.replica
            .0
            .outbox_items
            .fetch_sub(self.count, Ordering::Relaxed);
    }
}

pub struct CommandHold {
    replica: Replica,
    id: i64,
}

impl Drop for CommandHold {
    fn drop(&mut self) {
        self.replica.commands().remove(&self.id);
    }
}

/// Keeps this replica's row alive until the app stops. A failed renewal is retried at the next
/// beat; only a lease's worth of failures in a row lets other replicas take over.
pub async fn run_heartbeat(replica: Replica, storage: Storage, clock: Clock, mut stop: StopSignal) {
    loop {
        tokio::select! {
            () = stop.stopped() => return,
            () = tokio::time::sleep(replica.renew_every()) => {}
        }
        if let Err(error) = replica.renew(&storage, clock.now()).await {
            tracing::warn!(%error, replica = replica.name(), "renewing this replica's lease failed");
        }
    }
}

/// The host's name (a container's id, a Fly machine's id), else "greenlight".
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "greenlight".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdings_follow_the_guards() {
        let replica = Replica::new(Duration::from_secs(9), Utc::now());
        assert_eq!(replica.renew_every(), Duration::from_secs(3));
        let items = replica.hold_outbox_items(3);
        let first = replica.run_command_deploy(7);
        let second = replica.run_command_deploy(4);
        assert_eq!(
            replica.holdings(),
            Holdings {
                outbox_items: 3,
                command_deploys: vec![4, 7]
            }
        );
        drop(items);
        drop(first);
        assert_eq!(
            replica.holdings(),
            Holdings {
                outbox_items: 0,
                command_deploys: vec![4]
            }
        );
        drop(second);
        assert!(replica.holdings().command_deploys.is_empty());
    }

    #[test]
    fn two_replicas_on_one_host_get_different_names() {
        let now = Utc::now();
        let a = Replica::new(Duration::from_secs(20), now);
        let b = Replica::new(Duration::from_secs(20), now);
        assert_ne!(a.name(), b.name());
        assert!(a.name().starts_with(&host_name()), "{}", a.name());
    }
}
