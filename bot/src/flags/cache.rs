//! The flags applications read, served from memory (SPEC §7, §11, §13 P5).
//!
//! Each environment's flags are loaded on first use and kept as a [`Snapshot`] of one version.
//! A change made through this process reloads its environment before the change is answered
//! ([`FlagStore::changed`]), so the next request serves it. A change made by another replica
//! moves the environment's version in the database; the version check
//! ([`FlagStore::refresh_now`], every [`VERSION_CHECK_EVERY`] in the background) reloads only
//! the environments whose version moved. No time-to-live: an unchanged environment is never
//! reloaded, a changed one always is.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use greenlight_commands::{AppName, EnvironmentName};
use greenlight_storage::{Storage, StorageError};

use super::snapshot::Snapshot;
use crate::background::StopSignal;

/// How often the background version check runs: well within SPEC §11's "served by every
/// replica within 1 s", for one small query per replica.
pub const VERSION_CHECK_EVERY: Duration = Duration::from_millis(250);

/// Why an environment's flags could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("preparing the flags' answers failed: {0}")]
    Prepare(#[from] serde_json::Error),
}

type Loaded = HashMap<AppName, HashMap<EnvironmentName, Arc<Snapshot>>>;

/// Cheap to clone; every clone shares the same snapshots.
#[derive(Clone)]
pub struct FlagStore {
    storage: Storage,
    /// By app, then environment, so a request looks up the names it already holds.
    loaded: Arc<RwLock<Loaded>>,
}

impl FlagStore {
    pub fn new(storage: Storage) -> Self {
        Self {
            storage,
            loaded: Arc::default(),
        }
    }

    /// The environment's flags: from memory, or loaded on first use.
    pub async fn snapshot(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
    ) -> Result<Arc<Snapshot>, LoadError> {
        match self.cached(app, environment) {
            Some(snapshot) => Ok(snapshot),
            None => self.load(app, environment).await,
        }
    }

    /// After this process changed a flag of the environment (its write committed): reloads
    /// it now, so the next request serves the change. If that fails, the environment is
    /// forgotten and the next request loads it, rather than serving the old flags.
    pub async fn changed(&self, app: &AppName, environment: &EnvironmentName) {
        if let Err(error) = self.load(app, environment).await {
            tracing::error!(%error, %app, %environment, "reloading changed flags failed");
            if let Some(environments) = self.write_loaded().get_mut(app) {
                environments.remove(environment);
            }
        }
    }

    /// The version check: reloads every loaded environment whose version in the database is
    /// not the one held, and says how many it reloaded.
    pub async fn refresh_now(&self) -> Result<usize, LoadError> {
        let current: HashMap<(AppName, EnvironmentName), i64> = self
            .storage
            .flag_versions()
            .await?
            .into_iter()
            .map(|row| ((row.app, row.environment), row.version))
            .collect();
        let moved: Vec<(AppName, EnvironmentName)> = self
            .read_loaded()
            .iter()
            .flat_map(|(app, environments)| {
                environments
                    .iter()
                    .map(move |(environment, snapshot)| (app, environment, snapshot.version()))
            })
            .filter(|(app, environment, held)| {
                let key = ((*app).clone(), (*environment).clone());
                current.get(&key).copied().unwrap_or(0) != *held
            })
            .map(|(app, environment, _)| (app.clone(), environment.clone()))
            .collect();
        for (app, environment) in &moved {
            self.load(app, environment).await?;
            tracing::debug!(%app, %environment, "flags changed elsewhere; reloaded");
        }
        Ok(moved.len())
    }

    /// Runs the version check every [`VERSION_CHECK_EVERY`] until the app stops. A failed
    /// check keeps the flags held (a database outage must not switch every flag off) and is
    /// tried again at the next tick.
    pub async fn run_version_check(self, mut stop: StopSignal) {
        loop {
            tokio::select! {
                () = stop.stopped() => return,
                () = tokio::time::sleep(VERSION_CHECK_EVERY) => {}
            }
            if let Err(error) = self.refresh_now().await {
                tracing::warn!(%error, "checking flag versions failed");
            }
        }
    }

    fn cached(&self, app: &AppName, environment: &EnvironmentName) -> Option<Arc<Snapshot>> {
        self.read_loaded().get(app)?.get(environment).cloned()
    }

    /// Reads and prepares the environment's flags and holds them, unless a newer version is
    /// held already (a slower, older load finishing last must not undo a newer one).
    async fn load(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
    ) -> Result<Arc<Snapshot>, LoadError> {
        let stored = self.storage.environment_flags(app, environment).await?;
        let fresh = Arc::new(Snapshot::prepare(app, environment, stored)?);
        let mut loaded = self.write_loaded();
        let slot = loaded
            .entry(app.clone())
            .or_default()
            .entry(environment.clone())
            .or_insert_with(|| Arc::clone(&fresh));
        if slot.version() < fresh.version() {
            *slot = fresh;
        }
        Ok(Arc::clone(slot))
    }

    fn read_loaded(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        // A panic while holding the lock cannot leave the map half-changed (every change is
        // one insert or remove), so a poisoned lock is still sound to use.
        self.loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_loaded(&self) -> std::sync::RwLockWriteGuard<'_, Loaded> {
        self.loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
