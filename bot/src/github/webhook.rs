//! `POST /webhooks/github` (SPEC §5.2): authenticates a delivery on its raw body, checks the
//! delivery headers, then lets `events` decide what it means.
//!
//! Answers: 200 `{"ok":true,…}` for everything handled, ignored or repeated (GitHub shows the
//! body in its delivery log, so ignored deliveries say why); 401 for a bad signature, 400 for a
//! missing header or a payload without the fields needed, 413 above 25 MB, 422 when the engine
//! refuses the result, 500 (no detail) when storage fails. 404 while `[github]` is absent: the
//! route is switched off, as `/api/v1/status` already reports publicly, and a 401 would send
//! the operator hunting for a wrong secret when none is configured at all.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::events::{self, bad_payload, Handled, KnownEvent};
use super::payloads;
use crate::config::{Config, GithubConfig};
use crate::http::{ApiError, AppState, RouteKit};
use crate::verify::{self, VerifyError};

const EVENT_HEADER: &str = "x-github-event";
const DELIVERY_HEADER: &str = "x-github-delivery";
const MAX_HEADER_VALUE: usize = 255;

/// Bodies above this are hashed and parsed on a blocking thread: a 25 MB payload takes long
/// enough to stall the other requests (Slack's 3-second acknowledgements) sharing a worker.
const OFFLOAD_ABOVE: usize = 256 * 1024;

/// `POST /webhooks/github`, with GitHub's larger body limit.
pub fn routes(kit: &RouteKit) -> Router<AppState> {
    let route = kit
        .limited(post(receive), super::WEBHOOK_BODY_LIMIT)
        // The limit above is enforced while the body streams in; axum's own default (2 MiB)
        // would refuse GitHub's larger payloads.
        .layer(DefaultBodyLimit::disable());
    Router::new().route("/webhooks/github", kit.checked(route, check_headers))
}

/// The route's handler, mounted by [`routes`].
async fn receive(State(state): State<AppState>, request: Request) -> Result<Json<Value>, ApiError> {
    // Checked before the body is read, so a switched-off route costs nothing.
    let github = state.config.github.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "GitHub webhooks are off: add a [github] section with webhook_secret to greenlight.toml",
        )
    })?;
    let headers = request.headers().clone();
    let body = read_body(request).await?;
    authenticate(&state.config, &headers, body.clone()).await?;
    let delivery = Delivery::from_headers(&headers)?;
    let outcome = dispatch(&state, github, &delivery, &headers, body).await;
    log_outcome(&delivery, &outcome);
    outcome.map(|handled| Json(answer(handled)))
}

/// The delivery headers every GitHub webhook carries (REFERENCE §3.1).
struct Delivery {
    event: String,
    id: String,
}

impl Delivery {
    fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        Ok(Self {
            event: required_header(headers, EVENT_HEADER, "X-GitHub-Event")?,
            id: required_header(headers, DELIVERY_HEADER, "X-GitHub-Delivery")?,
        })
    }

    fn known(&self) -> Option<KnownEvent> {
        KnownEvent::from_header(&self.event)
    }
}

fn required_header(headers: &HeaderMap, name: &str, shown: &str) -> Result<String, ApiError> {
    let value = headers
        .get(name)
        .ok_or_else(|| ApiError::bad_request(format!("the {shown} header is required")))?;
    value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|text| {
            (1..=MAX_HEADER_VALUE).contains(&text.len())
                && text.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "the {shown} header must be 1-{MAX_HEADER_VALUE} visible ASCII characters"
            ))
        })
}

/// The raw body, within the route's limit (25 MB, set where the route is mounted).
async fn read_body(request: Request) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, &())
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the body is over 25 MB, the most GitHub sends in a webhook",
                )
            } else {
                ApiError::bad_request(rejection.body_text())
            }
        })
}

/// `X-Hub-Signature-256` against every configured secret (rotation), on the raw bytes.
async fn authenticate(
    config: &Arc<Config>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(), ApiError> {
    let signature = headers
        .get(verify::github::SIGNATURE_HEADER)
        // A header that is not ASCII is malformed, not missing.
        .map(|value| value.to_str().unwrap_or_default().to_owned());
    let config = config.clone();
    let checked = off_the_runtime(body.len(), move || {
        let secrets = config
            .github
            .as_ref()
            .map(|github| {
                github
                    .webhook_secret
                    .iter()
                    .map(|secret| secret.expose().as_bytes())
            })
            .into_iter()
            .flatten();
        verify::github::verify(secrets, signature.as_deref(), &body)
    })
    .await?;
    match checked {
        Ok(()) => Ok(()),
        Err(VerifyError::NoSecret) => {
            tracing::error!("github.webhook_secret has no usable secret; refusing every delivery");
            Err(ApiError::internal())
        }
        Err(error) => Err(unauthenticated(error)),
    }
}

/// Mounted before the handler: a missing or malformed `X-Hub-Signature-256` is refused before
/// the body (up to 25 MB) is read. While `[github]` is absent the handler answers 404, also
/// without reading the body.
pub fn check_headers(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.config.github.is_none() {
        return Ok(());
    }
    let signature = headers
        .get(verify::github::SIGNATURE_HEADER)
        .map(|value| value.to_str().unwrap_or_default());
    verify::github::parse_signature(signature)
        .map(drop)
        .map_err(unauthenticated)
}

/// The reason names the header's problem, never anything about the secret.
fn unauthenticated(error: VerifyError) -> ApiError {
    ::metrics::counter!("greenlight_github_webhooks_unauthenticated_total").increment(1);
    ApiError::unauthorized(format!(
        "{error}; GitHub signs with the webhook's secret as X-Hub-Signature-256"
    ))
}

async fn dispatch(
    state: &AppState,
    github: &GithubConfig,
    delivery: &Delivery,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Handled, ApiError> {
    let Some(event) = delivery.known() else {
        let reason = format!("event {:?} is not used by Greenlight", delivery.event);
        return events::ignore(state, &delivery.id, reason).await;
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    // Parsed once, straight into the event's typed payload, off the runtime when it is large.
    let parsed = off_the_runtime(body.len(), move || {
        read_known(event, content_type.as_deref(), &body)
    })
    .await??;
    events::handle(state, github, event, &delivery.id, parsed).await
}

/// A delivery's payload as the event it is, read the way [`dispatch`] reads it before it looks
/// at any state: the JSON (or form) body read once as the typed event, its action checked.
#[derive(Debug, Clone)]
pub enum GithubDelivery {
    Ping(payloads::PingEvent),
    DeploymentStatus(Box<payloads::DeploymentStatusEvent>),
    WorkflowRun(Box<payloads::WorkflowRunEvent>),
    DeploymentProtectionRule(Box<payloads::DeploymentProtectionRuleEvent>),
    /// A known event with an action Greenlight does not act on (200, ignored), as sent.
    OtherAction(Option<String>),
    /// An event Greenlight does not act on (200, ignored).
    Ignored,
}

/// Reads a (verified) delivery of event `event` (`X-GitHub-Event`): what the route makes of the
/// body, or its 400 naming the field. Pure, for the property tests and the fuzz harness; the
/// route runs the same [`read_known`].
pub fn parse_delivery(
    event: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<GithubDelivery, ApiError> {
    match KnownEvent::from_header(event) {
        Some(event) => read_known(event, content_type, body),
        None => Ok(GithubDelivery::Ignored),
    }
}

fn read_known(
    event: KnownEvent,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<GithubDelivery, ApiError> {
    use payloads::ForAction::{Other, Wanted};
    let delivery = match event {
        KnownEvent::Ping => {
            GithubDelivery::Ping(payloads::read(content_type, body).map_err(bad_payload)?)
        }
        KnownEvent::DeploymentStatus => GithubDelivery::DeploymentStatus(Box::new(
            payloads::read(content_type, body).map_err(bad_payload)?,
        )),
        KnownEvent::WorkflowRun => {
            match payloads::read_for_action(content_type, body, "completed").map_err(bad_payload)? {
                Wanted(run) => GithubDelivery::WorkflowRun(Box::new(run)),
                Other(action) => GithubDelivery::OtherAction(action),
            }
        }
        KnownEvent::DeploymentProtectionRule => {
            match payloads::read_for_action(content_type, body, "requested").map_err(bad_payload)? {
                Wanted(rule) => GithubDelivery::DeploymentProtectionRule(Box::new(rule)),
                Other(action) => GithubDelivery::OtherAction(action),
            }
        }
    };
    Ok(delivery)
}

/// Runs CPU-bound `work` inline when the body is small, on the blocking pool when it is not.
async fn off_the_runtime<T, F>(size: usize, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if size <= OFFLOAD_ABOVE {
        return Ok(work());
    }
    tokio::task::spawn_blocking(work).await.map_err(|error| {
        tracing::error!(%error, "a blocking task for a GitHub delivery failed");
        ApiError::internal()
    })
}

fn answer(handled: Handled) -> Value {
    let mut body = Map::new();
    body.insert("ok".to_owned(), Value::Bool(true));
    match handled {
        Handled::Pong {
            zen,
            hook_id,
            duplicate,
        } => {
            body.insert("zen".to_owned(), json!(zen));
            body.insert("hook_id".to_owned(), json!(hook_id));
            if duplicate {
                body.insert("duplicate".to_owned(), Value::Bool(true));
            }
        }
        Handled::Ignored(reason) => {
            body.insert("ignored".to_owned(), Value::Bool(true));
            body.insert("reason".to_owned(), Value::String(reason));
        }
        Handled::Duplicate => {
            body.insert("duplicate".to_owned(), Value::Bool(true));
        }
        Handled::Recorded(Value::Object(recorded)) => body.extend(recorded),
        Handled::Recorded(other) => {
            body.insert("recorded".to_owned(), other);
        }
    }
    Value::Object(body)
}

fn log_outcome(delivery: &Delivery, outcome: &Result<Handled, ApiError>) {
    let word = match outcome {
        Ok(Handled::Pong { .. }) => "pong",
        Ok(Handled::Ignored(_)) => "ignored",
        Ok(Handled::Duplicate) => "duplicate",
        Ok(Handled::Recorded(_)) => "recorded",
        Err(error) if error.status.is_server_error() => "failed",
        Err(_) => "refused",
    };
    // Event names from the header are bounded to the ones we know, to keep label values few.
    let event = delivery.known().map_or("other", KnownEvent::as_str);
    ::metrics::counter!("greenlight_github_webhooks_total", "event" => event, "outcome" => word)
        .increment(1);
    match outcome {
        Ok(Handled::Ignored(reason)) => tracing::info!(
            event = %delivery.event, delivery = %delivery.id, outcome = word, %reason,
            "GitHub delivery"
        ),
        Err(error) => tracing::warn!(
            event = %delivery.event, delivery = %delivery.id, outcome = word,
            status = error.status.as_u16(), detail = %error.detail, "GitHub delivery"
        ),
        Ok(_) => tracing::info!(
            event = %delivery.event, delivery = %delivery.id, outcome = word, "GitHub delivery"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().expect("header value"));
        }
        headers
    }

    #[test]
    fn delivery_headers_are_required_and_bounded() {
        let ok = Delivery::from_headers(&headers(&[
            (EVENT_HEADER, "ping"),
            (DELIVERY_HEADER, "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ]))
        .expect("valid");
        assert_eq!(ok.known(), Some(KnownEvent::Ping));

        let missing = Delivery::from_headers(&headers(&[(EVENT_HEADER, "ping")]))
            .err()
            .expect("refused");
        assert_eq!(missing.status, StatusCode::BAD_REQUEST);
        assert!(
            missing.detail.contains("X-GitHub-Delivery"),
            "{}",
            missing.detail
        );

        let long = "x".repeat(MAX_HEADER_VALUE + 1);
        let too_long = Delivery::from_headers(&headers(&[
            (EVENT_HEADER, "ping"),
            (DELIVERY_HEADER, &long),
        ]))
        .err()
        .expect("refused");
        assert!(too_long.detail.contains("X-GitHub-Delivery"));

        let missing_event = Delivery::from_headers(&headers(&[(DELIVERY_HEADER, "1")]))
            .err()
            .expect("refused");
        assert!(missing_event.detail.contains("X-GitHub-Event"));
    }

    #[test]
    fn answers_always_say_ok_and_what_happened() {
        assert_eq!(
            answer(Handled::Ignored("why".to_owned())),
            json!({"ok": true, "ignored": true, "reason": "why"})
        );
        assert_eq!(
            answer(Handled::Recorded(json!({"gate": {"id": 1}}))),
            json!({"ok": true, "gate": {"id": 1}})
        );
        assert_eq!(
            answer(Handled::Pong {
                zen: Some("Design for failure.".to_owned()),
                hook_id: None,
                duplicate: false,
            }),
            json!({"ok": true, "zen": "Design for failure.", "hook_id": null})
        );
    }
}
