//! Questions the rest of the bot asks the configuration: which app or environment, who a chat
//! user or commit author is, who may approve or operate.

use std::collections::BTreeSet;

use greenlight_commands::{AppName, EnvironmentName, PersonName, Platform};

use super::types::{AppConfig, Config, EnvironmentConfig, Group, Person};
use super::values::{GroupName, Principal};

impl Config {
    pub fn app(&self, name: &AppName) -> Option<&AppConfig> {
        self.apps.iter().find(|app| app.name == *name)
    }

    /// The chat channels where the app's cards and announcements go: one per platform that
    /// is configured and named a channel for the app.
    pub fn chat_channels(&self, app: &AppName) -> Vec<(Platform, String)> {
        let Some(channels) = self.app(app).map(|app| &app.channels) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        if let (Some(_), Some(channel)) = (&self.discord, channels.discord) {
            found.push((Platform::Discord, channel.to_string()));
        }
        if let (Some(_), Some(channel)) = (&self.slack, &channels.slack) {
            found.push((Platform::Slack, channel.as_str().to_owned()));
        }
        found
    }

    /// The app, when exactly one is configured: commands may then leave it out (SPEC §6).
    pub fn only_app(&self) -> Option<&AppConfig> {
        match self.apps.as_slice() {
            [app] => Some(app),
            _ => None,
        }
    }

    pub fn environment(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
    ) -> Option<&EnvironmentConfig> {
        self.app(app)?.environment(environment)
    }

    /// The environment a release must be healthy in before it may enter `environment`
    /// (its `after`); `None` for an ungated environment or unknown names.
    pub fn previous_environment(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
    ) -> Option<&EnvironmentConfig> {
        self.app(app)?.previous_environment(environment)
    }

    /// Apps whose `repository` is GitHub's `full_name` (`acme/shop`), compared as GitHub does.
    pub fn apps_for_repository<'c>(
        &'c self,
        full_name: &'c str,
    ) -> impl Iterator<Item = &'c AppConfig> + 'c {
        self.apps.iter().filter(move |app| {
            app.repository
                .as_ref()
                .is_some_and(|repository| repository.matches(full_name))
        })
    }

    /// The app whose `ci_token` is `token`. Every token is compared, in constant time.
    pub fn app_for_ci_token(&self, token: &[u8]) -> Option<&AppConfig> {
        self.apps.iter().fold(None, |found, app| {
            let matches = app.ci_token.matches(token);
            found.or(matches.then_some(app))
        })
    }

    /// The app and environment whose `flags_token` is `token`. Every token is compared, in
    /// constant time.
    pub fn environment_for_flags_token(
        &self,
        token: &[u8],
    ) -> Option<(&AppConfig, &EnvironmentConfig)> {
        self.apps
            .iter()
            .flat_map(|app| {
                app.environments
                    .iter()
                    .map(move |environment| (app, environment))
            })
            .fold(None, |found, (app, environment)| {
                let matches = environment
                    .flags_token
                    .as_ref()
                    .is_some_and(|flags_token| flags_token.matches(token));
                found.or(matches.then_some((app, environment)))
            })
    }

    pub fn person(&self, name: &PersonName) -> Option<&Person> {
        self.people.named(name.as_str())
    }

    pub fn group(&self, name: &GroupName) -> Option<&Group> {
        self.groups.iter().find(|group| group.name == *name)
    }

    /// Who a Slack user id (`U012AB3CD`) belongs to.
    pub fn person_by_slack(&self, user_id: &str) -> Option<&PersonName> {
        self.people.on_slack(user_id).map(|person| &person.name)
    }

    /// Who a Discord user id (a snowflake in decimal) belongs to.
    pub fn person_by_discord(&self, user_id: &str) -> Option<&PersonName> {
        let id = user_id.parse::<u64>().ok()?;
        self.people.on_discord(id).map(|person| &person.name)
    }

    /// Who a GitHub login belongs to (case-insensitive, as on GitHub).
    pub fn person_by_github(&self, login: &str) -> Option<&PersonName> {
        self.people.on_github(login).map(|person| &person.name)
    }

    /// Who an e-mail address belongs to (case-insensitive).
    pub fn person_by_email(&self, email: &str) -> Option<&PersonName> {
        self.people.with_email(email).map(|person| &person.name)
    }

    /// Who acted, from the platform and that platform's user id. For the CLI and the API the
    /// id is a person's name (the key in `[people]`).
    pub fn person_on(&self, platform: Platform, user_id: &str) -> Option<&PersonName> {
        match platform {
            Platform::Slack => self.person_by_slack(user_id),
            Platform::Discord => self.person_by_discord(user_id),
            Platform::Github => self.person_by_github(user_id),
            Platform::Cli | Platform::Api => self.people.named(user_id).map(|person| &person.name),
        }
    }

    /// Who wrote a release, from what CI or git reported: a person's name, a GitHub login, an
    /// e-mail address, or git's `Name <email>`. Used to block self-review.
    pub fn person_by_author(&self, author: &str) -> Option<&PersonName> {
        let author = author.trim();
        let email = match (author.rfind('<'), author.strip_suffix('>')) {
            (Some(open), Some(_)) => Some(&author[open + 1..author.len() - 1]),
            _ if author.contains('@') => Some(author),
            _ => None,
        };
        if let Some(email) = email {
            return self.person_by_email(email);
        }
        self.people
            .named(author)
            .map(|person| &person.name)
            .or_else(|| self.person_by_github(author))
    }

    /// The people that `principals` stand for, groups expanded; each person once.
    pub fn expand(&self, principals: &[Principal]) -> BTreeSet<PersonName> {
        let mut people = BTreeSet::new();
        for principal in principals {
            match principal {
                Principal::Person(person) => {
                    people.insert(person.clone());
                }
                Principal::Group(group) => {
                    if let Some(group) = self.group(group) {
                        people.extend(group.members.iter().cloned());
                    }
                }
            }
        }
        people
    }

    /// Who may approve or reject releases going to `environment`; empty when it is not gated.
    pub fn reviewers(&self, app: &AppName, environment: &EnvironmentName) -> BTreeSet<PersonName> {
        self.environment(app, environment)
            .and_then(|environment| environment.gate.as_ref())
            .map(|gate| self.expand(&gate.reviewers))
            .unwrap_or_default()
    }

    /// Who may `/rollback`, `/flag`, `/lock` and `/unlock` for `app`.
    pub fn operators(&self, app: &AppName) -> BTreeSet<PersonName> {
        self.app(app)
            .map(|app| self.expand(&app.operators))
            .unwrap_or_default()
    }
}

impl AppConfig {
    pub fn environment(&self, name: &EnvironmentName) -> Option<&EnvironmentConfig> {
        self.environments
            .iter()
            .find(|environment| environment.name == *name)
    }

    /// The environment named by `environment`'s `after`.
    pub fn previous_environment(
        &self,
        environment: &EnvironmentName,
    ) -> Option<&EnvironmentConfig> {
        let after = self.environment(environment)?.after()?;
        self.environment(after)
    }

    /// The gated environments that come right after `environment`: where a release healthy in
    /// `environment` asks for approval next.
    pub fn environments_after<'a>(
        &'a self,
        environment: &'a EnvironmentName,
    ) -> impl Iterator<Item = &'a EnvironmentConfig> + 'a {
        self.environments
            .iter()
            .filter(move |candidate| candidate.after() == Some(environment))
    }
}
