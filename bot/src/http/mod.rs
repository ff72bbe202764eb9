//! The HTTP surface: the router, its shared layers (request ids, tracing, body limits, panic
//! catching, metrics) and the routes that belong to no platform.

mod auth;
mod connection;
pub mod error;
mod events;
mod flags;
mod health;
pub mod limits;
mod metrics;
mod read_api;
pub mod server;
pub mod slack;

use std::any::Any;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderName, Response};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::IntoResponse;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::app::AppState;
pub use error::ApiError;
pub use limits::Limits;
use limits::RouteLimitsFactory;

/// Default request body limit (SPEC §5); routes that need more (GitHub: 25 MB) raise their own.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A check of a route's signature or token headers, run before the body is read: the refusal,
/// if there is one.
type HeaderCheck = fn(&AppState, &HeaderMap) -> Option<Response<axum::body::Body>>;

pub fn router(state: AppState) -> Router {
    let limits = RouteLimitsFactory::new(state.limits);
    // Every route gets an in-flight cap, a body limit and the body deadline (`limited`);
    // routes that read a body refuse unauthenticated requests before reading it (`checked`).
    let limited = |route: MethodRouter<AppState>, body_limit: usize| {
        route.route_layer(from_fn_with_state(
            limits.route(body_limit),
            limits::enforce,
        ))
    };
    let limited_ofrep = |route: MethodRouter<AppState>| {
        let limits = limits
            .route(DEFAULT_BODY_LIMIT)
            .refusing_with(flags::ofrep_limit_refusal);
        route.route_layer(from_fn_with_state(limits, limits::enforce))
    };
    let checked = |route: MethodRouter<AppState>, check: HeaderCheck| {
        route.route_layer(from_fn_with_state(
            (state.clone(), check),
            refuse_unauthenticated,
        ))
    };
    let default = DEFAULT_BODY_LIMIT;
    let routes = Router::new()
        .route("/health", limited(get(health::health), default))
        .route("/api/v1/status", limited(get(health::status), default))
        .route("/metrics", limited(get(metrics::render), default))
        .route(
            "/api/v1/events",
            checked(limited(post(events::post_event), default), events_check),
        )
        .route(
            "/webhooks/github",
            checked(
                limited(
                    post(crate::github::webhook::receive),
                    crate::github::WEBHOOK_BODY_LIMIT,
                )
                // The limit above is enforced while the body streams in; axum's own default
                // (2 MiB) would refuse GitHub's larger payloads.
                .layer(DefaultBodyLimit::disable()),
                github_check,
            ),
        )
        .route(
            "/api/v1/releases",
            limited(get(read_api::releases), default),
        )
        .route(
            "/slack/interactions",
            checked(limited(post(slack::interactions), default), slack_check),
        )
        .route(
            "/slack/commands",
            checked(limited(post(slack::commands), default), slack_check),
        )
        .route(
            "/discord/interactions",
            checked(
                limited(post(crate::discord::interactions::interactions), default),
                discord_check,
            ),
        )
        .route(
            "/api/v1/apps/{app}/environments/{environment}",
            limited(get(read_api::environment), default),
        );
    // Applications' flags (SPEC §7), authenticated by an environment's flags_token.
    let routes = routes
        .route(
            "/api/v1/flags/{app}/{environment}",
            limited(get(flags::environment_flags), default),
        )
        .route(
            "/ofrep/v1/evaluate/flags",
            checked(
                limited_ofrep(post(flags::evaluate_flags)),
                flags::ofrep_refusal,
            ),
        )
        .route(
            "/ofrep/v1/evaluate/flags/{key}",
            checked(
                limited_ofrep(post(flags::evaluate_flag)),
                flags::ofrep_refusal,
            ),
        );
    with_common_layers(routes).with_state(state)
}

fn events_check(state: &AppState, headers: &HeaderMap) -> Option<Response<axum::body::Body>> {
    refusal(events::check_headers(state, headers))
}

fn github_check(state: &AppState, headers: &HeaderMap) -> Option<Response<axum::body::Body>> {
    refusal(crate::github::webhook::check_headers(state, headers))
}

fn slack_check(state: &AppState, headers: &HeaderMap) -> Option<Response<axum::body::Body>> {
    refusal(slack::check_headers(state, headers))
}

fn discord_check(state: &AppState, headers: &HeaderMap) -> Option<Response<axum::body::Body>> {
    refusal(crate::discord::interactions::check_headers(state, headers))
}

fn refusal(checked: Result<(), ApiError>) -> Option<Response<axum::body::Body>> {
    checked.err().map(IntoResponse::into_response)
}

/// Refuses a request whose signature or token header is missing or malformed before anything
/// reads its body (SPEC §9).
async fn refuse_unauthenticated(
    State((state, check)): State<(AppState, HeaderCheck)>,
    request: Request,
    next: Next,
) -> Response<axum::body::Body> {
    match check(&state, request.headers()) {
        None => next.run(request).await,
        Some(refusal) => refusal,
    }
}

/// The layers every route shares. Kept apart from the route table so tests can wrap their own
/// routes (a panicking one, say) in exactly what production uses.
pub fn with_common_layers<S>(routes: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    routes
        .fallback(not_found)
        .layer(from_fn(metrics::track))
        .layer(from_fn(limits::json_errors))
        .layer(DefaultBodyLimit::max(DEFAULT_BODY_LIMIT))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(make_span)
                        .on_response(on_response),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(CatchPanicLayer::custom(panic_response)),
        )
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see the README for the list of routes")
}

fn make_span<B>(request: &Request<B>) -> Span {
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    )
}

fn on_response<B>(response: &Response<B>, latency: Duration, _span: &Span) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "handled"
    );
}

/// A panicking handler answers 500 with the usual error body; the panic text goes to the log
/// only, since it may contain request data.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<axum::body::Body> {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = message, "request handler panicked");
    ::metrics::counter!("greenlight_http_panics_total").increment(1);
    ApiError::internal().into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{to_bytes, Body, Bytes};
    use axum::http::StatusCode;
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        panic!("secret request data")
    }

    fn test_routes() -> Router {
        with_common_layers(Router::new().route("/boom", get(boom)).route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        ))
    }

    async fn call(request: Request<Body>) -> (StatusCode, serde_json::Value) {
        let response = test_routes().oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_without_leaking_the_panic() {
        let request = Request::get("/boom").body(Body::empty()).expect("request");
        let (status, body) = call(request).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"], "internal");
        assert!(!body.to_string().contains("secret request data"));
    }

    #[tokio::test]
    async fn bodies_over_the_default_limit_are_413() {
        let request = Request::post("/echo")
            .body(Body::from(vec![b'x'; DEFAULT_BODY_LIMIT + 1]))
            .expect("request");
        let (status, _) = call(request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

        let request = Request::post("/echo")
            .body(Body::from(vec![b'x'; DEFAULT_BODY_LIMIT]))
            .expect("request");
        let response = test_routes().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
    }
}
