//! The HTTP surface: the router, its shared layers (request ids, tracing, body limits, panic
//! catching, metrics) and the routes that belong to no platform.

mod auth;
mod connection;
mod dora_api;
pub mod error;
pub mod events;
mod flags;
mod health;
pub mod limits;
mod metrics;
mod read_api;
pub mod server;
mod state;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
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

pub use error::ApiError;
pub use limits::Limits;
use limits::RouteLimitsFactory;
pub use state::{AppParts, AppState};

/// Default request body limit (SPEC §5); routes that need more (GitHub: 25 MB) raise their own.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A check of a route's signature or token headers, run before the body is read: the refusal,
/// if there is one.
type HeaderCheck = Arc<dyn Fn(&AppState, &HeaderMap) -> Option<Response<Body>> + Send + Sync>;

/// How routes are mounted: every route gets an in-flight cap, a body limit and the body
/// deadline (`limited`); routes that read a body refuse unauthenticated requests before
/// reading it (`checked`). Platform adapters mount their inbound routes with it too.
pub struct RouteKit {
    state: AppState,
    limits: RouteLimitsFactory,
}

impl RouteKit {
    pub fn limited(
        &self,
        route: MethodRouter<AppState>,
        body_limit: usize,
    ) -> MethodRouter<AppState> {
        route.route_layer(from_fn_with_state(
            self.limits.route(body_limit),
            limits::enforce,
        ))
    }

    pub fn checked<E: IntoResponse + 'static>(
        &self,
        route: MethodRouter<AppState>,
        check: fn(&AppState, &HeaderMap) -> Result<(), E>,
    ) -> MethodRouter<AppState> {
        let check: HeaderCheck = Arc::new(move |state: &AppState, headers: &HeaderMap| {
            check(state, headers).err().map(IntoResponse::into_response)
        });
        route.route_layer(from_fn_with_state(
            (self.state.clone(), check),
            refuse_unauthenticated,
        ))
    }

    /// `limited` at the default body limit, then `checked`.
    pub fn signed<E: IntoResponse + 'static>(
        &self,
        route: MethodRouter<AppState>,
        check: fn(&AppState, &HeaderMap) -> Result<(), E>,
    ) -> MethodRouter<AppState> {
        self.checked(self.limited(route, DEFAULT_BODY_LIMIT), check)
    }
}

/// The whole route table: the routes of no platform, plus what `platforms` mounts (chat
/// adapters, the GitHub webhook), all behind the shared layers.
pub fn router(state: AppState, platforms: impl FnOnce(&RouteKit) -> Router<AppState>) -> Router {
    let kit = RouteKit {
        limits: RouteLimitsFactory::new(state.limits),
        state: state.clone(),
    };
    let limited_ofrep = |route: MethodRouter<AppState>| {
        let limits = kit
            .limits
            .route(DEFAULT_BODY_LIMIT)
            .refusing_with(flags::ofrep_limit_refusal);
        route.route_layer(from_fn_with_state(limits, limits::enforce))
    };
    let default = DEFAULT_BODY_LIMIT;
    let routes = Router::new()
        .route("/health", kit.limited(get(health::health), default))
        .route("/api/v1/status", kit.limited(get(health::status), default))
        .route("/metrics", kit.limited(get(metrics::render), default))
        .route(
            "/api/v1/events",
            kit.signed(post(events::post_event), events::check_headers),
        )
        .route(
            "/api/v1/releases",
            kit.limited(get(read_api::releases), default),
        )
        .route(
            "/api/v1/apps/{app}/environments/{environment}",
            kit.limited(get(read_api::environment), default),
        )
        .route(
            "/api/v1/metrics/dora",
            kit.limited(get(dora_api::dora_metrics), default),
        );
    // Applications' flags (SPEC §7), authenticated by an environment's flags_token.
    let routes = routes
        .route(
            "/api/v1/flags/{app}/{environment}",
            kit.limited(get(flags::environment_flags), default),
        )
        .route(
            "/ofrep/v1/evaluate/flags",
            kit.checked(
                limited_ofrep(post(flags::evaluate_flags)),
                flags::ofrep_refusal,
            ),
        )
        .route(
            "/ofrep/v1/evaluate/flags/{key}",
            kit.checked(
                limited_ofrep(post(flags::evaluate_flag)),
                flags::ofrep_refusal,
            ),
        );
    let routes = routes.merge(platforms(&kit));
    with_common_layers(routes).with_state(state)
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
