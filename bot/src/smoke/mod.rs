//! Runs an environment's smoke checks over HTTP and says, per check, what it found.
//!
//! A check is a `GET` that passes when the status is accepted and every `expect_json` path holds
//! its expected value. Failed checks are retried as configured; the recorded result is the last
//! attempt's, with a one-line detail for the card ("503 Service Unavailable", "cache: missing",
//! "timed out after 5s (after 3 attempts)"). Details never quote a response body: a health page
//! can echo internals nobody meant to post into a chat channel.

use std::error::Error as _;
use std::time::Duration;

use futures::future::join_all;
use greenlight_storage::SmokeResult;
use reqwest::header::{HeaderValue, ACCEPT, LOCATION};
use reqwest::redirect;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use tokio::time::Instant;

use crate::config::{ExpectStatus, JsonExpectation, SmokeCheck};

#[cfg(test)]
mod tests;

/// Longest detail kept, in characters; cards and the release log show it on one line.
const MAX_DETAIL_CHARS: usize = 200;
/// Longest rendering of one JSON value inside a detail.
const MAX_VALUE_CHARS: usize = 40;
/// Health bodies are small; a larger one is refused rather than buffered.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Enough for `http → https` and a trailing-slash hop or two.
const MAX_REDIRECTS: usize = 5;

/// The outcome of one environment's smoke checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeReport {
    /// One per check, in the order of the configuration.
    pub results: Vec<SmokeResult>,
    /// Every check passed (true when there were none).
    pub passed: bool,
}

/// The HTTP client for smoke checks could not be built (the TLS backend failed to start).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for smoke checks")]
pub struct ClientError(#[source] reqwest::Error);

/// Runs smoke checks. Cheap to clone; build one at start-up and share it.
#[derive(Debug, Clone)]
pub struct SmokeRunner {
    client: reqwest::Client,
}

impl SmokeRunner {
    pub fn new() -> Result<Self, ClientError> {
        let client = client_builder().build().map_err(ClientError)?;
        Ok(Self { client })
    }

    /// Runs all `checks` at once and waits for every one, retries included.
    pub async fn run(&self, checks: &[SmokeCheck]) -> SmokeReport {
        // `join_all` keeps the configuration's order whatever order the checks finish in.
        let results = join_all(checks.iter().map(|check| self.run_check(check))).await;
        let passed = results.iter().all(SmokeResult::passed);
        SmokeReport { results, passed }
    }

    /// Runs one check, retrying a failure up to `retries` times `retry_delay` apart.
    ///
    /// The status and detail are the last attempt's. `duration_ms` is the check's total wall
    /// time, retries and delays included: it is how long the check held up the pipeline, and
    /// a slow pass after two failures should not look like a quick one.
    pub async fn run_check(&self, check: &SmokeCheck) -> SmokeResult {
        let started = Instant::now();
        let allowed = check.retries.saturating_add(1);
        let mut attempt = 1;
        let outcome = loop {
            let outcome = self.attempt(check).await;
            if outcome.is_ok() || attempt >= allowed {
                break outcome;
            }
            tracing::debug!(
                check = %check.name,
                attempt,
                detail = outcome.as_ref().err().map(String::as_str),
                "smoke check attempt failed; retrying"
            );
            tokio::time::sleep(check.retry_delay).await;
            attempt += 1;
        };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status, detail) = match outcome {
            Ok(detail) => (SmokeResult::PASSED, detail),
            Err(detail) => (SmokeResult::FAILED, detail),
        };
        let detail = with_attempts(&detail, attempt);
        // The URL is left out on purpose: it may carry a token in its query.
        tracing::info!(check = %check.name, status, duration_ms, %detail, "smoke check finished");
        SmokeResult {
            name: check.name.clone(),
            status: status.to_owned(),
            duration_ms: Some(duration_ms),
            detail: Some(detail),
        }
    }

    /// One attempt: `Ok` with a detail such as "200 OK", or `Err` with why it failed.
    async fn attempt(&self, check: &SmokeCheck) -> Result<String, String> {
        // One deadline for connecting, the response and its body: a server that answers headers
        // quickly but trickles the body is as unhealthy as one that never answers.
        match tokio::time::timeout(check.timeout, self.probe(check)).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => Err(timed_out(check.timeout)),
        }
    }

    async fn probe(&self, check: &SmokeCheck) -> Result<String, String> {
        let mut request = self.client.get(check.url.clone());
        if !check.expect_json.is_empty() {
            request = request.header(ACCEPT, HeaderValue::from_static("application/json"));
        }
        let response = request
            .send()
            .await
            .map_err(|error| describe_error(&error, check.timeout))?;
        let status = response.status();
        if !check.expect_status.accepts(status.as_u16()) {
            return Err(unexpected_status(check.expect_status, &response));
        }
        if !check.expect_json.is_empty() {
            let body = read_body(response, check.timeout).await?;
            let json: Value =
                serde_json::from_slice(&body).map_err(|_| "body is not JSON".to_owned())?;
            let mismatches: Vec<String> = check
                .expect_json
                .iter()
                .filter_map(|expectation| json_mismatch(expectation, &json))
                .collect();
            if !mismatches.is_empty() {
                return Err(mismatches.join("; "));
            }
        }
        Ok(describe_status(status))
    }
}

/// The client's settings, kept apart from `new` so tests can add a fake DNS resolver to exactly
/// the client that ships.
fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("greenlight/", env!("CARGO_PKG_VERSION")))
        .redirect(redirect_policy())
        // Proxies would come from the process environment, which only `config` may read.
        .no_proxy()
        // A fresh connection per attempt: a check right after a deploy must prove that a new
        // client can connect now, not reuse a socket to the process that was just replaced.
        .pool_max_idle_per_host(0)
}

/// Follows a few redirects on the same host. A redirect to another host (typically a login
/// page answering 200) is not followed, so the 3xx itself is judged and fails by default.
fn redirect_policy() -> redirect::Policy {
    redirect::Policy::custom(|attempt| {
        // `previous` starts with the URL of the check itself.
        let origin_host = attempt
            .previous()
            .first()
            .and_then(|url| url.host_str().map(str::to_owned));
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(TooManyRedirects)
        } else if attempt.url().host_str() != origin_host.as_deref() {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

#[derive(Debug, thiserror::Error)]
#[error("too many redirects")]
struct TooManyRedirects;

/// Reads at most [`MAX_BODY_BYTES`]; the body is only needed to check `expect_json`.
async fn read_body(mut response: Response, timeout: Duration) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| describe_error(&error, timeout))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err("body is larger than 1 MiB".to_owned());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// "200 OK", "503 Service Unavailable", or just the code when it has no standard reason.
fn describe_status(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

fn unexpected_status(expected: ExpectStatus, response: &Response) -> String {
    let status = response.status();
    let mut detail = describe_status(status);
    if let ExpectStatus::Exactly(code) = expected {
        let expected = StatusCode::from_u16(code)
            .map(describe_status)
            .unwrap_or_else(|_| code.to_string());
        detail.push_str(&format!(" (expected {expected})"));
    } else if status.is_redirection() {
        // Only the host: a redirect's path and query can carry session state.
        let target = response
            .headers()
            .get(LOCATION)
            .and_then(|location| location.to_str().ok())
            .and_then(|location| response.url().join(location).ok());
        if let Some(host) = target.as_ref().and_then(|url| url.host_str()) {
            detail.push_str(&format!(" (redirect to {host} not followed)"));
        }
    }
    detail
}

fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}", humantime::format_duration(timeout))
}

/// A short reason for a request that got no response. reqwest's own message names the URL,
/// which may carry a token, so the words come from the causes underneath it.
fn describe_error(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return timed_out(timeout);
    }
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        causes.push(cause);
        source = cause.source();
    }
    let io_kind = |kind: std::io::ErrorKind| {
        causes.iter().any(|cause| {
            cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == kind)
        })
    };
    if io_kind(std::io::ErrorKind::ConnectionRefused) {
        return "connection refused".to_owned();
    }
    // hyper-util reports a failed resolution as a connect error whose message is exactly this;
    // the type itself is private.
    if causes.iter().any(|cause| cause.to_string() == "dns error") {
        return "DNS lookup failed".to_owned();
    }
    if causes.iter().any(|cause| cause.is::<TooManyRedirects>()) {
        return "too many redirects".to_owned();
    }
    let innermost = causes
        .last()
        .map_or_else(|| "unknown error".to_owned(), ToString::to_string);
    if error.is_connect() {
        format!("connection failed: {innermost}")
    } else {
        format!("request failed: {innermost}")
    }
}

/// Why `body` does not meet `expectation`, or `None` when it does.
fn json_mismatch(expectation: &JsonExpectation, body: &Value) -> Option<String> {
    let found = expectation
        .segments()
        .try_fold(body, |value, key| value.as_object()?.get(key));
    match found {
        None => Some(format!("{}: missing", expectation.path)),
        Some(found) if json_equal(found, &expectation.value) => None,
        Some(found) => Some(format!(
            "{}: expected {}, got {}",
            expectation.path,
            render_value(&expectation.value),
            render_value(found)
        )),
    }
}

/// JSON equality where numbers compare by value: JSON has one number type, so `2` in the
/// configuration matches `2.0` in a body.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => {
            if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
                a == b
            } else if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
                a == b
            } else {
                a.as_f64() == b.as_f64()
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(key, a)| b.get(key).is_some_and(|b| json_equal(a, b)))
        }
        (a, b) => a == b,
    }
}

/// Compact JSON, cut short: a path can point at a whole object of the body.
fn render_value(value: &Value) -> String {
    truncate(&value.to_string(), MAX_VALUE_CHARS)
}

/// Appends "(after N attempts)" when retries were used, keeping the whole within the limit.
fn with_attempts(detail: &str, attempts: u32) -> String {
    if attempts <= 1 {
        return truncate(detail, MAX_DETAIL_CHARS);
    }
    let suffix = format!(" (after {attempts} attempts)");
    let room = MAX_DETAIL_CHARS.saturating_sub(suffix.chars().count());
    truncate(detail, room) + &suffix
}

/// At most `max` characters, ending in "…" when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
