//! Configuration problems: collected all at once, each with its key path, and the
//! `check-config` report that shows them.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use super::path::KeyPath;
use super::types::Config;

/// One thing wrong with the configuration. `path` is the key path (`server.listen`,
/// `apps.shop.environments.production.reviewers[1]`); it is empty for problems with the file
/// as a whole (unreadable, not TOML). Messages never contain a secret's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a configuration; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    problems: Vec<ConfigProblem>,
    file_missing: bool,
}

impl ConfigErrors {
    pub fn problems(&self) -> &[ConfigProblem] {
        &self.problems
    }

    /// True when the configuration file does not exist, so a caller may fall back to
    /// [`Config::default`] (as `serve` does when no `--config` was given).
    pub fn is_file_missing(&self) -> bool {
        self.file_missing
    }

    /// The problem at exactly `path`, if any; handy for callers and tests.
    pub fn at(&self, path: &str) -> Option<&ConfigProblem> {
        self.problems.iter().find(|problem| problem.path == path)
    }

    pub(crate) fn file_missing(path: &Path) -> Self {
        Self {
            problems: vec![ConfigProblem {
                path: String::new(),
                message: format!("configuration file {} not found", path.display()),
            }],
            file_missing: true,
        }
    }

    pub(crate) fn file_unreadable(path: &Path, error: &std::io::Error) -> Self {
        Self {
            problems: vec![ConfigProblem {
                path: String::new(),
                message: format!("cannot read configuration file {}: {error}", path.display()),
            }],
            file_missing: false,
        }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(f, "{count} {} in the configuration", plural(count))?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigProblem;
    type IntoIter = std::slice::Iter<'a, ConfigProblem>;

    fn into_iter(self) -> Self::IntoIter {
        self.problems.iter()
    }
}

/// What `greenlight check-config` prints: one `path: message` line per problem and a count, or
/// a one-line summary of a valid configuration. The caller exits non-zero on `Err`.
pub fn check_config_report(result: &Result<Config, ConfigErrors>) -> String {
    match result {
        Ok(config) => format!("configuration is valid: {}\n", summary(config)),
        Err(errors) => {
            let mut report = String::new();
            for problem in errors {
                report.push_str(&problem.to_string());
                report.push('\n');
            }
            let count = errors.problems.len();
            report.push_str(&format!("{count} {} found\n", plural(count)));
            report
        }
    }
}

fn summary(config: &Config) -> String {
    let apps: Vec<String> = config
        .apps
        .iter()
        .map(|app| {
            let stages: Vec<&str> = app
                .environments
                .iter()
                .map(|environment| environment.name.as_str())
                .collect();
            format!("{} ({})", app.name, stages.join(", "))
        })
        .collect();
    let platforms: Vec<&str> = [
        config.slack.as_ref().map(|_| "slack"),
        config.discord.as_ref().map(|_| "discord"),
        config.github.as_ref().map(|_| "github"),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!(
        "{} {}{}{}; platforms: {}; {} {}",
        apps.len(),
        if apps.len() == 1 { "app" } else { "apps" },
        if apps.is_empty() { "" } else { ": " },
        apps.join(", "),
        if platforms.is_empty() {
            "none".to_owned()
        } else {
            platforms.join(", ")
        },
        config.people.len(),
        if config.people.len() == 1 {
            "person"
        } else {
            "people"
        },
    )
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        "problem"
    } else {
        "problems"
    }
}

/// Collects problems while the configuration is read, so reading never stops at the first one.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<ConfigProblem>,
    /// Values whose `${VAR}` could not be expanded. Their problem is already recorded; reading
    /// them again would only add confusing follow-up problems about the unexpanded text.
    poisoned: HashSet<KeyPath>,
    /// Values that came from `${NAME}`, with the name to show instead: a secret wired into the
    /// wrong key must not be printed by the problem about that key.
    hidden: Vec<(String, String)>,
}

/// Values shorter than this are not replaced: hiding `1` or `on` would mangle messages, and
/// they are no secret.
const MIN_HIDDEN_LEN: usize = 4;

impl Problems {
    pub(crate) fn hide(&mut self, value: String, name: String) {
        if value.len() >= MIN_HIDDEN_LEN {
            self.hidden.push((value, name));
        }
    }

    pub(crate) fn add(&mut self, at: &KeyPath, message: impl Into<String>) {
        let problem = ConfigProblem {
            path: at.as_str().to_owned(),
            message: message.into(),
        };
        if !self.list.contains(&problem) {
            self.list.push(problem);
        }
    }

    pub(crate) fn poison(&mut self, at: &KeyPath) {
        self.poisoned.insert(at.clone());
    }

    pub(crate) fn is_poisoned(&self, at: &KeyPath) -> bool {
        self.poisoned.contains(at)
    }

    /// `Ok(value)` when nothing was found, else every problem.
    pub(crate) fn finish<T>(mut self, value: T) -> Result<T, ConfigErrors> {
        if self.list.is_empty() {
            Ok(value)
        } else {
            // Longest first, so a value containing another is replaced whole.
            self.hidden
                .sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
            for problem in &mut self.list {
                for (value, name) in &self.hidden {
                    let shown = format!("${{{name}}}");
                    let quoted = format!("{value:?}");
                    problem.message = problem
                        .message
                        .replace(&quoted, &format!("\"{shown}\""))
                        .replace(value, &shown);
                }
            }
            Err(ConfigErrors {
                problems: self.list,
                file_missing: false,
            })
        }
    }
}
