//! `GET /health` for load balancers and `GET /api/v1/status` for operators.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::connections::Transport;
use crate::http::AppState;

pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Reports each dependency. The database decides the status code: without it nothing works,
/// while a chat platform being off or down only delays messages. "ok" means it took a write
/// (a full disk still answers reads). Also names the replica that answered, what it holds, and
/// how many replicas share the database (not their names).
pub async fn status(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = match state.storage.ping_write().await {
        Ok(()) => "ok",
        Err(error) => {
            tracing::warn!(%error, "database check failed");
            "error"
        }
    };
    let replicas_alive = match state
        .storage
        .live_replicas(state.engine.clock().now())
        .await
    {
        Ok(replicas) => json!(replicas.len()),
        Err(_) => Value::Null,
    };
    let replica = &state.replica;
    let config = &state.config;
    let platform = |enabled: bool| if enabled { "configured" } else { "disabled" };
    // A platform reached over an outbound connection shows that connection's state.
    let connection = |transport: Transport, enabled: bool| {
        state
            .connections
            .describe(transport)
            .unwrap_or_else(|| platform(enabled).to_owned())
    };
    let body = json!({
        "database": database,
        "database_backend": state.storage.backend().as_str(),
        "slack": connection(Transport::SlackSocketMode, config.slack.is_some()),
        "discord": connection(Transport::DiscordGateway, config.discord.is_some()),
        "github": platform(config.github.is_some()),
        "version": env!("CARGO_PKG_VERSION"),
        // Which replica answered, and what it would leave for another to take over (SPEC §11).
        "replica": {
            "name": replica.name(),
            "started_at": replica.started_at(),
            "lease_seconds": replica.lease().as_secs_f64(),
            "holds": replica.holdings(),
        },
        "replicas_alive": replicas_alive,
    });
    let code = if database == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}
