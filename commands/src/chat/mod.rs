//! Slash commands (SPEC §6): one table from which grammar, help, required role and Discord's
//! registration are all derived, and a parser with "did you mean" errors.
//!
//! The parser works on the words after the command (Slack sends them as one text field; the
//! Discord adapter joins its typed options the same way), so both platforms share one grammar.

mod parse;
mod table;

#[cfg(test)]
mod tests;

pub use parse::{parse, Catalog, ParseError};
pub use table::{spec, CommandSpec, OptionKind, OptionSpec, Role, COMMANDS};

use crate::{AppName, EnvironmentName};

/// A parsed command, ready to be authorized and run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Rollback {
        app: AppName,
        environment: EnvironmentName,
        /// A commit SHA or an unambiguous prefix of at least 7 hex characters.
        to: Option<String>,
    },
    Lock {
        app: AppName,
        environment: EnvironmentName,
        reason: String,
    },
    Unlock {
        app: AppName,
        environment: EnvironmentName,
    },
    Releases {
        app: AppName,
        environment: Option<EnvironmentName>,
        limit: u32,
    },
    Flag {
        app: AppName,
        environment: EnvironmentName,
        action: FlagAction,
    },
    /// `help`, for one command or all of them.
    Help { command: Option<&'static str> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagAction {
    List,
    Show {
        key: String,
    },
    Set {
        key: String,
        on: bool,
        reason: Option<String>,
    },
    Rollout {
        key: String,
        percent: u8,
    },
}

impl Command {
    /// Who may run it. Looking at flags is open to everyone; changing anything is not.
    pub fn role(&self) -> Role {
        match self {
            Self::Rollback { .. } | Self::Lock { .. } | Self::Unlock { .. } => Role::Operator,
            Self::Flag { action, .. } => match action {
                FlagAction::List | FlagAction::Show { .. } => Role::Anyone,
                FlagAction::Set { .. } | FlagAction::Rollout { .. } => Role::Operator,
            },
            Self::Releases { .. } | Self::Help { .. } => Role::Anyone,
        }
    }

    /// The app it acts on, for the operator check.
    pub fn app(&self) -> Option<&AppName> {
        match self {
            Self::Rollback { app, .. }
            | Self::Lock { app, .. }
            | Self::Unlock { app, .. }
            | Self::Releases { app, .. }
            | Self::Flag { app, .. } => Some(app),
            Self::Help { .. } => None,
        }
    }
}

/// The help text of one command, or of all, from the table.
pub fn help(command: Option<&str>) -> String {
    match command.and_then(spec) {
        Some(spec) => spec.help(),
        None => {
            let mut text = String::from("Greenlight commands:\n");
            for spec in COMMANDS {
                text.push_str(&format!("• `{}` — {}\n", spec.usage(), spec.summary));
            }
            text.push_str("Add `help` after any command for details. `<app>` may be left out when only one app is configured.");
            text
        }
    }
}

/// The words a command's typed options stand for (Discord sends options by name): in the
/// table's order, with `to` spelled out, so `parse` reads them like Slack's text.
pub fn words_from_options(command: &str, options: &[(String, String)]) -> String {
    let Some(spec) = spec(command) else {
        return String::new();
    };
    let mut words = Vec::new();
    for option in spec.options {
        let Some((_, value)) = options.iter().find(|(name, _)| name == option.name) else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        if option.kind == OptionKind::Sha {
            words.push("to".to_owned());
        }
        words.push(value.to_owned());
    }
    words.join(" ")
}
