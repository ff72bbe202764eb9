//! CI's side of `POST /api/v1/events`: event bodies for `shop`, and posting them with a CI token.

use serde_json::{json, Value};

use crate::shop::image;
use crate::TestApp;

/// A `build` event for `sha` of shop with its SHA-tagged image; add fields with [`Fields::with`].
pub fn build(sha: &str) -> Value {
    json!({"event": "build", "app": "shop", "sha": sha, "image": image(sha)})
}

/// A `deployed` event: `sha` of shop deployed to `environment` with `status`.
pub fn deployed(environment: &str, sha: &str, status: &str) -> Value {
    json!({"event": "deployed", "app": "shop", "environment": environment, "sha": sha,
        "status": status})
}

/// Staging smoke checks that passed: one `health` check.
pub fn smoke_passed() -> Value {
    json!({"status": "passed", "checks": [
        {"name": "health", "status": "passed", "duration_ms": 12, "detail": "200 OK"}]})
}

/// Staging smoke checks that failed: `health` passed, `checkout` answered 503.
pub fn smoke_failed() -> Value {
    json!({"status": "failed", "checks": [
        {"name": "health", "status": "passed", "duration_ms": 12, "detail": "200 OK"},
        {"name": "checkout", "status": "failed", "duration_ms": 5003,
         "detail": "503 Service Unavailable"}]})
}

/// More fields for an event.
pub trait Fields {
    /// The event with `fields` (a JSON object) added, replacing any of the same name.
    fn with(self, fields: Value) -> Value;
}

impl Fields for Value {
    fn with(mut self, fields: Value) -> Value {
        let Value::Object(fields) = fields else {
            panic!("event fields are a JSON object: {fields}");
        };
        for (name, value) in fields {
            self[name] = value;
        }
        self
    }
}

/// Posts `event` with `token` (none: no `Authorization`); returns the status and the JSON
/// answer (`null` when there is none).
pub async fn post(app: &TestApp, token: Option<&str>, event: &Value) -> (u16, Value) {
    post_bytes(app, token, event.to_string().into_bytes(), None).await
}

/// Posts `body` as it is (so tests can send broken JSON), with an `Idempotency-Key` if given.
pub async fn post_bytes(
    app: &TestApp,
    token: Option<&str>,
    body: Vec<u8>,
    idempotency_key: Option<&str>,
) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url("/api/v1/events"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("POST /api/v1/events");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Posts `event` with `token` and expects it accepted (202); returns the answer.
pub async fn report(app: &TestApp, token: &str, event: Value) -> Value {
    let (status, answer) = post(app, Some(token), &event).await;
    assert_eq!(status, 202, "{event} → {answer}");
    assert!(answer.is_object(), "a JSON answer to {event}: {answer}");
    answer
}

/// The id of the approval request the report's answer says it opened.
pub fn opened_request(answer: &Value) -> i64 {
    answer["approval_requests"][0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("an approval request opened: {answer}"))
}
