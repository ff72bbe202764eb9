//! Loads what a decision depends on into the pure core's `RequestSnapshot`.

use std::collections::BTreeSet;

use greenlight_commands::{PersonName, Policy, RequestSnapshot};
use greenlight_storage::{
    decisions, gates, locks, releases, AnyConnection, ApprovalRequest, StorageError,
};

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
pub(crate) fn author_of(
    config: &Config,
    request: &ApprovalRequest,
    author: Option<&str>,
) -> Option<PersonName> {
    request.policy["author_person"]
        .as_str()
        .and_then(|name| PersonName::parse(name).ok())
        .or_else(|| author.and_then(|author| config.person_by_author(author).cloned()))
}

pub async fn load_snapshot(
    conn: &mut AnyConnection,
    config: &Config,
    request: &ApprovalRequest,
) -> Result<RequestSnapshot, StorageError> {
    let release = releases::get_release(conn, request.release_id).await?;
    let approvals: BTreeSet<PersonName> = decisions::approvers(conn, request.id)
        .await?
        .into_iter()
        .collect();
    let locked = locks::active_lock(conn, &request.app, &request.environment)
        .await?
        .map(|lock| lock.reason);
    let github_gate =
        !gates::waiting_github_gates(conn, &request.app, &request.environment, &release.sha)
            .await?
            .is_empty();
    Ok(RequestSnapshot {
        app: request.app.clone(),
        environment: request.environment.clone(),
        sha: release.sha.clone(),
        state: request.state,
        policy: policy_of(request),
        author: author_of(config, request, release.author.as_deref()),
        approvals,
        locked,
        github_gate,
    })
}
