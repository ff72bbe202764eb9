//! `greenlight notify`: sends a CI event to a running Greenlight, for CI steps where `curl` is
//! awkward. Retries connection failures and 5xx answers, which is safe because the server
//! de-duplicates events.

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};

/// What to send and where.
#[derive(Debug, Clone)]
pub struct Notification {
    /// The server's base URL, e.g. `https://greenlight.example`.
    pub server: String,
    pub token: String,
    pub idempotency_key: Option<String>,
    pub event: Value,
}

const ATTEMPTS: u32 = 4;

/// Posts the event and returns the server's reply. Fails with the server's own explanation on a
/// 4xx, after retries on a 5xx or an unreachable server.
pub async fn send(notification: &Notification) -> anyhow::Result<Value> {
    let client = reqwest::Client::builder()
        .user_agent(concat!("greenlight-notify/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let url = format!(
        "{}/api/v1/events",
        notification.server.trim_end_matches('/')
    );
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=ATTEMPTS {
        let mut request = client
            .post(&url)
            .bearer_auth(&notification.token)
            .json(&notification.event);
        if let Some(key) = &notification.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let last = attempt == ATTEMPTS;
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                return response.json().await.context("reading the server's reply");
            }
            Ok(response) if response.status().is_server_error() && !last => {
                eprintln!("greenlight answered {}; retrying", response.status());
            }
            Ok(response) => {
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                let detail = body["detail"].as_str().unwrap_or("no detail");
                bail!("greenlight refused the event ({status}): {detail}");
            }
            Err(error) if !last => {
                eprintln!("cannot reach {url} ({error}); retrying");
            }
            Err(error) => return Err(error).with_context(|| format!("sending the event to {url}")),
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    bail!("gave up after {ATTEMPTS} attempts")
}

/// Builds an event object from `(field, value)` pairs, leaving out the absent ones.
pub fn event(kind: &str, fields: &[(&str, Option<Value>)]) -> Value {
    let mut object = Map::new();
    object.insert("event".to_owned(), json!(kind));
    for (name, value) in fields {
        if let Some(value) = value {
            object.insert((*name).to_owned(), value.clone());
        }
    }
    Value::Object(object)
}
