//! `[server]` and `[database]`: where Greenlight listens, the links it builds, its API token
//! and its database.

use toml::Value;

use super::base_url;
use crate::config::error::Problems;
use crate::config::path::KeyPath;
use crate::config::reader::{table, Fields, Invalid};
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
    fields.finish();
    Ok(DatabaseConfig {
        url: url?.unwrap_or_else(|| DatabaseConfig::default().url),
    })
}
