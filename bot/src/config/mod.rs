//! `greenlight.toml`: typed configuration, `${VAR}` interpolation and validation.
//!
//! Entry points: [`Config::load`] (what the binary calls, passing `std::env::var`),
//! [`Config::from_toml_str`], and [`check_config_report`] for `greenlight check-config`.
//!
//! Reading goes: TOML syntax → `${VAR}` expansion (`interpolate`) → each section read into
//! typed values, field by field (`sections`, using `reader`) → checks across sections
//! (`validate`). Every problem from every stage is collected with its key path.
//!
//! Architecture invariants: this is the only module that looks at environment variables, and
//! only through the `env` function it is given. A [`Config`] only exists when nothing was wrong,
//! so its users never check it again. No secret reaches an error message or `Debug` output.

mod directory;
mod error;
mod interpolate;
mod lookup;
mod path;
mod reader;
mod sections;
mod types;
mod validate;
mod values;

use std::io::ErrorKind;
use std::path::Path;

pub use directory::People;
pub use error::{check_config_report, ConfigErrors, ConfigProblem};
pub use sections::{DATABASE_URL_VARIABLE, LISTEN_VARIABLE};
pub use types::{
    AppConfig, ApprovalGate, Channels, ChildEnvironment, Config, DatabaseConfig, Deployer,
    DiscordConfig, EnvironmentConfig, ExpectStatus, GithubApp, GithubConfig, Group,
    JsonExpectation, Person, ServerConfig, SlackConfig, SmokeCheck,
};
pub use values::{
    DatabaseBackend, DatabaseUrl, DiscordPublicKey, Email, GithubLogin, GroupName, ImageRepository,
    Principal, RepositoryName, SlackChannelId, SlackUserId, Snowflake,
};

use error::Problems;
use path::KeyPath;

impl Config {
    /// Parses and checks a configuration. `env` looks up `${VAR}` references and
    /// `GREENLIGHT_LISTEN`; pass `&|name| std::env::var(name).ok()` at the edge, a map in tests.
    pub fn from_toml_str(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let mut problems = Problems::default();
        let mut root: toml::Table = match toml::from_str(text) {
            Ok(root) => root,
            Err(error) => {
                problems.add(&KeyPath::root(), syntax_message(text, &error));
                return problems.finish(Config::default());
            }
        };
        interpolate::interpolate_table(&mut root, &KeyPath::root(), env, &mut problems);
        let (config, present) = sections::read_config(&root, env, &mut problems);
        validate::validate(&config, &present, &mut problems);
        problems.finish(config)
    }

    /// Reads and checks the file at `path`. A missing file is an error
    /// ([`ConfigErrors::is_file_missing`]): whether to run on the defaults is the caller's call.
    /// Unlike [`Self::from_toml_str`], this also checks that files the configuration names
    /// (the GitHub App's private key) can be read.
    pub fn load(
        path: impl AsRef<Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| match error.kind() {
            ErrorKind::NotFound => ConfigErrors::file_missing(path),
            _ => ConfigErrors::file_unreadable(path, &error),
        })?;
        let config = Self::from_toml_str(&text, env)?;
        let mut problems = Problems::default();
        if let Some(app) = config
            .github
            .as_ref()
            .and_then(|github| github.app.as_ref())
        {
            let at = KeyPath::root().key("github").key("private_key_file");
            let file = &app.private_key_file;
            match std::fs::File::open(file) {
                Ok(_) if file.is_dir() => problems.add(
                    &at,
                    format!("{} is a directory, not a key file", file.display()),
                ),
                Ok(_) => {}
                Err(error) if error.kind() == ErrorKind::NotFound => {
                    problems.add(&at, format!("file {} not found", file.display()));
                }
                Err(error) => problems.add(&at, format!("cannot read {}: {error}", file.display())),
            }
        }
        problems.finish(config)
    }

    /// The defaults with the environment's overrides applied (`GREENLIGHT_LISTEN`): what
    /// `serve` runs on when there is no configuration file.
    pub fn default_with_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
        Self::from_toml_str("", env)
    }
}

/// "invalid TOML at line 3, column 12: …", without the source line that `toml` would quote:
/// that line may hold a secret.
fn syntax_message(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim();
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before
                .rsplit('\n')
                .next()
                .map_or(0, |line| line.chars().count())
                + 1;
            format!("invalid TOML at line {line}, column {column}: {message}")
        }
        None => format!("invalid TOML: {message}"),
    }
}

#[cfg(test)]
mod tests;
