//! The review policy as stored with an approval request when it opened, read back: later
//! config changes do not move the goalposts of a request already waiting. The engine decides
//! with it; cards show it.

use std::collections::BTreeSet;

use greenlight_commands::{PersonName, Policy};
use greenlight_storage::ApprovalRequest;

use crate::config::Config;

/// The policy stored with the request when it opened: later config changes do not move the
/// goalposts of a request already waiting.
pub fn policy_of(request: &ApprovalRequest) -> Policy {
    let labels: Vec<String> = strings(&request.policy["reviewers"]);
    let reviewers: BTreeSet<PersonName> = strings(&request.policy["reviewer_people"])
        .iter()
        .filter_map(|name| PersonName::parse(name).ok())
        .collect();
    Policy {
        reviewers,
        reviewer_labels: labels,
        required_approvals: request.required_approvals,
        prevent_self_review: request.policy["prevent_self_review"]
            .as_bool()
            .unwrap_or(true),
        opens_at: request.opens_at,
        expires_at: request.expires_at,
        reminder_every: request.policy["reminder_every_secs"]
            .as_i64()
            .filter(|secs| *secs > 0)
            .map(chrono::Duration::seconds),
    }
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The release author as a `[people]` entry: from the snapshot if it was mapped when the
/// request opened, else mapped now.
pub fn author_of(
    config: &Config,
    request: &ApprovalRequest,
    author: Option<&str>,
) -> Option<PersonName> {
    request.policy["author_person"]
        .as_str()
        .and_then(|name| PersonName::parse(name).ok())
        .or_else(|| author.and_then(|author| config.person_by_author(author).cloned()))
}
