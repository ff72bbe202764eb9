//! Runs parsed slash commands for any platform: authorizes once (operators from the config,
//! people from `[people]`), then reads or changes state through the engine.

use chrono::{DateTime, Utc};
use greenlight_commands::chat::{self, Command, FlagAction, Role};
use greenlight_commands::{AppName, EnvironmentName, PersonName};
use greenlight_storage::{
    flags, AnyConnection, FlagTarget, LockOutcome, ReleaseFilter, StorageError,
};

use super::audit::{self, Entry};
use super::decisions::ChatActor;
use super::effects::{self, ReplyTo};
use super::locks::UnlockOutcome;
use super::Engine;
use crate::config::Config;

/// What the person who typed the command is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandReply {
    /// Only the caller sees it.
    Ephemeral(String),
    /// A rollback waiting for the caller's confirmation; `confirm_value` goes on the confirm
    /// button and comes back when it is clicked (a reference, re-authorized on click).
    ConfirmRollback { text: String, confirm_value: String },
}

impl CommandReply {
    pub fn text(&self) -> &str {
        match self {
            Self::Ephemeral(text) | Self::ConfirmRollback { text, .. } => text,
        }
    }
}

/// Why the caller may not run a command. Said to them; recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandRefusal {
    #[error("your {platform} account ({user}) is not linked to a person in greenlight.toml [people]; ask an admin to add it")]
    UnknownUser { platform: String, user: String },
    #[error("only operators of {app} ({operators}) may do that")]
    NotOperator { app: AppName, operators: String },
}

impl Engine {
    /// The apps and environments commands may name, for the parser.
    pub fn catalog(&self) -> chat::Catalog {
        chat::Catalog {
            apps: self
                .config
                .apps
                .iter()
                .map(|app| {
                    let environments = app.environments.iter().map(|e| e.name.clone()).collect();
                    (app.name.clone(), environments)
                })
                .collect(),
        }
    }

    /// Authorizes and runs `command` typed by `actor`.
    pub async fn run_command(
        &self,
        actor: &ChatActor,
        command: Command,
    ) -> Result<CommandReply, StorageError> {
        let person = self
            .config
            .person_on(actor.platform, &actor.user_id)
            .cloned();
        if let Err(refusal) = authorize(&self.config, actor, person.as_ref(), &command) {
            self.audit_refusal(actor, &command, &refusal).await?;
            return Ok(CommandReply::Ephemeral(refusal.to_string()));
        }
        let actor_name = actor.name(person.as_ref());
        match command {
            Command::Help { command } => Ok(CommandReply::Ephemeral(chat::help(command))),
            Command::Releases {
                app,
                environment,
                limit,
            } => self.releases_reply(&app, environment.as_ref(), limit).await,
            Command::Flag {
                app,
                environment,
                action,
            } => {
                self.flag_command(&app, &environment, action, &actor_name)
                    .await
            }
            Command::Lock { .. } | Command::Unlock { .. } | Command::Rollback { .. } => {
                self.deploy_command(command, &actor_name).await
            }
        }
    }

    async fn audit_refusal(
        &self,
        actor: &ChatActor,
        command: &Command,
        refusal: &CommandRefusal,
    ) -> Result<(), StorageError> {
        let entry = Entry::CommandRefused {
            command,
            reason: refusal.to_string(),
        };
        let entry = entry.to_new(&actor.label(), self.clock.now());
        self.storage.append_audit(entry).await?;
        Ok(())
    }

    async fn releases_reply(
        &self,
        app: &AppName,
        environment: Option<&EnvironmentName>,
        limit: u32,
    ) -> Result<CommandReply, StorageError> {
        let releases = self
            .storage
            .list_releases(&ReleaseFilter {
                app: Some(app.to_string()),
                environment: environment.map(ToString::to_string),
                limit,
            })
            .await?;
        if releases.is_empty() {
            return Ok(CommandReply::Ephemeral(format!(
                "No releases of {app} recorded yet."
            )));
        }
        let now = self.clock.now();
        let lines: Vec<String> = releases
            .iter()
            .map(|summary| {
                let release = &summary.release;
                let states = summary
                    .environments
                    .iter()
                    .map(|(name, outcome)| format!("{name}: {}", outcome.state.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ");
                let subject = release
                    .message
                    .as_deref()
                    .and_then(|m| m.lines().next())
                    .unwrap_or("");
                format!(
                    "• `{}` {} — {} {} ({})",
                    release.sha.short(),
                    if states.is_empty() {
                        "built".to_owned()
                    } else {
                        states
                    },
                    release.author.as_deref().unwrap_or("unknown author"),
                    subject,
                    ago(release.created_at, now),
                )
            })
            .collect();
        Ok(CommandReply::Ephemeral(format!(
            "Releases of {app}, newest first:\n{}",
            lines.join("\n")
        )))
    }

    async fn flag_command(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
        action: FlagAction,
        actor: &str,
    ) -> Result<CommandReply, StorageError> {
        match action {
            FlagAction::List => {
                let flags = self.storage.list_flags(app, environment).await?;
                if flags.is_empty() {
                    return Ok(CommandReply::Ephemeral(format!(
                        "{app} {environment} has no flags yet; `/flag {app} {environment} <key> on` creates one."
                    )));
                }
                let lines: Vec<String> = flags
                    .iter()
                    .map(|flag| {
                        format!("• `{}` {}", flag.key, describe(flag.enabled, flag.rollout))
                    })
                    .collect();
                Ok(CommandReply::Ephemeral(format!(
                    "Flags of {app} {environment}:\n{}",
                    lines.join("\n")
                )))
            }
            FlagAction::Show { key } => {
                let Some(flag) = self.storage.flag(app, environment, &key).await? else {
                    return Ok(CommandReply::Ephemeral(format!(
                        "{app} {environment} has no flag `{key}`."
                    )));
                };
                Ok(CommandReply::Ephemeral(format!(
                    "`{key}` in {app} {environment}: {} (last changed by {} {})",
                    describe(flag.enabled, flag.rollout),
                    flag.updated_by,
                    ago(flag.updated_at, self.clock.now()),
                )))
            }
            FlagAction::Set { key, on, reason } => {
                self.change_flag(
                    app,
                    environment,
                    &key,
                    FlagChangeKind::Enabled(on),
                    reason,
                    actor,
                )
                .await
            }
            FlagAction::Rollout { key, percent } => {
                self.change_flag(
                    app,
                    environment,
                    &key,
                    FlagChangeKind::Rollout(percent),
                    None,
                    actor,
                )
                .await
            }
        }
    }

    /// Changes a flag, records who and why, and announces it in the app's channels, in one
    /// write; then the flags applications read from memory are reloaded.
    async fn change_flag(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
        key: &str,
        change: FlagChangeKind,
        reason: Option<String>,
        actor: &str,
    ) -> Result<CommandReply, StorageError> {
        let now = self.clock.now();
        let config = self.config.clone();
        let target = FlagTarget {
            app: app.clone(),
            environment: environment.clone(),
            key: key.to_owned(),
            actor: actor.to_owned(),
            reason: reason.clone(),
            at: now,
        };
        let reply = self
            .storage
            .write(move |conn| {
                Box::pin(async move { change_flag_in(conn, &config, &target, change, now).await })
            })
            .await?;
        // Before the reply: whoever flipped the flag sees applications get it at once.
        self.flags.changed(app, environment).await;
        self.outbox_wakeup.notify_one();
        Ok(CommandReply::Ephemeral(reply))
    }

    /// `/lock`, `/unlock` and `/rollback` (the rollback only planned here: it starts when the
    /// caller confirms, see [`Engine::confirm_rollback`]).
    async fn deploy_command(
        &self,
        command: Command,
        actor: &str,
    ) -> Result<CommandReply, StorageError> {
        let text = match command {
            Command::Lock {
                app,
                environment,
                reason,
            } => match self.lock(&app, &environment, &reason, actor).await? {
                Err(refusal) => refusal.to_string(),
                Ok(LockOutcome::Acquired(_)) => format!(
                    "Locked {app} {environment}: {reason}. New deploys wait for `/unlock {app} {environment}`; the channel was told."
                ),
                Ok(LockOutcome::AlreadyHeld(lock)) => format!(
                    "{app} {environment} is already locked by {} since {}: {}. Nothing changed.",
                    lock.locked_by,
                    lock.locked_at.format("%Y-%m-%d %H:%M UTC"),
                    lock.reason
                ),
            },
            Command::Unlock { app, environment } => {
                match self.unlock(&app, &environment, actor).await? {
                    Err(refusal) => refusal.to_string(),
                    Ok(UnlockOutcome::NotLocked) => {
                        format!("{app} {environment} is not locked; nothing changed.")
                    }
                    Ok(UnlockOutcome::Unlocked { lock, released }) => {
                        let started = released
                            .map(|held| {
                                format!(" The approved deploy of {} that waited starts now.", held.sha.short())
                            })
                            .unwrap_or_default();
                        format!(
                            "Unlocked {app} {environment} (locked by {}: {}).{started}",
                            lock.locked_by, lock.reason
                        )
                    }
                }
            }
            Command::Rollback {
                app,
                environment,
                to,
            } => {
                return Ok(match self.rollback_plan(&app, &environment, to.as_deref()).await? {
                    Err(refusal) => CommandReply::Ephemeral(format!("Cannot roll back: {refusal}.")),
                    Ok(plan) => CommandReply::ConfirmRollback {
                        text: format!(
                            "Roll back {}? The previous release is deployed again through the usual deployer and smoke-checked.",
                            plan.summary()
                        ),
                        confirm_value: plan.reference(),
                    },
                })
            }
            other => format!("{other:?} is not a deploy command"),
        };
        Ok(CommandReply::Ephemeral(text))
    }

    /// Tells one person something privately, through the outbox (for answers that are not the
    /// immediate response to a request, e.g. after a Slack button click).
    pub async fn reply_privately(&self, to: &ReplyTo, text: &str) -> Result<(), StorageError> {
        let (to, text, now) = (to.clone(), text.to_owned(), self.clock.now());
        self.storage
            .write(move |conn| Box::pin(async move { effects::reply(conn, &to, &text, now).await }))
            .await?;
        self.outbox_wakeup.notify_one();
        Ok(())
    }

    /// The confirm button of a `/rollback` reply: `reference` names the planned rollback (it
    /// grants nothing); the clicker must be an operator of the app now, and the environment
    /// must still run what it ran when the plan was made. Clicking twice rolls back once.
    pub async fn confirm_rollback(
        &self,
        actor: &ChatActor,
        reference: &str,
    ) -> Result<String, StorageError> {
        // Who may confirm is decided before anything about the plan is looked at or said.
        let mut parts = reference.split(':').skip(1);
        let target = parts.next().and_then(|app| AppName::parse(app).ok()).zip(
            parts
                .next()
                .and_then(|env| EnvironmentName::parse(env).ok()),
        );
        let Some((app, environment)) = target else {
            return Ok(
                "That rollback confirmation is not valid any more; run /rollback again.".to_owned(),
            );
        };
        let person = self
            .config
            .person_on(actor.platform, &actor.user_id)
            .cloned();
        let command = Command::Rollback {
            app,
            environment,
            to: None,
        };
        if let Err(refusal) = authorize(&self.config, actor, person.as_ref(), &command) {
            self.audit_refusal(actor, &command, &refusal).await?;
            return Ok(refusal.to_string());
        }
        // Confirming the same plan again (a double click, a second device) answers as the first.
        if let Some(deployment) = self.rollback_started_with(reference).await? {
            return Ok(rolling_back(&deployment));
        }
        let plan = match self.rollback_plan_from_reference(reference).await? {
            Ok(plan) => plan,
            // The first confirmation may have committed its rollback just now.
            Err(refusal) => {
                return Ok(match self.rollback_started_with(reference).await? {
                    Some(deployment) => rolling_back(&deployment),
                    None => format!("Cannot roll back: {refusal}."),
                })
            }
        };
        let actor_name = actor.name(person.as_ref());
        Ok(
            match self.start_rollback(&plan, &actor_name, reference).await? {
                Err(refusal) => format!("Cannot roll back: {refusal}."),
                Ok(deployment) => rolling_back(&deployment),
            },
        )
    }
}

/// What the person who confirmed a rollback is told.
fn rolling_back(deployment: &greenlight_storage::Deployment) -> String {
    let revert = deployment
        .previous_sha
        .as_ref()
        .map(|sha| format!("; fix for good with `git revert {}`", sha.short()))
        .unwrap_or_default();
    format!(
        "Rolling back {} {} to {} (deployment {}). The channel follows it{revert}.",
        deployment.app,
        deployment.environment,
        deployment.sha.short(),
        deployment.id
    )
}

#[derive(Debug, Clone, Copy)]
enum FlagChangeKind {
    Enabled(bool),
    Rollout(u8),
}

async fn change_flag_in(
    conn: &mut AnyConnection,
    config: &Config,
    target: &FlagTarget,
    change: FlagChangeKind,
    now: DateTime<Utc>,
) -> Result<String, StorageError> {
    let existed = flags::find_flag(conn, &target.app, &target.environment, &target.key)
        .await?
        .is_some();
    let flag = match change {
        FlagChangeKind::Enabled(on) => flags::set_flag_enabled(conn, target, on).await?,
        FlagChangeKind::Rollout(percent) => flags::set_flag_rollout(conn, target, percent).await?,
    };
    let state = describe(flag.enabled, flag.rollout);
    let entry = Entry::FlagChanged {
        target,
        flag: &flag,
        created: !existed,
    };
    audit::append(conn, &target.actor, &entry, now).await?;
    let because = target
        .reason
        .as_deref()
        .map(|reason| format!(": {reason}"))
        .unwrap_or_default();
    let announcement = format!(
        "{} set flag {} in {} {} to {state}{because}",
        target.actor, flag.key, target.app, target.environment
    );
    effects::announce(conn, config, &target.app, &announcement, now).await?;
    let created = if existed {
        ""
    } else {
        " (new flag, created now)"
    };
    Ok(format!(
        "`{}` in {} {} is now {state}{created}; announced in the channel.",
        flag.key, target.app, target.environment
    ))
}

/// The one place permission for commands is decided, from configuration only.
fn authorize(
    config: &Config,
    actor: &ChatActor,
    person: Option<&PersonName>,
    command: &Command,
) -> Result<(), CommandRefusal> {
    if command.role() == Role::Anyone {
        return Ok(());
    }
    let Some(person) = person else {
        return Err(CommandRefusal::UnknownUser {
            platform: actor.platform.display_name().to_owned(),
            user: actor.user_id.clone(),
        });
    };
    let Some(app) = command.app() else {
        return Ok(());
    };
    if config.operators(app).contains(person) {
        return Ok(());
    }
    let operators = config
        .app(app)
        .map(|app| {
            app.operators
                .iter()
                .map(|p| p.to_string().trim_start_matches("group:").to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|list| !list.is_empty())
        .unwrap_or_else(|| "nobody is configured".to_owned());
    Err(CommandRefusal::NotOperator {
        app: app.clone(),
        operators,
    })
}

fn describe(enabled: bool, rollout: u8) -> String {
    match (enabled, rollout) {
        (false, _) => "off".to_owned(),
        (true, 100) => "on".to_owned(),
        (true, percent) => format!("on for {percent}%"),
    }
}

fn ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (now - then).num_minutes().max(0);
    match minutes {
        0 => "just now".to_owned(),
        1..=59 => format!("{minutes}m ago"),
        60..=2879 => format!("{}h ago", minutes / 60),
        _ => format!("{}d ago", minutes / 1440),
    }
}
