//! The words after a slash command → a `Command`, or an error that says what was wrong, what
//! was probably meant, and how the command is used.

use super::table::{spec, CommandSpec, COMMANDS};
use super::{Command, FlagAction};
use crate::suggest::did_you_mean;
use crate::{AppName, EnvironmentName};

/// What the parser may refer to: the configured apps and their environments, in config order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub apps: Vec<(AppName, Vec<EnvironmentName>)>,
}

impl Catalog {
    fn app(&self, name: &str) -> Option<&(AppName, Vec<EnvironmentName>)> {
        self.apps.iter().find(|(app, _)| app.as_str() == name)
    }

    fn app_names(&self) -> impl Iterator<Item = &str> {
        self.apps.iter().map(|(app, _)| app.as_str())
    }
}

/// Why the words are not a command. Shown to the person as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}\nUsage: `{usage}` (`/{command} help` explains it)")]
pub struct ParseError {
    pub command: String,
    pub message: String,
    pub usage: String,
}

const DEFAULT_RELEASES: u32 = 10;
const MAX_KEY: usize = 64;

pub fn parse(command: &str, text: &str, catalog: &Catalog) -> Result<Command, ParseError> {
    let name = command.trim().trim_start_matches('/');
    let Some(spec) = spec(name) else {
        let suggestion = did_you_mean(name, COMMANDS.iter().map(|spec| spec.name))
            .map(|known| format!(" Did you mean `/{known}`?"))
            .unwrap_or_default();
        return Err(ParseError {
            command: name.to_owned(),
            message: format!("Greenlight has no command `/{name}`.{suggestion}"),
            usage: "/releases [app]".to_owned(),
        });
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    if words
        .first()
        .is_some_and(|word| word.eq_ignore_ascii_case("help"))
    {
        return Ok(Command::Help {
            command: Some(spec.name),
        });
    }
    let mut parser = Parser {
        spec,
        words: &words,
        at: 0,
        catalog,
    };
    let command = match spec.name {
        "rollback" => parser.rollback(),
        "lock" => parser.lock(),
        "unlock" => parser.unlock(),
        "releases" => parser.releases(),
        "flag" => parser.flag(),
        _ => Err(parser.error("this command is not available")),
    }?;
    parser.finish()?;
    Ok(command)
}

struct Parser<'a> {
    spec: &'static CommandSpec,
    words: &'a [&'a str],
    at: usize,
    catalog: &'a Catalog,
}

impl<'a> Parser<'a> {
    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            command: self.spec.name.to_owned(),
            message: message.into(),
            usage: self.spec.usage(),
        }
    }

    fn peek(&self) -> Option<&'a str> {
        self.words.get(self.at).copied()
    }

    fn next(&mut self) -> Option<&'a str> {
        let word = self.peek();
        if word.is_some() {
            self.at += 1;
        }
        word
    }

    fn rest(&mut self) -> Option<String> {
        let rest = self.words[self.at..].join(" ");
        self.at = self.words.len();
        Some(rest).filter(|rest| !rest.is_empty())
    }

    fn finish(&self) -> Result<(), ParseError> {
        match self.peek() {
            None => Ok(()),
            Some(word) => Err(self.error(format!("I don't understand `{word}` here."))),
        }
    }

    /// The app: the next word if it names one; else the only app, if there is just one.
    fn app(&mut self) -> Result<(AppName, Vec<EnvironmentName>), ParseError> {
        if let Some((app, environments)) = self.peek().and_then(|word| self.catalog.app(word)) {
            self.at += 1;
            return Ok((app.clone(), environments.clone()));
        }
        if let [only] = self.catalog.apps.as_slice() {
            return Ok(only.clone());
        }
        let known = self.catalog.app_names().collect::<Vec<_>>().join(", ");
        Err(match self.peek() {
            Some(word) => {
                let hint = did_you_mean(word, self.catalog.app_names())
                    .map(|app| format!(" Did you mean `{app}`?"))
                    .unwrap_or_default();
                self.error(format!("Unknown app `{word}`.{hint} Apps: {known}."))
            }
            None if known.is_empty() => self.error("No apps are configured in greenlight.toml."),
            None => self.error(format!("Which app? One of: {known}.")),
        })
    }

    /// The environment: the next word if it names one of the app's; `default` otherwise (an
    /// error when there is no default).
    fn environment(
        &mut self,
        app: &AppName,
        environments: &[EnvironmentName],
        default: Option<EnvironmentName>,
    ) -> Result<EnvironmentName, ParseError> {
        if let Some(environment) = self
            .peek()
            .and_then(|word| environments.iter().find(|e| e.as_str() == word))
        {
            self.at += 1;
            return Ok(environment.clone());
        }
        let names = || environments.iter().map(EnvironmentName::as_str);
        let known = names().collect::<Vec<_>>().join(", ");
        // A near miss is an error even where the environment may be left out: "prodution"
        // must not silently mean the default.
        if let Some(word) = self.peek() {
            if let Some(close) = did_you_mean(word, names()) {
                return Err(self.error(format!(
                    "{app} has no environment `{word}`. Did you mean `{close}`? Environments: {known}."
                )));
            }
        }
        match (self.peek(), default) {
            (_, Some(default)) => Ok(default),
            (Some(word), None) => Err(self.error(format!(
                "{app} has no environment `{word}`. Environments: {known}."
            ))),
            (None, None) => {
                Err(self.error(format!("Which environment of {app}? One of: {known}.")))
            }
        }
    }

    fn rollback(&mut self) -> Result<Command, ParseError> {
        let (app, environments) = self.app()?;
        let default = environments
            .iter()
            .find(|e| e.as_str() == "production")
            .or(environments.last())
            .cloned();
        let environment = self.environment(&app, &environments, default)?;
        let to = match self.peek() {
            Some(word) if word.eq_ignore_ascii_case("to") => {
                self.at += 1;
                let sha = self
                    .next()
                    .ok_or_else(|| self.error("`to` needs a commit SHA."))?;
                Some(self.sha(sha)?)
            }
            Some(word) if word.len() >= 7 && word.bytes().all(|b| b.is_ascii_hexdigit()) => {
                self.at += 1;
                Some(self.sha(word)?)
            }
            _ => None,
        };
        Ok(Command::Rollback {
            app,
            environment,
            to,
        })
    }

    fn sha(&self, word: &str) -> Result<String, ParseError> {
        if (7..=40).contains(&word.len()) && word.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(word.to_ascii_lowercase())
        } else {
            Err(self.error(format!(
                "`{word}` is not a commit SHA: use 7 to 40 hex characters, as `git log --oneline` shows."
            )))
        }
    }

    fn lock(&mut self) -> Result<Command, ParseError> {
        let (app, environments) = self.app()?;
        let environment = self.environment(&app, &environments, None)?;
        let reason = self.rest().ok_or_else(|| {
            self.error("A lock needs a reason, so others know why deploys stopped.")
        })?;
        Ok(Command::Lock {
            app,
            environment,
            reason,
        })
    }

    fn unlock(&mut self) -> Result<Command, ParseError> {
        let (app, environments) = self.app()?;
        let environment = self.environment(&app, &environments, None)?;
        Ok(Command::Unlock { app, environment })
    }

    fn releases(&mut self) -> Result<Command, ParseError> {
        let (app, environments) = self.app()?;
        let environment = match self.peek() {
            Some(word) if word.bytes().all(|b| b.is_ascii_digit()) => None,
            Some(_) => Some(self.environment(&app, &environments, None)?),
            None => None,
        };
        let limit = match self.next() {
            None => DEFAULT_RELEASES,
            Some(word) => word
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=50).contains(n))
                .ok_or_else(|| self.error(format!("`{word}` is not a number from 1 to 50.")))?,
        };
        Ok(Command::Releases {
            app,
            environment,
            limit,
        })
    }

    fn flag(&mut self) -> Result<Command, ParseError> {
        let (app, environments) = self.app()?;
        let environment = self.environment(&app, &environments, None)?;
        let first = self
            .next()
            .ok_or_else(|| self.error("Say `list`, or name a flag."))?;
        let action = if first.eq_ignore_ascii_case("list") {
            FlagAction::List
        } else {
            let key = flag_key(first).map_err(|message| self.error(message))?;
            match self.next() {
                None => FlagAction::Show { key },
                Some(word)
                    if word.eq_ignore_ascii_case("on") || word.eq_ignore_ascii_case("off") =>
                {
                    FlagAction::Set {
                        key,
                        on: word.eq_ignore_ascii_case("on"),
                        reason: self.rest(),
                    }
                }
                Some(word) if word.eq_ignore_ascii_case("rollout") => {
                    let percent = self
                        .next()
                        .map(|n| n.trim_end_matches('%'))
                        .and_then(|n| n.parse::<u8>().ok())
                        .filter(|n| *n <= 100)
                        .ok_or_else(|| self.error("`rollout` needs a percentage from 0 to 100."))?;
                    FlagAction::Rollout { key, percent }
                }
                Some(word) => {
                    let hint = did_you_mean(word, ["on", "off", "rollout"])
                        .map(|known| format!(" Did you mean `{known}`?"))
                        .unwrap_or_default();
                    return Err(self.error(format!(
                        "After the flag name say `on`, `off` or `rollout <0-100>`, not `{word}`.{hint}"
                    )));
                }
            }
        };
        Ok(Command::Flag {
            app,
            environment,
            action,
        })
    }
}

/// Flag keys: 1-64 of `a-z 0-9 _ . -`.
pub fn flag_key(word: &str) -> Result<String, String> {
    let valid = (1..=MAX_KEY).contains(&word.len())
        && word.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    if valid {
        Ok(word.to_owned())
    } else {
        Err(format!(
            "`{word}` is not a flag name: use 1-{MAX_KEY} of a-z, 0-9, `_`, `.` and `-`."
        ))
    }
}
