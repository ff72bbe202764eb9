//! Builds the whole application from a `Config`. `main` and the end-to-end tests both start
//! Greenlight through `App::build` + `App::serve`, so tests exercise what ships.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use greenlight_storage::Storage;
use tokio::net::TcpListener;

use crate::background::{Background, TaskPanic};
use crate::chat::ChatDeliverer;
use crate::clock::Clock;
use crate::config::Config;
use crate::connections::Connections;
use crate::deploy::DeployDeliverer;
use crate::discord::{DiscordAdapter, DiscordClient};
use crate::engine::{self, Engine, Followers};
use crate::flags::FlagStore;
use crate::github::GithubDeliverer;
use crate::http::{AppParts, AppState, Limits};
use crate::outbox::{OutboxWorker, RetryPolicy};
use crate::page::PageAccess;
use crate::replica::Replica;
use crate::slack::{SlackAdapter, SlackClient};
use crate::smoke::SmokeRunner;
use crate::{discord, github, http, page, slack, telemetry};

/// How long shutdown waits for background work to finish after the server stopped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The application: the state every route reaches, and the platforms' own clients, which only
/// their adapters' routes see.
pub struct App {
    state: AppState,
    slack: Option<Arc<SlackClient>>,
    discord: Option<Arc<DiscordClient>>,
    /// Who may read the timeline page (its routes' own state, like a platform's client).
    page: PageAccess,
}

impl App {
    /// Connects to the database, applies migrations, joins the replicas sharing it (failing
    /// command deploys whose replica is gone, see `deploy/`) and prepares the router. Nothing
    /// listens yet: `serve` does that on a listener the caller bound (port 0 in tests).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Clock::system()).await
    }

    /// As [`Self::build`], reading time from `clock` (tests move a manual clock).
    pub async fn build_with_clock(config: Config, clock: Clock) -> anyhow::Result<Self> {
        let storage = Storage::connect(config.database.url.expose())
            .await
            .context("opening the database (database.url)")?;
        storage
            .migrate()
            .await
            .context("applying database migrations")?;
        let app = Self::with_storage(config, storage, clock)?;
        app.join_replicas().await?;
        Ok(app)
    }

    /// Records this replica alive, then, before anything runs, fails the command deploys whose
    /// replica is gone: nobody watches those commands any more (SPEC §11). A SQLite file is
    /// served by one process at a time (`serve_lock`), so there every earlier replica is gone.
    async fn join_replicas(&self) -> anyhow::Result<()> {
        let replica = &self.state.replica;
        let storage = &self.state.storage;
        if storage.backend() == greenlight_storage::Backend::Sqlite {
            storage
                .forget_other_replicas(replica.name())
                .await
                .context("forgetting the replicas of earlier processes")?;
        }
        let now = self.state.engine.clock().now();
        replica
            .renew(storage, now)
            .await
            .context("recording this replica")?;
        let interrupted = self
            .state
            .engine
            .interrupt_orphaned_commands()
            .await
            .context("failing command deploys whose replica stopped")?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "command deploys whose replica stopped were marked failed"
            );
        }
        tracing::info!(
            replica = replica.name(),
            lease_ms = replica.lease().as_millis() as u64,
            "joined as a replica"
        );
        Ok(())
    }

    /// For callers that opened storage themselves (tests that share a database).
    pub fn with_storage(config: Config, storage: Storage, clock: Clock) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        let replica = Replica::new(config.database.lease, clock.now());
        let smoke = SmokeRunner::new().context("building the HTTP client for smoke checks")?;
        let mut outbox = OutboxWorker::new(storage.clone(), clock.clone(), RetryPolicy::default())
            .for_replica(replica.clone());
        let slack = config
            .slack
            .as_ref()
            .map(|slack| Arc::new(SlackClient::new(slack)));
        if let Some(client) = &slack {
            let adapter = SlackAdapter(client.clone());
            let deliverer =
                ChatDeliverer::new(adapter, storage.clone(), config.clone(), clock.clone());
            outbox = outbox.with_deliverer("slack", Arc::new(deliverer));
        }
        let discord = config
            .discord
            .as_ref()
            .map(DiscordClient::new)
            .transpose()
            .context("building the HTTP client for Discord")?
            .map(Arc::new);
        if let Some(client) = &discord {
            let adapter = DiscordAdapter(DiscordClient::clone(client));
            let deliverer =
                ChatDeliverer::new(adapter, storage.clone(), config.clone(), clock.clone());
            outbox = outbox.with_deliverer("discord", Arc::new(deliverer));
        }
        let background = Background::new();
        let flags = FlagStore::new(storage.clone());
        let engine = Engine::new(
            config.clone(),
            storage.clone(),
            clock,
            smoke,
            flags.clone(),
            replica.clone(),
            Followers {
                outbox_wakeup: outbox.wakeup_handle(),
                background: background.clone(),
            },
        );
        // Deployers record what they started through the engine; command deploys run as
        // background tasks, so shutdown interrupts them.
        let deployer = DeployDeliverer::new(engine.clone(), background.clone())
            .context("building the HTTP client for deployers")?;
        outbox = outbox.with_deliverer("deploy", Arc::new(deployer));
        // Protection-rule answers and card commit lists; the lists are stored through the
        // engine, which edits the card.
        if let Some(deliverer) = GithubDeliverer::from_config(&config, engine.clone())? {
            outbox = outbox.with_deliverer("github", Arc::new(deliverer));
        }
        Ok(Self {
            slack,
            discord,
            page: PageAccess::from_config(&config),
            state: AppState::new(AppParts {
                engine,
                flags,
                outbox,
                config,
                storage,
                metrics: telemetry::metrics_handle(),
                background,
                replica,
                limits: Limits::default(),
                connections: Connections::new(),
            }),
        })
    }

    /// Replaces the HTTP limits (timeouts, caps); tests shrink them so they need not wait 10 s.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.state = self.state.with_limits(limits);
        self
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The timeline page's sign-in link with this process's random token, when no
    /// `server.api_token` is configured (`serve` prints it).
    pub fn sign_in_link(&self) -> Option<&url::Url> {
        self.page.sign_in_link()
    }

    /// Every route: those of no platform, then each platform's inbound routes.
    pub fn router(&self) -> Router {
        http::router(self.state.clone(), |kit| {
            Router::new()
                .merge(slack::inbound::routes(kit, self.slack.clone()))
                .merge(discord::interactions::routes(kit, self.discord.clone()))
                .merge(github::webhook::routes(kit))
                .merge(page::routes(kit, self.page.clone()))
        })
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish for at most
    /// `limits.shutdown_drain` (then drops the connections still open), stops background work
    /// and closes the database. Background panics are returned as an error.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = self.router();
        let background = &self.state.background;
        background.spawn(
            "verifier",
            engine::run_verifier(self.state.engine.clone(), background.stop_signal()),
        );
        background.spawn(
            "timers",
            engine::run_timers(self.state.engine.clone(), background.stop_signal()),
        );
        background.spawn(
            "outbox",
            self.state.outbox.clone().run(background.stop_signal()),
        );
        background.spawn(
            "replica heartbeat",
            crate::replica::run_heartbeat(
                self.state.replica.clone(),
                self.state.storage.clone(),
                self.state.engine.clock().clone(),
                background.stop_signal(),
            ),
        );
        // Flag changes made by other replicas (SPEC §11).
        background.spawn(
            "flag versions",
            self.state
                .flags
                .clone()
                .run_version_check(background.stop_signal()),
        );
        self.connect_outbound(background);
        http::server::serve(listener, router, self.state.limits, shutdown).await;
        tracing::info!("HTTP server stopped; finishing background work");
        let panics = self.state.background.shutdown(SHUTDOWN_GRACE).await;
        // Whatever it held was finished or recorded as interrupted by the shutdown above.
        let now = self.state.engine.clock().now();
        if let Err(error) = self.state.replica.forget(&self.state.storage, now).await {
            tracing::warn!(%error, "removing this replica's record failed; it lapses on its own");
        }
        self.state.storage.close().await;
        if panics.is_empty() {
            Ok(())
        } else {
            Err(BackgroundPanicked(panics).into())
        }
    }
}

impl App {
    /// Opens the connections that let the platforms reach Greenlight without a public URL
    /// (SPEC §12), next to the HTTP routes.
    fn connect_outbound(&self, background: &Background) {
        let socket_mode = self.state.config.slack.as_ref().and_then(|slack| {
            let client = self.slack.clone()?;
            Some((client, slack.app_token.clone()?))
        });
        if let Some((client, app_token)) = socket_mode {
            background.spawn(
                "slack socket mode",
                slack::socket_mode::run(
                    self.state.clone(),
                    client,
                    app_token,
                    background.stop_signal(),
                ),
            );
        }
        let gateway = self
            .state
            .config
            .discord
            .as_ref()
            .is_some_and(|d| d.gateway);
        if let (Some(client), true) = (&self.discord, gateway) {
            background.spawn(
                "discord gateway",
                discord::gateway::run(self.state.clone(), client.clone(), background.stop_signal()),
            );
        }
    }
}

/// One or more background tasks panicked while the app ran.
#[derive(Debug, thiserror::Error)]
#[error("{} background task(s) panicked: {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct BackgroundPanicked(pub Vec<TaskPanic>);
