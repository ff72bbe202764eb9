//! `[apps.NAME.environments.ENV]`: an environment's place in the order (`after`), its approval
//! gate, deployer, smoke checks and rollback settings, with the checks between those keys.

use std::collections::BTreeSet;
use std::time::Duration;

use greenlight_commands::EnvironmentName;
use toml::Value;

use super::deployers::deployer;
use super::people::{principals, Known};
use super::positive_duration;
use super::smoke::smoke_check;
use crate::config::error::Problems;
use crate::config::path::KeyPath;
use crate::config::reader::{list_with, suggestion_suffix, table, Fields, FromValue, Invalid};
use crate::config::types::{ApprovalGate, Deployer, EnvironmentConfig};
use crate::config::values::Principal;
use crate::secret::SecretList;

pub(super) fn environments(
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
        let too_few = usize::try_from(required)
            .ok()
            .and_then(|required| known.too_few_people(reviewers, required));
        if let Some(people) = too_few {
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
