//! The typed configuration: what the rest of the bot reads once `greenlight.toml` is accepted.
//!
//! Every value here is already valid (parsed, references resolved), so users of these types
//! never re-check them. Lists keep the order of the file.

use super::directory::People;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use greenlight_commands::{AppName, EnvironmentName, PersonName};
use url::Url;

use super::values::{
    DatabaseUrl, DiscordPublicKey, Email, GithubLogin, GroupName, ImageRepository, Principal,
    RepositoryName, SlackChannelId, SlackUserId, Snowflake,
};
use crate::secret::{Secret, SecretList};

/// The whole of `greenlight.toml`. [`Config::default`] is what `serve` runs on without a file:
/// SQLite `greenlight.db`, `127.0.0.1:8080`, no platforms, no apps.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    /// `None`: Slack is off.
    pub slack: Option<SlackConfig>,
    /// `None`: Discord is off.
    pub discord: Option<DiscordConfig>,
    /// `None`: GitHub webhooks are off.
    pub github: Option<GithubConfig>,
    /// `[people]`, indexed by every identity.
    pub people: People,
    pub groups: Vec<Group>,
    pub apps: Vec<AppConfig>,
}

/// `[server]`
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `GREENLIGHT_LISTEN` overrides the file.
    pub listen: SocketAddr,
    /// The address people reach Greenlight at; used for links in chat messages.
    pub public_url: Url,
    /// Bearer token for the read APIs; `None` answers them 401 with a hint to set it.
    /// A list during a rotation: any of them is accepted.
    pub api_token: Option<SecretList>,
}

impl ServerConfig {
    pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
    pub const DEFAULT_PUBLIC_URL: &'static str = "http://localhost:8080";
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: Self::DEFAULT_LISTEN,
            public_url: constant_url(Self::DEFAULT_PUBLIC_URL),
            api_token: None,
        }
    }
}

/// `[database]`
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
    /// How long work a replica claimed (an outbox item, a command deploy) stays its own without
    /// renewal; a live replica renews every third of it (SPEC §11).
    pub lease: Duration,
}

impl DatabaseConfig {
    pub const DEFAULT_URL: &'static str = "sqlite://greenlight.db";
    /// With the outbox worker's at most 5 s between looks, a dead replica's work is taken over
    /// within 25 s.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(20);
    pub const MIN_LEASE: Duration = Duration::from_secs(2);
    pub const MAX_LEASE: Duration = Duration::from_secs(120);
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: DatabaseUrl::parse(Self::DEFAULT_URL).unwrap_or_else(|message| {
                unreachable!("the default database URL is valid: {message}")
            }),
            lease: Self::DEFAULT_LEASE,
        }
    }
}

/// `[slack]`
#[derive(Debug, Clone)]
pub struct SlackConfig {
    pub bot_token: Secret,
    /// Every secret accepted for request signatures, so it can be rotated. Optional with
    /// Socket Mode; without it `/slack/*` refuses every request.
    pub signing_secret: Option<SecretList>,
    /// The app-level token (`xapp-…`) that turns on Socket Mode (SPEC §12).
    pub app_token: Option<Secret>,
    /// Web API base, `https://slack.com/api` unless tests point it at a fake.
    pub api_url: Url,
}

impl SlackConfig {
    pub const DEFAULT_API_URL: &'static str = "https://slack.com/api";
}

/// `[discord]`
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    pub application_id: Snowflake,
    /// Verifies interaction signatures (Ed25519). Required unless `gateway`; without it
    /// `POST /discord/interactions` refuses everything.
    pub public_key: Option<DiscordPublicKey>,
    pub bot_token: Secret,
    /// API base, `https://discord.com` unless tests point it at a fake.
    pub api_url: Url,
    /// Receive interactions over the Gateway (an outbound WebSocket, SPEC §12) instead of the
    /// HTTP endpoint.
    pub gateway: bool,
}

impl DiscordConfig {
    pub const DEFAULT_API_URL: &'static str = "https://discord.com";
}

/// `[github]`
#[derive(Debug, Clone)]
pub struct GithubConfig {
    /// Every secret accepted for `X-Hub-Signature-256`, so it can be rotated.
    pub webhook_secret: SecretList,
    /// GitHub App credentials, for deployment protection rules; both or neither.
    pub app: Option<GithubApp>,
    /// Token for `workflow_dispatch` deploys.
    pub token: Option<Secret>,
    /// REST API base, `https://api.github.com` unless tests point it at a fake.
    pub api_url: Url,
}

impl GithubConfig {
    pub const DEFAULT_API_URL: &'static str = "https://api.github.com";

    /// Whether Greenlight can call GitHub's API for `repository` at all.
    pub fn can_dispatch_workflows(&self) -> bool {
        self.token.is_some() || self.app.is_some()
    }
}

/// `app_id` and `private_key_file` of `[github]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubApp {
    pub app_id: u64,
    /// PEM file of the App's private key, as written (relative paths are relative to the
    /// working directory). [`Config::load`](super::Config::load) checks that it is readable.
    pub private_key_file: PathBuf,
}

/// One entry of `[people]`: who someone is on each platform. Approvals are counted per person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: PersonName,
    pub slack: Option<SlackUserId>,
    pub discord: Option<Snowflake>,
    pub github: Option<GithubLogin>,
    pub email: Option<Email>,
}

/// One entry of `[groups]`. Members are people (groups do not nest), each listed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: GroupName,
    pub members: Vec<PersonName>,
}

/// `[apps.NAME]`
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub name: AppName,
    /// GitHub `owner/name`; required by the GitHub deployers.
    pub repository: Option<RepositoryName>,
    /// Releases must name an image in exactly this repository.
    pub image: ImageRepository,
    /// Accept semver tags (`v1.2.3`) as immutable image references.
    pub allow_version_tags: bool,
    /// CI's bearer token for `/api/v1/events`; unique per app.
    /// A list during a rotation: any of them is accepted.
    pub ci_token: SecretList,
    pub channels: Channels,
    /// May `/rollback`, `/flag`, `/lock`, `/unlock`.
    pub operators: Vec<Principal>,
    /// In the order of the file; never empty.
    pub environments: Vec<EnvironmentConfig>,
}

/// Where an app's cards and announcements go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Channels {
    pub slack: Option<SlackChannelId>,
    pub discord: Option<Snowflake>,
}

impl Channels {
    pub fn is_empty(&self) -> bool {
        self.slack.is_none() && self.discord.is_none()
    }
}

/// `[apps.NAME.environments.ENV]`
#[derive(Debug, Clone)]
pub struct EnvironmentConfig {
    pub name: EnvironmentName,
    /// `Some` when the environment is gated (it has `after`).
    pub gate: Option<ApprovalGate>,
    /// `None`: CI deploys; Greenlight only records and gates.
    pub deploy: Option<Deployer>,
    pub smoke: Vec<SmokeCheck>,
    /// Wait after a deploy before running the smoke checks.
    pub smoke_settle: Duration,
    pub auto_rollback: bool,
    pub lock_after_rollback: bool,
    /// Applications' bearer token for reading this environment's flags; unique.
    /// A list during a rotation: any of them is accepted.
    pub flags_token: Option<SecretList>,
}

impl EnvironmentConfig {
    pub const DEFAULT_AUTO_ROLLBACK: bool = true;
    pub const DEFAULT_LOCK_AFTER_ROLLBACK: bool = true;

    pub fn is_gated(&self) -> bool {
        self.gate.is_some()
    }

    /// The environment a release must be healthy in before it may come here.
    pub fn after(&self) -> Option<&EnvironmentName> {
        self.gate.as_ref().map(|gate| &gate.after)
    }
}

/// The approval policy of a gated environment (SPEC §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalGate {
    pub after: EnvironmentName,
    /// Never empty; only these people (groups expanded) may approve or reject.
    pub reviewers: Vec<Principal>,
    /// Distinct people needed; at least 1 and at most the number of distinct reviewers.
    pub required_approvals: u32,
    pub prevent_self_review: bool,
    /// Approvals open this long after the release became healthy in `after`.
    pub wait_timer: Duration,
    pub approval_timeout: Duration,
    pub reminder_every: Option<Duration>,
}

impl ApprovalGate {
    pub const DEFAULT_REQUIRED_APPROVALS: u32 = 1;
    pub const DEFAULT_PREVENT_SELF_REVIEW: bool = true;
    pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
}

/// What the `command` deployer's child process sees of Greenlight's environment (SPEC §10):
/// nothing but [`Self::ALWAYS`] and the variables its `env` allow-list names, so the server's
/// own secrets (chat tokens, signing secrets, CI tokens) never reach a deploy script.
#[derive(Debug, Clone, Default)]
pub struct ChildEnvironment {
    /// The `env` allow-list, in file order.
    pub allowed: Vec<String>,
    /// Each variable the child gets, with its value as Greenlight started with it.
    pub values: Vec<(String, Secret)>,
}

impl ChildEnvironment {
    /// Passed to every command, when Greenlight has them: a program needs them to be found
    /// and to run, and they hold no secret.
    pub const ALWAYS: [&'static str; 3] = ["PATH", "HOME", "LANG"];

    /// The values of the allow-listed variables (not of [`Self::ALWAYS`]): what a command's
    /// output must not repeat into the release log.
    pub fn allowed_values(&self) -> impl Iterator<Item = &Secret> {
        self.values
            .iter()
            .filter(|(name, _)| self.allowed.contains(name))
            .map(|(_, value)| value)
    }
}

/// How Greenlight deploys to an environment (`deploy = { kind = … }`).
#[derive(Debug, Clone)]
pub enum Deployer {
    /// Runs `run` (no shell) with placeholders filled in; exit 0 means deployed.
    Command {
        run: Vec<String>,
        timeout: Duration,
        env: ChildEnvironment,
    },
    /// POSTs a signed JSON request; completion arrives later as a `deployed` event.
    Http {
        url: Url,
        secret: Secret,
        timeout: Duration,
    },
    /// `workflow_dispatch` of `workflow` on `git_ref` (`ref` in the file).
    GithubWorkflow {
        workflow: String,
        git_ref: String,
        timeout: Duration,
    },
    /// GitHub runs the job; approval is the protection rule's callback.
    GithubProtectionRule { timeout: Duration },
}

impl Deployer {
    /// The `kind` of a deployer that runs a command, as deployments store it.
    pub const COMMAND: &'static str = "command";
    /// The words of `kind`, in the order the error messages list them.
    pub const KINDS: [&'static str; 4] = [
        Self::COMMAND,
        "http",
        "github-workflow",
        "github-protection-rule",
    ];
    /// Placeholders a `command` deploy may use in `run`.
    pub const PLACEHOLDERS: [&'static str; 5] =
        ["image", "sha", "app", "environment", "deployment_id"];
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Command { .. } => Self::KINDS[0],
            Self::Http { .. } => Self::KINDS[1],
            Self::GithubWorkflow { .. } => Self::KINDS[2],
            Self::GithubProtectionRule { .. } => Self::KINDS[3],
        }
    }

    /// How long Greenlight waits for the deploy to complete before calling it failed.
    pub fn timeout(&self) -> Duration {
        match self {
            Self::Command { timeout, .. }
            | Self::Http { timeout, .. }
            | Self::GithubWorkflow { timeout, .. }
            | Self::GithubProtectionRule { timeout } => *timeout,
        }
    }

    /// Whether this deployer needs the app's `repository` and the `[github]` section.
    pub fn uses_github(&self) -> bool {
        matches!(
            self,
            Self::GithubWorkflow { .. } | Self::GithubProtectionRule { .. }
        )
    }
}

/// One entry of `smoke`.
#[derive(Debug, Clone, PartialEq)]
pub struct SmokeCheck {
    /// Unique within the environment.
    pub name: String,
    pub url: Url,
    pub expect_status: ExpectStatus,
    /// In the order of the file.
    pub expect_json: Vec<JsonExpectation>,
    pub timeout: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
}

impl SmokeCheck {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    pub const DEFAULT_RETRIES: u32 = 0;
    pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);
}

/// Which HTTP status passes a smoke check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectStatus {
    /// Any 2xx (the default).
    AnySuccess,
    Exactly(u16),
}

impl ExpectStatus {
    pub fn accepts(self, status: u16) -> bool {
        match self {
            Self::AnySuccess => (200..300).contains(&status),
            Self::Exactly(expected) => status == expected,
        }
    }
}

/// `expect_json`: the JSON value at `path` must equal `value`. Dotted keys (`"db.status"`) and
/// nested tables (`{ db = { status = "ok" } }`) both become the path `db.status`.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonExpectation {
    pub path: String,
    pub value: serde_json::Value,
}

impl JsonExpectation {
    /// The object keys to follow, outermost first.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.path.split('.')
    }
}

/// Parses one of the default URLs above, which are known to be valid.
pub(crate) fn constant_url(text: &'static str) -> Url {
    Url::parse(text).unwrap_or_else(|error| unreachable!("constant URL {text} is valid: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = Config::default();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.server.public_url.as_str(), "http://localhost:8080/");
        assert!(config.server.api_token.is_none());
        assert_eq!(config.database.url.expose(), "sqlite://greenlight.db");
        assert!(config.slack.is_none() && config.discord.is_none() && config.github.is_none());
        assert!(config.apps.is_empty() && config.people.is_empty() && config.groups.is_empty());
        for url in [
            SlackConfig::DEFAULT_API_URL,
            DiscordConfig::DEFAULT_API_URL,
            GithubConfig::DEFAULT_API_URL,
        ] {
            let _ = constant_url(url);
        }
    }

    #[test]
    fn expected_status() {
        for (expect, status, accepted) in [
            (ExpectStatus::AnySuccess, 200, true),
            (ExpectStatus::AnySuccess, 204, true),
            (ExpectStatus::AnySuccess, 299, true),
            (ExpectStatus::AnySuccess, 301, false),
            (ExpectStatus::AnySuccess, 500, false),
            (ExpectStatus::Exactly(503), 503, true),
            (ExpectStatus::Exactly(503), 200, false),
        ] {
            assert_eq!(expect.accepts(status), accepted, "{expect:?} {status}");
        }
    }
}
