//! A Slack Web API for the benchmarks, on 127.0.0.1: it answers every call at once while the
//! setup posts the cards, then, once [`BenchSlack::rate_limit`] is called, answers every call
//! with Slack's throttling response (`429`, `Retry-After: 60`) and counts the calls by method.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Seconds Slack asks a throttled client to wait.
pub const RETRY_AFTER_SECS: u64 = 60;

#[derive(Default)]
struct Calls {
    limited: AtomicBool,
    /// Calls answered `ok` (before the rate limit), any method.
    answered: AtomicU64,
    /// Calls answered `ok` by method.
    answered_by_method: Mutex<BTreeMap<String, u64>>,
    /// Calls answered 429, by method.
    limited_by_method: Mutex<BTreeMap<String, u64>>,
}

/// The fake's address and its counters.
#[derive(Clone)]
pub struct BenchSlack {
    pub api_url: String,
    calls: Arc<Calls>,
}

impl BenchSlack {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Slack");
        let address = listener.local_addr().expect("address");
        let calls = Arc::new(Calls::default());
        let app = axum::Router::new()
            .route("/api/{method}", axum::routing::post(answer))
            // `response_url` posts (refusals of clicks), counted as method "response_url".
            .route("/hooks/{id}", axum::routing::post(hook))
            .with_state(calls.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            api_url: format!("http://{address}/api"),
            calls,
        }
    }

    /// From now on every call is answered `429 Retry-After: 60`, and counted.
    pub fn rate_limit(&self) {
        self.calls.limited.store(true, Ordering::SeqCst);
    }

    /// A `response_url` for interaction payloads.
    pub fn response_url(&self, id: &str) -> String {
        format!("{}/hooks/{id}", self.api_url.trim_end_matches("/api"))
    }

    /// Calls of `method` answered `ok` so far.
    pub fn answered(&self, method: &str) -> u64 {
        let answered = self.calls.answered_by_method.lock().expect("lock");
        answered.get(method).copied().unwrap_or(0)
    }

    /// Calls answered 429, by method, since the rate limit began.
    pub fn limited_calls(&self) -> BTreeMap<String, u64> {
        self.calls.limited_by_method.lock().expect("lock").clone()
    }

    /// Waits until `method` was answered `ok` at least `count` times (the setup's card posts
    /// delivered by the outbox), for at most `seconds`.
    pub async fn wait_answered(&self, method: &str, count: u64, seconds: u64) {
        let started = std::time::Instant::now();
        while self.answered(method) < count {
            assert!(
                started.elapsed().as_secs() < seconds,
                "Slack saw {} of {count} {method} calls after {seconds} s",
                self.answered(method)
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

async fn hook(State(calls): State<Arc<Calls>>) -> &'static str {
    *calls
        .answered_by_method
        .lock()
        .expect("lock")
        .entry("response_url".to_owned())
        .or_default() += 1;
    "ok"
}

async fn answer(State(calls): State<Arc<Calls>>, Path(method): Path<String>) -> Response {
    if calls.limited.load(Ordering::SeqCst) {
        *calls
            .limited_by_method
            .lock()
            .expect("lock")
            .entry(method)
            .or_default() += 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", RETRY_AFTER_SECS.to_string())],
            axum::Json(serde_json::json!({"ok": false, "error": "ratelimited"})),
        )
            .into_response();
    }
    calls.answered.fetch_add(1, Ordering::Relaxed);
    *calls
        .answered_by_method
        .lock()
        .expect("lock")
        .entry(method)
        .or_default() += 1;
    // Each post gets its own `ts`, so every card is its own message.
    let n = calls.answered.load(Ordering::Relaxed);
    axum::Json(
        serde_json::json!({"ok": true, "channel": "C0DEPLOYS", "ts": format!("1700000000.{n:06}")}),
    )
    .into_response()
}
