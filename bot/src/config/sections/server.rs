//! `[server]` and `[database]`: where Greenlight listens, the links it builds, its API token
//! and its database.

use std::time::Duration;

use toml::Value;

use super::base_url;
use crate::config::error::Problems;
use crate::config::path::KeyPath;
use crate::config::reader::{table, Fields, FromValue, Invalid};
use crate::config::types::{DatabaseConfig, ServerConfig};
use crate::secret::SecretList;

pub(super) fn server(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
) -> Result<ServerConfig, Invalid> {
    let mut fields = Fields::new(table(value, at, problems)?, at, problems);
    let listen = fields.or_default("listen", ServerConfig::DEFAULT_LISTEN);
    let public_url = fields.optional_with("public_url", base_url);
    let api_token = fields.optional::<SecretList>("api_token");
    fields.finish();
    Ok(ServerConfig {
        listen: listen?,
        public_url: public_url?.unwrap_or_else(|| ServerConfig::default().public_url),
        api_token: api_token?,
    })
}

pub(super) fn database(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
) -> Result<DatabaseConfig, Invalid> {
    let mut fields = Fields::new(table(value, at, problems)?, at, problems);
    let url = fields.optional("url");
    let lease = fields.optional_with("lease", lease);
    fields.finish();
    Ok(DatabaseConfig {
        url: url?.unwrap_or_else(|| DatabaseConfig::default().url),
        lease: lease?.unwrap_or(DatabaseConfig::DEFAULT_LEASE),
    })
}

/// `database.lease`: long enough that a replica renews well before it lapses (a third of it
/// apart), short enough that another replica takes over a dead one's work promptly.
fn lease(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Duration, Invalid> {
    let lease = Duration::from_value(value, at, problems)?;
    let range = DatabaseConfig::MIN_LEASE..=DatabaseConfig::MAX_LEASE;
    if range.contains(&lease) {
        Ok(lease)
    } else {
        problems.add(
            at,
            format!(
                "must be between {}s and {}s (a replica renews its leases every third of it, \
                 and another takes over its work when it lapses)",
                DatabaseConfig::MIN_LEASE.as_secs(),
                DatabaseConfig::MAX_LEASE.as_secs()
            ),
        );
        Err(Invalid)
    }
}
