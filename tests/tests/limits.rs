//! SPEC §9 "Limits" through the real app, over raw TCP where a well-behaved client would not
//! do what is being tested: unauthenticated bodies never read, header and idle timeouts,
//! in-flight caps, body limits, closed metric label sets, JSON error bodies.

use std::time::Duration;

use greenlight::http::Limits;
use greenlight_tests::{spawn_app_with, spawn_app_with_limits, TestApp};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CI_TOKEN: &str = "shop-ci-token";
const FLAGS_TOKEN: &str = "shop-staging-flags-token";
/// Generous bound for answers that must come without the body; a server that waited for the
/// body would never answer at all.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

const CONFIG: &str = r#"
[slack]
bot_token = "xoxb-test"
signing_secret = "slack-signing-secret"
api_url = "http://127.0.0.1:9/api"

# RFC 8032 §7.1 test 1's public key: any valid key will do, nothing here is signed with it.
[discord]
application_id = "1100000000000000001"
public_key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
bot_token = "discord-bot-token"
api_url = "http://127.0.0.1:9"

[github]
webhook_secret = "github-webhook-secret"

[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "${SHOP_CI_TOKEN}"

[apps.shop.environments.staging]
flags_token = "${SHOP_STAGING_FLAGS_TOKEN}"
"#;

const ENV: &[(&str, &str)] = &[
    ("SHOP_CI_TOKEN", CI_TOKEN),
    ("SHOP_STAGING_FLAGS_TOKEN", FLAGS_TOKEN),
];

/// Greenlight on `CONFIG` with the production limits, changed by `change`.
async fn spawn(change: impl FnOnce(&mut Limits)) -> TestApp {
    let mut limits = Limits::default();
    change(&mut limits);
    spawn_app_with_limits(CONFIG, ENV, limits).await
}

/// `GET /health` on a kept-alive connection.
const GET_HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: greenlight\r\n\r\n";

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address).await.expect("connect")
}

async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.expect("send");
}

/// A new connection on which `bytes` were sent.
async fn sent(app: &TestApp, bytes: &[u8]) -> TcpStream {
    let mut stream = connect(app).await;
    send(&mut stream, bytes).await;
    stream
}

/// The status of `GET /health` on `stream`.
async fn health_status(stream: &mut TcpStream) -> u16 {
    send(stream, GET_HEALTH).await;
    read_response(stream).await.0
}

/// An authenticated CI event that is an empty object.
async fn post_empty_event(app: &TestApp) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/events"))
        .bearer_auth(CI_TOKEN)
        .body("{}")
        .send()
        .await
        .expect("an answer")
}

/// The head of an authenticated CI event POST with `headers` (each ending in CRLF) added.
fn events_request(headers: &str) -> String {
    format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: greenlight\r\nAuthorization: Bearer {CI_TOKEN}\r\n\
         Content-Type: application/json\r\n{headers}\r\n"
    )
}

/// Reads one response (headers and a `Content-Length` body) from `stream`.
async fn read_response(stream: &mut TcpStream) -> (u16, String, Vec<u8>) {
    read_response_from(stream).await
}

async fn read_response_from(stream: &mut (impl AsyncReadExt + Unpin)) -> (u16, String, Vec<u8>) {
    let read = async {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = find(&buffer, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                let length = header_value(&head, "content-length")
                    .and_then(|value| value.parse::<usize>().ok())
                    .unwrap_or(0);
                let body_start = end + 4;
                while buffer.len() < body_start + length {
                    let read = stream.read(&mut chunk).await.expect("read body");
                    assert!(read > 0, "connection closed mid-body: {head}");
                    buffer.extend_from_slice(&chunk[..read]);
                }
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|code| code.parse().ok())
                    .expect("status line");
                return (
                    status,
                    head,
                    buffer[body_start..body_start + length].to_vec(),
                );
            }
            let read = stream.read(&mut chunk).await.expect("read head");
            assert!(
                read > 0,
                "connection closed without an answer: {:?}",
                String::from_utf8_lossy(&buffer)
            );
            buffer.extend_from_slice(&chunk[..read]);
        }
    };
    tokio::time::timeout(ANSWER_WITHIN, read)
        .await
        .expect("an answer without the body being sent")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn header_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// Waits until the server closes `stream` (EOF or reset), reading and discarding anything.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) {
    let wait = async {
        let mut chunk = [0u8; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, wait)
        .await
        .expect("the server closes the connection");
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("JSON error body, got {:?}", String::from_utf8_lossy(body)))
}

#[tokio::test]
async fn unauthenticated_requests_are_refused_before_their_body_is_read() {
    let app = spawn(|_| {}).await;
    let fresh = chrono::Utc::now().timestamp();
    // Route, headers that are missing or malformed, and the body's announced length (never
    // sent). `Expect: 100-continue` makes the point visible: a server about to read the body
    // would first answer "100 Continue".
    let github_signed = "X-Hub-Signature-256: sha256=abc\r\n";
    let slack_signed =
        format!("X-Slack-Request-Timestamp: {fresh}\r\nX-Slack-Signature: v0=00\r\n");
    let slack_stale = format!(
        "X-Slack-Request-Timestamp: 1531420618\r\nX-Slack-Signature: v0={}\r\n",
        "ab".repeat(32)
    );
    let discord_signed = "X-Signature-Ed25519: 00\r\nX-Signature-Timestamp: 1\r\n";
    let wrong_bearer = "Authorization: Bearer not-the-token\r\n";
    let wrong_api_key = "X-API-Key: not-the-token\r\n";
    let (github, mb) = (24 << 20, 1 << 20);
    let cases: [(&str, &str, usize); 11] = [
        ("/webhooks/github", "", github),
        ("/webhooks/github", github_signed, github),
        ("/slack/commands", "", mb),
        ("/slack/interactions", &slack_signed, mb),
        ("/discord/interactions", "", mb),
        ("/discord/interactions", discord_signed, mb),
        ("/api/v1/events", "", mb),
        ("/api/v1/events", wrong_bearer, mb),
        ("/ofrep/v1/evaluate/flags", "", mb),
        ("/ofrep/v1/evaluate/flags/new_checkout", wrong_api_key, mb),
        // A stale timestamp needs no body either.
        ("/slack/commands", &slack_stale, mb),
    ];
    for (path, headers, length) in cases {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: greenlight\r\nContent-Type: application/json\r\n\
             Expect: 100-continue\r\nContent-Length: {length}\r\n{headers}\r\n"
        );
        let mut stream = sent(&app, request.as_bytes()).await;
        let (status, head, body) = read_response(&mut stream).await;
        assert_eq!(status, 401, "{path} with {headers:?}: {head}");
        let body = json(&body);
        // OFREP routes answer in OFREP's own shape (`errorDetails`), the others in ours.
        assert!(
            body["error"] == "unauthorized" || body["errorDetails"].is_string(),
            "{path}: {body}"
        );
    }
    app.teardown().await;
}

#[tokio::test]
async fn a_declared_body_over_the_route_limit_is_413_json_at_once() {
    let app = spawn(|_| {}).await;
    let request = events_request(&format!("Content-Length: {}\r\n", 2 << 20));
    let mut stream = sent(&app, request.as_bytes()).await;
    let (status, _, body) = read_response(&mut stream).await;
    assert_eq!(status, 413);
    let body = json(&body);
    assert_eq!(body["error"], "payload_too_large");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("1 MB")),
        "{body}"
    );
    app.teardown().await;
}

#[tokio::test]
async fn a_chunked_body_is_cut_off_at_the_route_limit_with_json() {
    let app = spawn(|_| {}).await;
    let (mut reader, mut writer) = connect(&app).await.into_split();
    let request = events_request("Transfer-Encoding: chunked\r\n");
    // 20 chunks of 100 KiB; the server may stop reading (and close) once past 1 MB.
    let sender = tokio::spawn(async move {
        writer.write_all(request.as_bytes()).await?;
        let chunk = format!("{:x}\r\n{}\r\n", 100 * 1024, " ".repeat(100 * 1024));
        for _ in 0..20 {
            writer.write_all(chunk.as_bytes()).await?;
        }
        writer.write_all(b"0\r\n\r\n").await?;
        std::io::Result::Ok(writer)
    });
    let (status, _, body) = read_response_from(&mut reader).await;
    assert_eq!(status, 413);
    assert_eq!(json(&body)["error"], "payload_too_large");
    drop(reader);
    let _ = sender.await;
    app.teardown().await;
}

#[tokio::test]
async fn a_half_sent_request_header_is_closed_after_the_header_timeout() {
    let app = spawn(|limits| limits.header_read_timeout = Duration::from_millis(300)).await;
    // On a fresh connection, and on a kept-alive one after its first answer.
    let mut stream = sent(&app, b"GET /health HTTP/1.1\r\nHost: greenlight\r\n").await;
    closed_by_server(&mut stream, ANSWER_WITHIN).await;
    let mut stream = connect(&app).await;
    assert_eq!(health_status(&mut stream).await, 200);
    send(&mut stream, b"GET /health HTTP/1.1\r\n").await;
    closed_by_server(&mut stream, ANSWER_WITHIN).await;
    // The server itself is fine.
    assert_eq!(app.get("/health").await.status(), 200);
    app.teardown().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let app = spawn(|limits| limits.idle_timeout = Duration::from_millis(300)).await;
    let mut stream = sent(&app, GET_HEALTH).await;
    let (status, head, _) = read_response(&mut stream).await;
    assert_eq!(status, 200, "{head}");
    closed_by_server(&mut stream, ANSWER_WITHIN).await;
    app.teardown().await;
}

#[tokio::test]
async fn a_body_slower_than_the_deadline_is_408_json() {
    let app = spawn(|limits| limits.body_read_timeout = Duration::from_millis(300)).await;
    let request = events_request("Content-Length: 100\r\n") + "{\"event\":";
    let mut stream = sent(&app, request.as_bytes()).await;
    let (status, _, body) = read_response(&mut stream).await;
    assert_eq!(status, 408);
    assert_eq!(json(&body)["error"], "request_timeout");
    app.teardown().await;
}

#[tokio::test]
async fn over_the_in_flight_cap_a_route_answers_503_with_retry_after() {
    let app = spawn(|limits| limits.max_in_flight_per_route = 1).await;
    // The first request stays inside its handler, which waits for the body; hyper answers
    // "100 Continue" exactly when the handler starts reading it.
    let request = events_request("Expect: 100-continue\r\nContent-Length: 100\r\n");
    let mut held = sent(&app, request.as_bytes()).await;
    let (status, _, _) = read_response(&mut held).await;
    assert_eq!(status, 100, "the handler reads the body");

    let response = post_empty_event(&app).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "unavailable");
    // Other routes have their own cap.
    assert_eq!(app.get("/health").await.status(), 200);

    // Once the held request is done, the route serves again.
    drop(held);
    let retry = async {
        loop {
            let response = post_empty_event(&app).await;
            if response.status() != 503 {
                return response.status();
            }
            tokio::task::yield_now().await;
        }
    };
    let status = tokio::time::timeout(ANSWER_WITHIN, retry)
        .await
        .expect("the route frees up");
    assert_eq!(status, 422, "an empty event is refused as invalid");
    app.teardown().await;
}

#[tokio::test]
async fn made_up_methods_add_no_metric_series() {
    let app = spawn_app_with(CONFIG, ENV).await;
    for n in 0..20 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{n}").as_bytes()).expect("token");
        let response = app
            .client
            .request(method, app.url("/health"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 405);
        assert_eq!(
            response.json::<Value>().await.expect("JSON")["error"],
            "method_not_allowed"
        );
    }
    let text = app.get("/metrics").await.text().await.expect("text");
    assert!(!text.contains("MADEUP"), "metrics:\n{text}");
    assert!(
        text.lines()
            .any(|line| line.starts_with("greenlight_http_requests_total")
                && line.contains(r#"method="other""#)
                && line.contains(r#"status="405""#)),
        "metrics:\n{text}"
    );
    app.teardown().await;
}

#[tokio::test]
async fn errors_from_the_framework_are_json() {
    let app = spawn_app_with(CONFIG, ENV).await;
    // 405: a route that exists, with the wrong method.
    let response = app.get("/api/v1/events").await;
    assert_eq!(response.status(), 405);
    assert!(response.headers().contains_key("allow"));
    assert_eq!(
        response.json::<Value>().await.expect("JSON")["error"],
        "method_not_allowed"
    );
    // 404: no such route.
    let response = app.get("/nowhere").await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.expect("JSON")["error"],
        "not_found"
    );
    // 400 from a query the read API cannot parse is already JSON; the events route's own
    // refusals are JSON as well.
    let response = app
        .client
        .post(app.url("/api/v1/events"))
        .bearer_auth(CI_TOKEN)
        .body("not json")
        .send()
        .await
        .expect("an answer");
    assert!(response.status().is_client_error());
    assert!(response.json::<Value>().await.expect("JSON")["error"].is_string());
    app.teardown().await;
}

#[tokio::test]
async fn over_the_connection_cap_a_client_waits_until_a_connection_closes() {
    let app = spawn(|limits| limits.max_connections = 1).await;
    // The one slot: a kept-alive connection, certainly accepted since it was answered.
    let mut first = connect(&app).await;
    assert_eq!(health_status(&mut first).await, 200);
    // A second client is connected by the kernel but not served while the slot is taken. (A
    // correct server never answers here, so the short look cannot make the test flaky.)
    let mut second = sent(
        &app,
        b"GET /health HTTP/1.1\r\nHost: greenlight\r\nConnection: close\r\n\r\n",
    )
    .await;
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), second.read(&mut byte)).await;
    assert!(early.is_err(), "served while the cap was reached");
    // Once the first connection closes, the second is served.
    drop(first);
    let (status, _, _) = read_response(&mut second).await;
    assert_eq!(status, 200);
    app.teardown().await;
}

#[tokio::test]
async fn the_header_timeout_does_not_cut_an_idle_kept_alive_connection() {
    let app = spawn(|limits| limits.header_read_timeout = Duration::from_millis(200)).await;
    let mut stream = connect(&app).await;
    for _ in 0..2 {
        assert_eq!(health_status(&mut stream).await, 200);
        // Idle for longer than the header timeout (the idle timeout is 60 s): time passing is
        // what is tested here, nothing is waited for.
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    app.teardown().await;
}
