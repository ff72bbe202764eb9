//! `GET /api/v1/metrics/dora` (SPEC §14): an environment's DORA metrics for people and tools,
//! behind the read APIs' `api_token`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::auth::require_api_token;
use super::{ApiError, AppState};
use crate::dora::{self, DoraQuery, InvalidQuery};

#[derive(Debug, Deserialize)]
pub struct DoraParams {
    app: Option<String>,
    environment: Option<String>,
    days: Option<String>,
}

pub async fn dora_metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<DoraParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    require_api_token(&headers, state.config.server.api_token.as_ref())?;
    let Query(params) = params.map_err(|error| ApiError::bad_request(error.body_text()))?;
    let refused = |invalid: InvalidQuery| ApiError::bad_request(invalid.to_string());
    let days = dora::parse_days(params.days.as_deref()).map_err(refused)?;
    let query = DoraQuery::resolve(
        &state.config,
        params.app.as_deref(),
        params.environment.as_deref(),
        days,
    )
    .map_err(refused)?;
    let window = query.window(state.engine.clock().now());
    let metrics = state.storage.dora_metrics(&window).await.map_err(|error| {
        tracing::error!(%error, "computing DORA metrics failed");
        ApiError::internal()
    })?;
    Ok(Json(dora::to_json(&query, &window, &metrics)))
}
