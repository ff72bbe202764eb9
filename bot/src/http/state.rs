//! What every route handler can reach. Cheap to clone. A platform's own client reaches its
//! routes as an `Extension` its adapter adds, so this type never names a platform.

use std::sync::Arc;

use greenlight_storage::Storage;
use metrics_exporter_prometheus::PrometheusHandle;

use super::limits::Limits;
use crate::background::Background;
use crate::config::Config;
use crate::connections::Connections;
use crate::engine::Engine;
use crate::flags::FlagStore;
use crate::outbox::OutboxWorker;
use crate::replica::Replica;

/// Cheap to clone, which axum does for every request and every middleware: one reference count
/// rather than one per part.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }

    /// The same state with other HTTP limits.
    #[must_use]
    pub fn with_limits(self, limits: Limits) -> Self {
        let mut parts = AppParts::clone(&self.0);
        parts.limits = limits;
        Self::new(parts)
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

#[derive(Clone)]
pub struct AppParts {
    pub config: Arc<Config>,
    pub storage: Storage,
    pub engine: Engine,
    /// The flags applications read, held in memory (the engine tells it of its changes).
    pub flags: FlagStore,
    pub outbox: OutboxWorker,
    pub metrics: PrometheusHandle,
    pub background: Background,
    /// This process among the replicas sharing the database: its name and what it holds.
    pub replica: Replica,
    /// Timeouts and caps of the HTTP server (SPEC §9); production defaults unless a test
    /// shrank them (`App::with_limits`).
    pub limits: Limits,
    /// Slack Socket Mode and the Discord Gateway, as their tasks report them (SPEC §12).
    pub connections: Connections,
}
