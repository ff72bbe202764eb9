//! The command line: one binary, a subcommand per job, `--help` everywhere.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use greenlight_storage::Storage;

use crate::app::App;
use crate::config::{self, Config};
use crate::shutdown;

/// Where the config file is looked for when neither `--config` nor `GREENLIGHT_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "greenlight.toml";

#[derive(Debug, Parser)]
#[command(
    name = "greenlight",
    version,
    about = "Chat-ops deployment gate: production deploys approved in Slack or Discord",
    propagate_version = true
)]
pub struct Cli {
    /// Configuration file [default: ./greenlight.toml, embedded defaults when absent]
    #[arg(long, global = true, env = "GREENLIGHT_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the bot: HTTP routes, timers and the outbox worker
    Serve,
    /// Serve the release timeline page over a temporary database seeded with 90 days of a
    /// sample app's history (removed when it stops); prints the sign-in link
    Demo,
    /// Validate the configuration and print every problem with its key path
    CheckConfig,
    /// Apply database migrations (serve also does this at start)
    Migrate,
    /// Read the release log
    Releases {
        /// Only this app
        #[arg(long)]
        app: Option<String>,
        /// Only this environment
        #[arg(long)]
        env: Option<String>,
        /// How many releases, newest first
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Print JSON (the shape of GET /api/v1/releases) instead of a table
        #[arg(long)]
        json: bool,
    },
    /// DORA metrics of an environment: deployment frequency, lead time, change failure rate,
    /// time to restore
    Dora {
        /// The app to measure
        #[arg(long)]
        app: String,
        /// The environment [default: the app's last gated environment]
        #[arg(long)]
        env: Option<String>,
        /// How many days back from now
        #[arg(long, default_value_t = crate::dora::DEFAULT_DAYS,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::dora::MAX_DAYS)))]
        days: u32,
        /// Print JSON (the shape of GET /api/v1/metrics/dora) instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Write a consistent copy of the SQLite database, safe while the bot is serving
    Backup {
        /// Where to write the copy; must not exist yet
        path: PathBuf,
    },
    /// Discord set-up helpers
    Discord {
        #[command(subcommand)]
        command: DiscordCommand,
    },
    /// Slack set-up helpers
    Slack {
        #[command(subcommand)]
        command: SlackCommand,
    },
    /// Send a CI event to a running Greenlight (token from GREENLIGHT_TOKEN)
    Notify {
        #[command(flatten)]
        target: NotifyTarget,
        #[command(subcommand)]
        event: NotifyEvent,
    },
}

#[derive(Debug, Subcommand)]
pub enum DiscordCommand {
    /// Register Greenlight's slash commands with Discord (one bulk overwrite of the full list)
    RegisterCommands {
        /// Register in this guild only (changes show at once) instead of globally
        #[arg(long, value_name = "ID")]
        guild: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SlackCommand {
    /// Print the Slack app manifest (slash commands, interactivity URL, bot scopes) for this
    /// config's server.public_url, or with Socket Mode on when slack.app_token is set; paste
    /// it at api.slack.com/apps → Create New App
    Manifest,
}

/// Where `notify` sends its event.
#[derive(Debug, clap::Args)]
pub struct NotifyTarget {
    /// Greenlight's base URL [default: server.public_url of the config]
    #[arg(long, global = true, env = "GREENLIGHT_URL", value_name = "URL")]
    pub server: Option<String>,
    /// Makes retries of this step harmless even if the event's content changes
    #[arg(long, global = true, value_name = "KEY")]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum NotifyEvent {
    /// A build finished: record the release and its image
    Build {
        #[arg(long)]
        app: String,
        /// Full commit SHA [default: $GITHUB_SHA]
        #[arg(long, env = "GITHUB_SHA")]
        sha: String,
        /// Immutable image reference: REPO:<sha tag> or REPO@sha256:<digest>
        #[arg(long)]
        image: String,
        /// Git ref [default: $GITHUB_REF]
        #[arg(long = "ref", env = "GITHUB_REF")]
        git_ref: Option<String>,
        /// Commit author (GitHub login, e-mail or a [people] name) [default: $GITHUB_ACTOR]
        #[arg(long, env = "GITHUB_ACTOR")]
        author: Option<String>,
        /// Commit message
        #[arg(long)]
        message: Option<String>,
        /// Commit time, RFC 3339
        #[arg(long)]
        committed_at: Option<String>,
        /// Link to the CI run
        #[arg(long)]
        url: Option<String>,
    },
    /// A deployment finished: record its result (and smoke outcome) for an environment
    Deployed {
        #[arg(long)]
        app: String,
        #[arg(long)]
        environment: String,
        /// Full commit SHA [default: $GITHUB_SHA]
        #[arg(long, env = "GITHUB_SHA")]
        sha: String,
        #[arg(long, value_parser = ["success", "failure"])]
        status: String,
        /// Smoke test outcome CI measured itself
        #[arg(long, value_parser = ["passed", "failed"])]
        smoke: Option<String>,
        /// Needed only if no build event was sent for this SHA
        #[arg(long)]
        image: Option<String>,
        /// The deployment id Greenlight gave its deployer, when completing one
        #[arg(long)]
        deployment_id: Option<i64>,
        /// Link to the CI run
        #[arg(long)]
        url: Option<String>,
    },
}

/// Environment lookup, injected so only the binary's edge reads the process environment.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub async fn run(cli: Cli, env: Env<'_>) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve => serve(cli.config.as_deref(), env).await,
        Command::Demo => demo(env).await,
        Command::CheckConfig => Ok(check_config(cli.config.as_deref(), env)),
        Command::Migrate => {
            let config = load_config(cli.config.as_deref(), env)?;
            let storage = open_storage(&config).await?;
            storage.migrate().await.context("applying migrations")?;
            storage.close().await;
            println!("migrations applied to {}", storage.backend().as_str());
            Ok(ExitCode::SUCCESS)
        }
        Command::Releases {
            app,
            env: environment,
            limit,
            json,
        } => {
            let config = load_config(cli.config.as_deref(), env)?;
            let storage = open_storage(&config).await?;
            storage.migrate().await.context("applying migrations")?;
            let filter = greenlight_storage::ReleaseFilter {
                app,
                environment,
                limit,
            };
            let releases = storage
                .list_releases(&filter)
                .await
                .context("reading the release log")?;
            storage.close().await;
            let out = if json {
                crate::release_log::to_json(&releases).to_string()
            } else {
                crate::release_log::to_table(&releases)
            };
            println!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Dora {
            app,
            env: environment,
            days,
            json,
        } => {
            let config = load_config(cli.config.as_deref(), env)?;
            let query =
                crate::dora::DoraQuery::resolve(&config, Some(&app), environment.as_deref(), days)?;
            let storage = open_storage(&config).await?;
            storage.migrate().await.context("applying migrations")?;
            let window = query.window(crate::clock::Clock::system().now());
            let metrics = storage
                .dora_metrics(&window)
                .await
                .context("reading the release log")?;
            storage.close().await;
            let out = if json {
                crate::dora::to_json(&query, &window, &metrics).to_string()
            } else {
                crate::dora::to_table(&query, &window, &metrics)
            };
            println!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Discord {
            command: DiscordCommand::RegisterCommands { guild },
        } => {
            let config = load_config(cli.config.as_deref(), env)?;
            let discord = config
                .discord
                .as_ref()
                .context("[discord] is not configured in greenlight.toml")?;
            let client = crate::discord::DiscordClient::new(discord)
                .context("building the Discord client")?;
            let commands = crate::discord::commands::registration(&config);
            let count = commands.as_array().map_or(0, Vec::len);
            client
                .overwrite_commands(guild.as_deref(), &commands)
                .await
                .map_err(|error| anyhow::anyhow!("Discord refused the commands: {error}"))?;
            match guild {
                Some(guild) => println!("registered {count} commands in guild {guild}"),
                None => {
                    println!("registered {count} global commands (they may take a while to show)")
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Slack {
            command: SlackCommand::Manifest,
        } => {
            let config = load_config(cli.config.as_deref(), env)?;
            use crate::slack::manifest::{manifest, Delivery};
            let socket_mode = config
                .slack
                .as_ref()
                .is_some_and(|slack| slack.app_token.is_some());
            let manifest = manifest(if socket_mode {
                Delivery::SocketMode
            } else {
                Delivery::RequestUrls(&config.server.public_url)
            });
            println!("{}", serde_json::to_string_pretty(&manifest)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Notify { target, event } => {
            notify(cli.config.as_deref(), env, target, event).await
        }
        Command::Backup { path } => {
            let config = load_config(cli.config.as_deref(), env)?;
            // Not `open_storage`: that would create (and migrate) a database at a mistyped path
            // and back up the empty result.
            Storage::backup_sqlite_file(config.database.url.expose(), &path)
                .await
                .with_context(|| format!("writing the backup to {}", path.display()))?;
            println!("backup written to {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn notify(
    config_path: Option<&Path>,
    env: Env<'_>,
    target: NotifyTarget,
    event: NotifyEvent,
) -> anyhow::Result<ExitCode> {
    let token = env("GREENLIGHT_TOKEN")
        .filter(|token| !token.trim().is_empty())
        .context("set GREENLIGHT_TOKEN to the app's ci_token")?;
    let server = match target.server {
        Some(server) => server,
        None => load_config(config_path, env)?.server.public_url.to_string(),
    };
    let text = |value: Option<String>| value.map(serde_json::Value::String);
    let event = match event {
        NotifyEvent::Build {
            app,
            sha,
            image,
            git_ref,
            author,
            message,
            committed_at,
            url,
        } => crate::notify::event(
            "build",
            &[
                ("app", text(Some(app))),
                ("sha", text(Some(sha))),
                ("image", text(Some(image))),
                ("ref", text(git_ref)),
                ("author", text(author)),
                ("message", text(message)),
                ("committed_at", text(committed_at)),
                ("url", text(url)),
            ],
        ),
        NotifyEvent::Deployed {
            app,
            environment,
            sha,
            status,
            smoke,
            image,
            deployment_id,
            url,
        } => crate::notify::event(
            "deployed",
            &[
                ("app", text(Some(app))),
                ("environment", text(Some(environment))),
                ("sha", text(Some(sha))),
                ("status", text(Some(status))),
                (
                    "smoke",
                    smoke.map(|status| serde_json::json!({ "status": status })),
                ),
                ("image", text(image)),
                ("deployment_id", deployment_id.map(serde_json::Value::from)),
                ("url", text(url)),
            ],
        ),
    };
    let reply = crate::notify::send(&crate::notify::Notification {
        server,
        token,
        idempotency_key: target.idempotency_key,
        event,
    })
    .await?;
    println!("{}", serde_json::to_string_pretty(&reply)?);
    Ok(ExitCode::SUCCESS)
}

async fn serve(path: Option<&Path>, env: Env<'_>) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let config = load_config(path, env)?;
    if config.slack.is_none() && config.discord.is_none() {
        tracing::warn!(
            "no chat platform is configured ([slack] / [discord]); approvals cannot be posted"
        );
    }
    let listen = config.server.listen;
    // Before the database is touched: a second server on one SQLite file would take the
    // first's work for a dead replica's.
    let _serving = crate::serve_lock::ServeLock::acquire(&config.database.url)?;
    let app = App::build(config).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen} (server.listen / GREENLIGHT_LISTEN)"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let shutdown = shutdown::signal();
    tracing::info!(
        address = %local,
        database = app.state().storage.backend().as_str(),
        startup_ms = started.elapsed().as_millis() as u64,
        "greenlight is serving"
    );
    announce_sign_in_link(&app);
    app.serve(listener, shutdown).await?;
    tracing::info!("stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

/// `greenlight demo`: the sample configuration (listen address from `GREENLIGHT_LISTEN`, if
/// set) on a seeded temporary database, served until Ctrl-C.
async fn demo(env: Env<'_>) -> anyhow::Result<ExitCode> {
    let dir = crate::demo::DemoDir::create()?;
    let mut config = Config::from_toml_str(crate::demo::CONFIG, env)
        .map_err(|errors| anyhow::anyhow!("{}", config::check_config_report(&Err(errors))))?;
    config.database.url = config::DatabaseUrl::parse(&dir.database_url())
        .map_err(|reason| anyhow::anyhow!("the demo's database URL: {reason}"))?;
    let storage = open_storage(&config).await?;
    storage.migrate().await.context("applying migrations")?;
    crate::demo::seed(&storage, chrono::Utc::now())
        .await
        .context("seeding the demo history")?;
    storage.close().await;
    let listen = config.server.listen;
    let app = App::build(config).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen} (GREENLIGHT_LISTEN)"))?;
    tracing::info!(address = %listener.local_addr().context("reading the bound address")?, "the demo is serving; Ctrl-C stops it and removes its database");
    announce_sign_in_link(&app);
    app.serve(listener, shutdown::signal()).await?;
    drop(dir);
    Ok(ExitCode::SUCCESS)
}

/// Without an `api_token`, the page's one-time sign-in link: in the log, and on stderr where
/// a person who just ran `greenlight serve` looks.
pub fn announce_sign_in_link(app: &App) {
    if let Some(link) = app.sign_in_link() {
        tracing::info!(%link, "open the release timeline with this sign-in link (valid until the process stops)");
        eprintln!("\n  Release timeline: open {link}\n  (a one-time sign-in link, valid until this process stops)\n");
    }
}

fn check_config(path: Option<&Path>, env: Env<'_>) -> ExitCode {
    let path = path.unwrap_or(Path::new(DEFAULT_CONFIG_PATH));
    let result = Config::load(path, env);
    print!("{}", config::check_config_report(&result));
    if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// An explicit path must exist; without one, `./greenlight.toml` is used if present and the
/// embedded defaults otherwise (still honouring environment overrides such as
/// `GREENLIGHT_LISTEN`).
pub fn load_config(path: Option<&Path>, env: Env<'_>) -> anyhow::Result<Config> {
    let (path, explicit) = match path {
        Some(path) => (path, true),
        None => (Path::new(DEFAULT_CONFIG_PATH), false),
    };
    if !explicit && !path.exists() {
        tracing::info!(
            "no {DEFAULT_CONFIG_PATH} here; starting on the embedded defaults \
             (SQLite greenlight.db, 127.0.0.1:8080, no chat platforms)"
        );
        return Config::from_toml_str("", env)
            .map_err(|errors| anyhow::anyhow!("{}", config::check_config_report(&Err(errors))));
    }
    match Config::load(path, env) {
        Ok(config) => Ok(config),
        Err(errors) => bail!(
            "{} is not valid:\n{}",
            path.display(),
            config::check_config_report(&Err(errors))
        ),
    }
}

async fn open_storage(config: &Config) -> anyhow::Result<Storage> {
    Storage::connect(config.database.url.expose())
        .await
        .context("opening the database (database.url)")
}
