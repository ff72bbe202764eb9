//! Smoke checks against real HTTP servers on 127.0.0.1 (axum on port 0).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::Barrier;
use url::Url;

use super::*;

/// Serves `router` on a loopback port for the rest of the test; returns its base URL.
async fn serve(router: Router) -> Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    base_url(address)
}

fn base_url(address: SocketAddr) -> Url {
    Url::parse(&format!("http://{address}/")).expect("loopback URL")
}

fn runner() -> SmokeRunner {
    SmokeRunner::new().expect("HTTP client")
}

/// A check with the configuration's defaults, except a short retry delay.
fn check(name: &str, url: Url) -> SmokeCheck {
    SmokeCheck {
        name: name.to_owned(),
        url,
        expect_status: ExpectStatus::AnySuccess,
        expect_json: Vec::new(),
        timeout: SmokeCheck::DEFAULT_TIMEOUT,
        retries: 0,
        retry_delay: Duration::from_millis(10),
    }
}

fn expect(pairs: &[(&str, Value)]) -> Vec<JsonExpectation> {
    pairs
        .iter()
        .map(|(path, value)| JsonExpectation {
            path: (*path).to_owned(),
            value: value.clone(),
        })
        .collect()
}

fn healthy_body() -> Value {
    json!({
        "status": "ok",
        "database": "ok",
        "cache": "ok",
        "db": { "primary": { "status": "ok", "lag_ms": 3 } },
        "version": 2.0,
        "build": "x".repeat(500),
    })
}

/// One server for the single-attempt cases.
fn fake_service() -> Router {
    Router::new()
        .route("/health", get(|| async { Json(healthy_body()) }))
        .route(
            "/broken",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "stack trace here") }),
        )
        .route(
            "/unavailable",
            get(|| async { StatusCode::SERVICE_UNAVAILABLE }),
        )
        .route(
            "/degraded",
            get(|| async { Json(json!({ "database": "error", "cache": "ok" })) }),
        )
        .route(
            "/partial",
            get(|| async { Json(json!({ "database": "ok" })) }),
        )
        .route(
            "/text",
            get(|| async { "secret-looking body text, not JSON" }),
        )
        .route("/empty", get(|| async { StatusCode::NO_CONTENT }))
        .route("/huge", get(|| async { " ".repeat(MAX_BODY_BYTES + 1) }))
        .route("/moved", get(|| async { Redirect::temporary("/health") }))
        .route("/loop", get(|| async { Redirect::temporary("/loop") }))
        .route(
            "/elsewhere",
            get(|| async { Redirect::temporary("http://login.localhost/sso?session=abc") }),
        )
        .route(
            "/user-agent",
            get(|headers: HeaderMap| async move {
                let agent = headers
                    .get(header::USER_AGENT)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                Json(json!({ "agent": agent }))
            }),
        )
}

/// Name, path, expected status, expected JSON, whether it passes, and its detail.
type Case = (
    &'static str,
    &'static str,
    ExpectStatus,
    Vec<JsonExpectation>,
    bool,
    &'static str,
);

#[tokio::test]
async fn single_attempt_outcomes() {
    let base = serve(fake_service()).await;
    let runner = runner();
    let ok = || json!("ok");
    let agent = concat!("greenlight/", env!("CARGO_PKG_VERSION"));
    let cases: Vec<Case> = vec![
        (
            "healthy with matching JSON",
            "health",
            ExpectStatus::AnySuccess,
            expect(&[("database", ok()), ("cache", ok())]),
            true,
            "200 OK",
        ),
        (
            "healthy without expectations",
            "health",
            ExpectStatus::AnySuccess,
            vec![],
            true,
            "200 OK",
        ),
        (
            "server error",
            "broken",
            ExpectStatus::AnySuccess,
            vec![],
            false,
            "500 Internal Server Error",
        ),
        (
            "server error is judged before the body",
            "broken",
            ExpectStatus::AnySuccess,
            expect(&[("database", ok())]),
            false,
            "500 Internal Server Error",
        ),
        (
            "unavailable",
            "unavailable",
            ExpectStatus::AnySuccess,
            vec![],
            false,
            "503 Service Unavailable",
        ),
        (
            "wrong JSON value",
            "degraded",
            ExpectStatus::AnySuccess,
            expect(&[("database", ok()), ("cache", ok())]),
            false,
            r#"database: expected "ok", got "error""#,
        ),
        (
            "every wrong value is named",
            "degraded",
            ExpectStatus::AnySuccess,
            expect(&[("database", ok()), ("cache", json!("cold"))]),
            false,
            r#"database: expected "ok", got "error"; cache: expected "cold", got "ok""#,
        ),
        (
            "dotted key reaches a nested object",
            "health",
            ExpectStatus::AnySuccess,
            expect(&[("db.primary.status", ok()), ("db.primary.lag_ms", json!(3))]),
            true,
            "200 OK",
        ),
        (
            "nested value differs",
            "health",
            ExpectStatus::AnySuccess,
            expect(&[("db.primary.status", json!("degraded"))]),
            false,
            r#"db.primary.status: expected "degraded", got "ok""#,
        ),
        (
            "missing key",
            "partial",
            ExpectStatus::AnySuccess,
            expect(&[("database", ok()), ("cache", ok())]),
            false,
            "cache: missing",
        ),
        (
            "path through a non-object is missing",
            "health",
            ExpectStatus::AnySuccess,
            expect(&[("status.code", json!(1))]),
            false,
            "status.code: missing",
        ),
        (
            "an integer matches the same number written as a float",
            "health",
            ExpectStatus::AnySuccess,
            expect(&[("version", json!(2))]),
            true,
            "200 OK",
        ),
        (
            "a long value is cut short",
            "health",
            ExpectStatus::AnySuccess,
            expect(&[("build", json!("y"))]),
            false,
            r#"build: expected "y", got "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…"#,
        ),
        (
            "non-JSON body with expect_json",
            "text",
            ExpectStatus::AnySuccess,
            expect(&[("database", ok())]),
            false,
            "body is not JSON",
        ),
        (
            "non-JSON body is fine without expect_json",
            "text",
            ExpectStatus::AnySuccess,
            vec![],
            true,
            "200 OK",
        ),
        (
            "oversized body is not buffered",
            "huge",
            ExpectStatus::AnySuccess,
            expect(&[("database", ok())]),
            false,
            "body is larger than 1 MiB",
        ),
        (
            "exact status differs",
            "health",
            ExpectStatus::Exactly(204),
            vec![],
            false,
            "200 OK (expected 204 No Content)",
        ),
        (
            "exact status matches",
            "empty",
            ExpectStatus::Exactly(204),
            vec![],
            true,
            "204 No Content",
        ),
        (
            "an expected error status passes",
            "unavailable",
            ExpectStatus::Exactly(503),
            vec![],
            true,
            "503 Service Unavailable",
        ),
        (
            "same-host redirect is followed",
            "moved",
            ExpectStatus::AnySuccess,
            expect(&[("database", ok())]),
            true,
            "200 OK",
        ),
        (
            "redirect to another host is not followed",
            "elsewhere",
            ExpectStatus::AnySuccess,
            vec![],
            false,
            "307 Temporary Redirect (redirect to login.localhost not followed)",
        ),
        (
            "redirect loop stops",
            "loop",
            ExpectStatus::AnySuccess,
            vec![],
            false,
            "too many redirects",
        ),
        (
            "user agent names greenlight and its version",
            "user-agent",
            ExpectStatus::AnySuccess,
            expect(&[("agent", json!(agent))]),
            true,
            "200 OK",
        ),
    ];
    for (case, path, expect_status, expect_json, passed, detail) in cases {
        let url = base.join(path).expect("case URL");
        let check = SmokeCheck {
            expect_status,
            expect_json,
            ..check(case, url)
        };
        let result = runner.run_check(&check).await;
        let status = if passed {
            SmokeResult::PASSED
        } else {
            SmokeResult::FAILED
        };
        assert_eq!(result.name, case);
        assert_eq!(
            (result.status.as_str(), result.detail.as_deref()),
            (status, Some(detail)),
            "{case}"
        );
        assert!(result.duration_ms.is_some(), "{case}");
    }
}

#[tokio::test]
async fn slow_server_times_out() {
    let base = serve(Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "too late"
        }),
    ))
    .await;
    let check = SmokeCheck {
        timeout: Duration::from_millis(100),
        ..check("slow", base.join("slow").expect("URL"))
    };
    let result = runner().run_check(&check).await;
    assert_eq!(result.status, SmokeResult::FAILED);
    assert_eq!(result.detail.as_deref(), Some("timed out after 100ms"));
}

#[tokio::test]
async fn body_that_never_finishes_times_out() {
    // Headers arrive at once; the body never does.
    let base = serve(Router::new().route(
        "/trickle",
        get(|| async {
            let stream = futures::stream::pending::<Result<bytes::Bytes, std::io::Error>>();
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from_stream(stream))
                .expect("streaming response")
        }),
    ))
    .await;
    let check = SmokeCheck {
        timeout: Duration::from_millis(100),
        expect_json: expect(&[("database", json!("ok"))]),
        ..check("trickle", base.join("trickle").expect("URL"))
    };
    let result = runner().run_check(&check).await;
    assert_eq!(result.detail.as_deref(), Some("timed out after 100ms"));
}

#[tokio::test]
async fn refused_connection() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let address = listener.local_addr().expect("local address");
    drop(listener);
    let result = runner()
        .run_check(&check(
            "gone",
            base_url(address).join("health").expect("URL"),
        ))
        .await;
    assert_eq!(result.status, SmokeResult::FAILED);
    assert_eq!(result.detail.as_deref(), Some("connection refused"));
}

/// Fails every lookup, as the system resolver does for a name that does not exist, without
/// asking a real DNS server.
struct NoSuchHost;

impl reqwest::dns::Resolve for NoSuchHost {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "failed to lookup address information: Name or service not known",
            )
            .into())
        })
    }
}

#[tokio::test]
async fn unknown_host() {
    let runner = SmokeRunner {
        client: client_builder()
            .dns_resolver(Arc::new(NoSuchHost))
            .build()
            .expect("HTTP client"),
    };
    let url = Url::parse("http://shop.invalid/health?token=s3cret").expect("URL");
    let result = runner.run_check(&check("dns", url)).await;
    assert_eq!(result.status, SmokeResult::FAILED);
    assert_eq!(result.detail.as_deref(), Some("DNS lookup failed"));
}

/// Answers 503 to the first `failures` requests, then 200 with healthy JSON; counts requests.
async fn flapping_server(failures: usize) -> (Url, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route(
            "/health",
            get(move |State(seen): State<Arc<AtomicUsize>>| async move {
                if seen.fetch_add(1, Ordering::SeqCst) < failures {
                    StatusCode::SERVICE_UNAVAILABLE.into_response()
                } else {
                    Json(healthy_body()).into_response()
                }
            }),
        )
        .with_state(Arc::clone(&seen));
    (serve(router).await.join("health").expect("URL"), seen)
}

#[tokio::test]
async fn flapping_service_passes_within_its_retries() {
    let (url, seen) = flapping_server(2).await;
    let check = SmokeCheck {
        retries: 2,
        retry_delay: Duration::from_millis(20),
        expect_json: expect(&[("database", json!("ok"))]),
        ..check("flapping", url)
    };
    let result = runner().run_check(&check).await;
    assert_eq!(result.status, SmokeResult::PASSED);
    assert_eq!(result.detail.as_deref(), Some("200 OK (after 3 attempts)"));
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    // Total wall time, so both delays are in it. A lower bound only: sleeps never end early.
    assert!(result.duration_ms >= Some(40), "{:?}", result.duration_ms);
}

#[tokio::test]
async fn retries_exhausted_report_the_last_attempt() {
    let (url, seen) = flapping_server(usize::MAX).await;
    let check = SmokeCheck {
        retries: 2,
        ..check("down", url)
    };
    let result = runner().run_check(&check).await;
    assert_eq!(result.status, SmokeResult::FAILED);
    assert_eq!(
        result.detail.as_deref(),
        Some("503 Service Unavailable (after 3 attempts)")
    );
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_passing_check_is_not_retried() {
    let (url, seen) = flapping_server(0).await;
    let check = SmokeCheck {
        retries: 5,
        ..check("steady", url)
    };
    let result = runner().run_check(&check).await;
    assert_eq!(result.detail.as_deref(), Some("200 OK"));
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn checks_run_concurrently_and_report_in_config_order() {
    // Every request waits until all three have arrived, so run one at a time the first check
    // would time out; no clock is read.
    let barrier = Arc::new(Barrier::new(3));
    let router = Router::new()
        .route(
            "/{name}",
            get(
                |State(barrier): State<Arc<Barrier>>,
                 axum::extract::Path(name): axum::extract::Path<String>| async move {
                    barrier.wait().await;
                    if name == "payments" {
                        StatusCode::BAD_GATEWAY
                    } else {
                        StatusCode::OK
                    }
                },
            ),
        )
        .with_state(barrier);
    let base = serve(router).await;
    let checks: Vec<SmokeCheck> = ["web", "payments", "search"]
        .into_iter()
        .map(|name| SmokeCheck {
            timeout: Duration::from_secs(10),
            ..check(name, base.join(name).expect("URL"))
        })
        .collect();
    let report = runner().run(&checks).await;
    let summary: Vec<(&str, &str, Option<&str>)> = report
        .results
        .iter()
        .map(|r| (r.name.as_str(), r.status.as_str(), r.detail.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            ("web", SmokeResult::PASSED, Some("200 OK")),
            ("payments", SmokeResult::FAILED, Some("502 Bad Gateway")),
            ("search", SmokeResult::PASSED, Some("200 OK")),
        ]
    );
    assert!(!report.passed);
}

#[tokio::test]
async fn slow_first_check_still_reported_first() {
    let base = serve(
        Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    "slow"
                }),
            )
            .route("/fast", get(|| async { "fast" })),
    )
    .await;
    let checks = [
        check("slow", base.join("slow").expect("URL")),
        check("fast", base.join("fast").expect("URL")),
    ];
    let report = runner().run(&checks).await;
    let names: Vec<&str> = report.results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["slow", "fast"]);
    assert!(report.passed);
}

#[tokio::test]
async fn no_checks_pass() {
    let report = runner().run(&[]).await;
    assert_eq!(
        report,
        SmokeReport {
            results: vec![],
            passed: true
        }
    );
}

#[test]
fn details_stay_short_and_keep_the_attempt_count() {
    let long = "é".repeat(500);
    let single = with_attempts(&long, 1);
    assert_eq!(single.chars().count(), MAX_DETAIL_CHARS);
    assert!(single.ends_with('…'));

    let retried = with_attempts(&long, 3);
    assert_eq!(retried.chars().count(), MAX_DETAIL_CHARS);
    assert!(retried.ends_with("… (after 3 attempts)"), "{retried}");

    assert_eq!(with_attempts("200 OK", 2), "200 OK (after 2 attempts)");
    assert_eq!(truncate("short", 10), "short");
}

#[test]
fn numbers_compare_by_value() {
    for (a, b, equal) in [
        (json!(2), json!(2.0), true),
        (json!(2), json!(2.5), false),
        (json!(-1), json!(-1.0), true),
        (json!(u64::MAX), json!(u64::MAX), true),
        (json!([1, { "a": 2 }]), json!([1.0, { "a": 2.0 }]), true),
        (json!({ "a": 1 }), json!({ "a": 1, "b": 2 }), false),
        (json!("2"), json!(2), false),
        (json!(null), json!(null), true),
    ] {
        assert_eq!(json_equal(&a, &b), equal, "{a} vs {b}");
    }
}

#[test]
fn unusual_status_codes_have_a_plain_detail() {
    assert_eq!(
        describe_status(StatusCode::from_u16(599).expect("status")),
        "599"
    );
    assert_eq!(describe_status(StatusCode::IM_A_TEAPOT), "418 I'm a teapot");
}
