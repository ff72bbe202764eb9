//! An environment's `deploy` table: its `kind` decides the other keys (a command run without a
//! shell, a signed HTTP hook, a GitHub workflow or protection rule).

use std::time::Duration;

use toml::Value;

use super::positive_duration;
use crate::config::error::Problems;
use crate::config::path::KeyPath;
use crate::config::reader::{
    list_with, parsed_text, suggestion_suffix, table, text, Fields, FromValue, Invalid,
};
use crate::config::types::{AppConfig, ChildEnvironment, Deployer};
use crate::secret::Secret;

pub(super) fn deployer(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
) -> Result<Deployer, Invalid> {
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
pub(super) fn resolve_child_environments(
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

/// `run` of a command deploy: the program and its arguments, run without a shell.
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
