//! A faulty release in a gated environment: rolled back to the last healthy release when
//! `auto_rollback` allows and a deployer can, the environment locked when it cannot, and the
//! channel told which (SPEC §8).

use chrono::{DateTime, Utc};
use greenlight_commands::DeploymentKind;
use greenlight_storage::{
    deliveries, deployments, releases, AnyConnection, Deployment, SmokeResult, StorageError,
};
use serde_json::json;

use super::audit::{self, Entry, GREENLIGHT};
use super::deployment::lock_automatically;
use super::deploys::{begin_deployment, triggerable, Begin};
use super::effects;
use crate::chat::Marker;
use crate::config::{Config, EnvironmentConfig};

/// A gated environment's release turned faulty: roll back to the last healthy release when
/// `auto_rollback` allows and a deployer can, lock the environment, and say what happened.
pub(super) async fn on_faulty(
    conn: &mut AnyConnection,
    config: &Config,
    environment: &EnvironmentConfig,
    faulty: &Deployment,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    // Already replaced (an operator's rollback or a newer deploy started meanwhile).
    let current = deployments::current_deployment(conn, &faulty.app, &faulty.environment).await?;
    if current
        .as_ref()
        .is_some_and(|current| current.id != faulty.id)
    {
        return Ok(());
    }
    let key = format!("greenlight:auto-rollback:{}", faulty.id);
    if deliveries::find_idempotency_key(conn, &key)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let (app, env, sha) = (&faulty.app, &faulty.environment, faulty.sha.short());
    let why = what_failed(faulty);
    let target = deployments::last_healthy_deployment(conn, app, env, Some(&faulty.sha)).await?;
    let revert = format!(
        "Permanent fix: `git revert {}`, then ship that.",
        faulty.sha
    );
    let mut rollback_id = None;
    let (text, lock, marker) = match (&target, triggerable(environment)) {
        (Some(target), Some(deployer)) if environment.auto_rollback => {
            let release = releases::get_release(conn, target.release_id).await?;
            let rollback = begin_deployment(
                conn,
                &Begin {
                    release: &release,
                    environment: env,
                    kind: DeploymentKind::Rollback,
                    deployer,
                    previous_sha: Some(faulty.sha.clone()),
                    triggered_by: format!("auto-rollback:{}", faulty.id),
                    actor: GREENLIGHT,
                },
                now,
            )
            .await?;
            rollback_id = Some(rollback.id);
            (
                format!(
                    "{app} {sha} is faulty in {env}: {why}.\n\
                     Rolling back automatically to {target_sha} ({image}); {env} runs {sha} \
                     until the rollback is done, then {target_sha}.\n{revert}",
                    target_sha = target.sha.short(),
                    image = release.image,
                ),
                environment.lock_after_rollback,
                Marker::Alert,
            )
        }
        (Some(target), _) if !environment.auto_rollback => (
            format!(
                "{app} {sha} is faulty in {env}: {why}.\n\
                 auto_rollback is off: `/rollback {app} {env}` puts back {target_sha}.\n{revert}",
                target_sha = target.sha.short(),
            ),
            false,
            Marker::Warning,
        ),
        (Some(target), _) => (
            format!(
                "{app} {sha} is faulty in {env}: {why}.\n\
                 Greenlight cannot roll back {env} itself (it is deployed {by}): redeploy \
                 {target_sha} ({image}) from there now. {env} still runs the faulty {sha}.\n{revert}",
                by = if environment.deploy.is_some() {
                    "by GitHub"
                } else {
                    "by CI"
                },
                target_sha = target.sha.short(),
                image = target.image,
            ),
            true,
            Marker::Alert,
        ),
        (None, _) => (
            format!(
                "{app} {sha} is faulty in {env}: {why}.\n\
                 There is nothing to roll back to: no other release was ever healthy in {env}, \
                 so {env} still runs the faulty {sha}. Someone needs to look now.\n{revert}"
            ),
            true,
            Marker::Alert,
        ),
    };
    let mut text = text;
    if lock {
        let reason = format!("{sha} is faulty in {env} ({why})");
        if lock_automatically(conn, faulty, &reason, now).await? {
            text.push_str(&format!(
                "\n{env} is locked: new deploys wait for `/unlock {app} {env}`."
            ));
        }
    }
    deliveries::insert_idempotency_key(conn, &key, &json!({ "deployment_id": rollback_id }), now)
        .await?;
    let entry = Entry::AutoRollback {
        faulty,
        rollback_deployment_id: rollback_id,
        target_sha: target.as_ref().map(|target| &target.sha),
        failed: &why,
        locked: lock,
    };
    audit::append(conn, GREENLIGHT, &entry, now).await?;
    effects::announce_marked(conn, config, app, Some(marker), &text, now).await?;
    Ok(())
}

/// "smoke check failed: health (503 Service Unavailable)", from the deployment's results.
pub(super) fn what_failed(deployment: &Deployment) -> String {
    let failed: Vec<String> = deployment
        .smoke
        .iter()
        .filter(|check| !check.passed())
        .map(describe_check)
        .collect();
    match failed.len() {
        0 => deployment
            .detail
            .as_deref()
            .map(first_line)
            .unwrap_or("its checks failed")
            .to_owned(),
        1 => format!("smoke check failed: {}", failed.join(", ")),
        _ => format!("smoke checks failed: {}", failed.join(", ")),
    }
}

/// "health (503 Service Unavailable)": a check's name and what it found.
pub(super) fn describe_check(check: &SmokeResult) -> String {
    match &check.detail {
        Some(detail) => format!("{} ({detail})", check.name),
        None => check.name.clone(),
    }
}

pub(super) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
