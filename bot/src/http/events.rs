//! `POST /api/v1/events`: CI reports builds and deployments (SPEC §5.1).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::Value;

use super::auth::bearer;
use super::ApiError;
use crate::ci::{self, CiEvent, EventError};
use crate::config::{AppConfig, Config};
use crate::engine::{Dedup, IntakeError};
use crate::http::AppState;

const IDEMPOTENCY_KEY: &str = "idempotency-key";
const MAX_IDEMPOTENCY_KEY: usize = 255;

pub async fn post_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let token_app = authenticate(&state.config, &headers)?;
    let event = parse_event(&body)?;
    if *event.app() != token_app.name {
        return Err(ApiError::forbidden(format!(
            "this token belongs to app {}, not {}",
            token_app.name,
            event.app()
        )));
    }
    let dedup = Dedup::Key(match idempotency_key(&headers)? {
        Some(key) => format!("header:{}:{key}", token_app.name),
        None => event.natural_key(),
    });
    let outcome = match event {
        CiEvent::Build(build) => state.engine.record_build(build, dedup).await,
        CiEvent::Deployed(deployed) => state.engine.record_deployment(deployed, dedup).await,
    };
    match outcome {
        Ok(reply) => {
            metrics::counter!("greenlight_ci_events_total", "duplicate" => reply.duplicate.to_string())
                .increment(1);
            Ok((StatusCode::ACCEPTED, Json(reply.body)))
        }
        Err(error) => Err(intake_error(error)),
    }
}

/// Mounted before the handler as well, so an unauthenticated body is never read.
pub fn check_headers(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    authenticate(&state.config, headers).map(drop)
}

fn authenticate<'c>(config: &'c Config, headers: &HeaderMap) -> Result<&'c AppConfig, ApiError> {
    let token = bearer(headers).ok_or_else(|| {
        ApiError::unauthorized("send the app's ci_token as Authorization: Bearer <token>")
    })?;
    config
        .app_for_ci_token(token)
        .ok_or_else(|| ApiError::unauthorized("the bearer token is not accepted"))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} visible ASCII characters"
            ))
        })?;
    Ok(Some(key))
}

/// Refusals name the field; storage failures stay internal.
pub fn intake_error(error: IntakeError) -> ApiError {
    match (&error, error.field()) {
        (IntakeError::DeploymentFinished { .. }, Some(field)) => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("{field}: {error}"),
        ),
        (_, Some(field)) => ApiError::unprocessable(format!("{field}: {error}")),
        (_, None) => {
            tracing::error!(%error, "recording a CI event failed");
            ApiError::internal()
        }
    }
}

/// The body of `POST /api/v1/events` as the route answers it: the event, or the refusal
/// (400 for a body that is not a JSON object, 422 naming the field). Pure, so the property tests
/// and the fuzz harness run exactly what the route runs.
pub fn parse_event(body: &[u8]) -> Result<CiEvent, ApiError> {
    ci::parse(body).map_err(|error| match error {
        EventError::Field(field) => ApiError::unprocessable(field.to_string()),
        other => ApiError::bad_request(other.to_string()),
    })
}
