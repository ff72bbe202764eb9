//! `GET /health` for load balancers and `GET /api/v1/status` for operators.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::http::AppState;

pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Reports each dependency. The database decides the status code: without it nothing works,
/// while a chat platform being off or down only delays messages. "ok" means it took a write
/// (a full disk still answers reads).
pub async fn status(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = match state.storage.ping_write().await {
        Ok(()) => "ok",
        Err(error) => {
            tracing::warn!(%error, "database check failed");
            "error"
        }
    };
    let config = &state.config;
    let platform = |enabled: bool| if enabled { "configured" } else { "disabled" };
    let body = json!({
        "database": database,
        "database_backend": state.storage.backend().as_str(),
        "slack": platform(config.slack.is_some()),
        "discord": platform(config.discord.is_some()),
        "github": platform(config.github.is_some()),
        "version": env!("CARGO_PKG_VERSION"),
    });
    let code = if database == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}
