//! `[apps.NAME]`: an app's repository, image, CI token, channels and operators; its
//! environments are read by [`environments`](super::environments).

use greenlight_commands::AppName;
use toml::Value;

use super::environments::environments;
use super::people::{principals, Known};
use crate::config::error::Problems;
use crate::config::path::KeyPath;
use crate::config::reader::{table, Fields, Invalid};
use crate::config::types::{AppConfig, Channels};
use crate::secret::SecretList;

pub(super) fn apps(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
    known: &Known<'_>,
) -> Result<Vec<AppConfig>, Invalid> {
    let entries = table(value, at, problems)?;
    Ok(entries
        .iter()
        .filter_map(|(key, value)| app(key, value, &at.key(key), problems, known).ok())
        .collect())
}

fn app(
    key: &str,
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
    known: &Known<'_>,
) -> Result<AppConfig, Invalid> {
    let name = AppName::parse(key).map_err(|error| {
        problems.add(at, error.to_string());
        Invalid
    });
    let mut fields = Fields::new(table(value, at, problems)?, at, problems);
    let repository = fields.optional("repository");
    let image = fields.required(
        "image",
        "the image repository releases come from, without a tag, e.g. \"ghcr.io/acme/shop\"",
    );
    let allow_version_tags = fields.or_default("allow_version_tags", false);
    let ci_token = fields.required::<SecretList>(
        "ci_token",
        "the bearer token CI sends to /api/v1/events, e.g. \"${SHOP_CI_TOKEN}\"",
    );
    let channels = fields.optional_with("channels", channels);
    let operators = fields.optional_with("operators", |value, at, problems| {
        principals(value, at, problems, known)
    });
    let environments = fields.required_with(
        "environments",
        &format!("define at least one, e.g. [apps.{key}.environments.production]"),
        |value, at, problems| environments(value, at, problems, known),
    );
    fields.finish();
    Ok(AppConfig {
        name: name?,
        repository: repository?,
        image: image?,
        allow_version_tags: allow_version_tags?,
        ci_token: ci_token?,
        channels: channels?.unwrap_or_default(),
        operators: operators?.unwrap_or_default(),
        environments: environments?,
    })
}

fn channels(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Channels, Invalid> {
    let mut fields = Fields::new(table(value, at, problems)?, at, problems);
    let slack = fields.optional("slack");
    let discord = fields.optional("discord");
    fields.finish();
    Ok(Channels {
        slack: slack?,
        discord: discord?,
    })
}
