//! Read APIs for people and tools (SPEC §5.3): the release log and one environment's status.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use greenlight_commands::{AppName, EnvironmentName};
use greenlight_storage::ReleaseFilter;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::require_api_token;
use super::ApiError;
use crate::http::AppState;
use crate::release_log;

#[derive(Debug, Deserialize)]
pub struct ReleasesQuery {
    app: Option<String>,
    environment: Option<String>,
    limit: Option<String>,
}

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 500;

pub async fn releases(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ReleasesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    require_api_token(&headers, state.config.server.api_token.as_ref())?;
    let Query(query) = query.map_err(|error| ApiError::bad_request(error.body_text()))?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| {
                ApiError::unprocessable(format!("limit: must be a number from 1 to {MAX_LIMIT}"))
            })?,
    };
    let filter = ReleaseFilter {
        app: query.app.filter(|app| !app.is_empty()),
        environment: query.environment.filter(|env| !env.is_empty()),
        limit,
    };
    let releases = state
        .storage
        .list_releases(&filter)
        .await
        .map_err(|error| {
            tracing::error!(%error, "listing releases failed");
            ApiError::internal()
        })?;
    Ok(Json(release_log::to_json(&releases)))
}

pub async fn environment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((app, environment)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    require_api_token(&headers, state.config.server.api_token.as_ref())?;
    let known = AppName::parse(&app)
        .ok()
        .zip(EnvironmentName::parse(&environment).ok())
        .filter(|(app, environment)| state.config.environment(app, environment).is_some());
    let Some((app, environment)) = known else {
        return Err(ApiError::not_found(format!(
            "no environment {environment:?} is configured for app {app:?}"
        )));
    };
    let status = state
        .storage
        .environment_status(&app, &environment)
        .await
        .map_err(|error| {
            tracing::error!(%error, "reading environment status failed");
            ApiError::internal()
        })?;
    let current = status.current.map(|deployment| {
        json!({
            "sha": deployment.sha,
            "image": deployment.image,
            "state": deployment.state,
            "deployed_at": deployment.created_at,
            "healthy_at": deployment.healthy_at,
            "deployment_id": deployment.id,
            "kind": deployment.kind,
            "smoke": deployment.smoke,
            "approved": deployment.approved,
        })
    });
    let pending = status.pending_approval.map(|pending| {
        json!({
            "id": pending.request.id,
            "sha": pending.request.sha,
            "state": pending.request.state,
            "approvals": pending.approvals,
            "required": pending.request.required_approvals,
            "opens_at": pending.request.opens_at,
            "expires_at": pending.request.expires_at,
        })
    });
    let lock = status.lock.map(|lock| {
        json!({
            "by": lock.locked_by,
            "reason": lock.reason,
            "at": lock.locked_at,
            "automatic": lock.automatic,
        })
    });
    Ok(Json(json!({
        "app": status.app,
        "environment": status.environment,
        "current": current,
        "pending_approval": pending,
        "lock": lock,
    })))
}
