//! `spawn_app`: the real Greenlight, built through the same `App::build` as `main`, listening on
//! 127.0.0.1 port 0 with its own SQLite file; at teardown, the fakes it talked to must have had
//! everything they received read.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use greenlight::app::App;
use greenlight::clock::Clock;
use greenlight::config::{Config, DatabaseUrl};
use greenlight::http::AppState;
use greenlight::http::Limits;
use greenlight_storage::Storage;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::fakes::{self, Inbox};

pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    /// The clock the app reads; tests move it with `clock.advance`.
    pub clock: Clock,
    /// Holds the database file; removed when the test ends.
    pub dir: TempDir,
    /// The timeline page's sign-in link `serve` prints when no `api_token` is configured.
    pub sign_in_link: Option<String>,
    config: Config,
    /// The inboxes of the fakes started on this test's thread (those started before the app
    /// now, any started later at teardown); teardown fails on what is unread there.
    fakes: Vec<Inbox>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Greenlight on its embedded defaults (no platforms, no apps).
pub async fn spawn_app() -> TestApp {
    spawn_app_with("", &[]).await
}

/// Greenlight on `config_toml`, with `env` as the only environment variables it can see. The
/// database is always a fresh SQLite file in a temporary folder.
pub async fn spawn_app_with(config_toml: &str, env: &[(&str, &str)]) -> TestApp {
    spawn_app_with_clock(config_toml, env, Clock::system()).await
}

/// As [`spawn_app_with`], with the HTTP limits (timeouts, caps) replaced, so limit tests need
/// not wait for production's 10-second timeouts.
pub async fn spawn_app_with_limits(
    config_toml: &str,
    env: &[(&str, &str)],
    limits: Limits,
) -> TestApp {
    let (config, dir) = test_config(config_toml, env);
    start(config, dir, Clock::system(), limits).await
}

/// As [`spawn_app_with`], on the database at `database_url` (a [`crate::database`] that a
/// test also opens itself, as another replica would).
pub async fn spawn_app_on(config_toml: &str, env: &[(&str, &str)], database_url: &str) -> TestApp {
    spawn_app_on_with_clock(config_toml, env, database_url, Clock::system()).await
}

/// As [`spawn_app_on`], reading time from `clock` (replicas given one manual clock see the same
/// time, as servers do).
pub async fn spawn_app_on_with_clock(
    config_toml: &str,
    env: &[(&str, &str)],
    database_url: &str,
    clock: Clock,
) -> TestApp {
    let (mut config, dir) = test_config(config_toml, env);
    config.database.url = DatabaseUrl::parse(database_url).expect("a database URL");
    start(config, dir, clock, Limits::default()).await
}

/// As [`spawn_app_with`], reading time from `clock` (usually `Clock::manual`).
pub async fn spawn_app_with_clock(
    config_toml: &str,
    env: &[(&str, &str)],
    clock: Clock,
) -> TestApp {
    let (config, dir) = test_config(config_toml, env);
    start(config, dir, clock, Limits::default()).await
}

fn test_config(config_toml: &str, env: &[(&str, &str)]) -> (Config, TempDir) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let database_url = format!("sqlite://{}", dir.path().join("greenlight.db").display());
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let lookup = move |name: &str| env.get(name).cloned();
    let mut config = Config::from_toml_str(config_toml, &lookup)
        .unwrap_or_else(|errors| panic!("test config is invalid:\n{errors}"));
    config.database.url = DatabaseUrl::parse(&database_url).expect("temporary SQLite URL");
    (config, dir)
}

async fn start(config: Config, dir: TempDir, clock: Clock, limits: Limits) -> TestApp {
    // `GREENLIGHT_TEST_LOG=debug cargo test …` shows the app's logs when a test needs explaining.
    if let Ok(filter) = std::env::var("GREENLIGHT_TEST_LOG") {
        greenlight::telemetry::init_logging(
            greenlight::telemetry::LogFormat::Pretty,
            Some(&filter),
        );
    }
    let app = App::build_with_clock(config.clone(), clock.clone())
        .await
        .expect("app builds")
        .with_limits(limits);
    let state = app.state().clone();
    let sign_in_link = app.sign_in_link().map(ToString::to_string);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("local address");
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client"),
        state,
        clock,
        dir,
        sign_in_link,
        config,
        fakes: fakes::started_on_this_thread(),
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// Waits until the outbox has nothing in flight, so moving a manual clock cannot make an
    /// item that is being delivered look abandoned.
    pub async fn outbox_idle(&self) {
        tokio::time::timeout(Duration::from_secs(30), self.state.outbox.idle())
            .await
            .expect("the outbox settles within 30 s");
    }

    /// Records that release `sha` of `app` (already reported as a build) was approved and runs
    /// healthy in `environment` from before the test: history for rollbacks to go back to.
    /// Reporting it through CI instead would make it a deploy around the gate (SPEC §10),
    /// which is never a rollback target.
    pub async fn seed_approved_healthy(&self, app: &str, environment: &str, sha: &str) {
        use greenlight_commands::{AppName, CommitSha, DeploymentKind, DeploymentState};
        let app = AppName::parse(app).expect("app name");
        let sha = CommitSha::parse(sha).expect("sha");
        let release = self
            .storage()
            .release(&app, &sha)
            .await
            .expect("the release was reported as a build first");
        self.storage()
            .insert_deployment(greenlight_storage::NewDeployment {
                release_id: release.id,
                environment: greenlight_commands::EnvironmentName::parse(environment)
                    .expect("environment"),
                kind: DeploymentKind::Deploy,
                state: DeploymentState::Healthy,
                previous_sha: None,
                deployer: None,
                deployer_ref: None,
                triggered_by: Some("seeded by the test".to_owned()),
                smoke: Vec::new(),
                detail: None,
                approved: true,
                at: self.clock.now(),
            })
            .await
            .expect("seeded deployment");
    }

    /// Holds SQLite's write lock from a connection of its own, as a long transaction or a
    /// stalled disk would: the app's writes wait (up to its busy timeout) until
    /// [`WriteHold::release`]. Returns once the lock is held.
    pub async fn hold_writes(&self) -> WriteHold {
        use sqlx::Connection;
        let path = self.dir.path().join("greenlight.db");
        let mut connection =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .expect("a second connection to the test database");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut connection)
            .await
            .expect("the write lock");
        WriteHold(connection)
    }

    pub fn storage(&self) -> &Storage {
        &self.state.storage
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {path}: {error}"))
    }

    /// `GET path` with `token` as its bearer token: the status and the JSON answer (`null` when
    /// the answer is not JSON).
    pub async fn get_with_token(&self, path: &str, token: &str) -> (u16, serde_json::Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {path}: {error}"));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// Stops the app (as SIGTERM would) and starts it again on the same database, config and
    /// clock: what survives this survives a restart.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let dir = std::mem::replace(
            &mut self.dir,
            tempfile::tempdir().expect("temporary folder"),
        );
        let mut restarted = start(
            self.config.clone(),
            dir,
            self.clock.clone(),
            self.state.limits,
        )
        .await;
        restarted
            .fakes
            .splice(0..0, std::mem::take(&mut self.fakes));
        restarted
    }

    /// Kills the app as `kill -9` would: the server and every background task stop where they
    /// are and nothing is recorded, so what it held (outbox leases, command deploys) is left
    /// for other replicas to take over. Returns the inboxes of the fakes it watched, for a
    /// survivor to [`Self::watch_fakes`].
    pub async fn crash(mut self) -> Vec<Inbox> {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
        self.state.background.abort_all();
        // Dropping the sender would only ask the aborted server to stop.
        self.shutdown.take();
        self.fakes.extend(fakes::started_on_this_thread());
        std::mem::take(&mut self.fakes)
    }

    /// Checks these fakes at teardown too (those of a crashed replica).
    pub fn watch_fakes(&mut self, inboxes: Vec<Inbox>) {
        self.fakes.extend(inboxes);
    }

    /// This replica's name among those sharing the database.
    pub fn replica_name(&self) -> &str {
        self.state.replica.name()
    }

    /// Stops the app the way SIGTERM does and fails the test if the server errored, any
    /// background task panicked while it ran, or a fake received something the test never read.
    /// What is due is delivered first, so the check does not depend on how far the background
    /// outbox worker got.
    pub async fn teardown(mut self) {
        self.fakes.extend(fakes::started_on_this_thread());
        if !self.fakes.is_empty() {
            self.deliver_due().await;
        }
        self.stop().await;
        let unread: Vec<String> = self.fakes.iter().flat_map(Inbox::unread_report).collect();
        assert!(
            unread.is_empty(),
            "the fakes received what the test never read (read it, e.g. with `next_call` or \
             `inbox().take_all()`, or say why it may stay unread with `inbox().allow_unread`):\n{}",
            unread.join("\n")
        );
    }

    async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let outcome = tokio::time::timeout(Duration::from_secs(30), server)
                .await
                .expect("app stops within 30 s of shutdown");
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(error)) => panic!("app ended with an error: {error:#}"),
                Err(join) => panic!("app task panicked: {join}"),
            }
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // A test that forgot `teardown` still must not hide a background panic.
        let panics = self.state.background.panics_so_far();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if !panics.is_empty() && !std::thread::panicking() {
            panic!("background task(s) panicked during the test: {panics:?}");
        }
    }
}

/// SQLite's write lock, held by a test: see [`TestApp::hold_writes`].
pub struct WriteHold(sqlx::SqliteConnection);

impl WriteHold {
    /// Lets the app's writes go on.
    pub async fn release(mut self) {
        sqlx::query("ROLLBACK")
            .execute(&mut self.0)
            .await
            .expect("releasing the write lock");
    }
}
