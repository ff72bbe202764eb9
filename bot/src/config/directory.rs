//! `[people]` as read, indexed once by every identity, so finding who clicked or who wrote a
//! commit takes the same time with five people or 100,000.

use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;

use super::types::Person;
use super::values::{Email, GithubLogin};

/// The people of the file, in its order, with an index per identity. Immutable, so the index
/// always matches the list. Where two people claim one identity (a config error) the first
/// one in the file is found.
#[derive(Clone, Default)]
pub struct People {
    list: Vec<Person>,
    by_name: HashMap<String, usize>,
    by_slack: HashMap<String, usize>,
    by_discord: HashMap<u64, usize>,
    /// By `GithubLogin::key`: logins are case-insensitive.
    by_github: HashMap<String, usize>,
    /// By `Email::key`: addresses are compared case-insensitively.
    by_email: HashMap<String, usize>,
}

impl People {
    pub fn new(list: Vec<Person>) -> Self {
        let count = list.len();
        let mut people = Self {
            list: Vec::new(),
            by_name: HashMap::with_capacity(count),
            by_slack: HashMap::with_capacity(count),
            by_discord: HashMap::with_capacity(count),
            by_github: HashMap::with_capacity(count),
            by_email: HashMap::with_capacity(count),
        };
        for (index, person) in list.iter().enumerate() {
            let first = |map: &mut HashMap<String, usize>, key: String| {
                map.entry(key).or_insert(index);
            };
            first(&mut people.by_name, person.name.as_str().to_owned());
            if let Some(slack) = &person.slack {
                first(&mut people.by_slack, slack.as_str().to_owned());
            }
            if let Some(github) = &person.github {
                first(&mut people.by_github, github.key());
            }
            if let Some(email) = &person.email {
                first(&mut people.by_email, email.key());
            }
            if let Some(discord) = person.discord {
                people.by_discord.entry(discord.get()).or_insert(index);
            }
        }
        people.list = list;
        people
    }

    pub fn named(&self, name: &str) -> Option<&Person> {
        self.at(self.by_name.get(name))
    }

    pub fn on_slack(&self, user_id: &str) -> Option<&Person> {
        self.at(self.by_slack.get(user_id))
    }

    pub fn on_discord(&self, user_id: u64) -> Option<&Person> {
        self.at(self.by_discord.get(&user_id))
    }

    /// Case-insensitive, as on GitHub.
    pub fn on_github(&self, login: &str) -> Option<&Person> {
        self.at(self.by_github.get(&GithubLogin::key_of(login)))
    }

    /// Case-insensitive; surrounding blanks ignored.
    pub fn with_email(&self, email: &str) -> Option<&Person> {
        self.at(self.by_email.get(&Email::key_of(email)))
    }

    fn at(&self, index: Option<&usize>) -> Option<&Person> {
        index.map(|index| &self.list[*index])
    }
}

impl Deref for People {
    type Target = [Person];

    fn deref(&self) -> &[Person] {
        &self.list
    }
}

impl fmt::Debug for People {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.list.fmt(f)
    }
}

impl From<Vec<Person>> for People {
    fn from(list: Vec<Person>) -> Self {
        Self::new(list)
    }
}

#[cfg(test)]
mod tests {
    use greenlight_commands::PersonName;

    use super::*;
    use crate::config::values::{Email, GithubLogin, SlackUserId, Snowflake};

    fn person(name: &str, slack: &str, github: &str, email: &str) -> Person {
        Person {
            name: PersonName::parse(name).expect("name"),
            slack: Some(SlackUserId::parse(slack).expect("slack")),
            discord: Some(
                Snowflake::parse(&format!("8035111022467891{}", name.len())).expect("id"),
            ),
            github: Some(GithubLogin::parse(github).expect("login")),
            email: Some(Email::parse(email).expect("email")),
        }
    }

    #[test]
    fn every_identity_finds_its_person_and_the_first_claim_wins() {
        let people = People::new(vec![
            person("alice", "U0ALICE01", "Alice-GH", "Alice@Example.com"),
            person("bob", "U0BOB0001", "bob", "bob@example.com"),
            person("mallory", "U0ALICE01", "ALICE-gh", "alice@example.com"),
        ]);
        let name = |found: Option<&Person>| found.map(|person| person.name.as_str().to_owned());
        assert_eq!(people.len(), 3);
        assert_eq!(name(people.named("bob")).as_deref(), Some("bob"));
        assert_eq!(name(people.on_slack("U0ALICE01")).as_deref(), Some("alice"));
        assert_eq!(name(people.on_github("alice-gh")).as_deref(), Some("alice"));
        assert_eq!(
            name(people.with_email(" ALICE@example.COM ")).as_deref(),
            Some("alice")
        );
        assert_eq!(
            name(people.on_discord(80351110224678913)).as_deref(),
            Some("bob")
        );
        assert!(people.on_slack("U0NOBODY1").is_none());
        assert!(people.named("Bob").is_none(), "names are exact");
    }
}
