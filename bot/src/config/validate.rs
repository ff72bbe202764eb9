//! Checks across sections: platforms that channels and deployers rely on, `after` cycles,
//! identities claimed twice, and tokens that would grant each other's access.
//!
//! These run over whatever parsed, so an entry that had its own problem is simply not checked
//! again here.

use std::collections::HashMap;

use super::error::Problems;
use super::path::KeyPath;
use super::sections::Present;
use super::types::{AppConfig, Config, Deployer};
use super::values::{Email, GithubLogin};
use crate::secret::{Secret, SecretList};

pub(crate) fn validate(config: &Config, present: &Present, problems: &mut Problems) {
    for app in &config.apps {
        check_app(config, app, present, problems);
    }
    check_identities(config, problems);
    check_tokens(config, problems);
}

fn app_path(app: &AppConfig) -> KeyPath {
    KeyPath::root().key("apps").key(app.name.as_str())
}

fn check_app(config: &Config, app: &AppConfig, present: &Present, problems: &mut Problems) {
    let at = app_path(app);
    if app.channels.slack.is_some() && !present.slack {
        problems.add(
            &at.key("channels").key("slack"),
            "needs a [slack] section: Slack is off without one",
        );
    }
    if app.channels.discord.is_some() && !present.discord {
        problems.add(
            &at.key("channels").key("discord"),
            "needs a [discord] section: Discord is off without one",
        );
    }
    if app.channels.is_empty()
        && app
            .environments
            .iter()
            .any(|environment| environment.is_gated())
    {
        problems.add(
            &at.key("channels"),
            "missing; approval cards for gated environments need a Slack or Discord channel",
        );
    }
    check_cycles(app, problems);

    for environment in &app.environments {
        let Some(deployer) = &environment.deploy else {
            continue;
        };
        if !deployer.uses_github() {
            continue;
        }
        let at = at
            .key("environments")
            .key(environment.name.as_str())
            .key("deploy");
        let kind = deployer.kind();
        if app.repository.is_none() {
            problems.add(
                &at,
                format!("a {kind} deploy needs the app's `repository` (owner/name)"),
            );
        }
        if !present.github {
            problems.add(&at, format!("a {kind} deploy needs a [github] section"));
            continue;
        }
        let Some(github) = &config.github else {
            continue;
        };
        match deployer {
            Deployer::GithubWorkflow { .. } if !github.can_dispatch_workflows() => problems.add(
                &at,
                "a github-workflow deploy needs github.token, or github.app_id and github.private_key_file",
            ),
            Deployer::GithubProtectionRule { .. } if github.app.is_none() => problems.add(
                &at,
                "a github-protection-rule deploy needs a GitHub App: github.app_id and github.private_key_file",
            ),
            _ => {}
        }
    }
}

/// `after` must lead back to an ungated first environment, never round in a circle.
fn check_cycles(app: &AppConfig, problems: &mut Problems) {
    let after = |name: &str| {
        app.environments
            .iter()
            .find(|environment| environment.name.as_str() == name)
            .and_then(|environment| environment.after())
    };
    let mut reported: Vec<&str> = Vec::new();
    for environment in &app.environments {
        let start = environment.name.as_str();
        let mut chain = vec![start];
        let mut current = start;
        while let Some(previous) = after(current) {
            let previous = previous.as_str();
            if previous == start {
                if !chain.iter().any(|name| reported.contains(name)) {
                    chain.push(start);
                    problems.add(
                        &app_path(app)
                            .key("environments")
                            .key(start)
                            .key("after"),
                        format!(
                            "environments form a cycle: {}; the first environment must have no `after`",
                            chain.join(" → ")
                        ),
                    );
                    reported.extend(chain.iter().copied());
                }
                break;
            }
            if chain.contains(&previous) {
                // A cycle further up the chain; it is reported from one of its members.
                break;
            }
            chain.push(previous);
            current = previous;
        }
    }
}

/// Each chat account, GitHub login and e-mail belongs to one person, or approvals could be
/// counted for the wrong one.
fn check_identities(config: &Config, problems: &mut Problems) {
    let mut owners: HashMap<(&str, String), &str> = HashMap::with_capacity(config.people.len() * 4);
    for person in config.people.iter() {
        let identities = [
            ("slack", person.slack.as_ref().map(ToString::to_string)),
            ("discord", person.discord.map(|id| id.to_string())),
            ("github", person.github.as_ref().map(GithubLogin::key)),
            ("email", person.email.as_ref().map(Email::key)),
        ];
        for (platform, identity) in identities {
            let Some(identity) = identity else {
                continue;
            };
            match owners.get(&(platform, identity.clone())) {
                Some(owner) => problems.add(
                    &KeyPath::root()
                        .key("people")
                        .key(person.name.as_str())
                        .key(platform),
                    format!("{identity:?} is already {owner}'s {platform} identity"),
                ),
                None => {
                    owners.insert((platform, identity), person.name.as_str());
                }
            }
        }
    }
}

/// A bearer token tells Greenlight who is calling (an app's CI, an environment's flags
/// reader, an operator); two places with the same token could act as each other.
fn check_tokens(config: &Config, problems: &mut Problems) {
    let mut tokens: Vec<(KeyPath, &Secret)> = Vec::new();
    // Every token of a rotation list, each with its own path.
    fn push<'a>(tokens: &mut Vec<(KeyPath, &'a Secret)>, at: KeyPath, list: &'a SecretList) {
        if list.len() == 1 {
            tokens.push((at, list.current()));
        } else {
            for (index, token) in list.iter().enumerate() {
                tokens.push((at.index(index), token));
            }
        }
    }
    if let Some(token) = &config.server.api_token {
        push(
            &mut tokens,
            KeyPath::root().key("server").key("api_token"),
            token,
        );
    }
    for app in &config.apps {
        push(&mut tokens, app_path(app).key("ci_token"), &app.ci_token);
        for environment in &app.environments {
            if let Some(token) = &environment.flags_token {
                let at = app_path(app)
                    .key("environments")
                    .key(environment.name.as_str())
                    .key("flags_token");
                push(&mut tokens, at, token);
            }
        }
    }
    for (index, (at, token)) in tokens.iter().enumerate() {
        let earlier = tokens[..index]
            .iter()
            .find(|(_, other)| other.matches(token.expose().as_bytes()));
        if let Some((other, _)) = earlier {
            problems.add(
                at,
                format!("is the same token as {other}; every token must be different, or one would grant the other's access"),
            );
        }
    }
}
