//! `[people]` and `[groups]`, and the reviewer and operator lists that refer to them by name.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use greenlight_commands::PersonName;
use toml::{Table, Value};

use crate::config::error::Problems;
use crate::config::path::KeyPath;
use crate::config::reader::{
    list_with, suggestion_suffix, table, text, Fields, FromValue, Invalid,
};
use crate::config::types::{Group, Person};
use crate::config::values::{GroupName, Principal};

/// Names defined anywhere in the file, gathered before anything refers to them.
pub(super) struct Known<'t> {
    /// In the order of the file, for suggestions.
    people: Vec<&'t str>,
    /// The same names, for look-ups that stay fast with 100,000 people.
    people_set: HashSet<&'t str>,
    /// Each group with the members as written.
    groups: Vec<(&'t str, Vec<&'t str>)>,
    /// Where each group is in `groups`.
    group_index: HashMap<&'t str, usize>,
    /// How many distinct people each reviewer list checked so far stands for (`None`: it names
    /// someone unknown). Many environments name the same large group; each list is counted
    /// once, so validation stays linear in the file.
    distinct_counts: RefCell<HashMap<Vec<Principal>, Option<usize>>>,
}

impl<'t> Known<'t> {
    pub(super) fn gather(root: &'t Table) -> Self {
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
        let people: Vec<&str> = people;
        let groups: Vec<(&str, Vec<&str>)> = groups;
        Self {
            people_set: people.iter().copied().collect(),
            group_index: groups
                .iter()
                .enumerate()
                .map(|(index, (name, _))| (*name, index))
                .collect(),
            people,
            groups,
            distinct_counts: RefCell::default(),
        }
    }

    fn group(&self, name: &str) -> Option<&[&'t str]> {
        let index = *self.group_index.get(name)?;
        Some(self.groups[index].1.as_slice())
    }

    /// The distinct people `principals` stand for when they are fewer than `required`, to name
    /// them in the problem; `None` when they are enough, or when one of them is unknown (which
    /// is reported where it is written).
    pub(super) fn too_few_people(
        &self,
        principals: &[Principal],
        required: usize,
    ) -> Option<BTreeSet<&'t str>> {
        let counted = self.distinct_counts.borrow().get(principals).copied();
        let count = match counted {
            Some(count) => count?,
            None => {
                let people = self.distinct_people(principals);
                let count = people.as_ref().map(BTreeSet::len);
                self.distinct_counts
                    .borrow_mut()
                    .insert(principals.to_vec(), count);
                return people.filter(|people| people.len() < required);
            }
        };
        if count < required {
            self.distinct_people(principals)
        } else {
            None
        }
    }

    /// The distinct people `principals` stand for, or `None` if one of them is unknown.
    fn distinct_people(&self, principals: &[Principal]) -> Option<BTreeSet<&'t str>> {
        let mut people = BTreeSet::new();
        for principal in principals {
            match principal {
                Principal::Person(person) => {
                    let known = self.people_set.get(person.as_str())?;
                    people.insert(*known);
                }
                Principal::Group(group) => {
                    let members = self.group(group.as_str())?;
                    people.extend(
                        members
                            .iter()
                            .copied()
                            .filter(|member| self.people_set.contains(member)),
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
            Principal::Person(person) if !self.people_set.contains(person.as_str()) => {
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

/// Every well-formed person; the others are reported and left out.
pub(super) fn people(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
) -> Result<Vec<Person>, Invalid> {
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

pub(super) fn groups(
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
pub(super) fn principals(
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
