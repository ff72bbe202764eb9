//! Reading each section of `greenlight.toml` into typed values, with the checks that need only
//! that section (and the names of people, groups and an app's environments).
//!
//! Collections are read entry by entry: an entry with a problem is left out and the rest are
//! still read, so [`validate`](super::validate) can check what did parse. The result is only
//! handed out when no problem was found at all.
//!
//! One module per part of the file: `server` (`[server]`, `[database]`), `platforms`
//! (`[slack]`, `[discord]`, `[github]`), `people` (`[people]`, `[groups]` and references to
//! them), `apps` and `environments` (with their approval gates), `deployers` (`deploy` tables)
//! and `smoke` (smoke checks).

mod apps;
mod deployers;
mod environments;
mod people;
mod platforms;
mod server;
mod smoke;

use std::time::Duration;

use toml::{Table, Value};
use url::Url;

use super::directory::People;
use super::error::Problems;
use super::path::KeyPath;
use super::reader::{parse_socket_addr, Fields, FromValue, Invalid};
use super::types::Config;
use super::values::DatabaseUrl;
use people::Known;

/// The environment variable that overrides `server.listen`.
pub const LISTEN_VARIABLE: &str = "GREENLIGHT_LISTEN";
/// Overrides `database.url`, so a container can keep its database on a volume (fly.toml).
pub const DATABASE_URL_VARIABLE: &str = "GREENLIGHT_DATABASE_URL";

/// Which platform sections the file has, even when they could not be read: references to a
/// present but broken section must not be reported as references to a missing one.
pub(crate) struct Present {
    pub(crate) slack: bool,
    pub(crate) discord: bool,
    pub(crate) github: bool,
}

/// Reads the whole file. The returned config holds whatever parsed; it is only meaningful when
/// `problems` stayed empty.
pub(crate) fn read_config(
    root: &Table,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> (Config, Present) {
    let present = Present {
        slack: root.contains_key("slack"),
        discord: root.contains_key("discord"),
        github: root.contains_key("github"),
    };
    let known = Known::gather(root);

    let mut fields = Fields::new(root, &KeyPath::root(), problems);
    let server = fields.optional_with("server", server::server);
    let database = fields.optional_with("database", server::database);
    let slack = fields.optional_with("slack", platforms::slack);
    let discord = fields.optional_with("discord", platforms::discord);
    let github = fields.optional_with("github", platforms::github);
    let people = fields.optional_with("people", people::people);
    let groups = fields.optional_with("groups", |value, at, problems| {
        people::groups(value, at, problems, &known)
    });
    let apps = fields.optional_with("apps", |value, at, problems| {
        apps::apps(value, at, problems, &known)
    });
    fields.finish();

    let mut server = server.ok().flatten().unwrap_or_default();
    if let Some(listen) = env(LISTEN_VARIABLE) {
        match parse_socket_addr(&listen) {
            Ok(address) => server.listen = address,
            Err(message) => problems.add(
                &KeyPath::root().key("server").key("listen"),
                format!("{message} (from {LISTEN_VARIABLE})"),
            ),
        }
    }
    let mut database = database.ok().flatten().unwrap_or_default();
    if let Some(url) = env(DATABASE_URL_VARIABLE) {
        match DatabaseUrl::parse(&url) {
            Ok(url) => database.url = url,
            Err(message) => problems.add(
                &KeyPath::root().key("database").key("url"),
                format!("{message} (from {DATABASE_URL_VARIABLE})"),
            ),
        }
    }
    let mut apps = apps.ok().flatten().unwrap_or_default();
    deployers::resolve_child_environments(&mut apps, env, problems);
    let config = Config {
        server,
        database,
        slack: slack.ok().flatten(),
        discord: discord.ok().flatten(),
        github: github.ok().flatten(),
        people: People::new(people.ok().flatten().unwrap_or_default()),
        groups: groups.ok().flatten().unwrap_or_default(),
        apps,
    };
    (config, present)
}

/// A URL that links are built on: no query or fragment to get in the way.
fn base_url(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Url, Invalid> {
    let url = Url::from_value(value, at, problems)?;
    if url.query().is_some() || url.fragment().is_some() {
        problems.add(at, "must not have a query (?…) or fragment (#…)");
        return Err(Invalid);
    }
    Ok(url)
}

fn positive_duration(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
) -> Result<Duration, Invalid> {
    let duration = Duration::from_value(value, at, problems)?;
    if duration.is_zero() {
        problems.add(at, "must be longer than 0s");
        return Err(Invalid);
    }
    Ok(duration)
}
