//! Reading each section of `greenlight.toml` into typed values, with the checks that need only
//! that section (and the names of people, groups and an app's environments).
//!
//! Collections are read entry by entry: an entry with a problem is left out and the rest are
//! still read, so [`validate`](super::validate) can check what did parse. The result is only
//! handed out when no problem was found at all.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use greenlight_commands::{AppName, EnvironmentName, PersonName};
use toml::{Table, Value};
use url::Url;

use super::error::Problems;
use super::path::KeyPath;
use super::reader::{
    list_with, parse_socket_addr, parsed_text, read, suggestion_suffix, table, text, Fields,
    FromValue, Invalid,
};
use super::types::{
    constant_url, AppConfig, ApprovalGate, Channels, ChildEnvironment, Config, DatabaseConfig,
    Deployer, DiscordConfig, EnvironmentConfig, ExpectStatus, GithubApp, GithubConfig, Group,
    JsonExpectation, Person, ServerConfig, SlackConfig, SmokeCheck,
};
use super::values::{DatabaseUrl, GroupName, Principal};
use crate::secret::{Secret, SecretList};

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

/// Names defined anywhere in the file, gathered before anything refers to them.
struct Known<'t> {
    people: Vec<&'t str>,
    /// Each group with the members as written.
    groups: Vec<(&'t str, Vec<&'t str>)>,
}

impl<'t> Known<'t> {
    fn gather(root: &'t Table) -> Self {
        let section = |name: &str| root.get(name).and_then(Value::as_table);
        let people = section("people")
            .map(|people| people.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let groups = section("groups")
            .map(|groups| {
                groups
                    .iter()
                    .map(|(name, members)| {
                        let members = members
                            .as_array()
                            .map(|members| members.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        (name.as_str(), members)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { people, groups }
    }

    fn group(&self, name: &str) -> Option<&[&'t str]> {
        self.groups
            .iter()
            .find(|(group, _)| *group == name)
            .map(|(_, members)| members.as_slice())
    }

    /// The distinct people `principals` stand for, or `None` if one of them is unknown (which
    /// is reported where it is written).
    fn distinct_people(&self, principals: &[Principal]) -> Option<BTreeSet<&str>> {
        let mut people = BTreeSet::new();
        for principal in principals {
            match principal {
                Principal::Person(person) => {
                    let known = self.people.iter().find(|name| **name == person.as_str())?;
                    people.insert(*known);
                }
                Principal::Group(group) => {
                    let members = self.group(group.as_str())?;
                    people.extend(
                        members
                            .iter()
                            .copied()
                            .filter(|member| self.people.contains(member)),
                    );
                }
            }
        }
        Some(people)
    }

    /// A reviewer or operator entry that names an existing person or group.
    fn principal(
        &self,
        value: &Value,
        at: &KeyPath,
        problems: &mut Problems,
    ) -> Result<Principal, Invalid> {
        let principal = Principal::from_value(value, at, problems)?;
        let problem = match &principal {
            Principal::Person(person) if !self.people.contains(&person.as_str()) => {
                let group_hint = if self.group(person.as_str()).is_some() {
                    format!("; for the group write \"group:{person}\"")
                } else {
                    suggestion_suffix(person.as_str(), self.people.iter().copied())
                };
                Some(format!("unknown person {:?}{group_hint}", person.as_str()))
            }
            Principal::Group(group) if self.group(group.as_str()).is_none() => Some(format!(
                "unknown group {:?}{}",
                group.as_str(),
                suggestion_suffix(group.as_str(), self.groups.iter().map(|(name, _)| *name))
            )),
            _ => None,
        };
        match problem {
            Some(message) => {
                problems.add(at, message);
                Err(Invalid)
            }
            None => Ok(principal),
        }
    }
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
    let server = fields.optional_with("server", server);
    let database = fields.optional_with("database", database);
    let slack = fields.optional_with("slack", slack);
    let discord = fields.optional_with("discord", discord);
    let github = fields.optional_with("github", github);
    let people = fields.optional_with("people", people);
    let groups = fields.optional_with("groups", |value, at, problems| {
        groups(value, at, problems, &known)
    });
    let apps = fields.optional_with("apps", |value, at, problems| {
        apps(value, at, problems, &known)
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
    resolve_child_environments(&mut apps, env, problems);
    let config = Config {
        server,
        database,
        slack: slack.ok().flatten(),
        discord: discord.ok().flatten(),
        github: github.ok().flatten(),
        people: people.ok().flatten().unwrap_or_default(),
        groups: groups.ok().flatten().unwrap_or_default(),
        apps,
    };
    (config, present)
}

fn server(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<ServerConfig, Invalid> {
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

/// A URL that links are built on: no query or fragment to get in the way.
fn base_url(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Url, Invalid> {
    let url = Url::from_value(value, at, problems)?;
    if url.query().is_some() || url.fragment().is_some() {
        problems.add(at, "must not have a query (?…) or fragment (#…)");
        return Err(Invalid);
    }
    Ok(url)
}

fn database(
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

fn slack(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<SlackConfig, Invalid> {
    let mut fields = Fields::new(table(value, at, problems)?, at, problems);
    let bot_token = fields.required::<Secret>(
        "bot_token",
        "the Bot User OAuth Token (xoxb-…), e.g. \"${SLACK_BOT_TOKEN}\"",
    );
    let signing_secret = fields.required::<SecretList>(
        "signing_secret",
        "the Signing Secret from the app's Basic Information, e.g. \"${SLACK_SIGNING_SECRET}\"",
    );
    let api_url = fields.optional_with("api_url", base_url);
    fields.finish();
    Ok(SlackConfig {
        bot_token: bot_token?,
        signing_secret: signing_secret?,
        api_url: api_url?.unwrap_or_else(|| constant_url(SlackConfig::DEFAULT_API_URL)),
    })
}

fn discord(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<DiscordConfig, Invalid> {
    let mut fields = Fields::new(table(value, at, problems)?, at, problems);
    let application_id = fields.required(
        "application_id",
        "the Application ID from the Developer Portal, e.g. \"${DISCORD_APPLICATION_ID}\"",
    );
    let public_key = fields.required(
        "public_key",
        "the Public Key from the Developer Portal, e.g. \"${DISCORD_PUBLIC_KEY}\"",
    );
    let bot_token = fields.required::<Secret>(
        "bot_token",
        "the bot's token, e.g. \"${DISCORD_BOT_TOKEN}\"",
    );
    let api_url = fields.optional_with("api_url", base_url);
    fields.finish();
    Ok(DiscordConfig {
        application_id: application_id?,
        public_key: public_key?,
        bot_token: bot_token?,
        api_url: api_url?.unwrap_or_else(|| constant_url(DiscordConfig::DEFAULT_API_URL)),
    })
}

fn github(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<GithubConfig, Invalid> {
    let mut fields = Fields::new(table(value, at, problems)?, at, problems);
    let webhook_secret = fields.required::<SecretList>(
        "webhook_secret",
        "the webhook's secret, e.g. \"${GITHUB_WEBHOOK_SECRET}\" (without [github], GitHub webhooks are off)",
    );
    let app_id = fields.optional_with("app_id", |value, at, problems| {
        let id = u64::from_value(value, at, problems)?;
        if id == 0 {
            problems.add(at, "must be the GitHub App's id (a positive number)");
            return Err(Invalid);
        }
        Ok(id)
    });
    let private_key_file = fields.optional("private_key_file");
    let token = fields.optional::<Secret>("token");
    let api_url = fields.optional_with("api_url", base_url);
    let app = match (app_id, private_key_file) {
        (Ok(Some(app_id)), Ok(Some(private_key_file))) => Ok(Some(GithubApp {
            app_id,
            private_key_file,
        })),
        (Ok(None), Ok(None)) => Ok(None),
        (Ok(Some(_)), Ok(None)) => {
            let at = fields.path("private_key_file");
            fields.problems().add(
                &at,
                "missing; a GitHub App needs both app_id and private_key_file",
            );
            Err(Invalid)
        }
        (Ok(None), Ok(Some(_))) => {
            let at = fields.path("app_id");
            fields.problems().add(
                &at,
                "missing; a GitHub App needs both app_id and private_key_file",
            );
            Err(Invalid)
        }
        _ => Err(Invalid),
    };
    fields.finish();
    Ok(GithubConfig {
        webhook_secret: webhook_secret?,
        app: app?,
        token: token?,
        api_url: api_url?.unwrap_or_else(|| constant_url(GithubConfig::DEFAULT_API_URL)),
    })
}

/// Every well-formed person; the others are reported and left out.
fn people(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Vec<Person>, Invalid> {
    let entries = table(value, at, problems)?;
    Ok(entries
        .iter()
        .filter_map(|(key, value)| person(key, value, &at.key(key), problems).ok())
        .collect())
}

fn person(
    key: &str,
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
) -> Result<Person, Invalid> {
    let name = PersonName::parse(key).map_err(|error| {
        problems.add(at, error.to_string());
        Invalid
    });
    let mut fields = Fields::new(table(value, at, problems)?, at, problems);
    let slack = fields.optional("slack");
    let discord = fields.optional("discord");
    let github = fields.optional("github");
    let email = fields.optional("email");
    let identities = ["slack", "discord", "github", "email"];
    if !identities.iter().any(|key| fields.has(key)) {
        let message = "has no identity: give at least one of slack, discord, github, email";
        fields.problems().add(at, message);
    }
    fields.finish();
    Ok(Person {
        name: name?,
        slack: slack?,
        discord: discord?,
        github: github?,
        email: email?,
    })
}

fn groups(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
    known: &Known<'_>,
) -> Result<Vec<Group>, Invalid> {
    let entries = table(value, at, problems)?;
    Ok(entries
        .iter()
        .filter_map(|(key, value)| group(key, value, &at.key(key), problems, known).ok())
        .collect())
}

fn group(
    key: &str,
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
    known: &Known<'_>,
) -> Result<Group, Invalid> {
    let name = GroupName::parse(key).map_err(|message| {
        problems.add(at, message);
        Invalid
    });
    let members = list_with(value, at, problems, "people", |value, at, problems| {
        let member = text(value, at, problems, "a person's name")?;
        if member.starts_with(Principal::GROUP_PREFIX) {
            problems.add(at, "groups cannot contain groups; list the people instead");
            return Err(Invalid);
        }
        match known.principal(value, at, problems)? {
            Principal::Person(person) => Ok(person),
            Principal::Group(_) => Err(Invalid),
        }
    })?;
    if members.is_empty() {
        problems.add(at, "must list at least one person");
        return Err(Invalid);
    }
    reject_duplicates(&members, at, problems)?;
    Ok(Group {
        name: name?,
        members,
    })
}

/// Reports every entry equal to an earlier one.
fn reject_duplicates<T: Ord + fmt::Display>(
    items: &[T],
    at: &KeyPath,
    problems: &mut Problems,
) -> Result<(), Invalid> {
    let mut seen = BTreeSet::new();
    let mut result = Ok(());
    for (index, item) in items.iter().enumerate() {
        if !seen.insert(item) {
            problems.add(&at.index(index), format!("\"{item}\" is listed twice"));
            result = Err(Invalid);
        }
    }
    result
}

/// A list of reviewers or operators, each an existing person or group, each once.
fn principals(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
    known: &Known<'_>,
) -> Result<Vec<Principal>, Invalid> {
    let principals = list_with(
        value,
        at,
        problems,
        "people or group:NAME",
        |value, at, problems| known.principal(value, at, problems),
    )?;
    reject_duplicates(&principals, at, problems)?;
    Ok(principals)
}

fn apps(
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

fn environments(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
    known: &Known<'_>,
) -> Result<Vec<EnvironmentConfig>, Invalid> {
    let entries = table(value, at, problems)?;
    if entries.is_empty() {
        problems.add(at, "must define at least one environment");
        return Err(Invalid);
    }
    let names: Vec<&str> = entries.keys().map(String::as_str).collect();
    Ok(entries
        .iter()
        .filter_map(|(key, value)| {
            environment(key, value, &at.key(key), problems, known, &names).ok()
        })
        .collect())
}

/// Keys that only mean something in a gated environment.
const GATE_KEYS: [&str; 6] = [
    "reviewers",
    "required_approvals",
    "prevent_self_review",
    "wait_timer",
    "approval_timeout",
    "reminder_every",
];

fn environment(
    key: &str,
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
    known: &Known<'_>,
    siblings: &[&str],
) -> Result<EnvironmentConfig, Invalid> {
    let name = EnvironmentName::parse(key).map_err(|error| {
        problems.add(at, error.to_string());
        Invalid
    });
    let mut fields = Fields::new(table(value, at, problems)?, at, problems);
    let after = fields.optional_with("after", |value, at, problems| {
        let after = EnvironmentName::from_value(value, at, problems)?;
        if after.as_str() == key {
            problems.add(at, "an environment cannot come after itself");
            Err(Invalid)
        } else if !siblings.contains(&after.as_str()) {
            let others = siblings.iter().copied().filter(|sibling| *sibling != key);
            let message = format!(
                "unknown environment {:?}{}",
                after.as_str(),
                suggestion_suffix(after.as_str(), others.clone())
            );
            problems.add(
                at,
                format!(
                    "{message} (this app has: {})",
                    others.collect::<Vec<_>>().join(", ")
                ),
            );
            Err(Invalid)
        } else {
            Ok(after)
        }
    });
    let reviewers = fields.optional_with("reviewers", |value, at, problems| {
        principals(value, at, problems, known)
    });
    let required_approvals = fields.optional_with("required_approvals", |value, at, problems| {
        let count = u32::from_value(value, at, problems)?;
        if count == 0 {
            problems.add(at, "must be at least 1");
            return Err(Invalid);
        }
        Ok(count)
    });
    let prevent_self_review = fields.optional::<bool>("prevent_self_review");
    let wait_timer = fields.optional::<Duration>("wait_timer");
    let approval_timeout = fields.optional_with("approval_timeout", positive_duration);
    let reminder_every = fields.optional_with("reminder_every", positive_duration);
    let deploy = fields.optional_with("deploy", deployer);
    let smoke = fields.optional_with("smoke", |value, at, problems| {
        let checks = list_with(value, at, problems, "smoke checks", smoke_check)?;
        let mut seen = BTreeSet::new();
        let mut result = Ok(());
        for (index, check) in checks.iter().enumerate() {
            if !seen.insert(check.name.as_str()) {
                let at = at.index(index).key("name");
                problems.add(
                    &at,
                    format!("{:?} is the name of another smoke check here", check.name),
                );
                result = Err(Invalid);
            }
        }
        result.map(|()| checks)
    });
    let smoke_settle = fields.optional::<Duration>("smoke_settle");
    let auto_rollback =
        fields.or_default("auto_rollback", EnvironmentConfig::DEFAULT_AUTO_ROLLBACK);
    let lock_after_rollback = fields.or_default(
        "lock_after_rollback",
        EnvironmentConfig::DEFAULT_LOCK_AFTER_ROLLBACK,
    );
    let flags_token = fields.optional::<SecretList>("flags_token");

    // Checks between keys of this environment, made only when the keys involved parsed.
    let gate = match after {
        Ok(Some(after)) => gate(
            &mut fields,
            known,
            GateFields {
                after,
                reviewers,
                required_approvals,
                prevent_self_review,
                wait_timer,
                approval_timeout,
                reminder_every,
            },
        ),
        Ok(None) => {
            let set = [
                reviewers.as_ref().is_ok_and(Option::is_some),
                required_approvals.is_ok_and(|value| value.is_some()),
                prevent_self_review.is_ok_and(|value| value.is_some()),
                wait_timer.is_ok_and(|value| value.is_some()),
                approval_timeout.is_ok_and(|value| value.is_some()),
                reminder_every.is_ok_and(|value| value.is_some()),
            ];
            let hint = match siblings.iter().find(|sibling| **sibling != key) {
                Some(previous) => format!("; add `after = \"{previous}\"` to gate this one"),
                None => String::new(),
            };
            for (gate_key, _) in GATE_KEYS.iter().zip(set).filter(|(_, set)| *set) {
                let at = fields.path(gate_key);
                fields.problems().add(
                    &at,
                    format!("only applies to a gated environment (one with `after`){hint}"),
                );
            }
            if let Ok(Some(Deployer::GithubProtectionRule { .. })) = &deploy {
                let at = fields.path("deploy").key("kind");
                fields.problems().add(&at, "github-protection-rule needs a gated environment (one with `after` and `reviewers`)");
            }
            if set.contains(&true) {
                Err(Invalid)
            } else {
                Ok(None)
            }
        }
        Err(Invalid) => Err(Invalid),
    };
    let without_smoke =
        matches!(&smoke, Ok(None)) || matches!(&smoke, Ok(Some(checks)) if checks.is_empty());
    if without_smoke && smoke_settle.is_ok_and(|settle| settle.is_some()) {
        let at = fields.path("smoke_settle");
        fields
            .problems()
            .add(&at, "has no effect without smoke checks");
    }
    fields.finish();

    Ok(EnvironmentConfig {
        name: name?,
        gate: gate?,
        deploy: deploy?,
        smoke: smoke?.unwrap_or_default(),
        smoke_settle: smoke_settle?.unwrap_or_default(),
        auto_rollback: auto_rollback?,
        lock_after_rollback: lock_after_rollback?,
        flags_token: flags_token?,
    })
}

/// The gate keys of an environment that has `after`, as read.
struct GateFields {
    after: EnvironmentName,
    reviewers: Result<Option<Vec<Principal>>, Invalid>,
    required_approvals: Result<Option<u32>, Invalid>,
    prevent_self_review: Result<Option<bool>, Invalid>,
    wait_timer: Result<Option<Duration>, Invalid>,
    approval_timeout: Result<Option<Duration>, Invalid>,
    reminder_every: Result<Option<Duration>, Invalid>,
}

fn gate(
    fields: &mut Fields<'_, '_>,
    known: &Known<'_>,
    read: GateFields,
) -> Result<Option<ApprovalGate>, Invalid> {
    let reviewers = match read.reviewers {
        Ok(Some(reviewers)) if !reviewers.is_empty() => Ok(reviewers),
        Ok(Some(_)) => {
            let at = fields.path("reviewers");
            fields
                .problems()
                .add(&at, "must list at least one reviewer");
            Err(Invalid)
        }
        Ok(None) => {
            let at = fields.path("reviewers");
            fields.problems().add(
                &at,
                "missing; a gated environment (one with `after`) needs reviewers, e.g. [\"group:sre\"]",
            );
            Err(Invalid)
        }
        Err(Invalid) => Err(Invalid),
    };
    let required_approvals = read
        .required_approvals
        .map(|count| count.unwrap_or(ApprovalGate::DEFAULT_REQUIRED_APPROVALS));
    if let (Ok(reviewers), Ok(required)) = (&reviewers, required_approvals) {
        if let Some(people) = known.distinct_people(reviewers) {
            if usize::try_from(required).is_ok_and(|required| required > people.len()) {
                let at = fields.path("required_approvals");
                let people: Vec<&str> = people.into_iter().collect();
                fields.problems().add(
                    &at,
                    format!(
                        "{required} approvals required but the reviewers are only {} {} ({})",
                        people.len(),
                        if people.len() == 1 {
                            "person"
                        } else {
                            "people"
                        },
                        people.join(", ")
                    ),
                );
            }
        }
    }
    let approval_timeout = read
        .approval_timeout
        .map(|timeout| timeout.unwrap_or(ApprovalGate::DEFAULT_APPROVAL_TIMEOUT));
    let wait_timer = read.wait_timer.map(Option::unwrap_or_default);
    if let (Ok(wait_timer), Ok(approval_timeout)) = (wait_timer, approval_timeout) {
        if wait_timer >= approval_timeout {
            let at = fields.path("wait_timer");
            fields.problems().add(
                &at,
                format!(
                    "must be shorter than approval_timeout ({}), or requests expire before approvals open",
                    humantime::format_duration(approval_timeout)
                ),
            );
        }
    }
    Ok(Some(ApprovalGate {
        after: read.after,
        reviewers: reviewers?,
        required_approvals: required_approvals?,
        prevent_self_review: read
            .prevent_self_review?
            .unwrap_or(ApprovalGate::DEFAULT_PREVENT_SELF_REVIEW),
        wait_timer: wait_timer?,
        approval_timeout: approval_timeout?,
        reminder_every: read.reminder_every?,
    }))
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

fn deployer(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Deployer, Invalid> {
    let mut fields = Fields::new(table(value, at, problems)?, at, problems);
    let kind = fields.required_with(
        "kind",
        &format!("one of {}", Deployer::KINDS.join(", ")),
        |value, at, problems| {
            parsed_text(value, at, problems, "a deployer kind", |kind| {
                DeployKind::parse(kind).ok_or_else(|| {
                    format!(
                        "unknown deployer {kind:?}, expected one of {}{}",
                        Deployer::KINDS.join(", "),
                        suggestion_suffix(kind, Deployer::KINDS)
                    )
                })
            })
        },
    );
    let Ok(kind) = kind else {
        // Which other keys belong here depends on the kind.
        fields.abandon();
        return Err(Invalid);
    };
    let deployer = match kind {
        DeployKind::Command => {
            let run = fields.required_with(
                "run",
                "the program and its arguments, e.g. [\"flyctl\", \"deploy\", \"--image\", \"{image}\"]",
                command_line,
            );
            let timeout = deploy_timeout(&mut fields);
            let allowed = fields.optional_with("env", variable_names);
            match (run, timeout, allowed) {
                (Ok(run), Ok(timeout), Ok(allowed)) => Ok(Deployer::Command {
                    run,
                    timeout,
                    // Values are read once every section is (`resolve_child_environments`).
                    env: ChildEnvironment {
                        allowed: allowed.unwrap_or_default(),
                        values: Vec::new(),
                    },
                }),
                _ => Err(Invalid),
            }
        }
        DeployKind::Http => {
            let url = fields.required("url", "the deploy hook's URL");
            let secret = fields.required::<Secret>(
                "secret",
                "the secret that signs requests (X-Greenlight-Signature), e.g. \"${SHOP_HOOK_SECRET}\"",
            );
            let timeout = deploy_timeout(&mut fields);
            match (url, secret, timeout) {
                (Ok(url), Ok(secret), Ok(timeout)) => Ok(Deployer::Http {
                    url,
                    secret,
                    timeout,
                }),
                _ => Err(Invalid),
            }
        }
        DeployKind::GithubWorkflow => {
            let workflow = fields.required_with(
                "workflow",
                "the workflow's file name or id, e.g. \"deploy.yml\"",
                |value, at, problems| {
                    let workflow = String::from_value(value, at, problems)?;
                    if workflow.contains('/') {
                        problems.add(
                            at,
                            "give the workflow's file name (like \"deploy.yml\"), not its path",
                        );
                        return Err(Invalid);
                    }
                    Ok(workflow)
                },
            );
            let git_ref = fields.required_with(
                "ref",
                "the branch or tag to run it on, e.g. \"main\"",
                |value, at, problems| {
                    let git_ref = String::from_value(value, at, problems)?;
                    if git_ref.chars().any(char::is_whitespace) {
                        problems.add(at, "a git ref cannot contain whitespace");
                        return Err(Invalid);
                    }
                    Ok(git_ref)
                },
            );
            let timeout = deploy_timeout(&mut fields);
            match (workflow, git_ref, timeout) {
                (Ok(workflow), Ok(git_ref), Ok(timeout)) => Ok(Deployer::GithubWorkflow {
                    workflow,
                    git_ref,
                    timeout,
                }),
                _ => Err(Invalid),
            }
        }
        DeployKind::GithubProtectionRule => {
            deploy_timeout(&mut fields).map(|timeout| Deployer::GithubProtectionRule { timeout })
        }
    };
    fields.finish();
    deployer
}

/// The `kind` of a `deploy` table, which decides its other keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeployKind {
    Command,
    Http,
    GithubWorkflow,
    GithubProtectionRule,
}

impl DeployKind {
    fn parse(word: &str) -> Option<Self> {
        match word {
            "command" => Some(Self::Command),
            "http" => Some(Self::Http),
            "github-workflow" => Some(Self::GithubWorkflow),
            "github-protection-rule" => Some(Self::GithubProtectionRule),
            _ => None,
        }
    }
}

fn deploy_timeout(fields: &mut Fields<'_, '_>) -> Result<Duration, Invalid> {
    fields
        .optional_with("timeout", positive_duration)
        .map(|timeout| timeout.unwrap_or(Deployer::DEFAULT_TIMEOUT))
}

/// `run` of a command deploy: the program and its arguments, run without a shell.
/// The `env` allow-list of a `command` deployer: names of environment variables, each once.
fn variable_names(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
) -> Result<Vec<String>, Invalid> {
    let names = list_with(value, at, problems, "strings", |value, at, problems| {
        let name = text(value, at, problems, "a string")?;
        let valid = name
            .chars()
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            // Not quoted: a `${VAR}` written here was already replaced by its (secret) value.
            problems.add(
                at,
                "must be the name of an environment variable, like \"FLY_API_TOKEN\" (the name, not \"${FLY_API_TOKEN}\")",
            );
            return Err(Invalid);
        }
        Ok(name.to_owned())
    })?;
    for (index, name) in names.iter().enumerate() {
        if names[..index].contains(name) {
            problems.add(&at.index(index), format!("{name} is listed twice"));
            return Err(Invalid);
        }
    }
    Ok(names)
}

/// Reads the values of what each `command` deployer's child may see: its allow-list (a missing
/// variable is an error, or the deploy would run without it) and [`ChildEnvironment::ALWAYS`]
/// (passed when set).
fn resolve_child_environments(
    apps: &mut [AppConfig],
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) {
    for app in apps {
        let app_at = KeyPath::root().key("apps").key(app.name.as_str());
        for environment in &mut app.environments {
            let Some(Deployer::Command { env: child, .. }) = environment.deploy.as_mut() else {
                continue;
            };
            let at = app_at
                .key("environments")
                .key(environment.name.as_str())
                .key("deploy")
                .key("env");
            let mut values = Vec::new();
            for name in ChildEnvironment::ALWAYS {
                if let Some(value) = env(name) {
                    values.push((name.to_owned(), Secret::new(value)));
                }
            }
            for (index, name) in child.allowed.iter().enumerate() {
                if ChildEnvironment::ALWAYS.contains(&name.as_str()) {
                    continue;
                }
                match env(name) {
                    Some(value) => values.push((name.clone(), Secret::new(value))),
                    None => problems.add(
                        &at.index(index),
                        format!("environment variable {name} is not set; the deploy command would run without it"),
                    ),
                }
            }
            child.values = values;
        }
    }
}

fn command_line(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
) -> Result<Vec<String>, Invalid> {
    if value.is_str() {
        problems.add(at, "expected an array of arguments like [\"flyctl\", \"deploy\"]: there is no shell to split a string");
        return Err(Invalid);
    }
    let run = list_with(value, at, problems, "strings", |value, at, problems| {
        let argument = text(value, at, problems, "a string")?;
        for placeholder in placeholders(argument) {
            if !Deployer::PLACEHOLDERS.contains(&placeholder) {
                problems.add(
                    at,
                    format!(
                        "unknown placeholder {{{placeholder}}}{}; available: {}",
                        suggestion_suffix(placeholder, Deployer::PLACEHOLDERS),
                        Deployer::PLACEHOLDERS
                            .map(|name| format!("{{{name}}}"))
                            .join(", ")
                    ),
                );
                return Err(Invalid);
            }
        }
        Ok(argument.to_owned())
    })?;
    match run.first() {
        None => {
            problems.add(at, "must name the program to run");
            Err(Invalid)
        }
        Some(program) if program.trim().is_empty() => {
            problems.add(&at.index(0), "the program name is empty");
            Err(Invalid)
        }
        Some(program) if program.contains(char::is_whitespace) => {
            problems.add(
                &at.index(0),
                "the program name contains whitespace; give each argument separately, like [\"flyctl\", \"deploy\"]",
            );
            Err(Invalid)
        }
        Some(_) => Ok(run),
    }
}

/// The names inside `{…}` that look like placeholders (`{image}`), skipping other braces such
/// as JSON in an argument.
fn placeholders(argument: &str) -> impl Iterator<Item = &str> {
    argument.split('{').skip(1).filter_map(|part| {
        let (name, _) = part.split_once('}')?;
        let looks_like_one =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        looks_like_one.then_some(name)
    })
}

fn smoke_check(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
) -> Result<SmokeCheck, Invalid> {
    let mut fields = Fields::new(table(value, at, problems)?, at, problems);
    let name = fields.required::<String>("name", "a short name shown on the card, e.g. \"health\"");
    let url = fields.required(
        "url",
        "the http(s) URL to check, e.g. \"https://shop.example/health\"",
    );
    let expect_status = fields.optional_with("expect_status", |value, at, problems| {
        let status = u32::from_value(value, at, problems)?;
        match u16::try_from(status) {
            Ok(status) if (100..=599).contains(&status) => Ok(ExpectStatus::Exactly(status)),
            _ => {
                problems.add(at, format!("{status} is not an HTTP status (100-599)"));
                Err(Invalid)
            }
        }
    });
    let expect_json = fields.optional_with("expect_json", |value, at, problems| {
        let mut expectations = Vec::new();
        flatten_expectations(
            table(value, at, problems)?,
            "",
            at,
            problems,
            &mut expectations,
        )?;
        Ok(expectations)
    });
    let timeout = fields.optional_with("timeout", positive_duration);
    let retries = fields.optional_with("retries", |value, at, problems| {
        let retries = u32::from_value(value, at, problems)?;
        if retries > 100 {
            problems.add(at, "must be at most 100");
            return Err(Invalid);
        }
        Ok(retries)
    });
    let retry_delay = fields.optional::<Duration>("retry_delay");
    fields.finish();
    Ok(SmokeCheck {
        name: name?,
        url: url?,
        expect_status: expect_status?.unwrap_or(ExpectStatus::AnySuccess),
        expect_json: expect_json?.unwrap_or_default(),
        timeout: timeout?.unwrap_or(SmokeCheck::DEFAULT_TIMEOUT),
        retries: retries?.unwrap_or(SmokeCheck::DEFAULT_RETRIES),
        retry_delay: retry_delay?.unwrap_or(SmokeCheck::DEFAULT_RETRY_DELAY),
    })
}

/// Turns `expect_json` into dotted paths: `{ "db.status" = "ok" }` and `{ db = { status =
/// "ok" } }` (what `db.status = "ok"` means in TOML) are the same expectation.
fn flatten_expectations(
    table: &Table,
    prefix: &str,
    at: &KeyPath,
    problems: &mut Problems,
    out: &mut Vec<JsonExpectation>,
) -> Result<(), Invalid> {
    let mut result = Ok(());
    for (key, value) in table {
        let at = at.key(key);
        if key.is_empty() || key.split('.').any(str::is_empty) {
            problems.add(&at, "a JSON path cannot have an empty segment");
            result = Err(Invalid);
            continue;
        }
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let converted = match value {
            Value::Table(nested) => {
                result = result.and(flatten_expectations(nested, &path, &at, problems, out));
                continue;
            }
            value if contains_poison(value, &at, problems) => Err(Invalid),
            Value::Datetime(_) => {
                problems.add(
                    &at,
                    "JSON has no dates; write the expected value as a string",
                );
                Err(Invalid)
            }
            value => read(value, &at, problems, |value, at, problems| {
                serde_json::to_value(value).map_err(|error| {
                    problems.add(at, format!("cannot be compared with JSON: {error}"));
                    Invalid
                })
            }),
        };
        match converted {
            Ok(value) => out.push(JsonExpectation { path, value }),
            Err(Invalid) => result = Err(Invalid),
        }
    }
    result
}

/// Whether a `${VAR}` somewhere inside `value` failed to expand.
fn contains_poison(value: &Value, at: &KeyPath, problems: &Problems) -> bool {
    problems.is_poisoned(at)
        || match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .any(|(index, item)| contains_poison(item, &at.index(index), problems)),
            Value::Table(table) => table
                .iter()
                .any(|(key, item)| contains_poison(item, &at.key(key), problems)),
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_kind_is_understood() {
        for word in Deployer::KINDS {
            assert!(DeployKind::parse(word).is_some(), "{word}");
        }
    }

    #[test]
    fn placeholders_are_found_and_json_is_not_one() {
        let found: Vec<&str> = placeholders("--image={image}:{sha} {\"a\":1} {Bad} {}").collect();
        assert_eq!(found, ["image", "sha"]);
    }
}
