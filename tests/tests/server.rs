//! The server's own routes through the real app: health, status, metrics, request ids, error
//! bodies, shutdown.

use greenlight_tests::spawn_app;
use serde_json::Value;

#[tokio::test]
async fn health_answers_ok() {
    let app = spawn_app().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        serde_json::json!({"status": "ok"})
    );
    app.teardown().await;
}

#[tokio::test]
async fn status_reports_database_and_disabled_platforms() {
    let app = spawn_app().await;
    let response = app.get("/api/v1/status").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["database_backend"], "sqlite");
    for platform in ["slack", "discord", "github"] {
        assert_eq!(body[platform], "disabled", "{platform}");
    }
    app.teardown().await;
}

#[tokio::test]
async fn status_is_503_when_the_database_is_unusable() {
    let app = spawn_app().await;
    app.storage().close().await;
    let response = app.get("/api/v1/status").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["database"], "error");
    // Health stays up: the process itself is fine, and a load balancer restarting it would not
    // bring the database back.
    assert_eq!(app.get("/health").await.status(), 200);
    app.teardown().await;
}

#[tokio::test]
async fn metrics_count_requests_per_route() {
    let app = spawn_app().await;
    app.get("/health").await;
    app.get("/no/such/route").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("text");
    assert!(
        text.lines()
            .any(|line| line.starts_with("greenlight_http_requests_total")
                && line.contains(r#"route="/health""#)
                && line.contains(r#"status="200""#)),
        "metrics:\n{text}"
    );
    assert!(
        text.contains("greenlight_http_request_duration_seconds"),
        "metrics:\n{text}"
    );
    app.teardown().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_keeps_the_callers() {
    let app = spawn_app().await;
    let generated = app.get("/health").await;
    let id = generated
        .headers()
        .get("x-request-id")
        .expect("x-request-id set")
        .to_str()
        .expect("ascii");
    assert_eq!(id.len(), 36, "a UUID: {id}");

    let kept = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("request");
    assert_eq!(kept.headers()["x-request-id"], "trace-me-42");
    app.teardown().await;
}

#[tokio::test]
async fn unknown_routes_get_a_json_error() {
    let app = spawn_app().await;
    let response = app.get("/nope").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "not_found");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    app.teardown().await;
}
