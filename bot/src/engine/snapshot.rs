//! Loads what a decision depends on into the pure core's `RequestSnapshot`.

use std::collections::BTreeSet;

use greenlight_commands::{PersonName, RequestSnapshot};
use greenlight_storage::{
    decisions, gates, locks, releases, AnyConnection, ApprovalRequest, StorageError,
};

use crate::config::Config;
use crate::stored_policy::{author_of, policy_of};

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
