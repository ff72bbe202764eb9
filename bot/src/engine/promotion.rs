//! Promotion: a release that became healthy in an environment asks for approval to enter each
//! gated environment that comes after it, superseding an older release still waiting there.

use chrono::{DateTime, Utc};
use greenlight_commands::{approval, EnvironmentName};
use greenlight_storage::{
    approvals, AnyConnection, ApprovalRequest, ApprovalSource, Deployment, NewApprovalRequest,
    Release, StorageError,
};
use serde_json::json;

use super::audit::{self, Entry, GREENLIGHT};
use super::effects::{self, Context, ReplyTo};
use super::snapshot::load_snapshot;
use crate::cards::CardKey;
use crate::clock::span;
use crate::config::{ApprovalGate, Config};

/// Opens the approval requests `deployment` (now healthy) makes possible. Runs inside the write
/// that made it healthy, so the request exists exactly when the health does.
pub(super) async fn on_healthy(
    conn: &mut AnyConnection,
    config: &Config,
    release: &Release,
    deployment: &Deployment,
    now: DateTime<Utc>,
) -> Result<Vec<ApprovalRequest>, StorageError> {
    let Some(app) = config.app(&release.app) else {
        return Ok(Vec::new());
    };
    let healthy_at = deployment.healthy_at.unwrap_or(now);
    let mut opened = Vec::new();
    for target in app.environments_after(&deployment.environment) {
        let Some(gate) = &target.gate else { continue };
        // A release asks once per environment: a rejection stays a rejection even if the
        // release is redeployed to staging.
        if approvals::latest_approval_request(conn, release.id, &target.name)
            .await?
            .is_some()
        {
            continue;
        }
        if let Some(request) =
            open_request(conn, config, gate, &target.name, release, healthy_at, now).await?
        {
            opened.push(request);
        }
    }
    Ok(opened)
}

/// Opens a new approval request for `release` to enter `environment` although it asked before:
/// a GitHub protection rule arriving after the release's approval went stale (older than
/// `approval_timeout`) asks the reviewers again rather than ride on the old decision.
pub(super) async fn ask_again(
    conn: &mut AnyConnection,
    config: &Config,
    release: &Release,
    environment: &EnvironmentName,
    healthy: &Deployment,
    now: DateTime<Utc>,
) -> Result<Option<ApprovalRequest>, StorageError> {
    let Some(gate) = config
        .environment(&release.app, environment)
        .and_then(|target| target.gate.as_ref())
    else {
        return Ok(None);
    };
    let healthy_at = healthy.healthy_at.unwrap_or(now);
    open_request(conn, config, gate, environment, release, healthy_at, now).await
}

/// Opens the request of `release` for one gated environment and posts its card, superseding an
/// older release waiting there; `None` when a newer release already waits.
async fn open_request(
    conn: &mut AnyConnection,
    config: &Config,
    gate: &ApprovalGate,
    environment: &EnvironmentName,
    release: &Release,
    healthy_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<ApprovalRequest>, StorageError> {
    if let Some(waiting) =
        approvals::waiting_approval_request(conn, &release.app, environment).await?
    {
        if waiting.release_id > release.id {
            // A newer release already waits; an older one turning healthy again does not
            // take its place.
            return Ok(None);
        }
        if waiting.release_id == release.id {
            return Ok(Some(waiting));
        }
        supersede(conn, config, waiting.id, release, now).await?;
    }
    let request = approvals::insert_approval_request(
        conn,
        &NewApprovalRequest {
            release_id: release.id,
            environment: environment.clone(),
            source: ApprovalSource::Ci,
            policy: policy_snapshot(config, gate, release),
            required_approvals: gate.required_approvals,
            opens_at: healthy_at + span(gate.wait_timer),
            expires_at: now + span(gate.approval_timeout),
            next_reminder_at: gate.reminder_every.map(|every| now + span(every)),
            at: now,
        },
    )
    .await?;
    audit::append(conn, GREENLIGHT, &Entry::ApprovalRequested(&request), now).await?;
    let card = CardKey::Approval(request.id);
    effects::post_card(conn, config, &release.app, card, now).await?;
    super::card_commits::ask_for_commits(conn, config, &request, release, now).await?;
    if request.opens_at > now {
        // The card says when approvals open; refresh it then so it stops saying so.
        effects::update_card_at(
            conn,
            config,
            &release.app,
            card,
            now,
            Some(request.opens_at),
        )
        .await?;
    }
    Ok(Some(request))
}

/// Ends a waiting request because a newer release asks for the same environment.
async fn supersede(
    conn: &mut AnyConnection,
    config: &Config,
    id: i64,
    by: &Release,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let waiting = approvals::lock_waiting_request(conn, id).await?;
    let snapshot = load_snapshot(conn, config, &waiting).await?;
    let Some(transition) = approval::supersede(&snapshot, &by.sha) else {
        return Ok(());
    };
    let request = effects::apply_change(conn, waiting, transition.change.as_ref(), now).await?;
    audit::append(conn, GREENLIGHT, &Entry::ApprovalSuperseded(&request), now).await?;
    effects::enqueue_effects(
        conn,
        &Context {
            config,
            request: &request,
            actor: GREENLIGHT,
            reply_to: &ReplyTo::Nobody,
            now,
        },
        &transition.effects,
    )
    .await
}

/// A deployment that failed its smoke checks in an environment that gates another: the
/// channel gets a card saying so (each check, "not promotable", no buttons).
pub(super) async fn on_not_promotable(
    conn: &mut AnyConnection,
    config: &Config,
    deployment: &Deployment,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let gates_another = config.app(&deployment.app).is_some_and(|app| {
        app.environments_after(&deployment.environment)
            .next()
            .is_some()
    });
    if gates_another {
        let card = CardKey::SmokeFailed(deployment.id);
        effects::post_card(conn, config, &deployment.app, card, now).await?;
    }
    Ok(())
}

/// The policy as it stood when the request opened: what the card shows and the audit keeps,
/// even if the configuration changes while the request waits.
fn policy_snapshot(config: &Config, gate: &ApprovalGate, release: &Release) -> serde_json::Value {
    let reviewers: Vec<String> = gate.reviewers.iter().map(ToString::to_string).collect();
    let people: Vec<String> = config
        .expand(&gate.reviewers)
        .iter()
        .map(ToString::to_string)
        .collect();
    let author = release
        .author
        .as_deref()
        .and_then(|author| config.person_by_author(author))
        .map(ToString::to_string);
    json!({
        "reviewers": reviewers,
        "reviewer_people": people,
        "required_approvals": gate.required_approvals,
        "prevent_self_review": gate.prevent_self_review,
        "wait_timer_secs": gate.wait_timer.as_secs(),
        "approval_timeout_secs": gate.approval_timeout.as_secs(),
        "reminder_every_secs": gate.reminder_every.map(|every| every.as_secs()),
        "author": release.author,
        "author_person": author,
    })
}
