//! Rule-by-rule tests of configuration checking: each case is a small file and the exact
//! problems it must produce (no fewer, and no confusing extra ones).

mod apps;
mod deployers;
mod gates;
mod lookups;
mod people;
mod platforms;
mod secrets;
mod smoke;
mod variables;
mod whole_file;

use super::*;

const PUBLIC_KEY: &str = "8e4ce25b4a1c3e1f1a7a8d3a32c1c0b0f7e6d5c4b3a29180716253443526170a";

/// Platforms, people and groups that the cases below refer to.
fn base() -> String {
    format!(
        r#"
[slack]
bot_token = "xoxb-1"
signing_secret = "slack-signing-value"

[discord]
application_id = "1100000000000000001"
public_key = "{PUBLIC_KEY}"
bot_token = "discord-token"

[people]
alice = {{ slack = "U012AB3CD", github = "alice" }}
bob = {{ slack = "U045EF6GH", github = "bob-gh" }}
carol = {{ discord = "123456789012345678", email = "carol@example.com" }}

[groups]
sre = ["alice", "bob"]
"#
    )
}

/// `base()` plus an app `shop` whose production environment gets `production` as extra lines.
fn with_production(production: &str) -> String {
    format!(
        r#"{}
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "ci"
channels = {{ slack = "C0DEPLOYS" }}

[apps.shop.environments.staging]

[apps.shop.environments.production]
after = "staging"
{production}
"#,
        base()
    )
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_toml_str(text, &no_env)
}

fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.problems().iter().map(ToString::to_string).collect(),
    }
}

fn valid(text: &str) -> Config {
    parse(text).unwrap_or_else(|errors| panic!("{errors}"))
}
