//! SPEC §9 "Limits": how long a client may take, how much it may send and how many requests a
//! route serves at once. The numbers live in [`Limits`] (production defaults; tests shrink
//! them); the server (`server.rs`) applies the connection-level ones, the layers here the
//! per-request ones.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use super::{ApiError, DEFAULT_BODY_LIMIT};

/// What a client may cost the server. `Default` is what ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request's headers must arrive within this, counted from the connection's start or
    /// from the first byte after the previous response; else the connection is closed.
    pub header_read_timeout: Duration,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// A request's whole body must arrive within this, counted from its headers; later → 408.
    pub body_read_timeout: Duration,
    /// After the stop signal, connections get this long to finish before they are dropped.
    pub shutdown_drain: Duration,
    /// Connections open at once; further clients wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Requests one route handles at once; more → 503 with `Retry-After`.
    pub max_in_flight_per_route: usize,
    /// Bodies over the default 1 MB limit (only GitHub's route allows them) read at once, so
    /// memory stays bounded by this times 25 MB; more → 503 with `Retry-After`.
    pub max_large_bodies: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            shutdown_drain: Duration::from_secs(10),
            max_connections: 512,
            max_in_flight_per_route: 128,
            max_large_bodies: 2,
        }
    }
}

/// Seconds a refused client is told to wait (`Retry-After`).
const RETRY_AFTER_SECONDS: &str = "1";

/// Renders a refusal (413, 408, 503) in a route's error shape: status, `error` word, detail.
pub type RenderRefusal = fn(StatusCode, &'static str, String) -> Response;

fn api_error(status: StatusCode, error: &'static str, detail: String) -> Response {
    ApiError::new(status, error, detail).into_response()
}

/// One route's limits, shared by all its requests (cheap to clone).
#[derive(Clone)]
pub struct RouteLimits {
    body_limit: usize,
    body_read_timeout: Duration,
    in_flight: Arc<Semaphore>,
    /// Set on routes whose body limit is above the default.
    large_bodies: Option<Arc<Semaphore>>,
    render: RenderRefusal,
}

impl RouteLimits {
    /// For routes with their own error shape (OFREP's); the JSON error shape otherwise.
    #[must_use]
    pub fn refusing_with(mut self, render: RenderRefusal) -> Self {
        self.render = render;
        self
    }

    fn too_large(&self) -> Response {
        (self.render)(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the body is over this route's limit of {}",
                megabytes(self.body_limit)
            ),
        )
    }

    fn too_slow(&self) -> Response {
        (self.render)(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the body did not arrive within {} s",
                self.body_read_timeout.as_secs_f64()
            ),
        )
    }

    /// 503 with `Retry-After`.
    fn busy(&self, detail: &str) -> Response {
        let mut response = (self.render)(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            detail.to_owned(),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
        response
    }
}

/// Builds each route's [`RouteLimits`]; the large-body budget is shared by all routes.
#[derive(Clone)]
pub struct RouteLimitsFactory {
    limits: Limits,
    large_bodies: Arc<Semaphore>,
}

impl RouteLimitsFactory {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            large_bodies: Arc::new(Semaphore::new(limits.max_large_bodies)),
        }
    }

    pub fn route(&self, body_limit: usize) -> RouteLimits {
        RouteLimits {
            body_limit,
            body_read_timeout: self.limits.body_read_timeout,
            in_flight: Arc::new(Semaphore::new(self.limits.max_in_flight_per_route)),
            large_bodies: (body_limit > DEFAULT_BODY_LIMIT).then(|| self.large_bodies.clone()),
            render: api_error,
        }
    }
}

/// The per-route layer: in-flight cap, body size limit (a `Content-Length` above it is refused
/// at once, a longer chunked body is cut off at it) and the body-read deadline. Refusals are
/// the JSON error shape, whatever the handler made of the cut-off body.
pub async fn enforce(State(route): State<RouteLimits>, request: Request, next: Next) -> Response {
    let Ok(_in_flight) = route.in_flight.clone().try_acquire_owned() else {
        ::metrics::counter!("greenlight_http_shed_total", "reason" => "in_flight").increment(1);
        return route.busy("this route is at its limit of requests in flight; retry shortly");
    };
    let declared = declared_length(&request);
    if declared.is_some_and(|length| length > route.body_limit) {
        return route.too_large();
    }
    let _large_body: Option<OwnedSemaphorePermit> = match &route.large_bodies {
        Some(budget) if declared.is_none_or(|length| length > DEFAULT_BODY_LIMIT) => {
            match budget.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    ::metrics::counter!("greenlight_http_shed_total", "reason" => "large_bodies")
                        .increment(1);
                    return route.busy("too many large bodies are being received; retry shortly");
                }
            }
        }
        _ => None,
    };
    let tripped = Arc::new(OnceLock::new());
    let request = request.map(|body| {
        Body::new(GuardedBody {
            inner: body,
            remaining: route.body_limit,
            deadline: Box::pin(tokio::time::sleep(route.body_read_timeout)),
            tripped: tripped.clone(),
        })
    });
    let response = next.run(request).await;
    match tripped.get() {
        Some(Tripped::TooLarge) => route.too_large(),
        Some(Tripped::TooSlow) => route.too_slow(),
        None => response,
    }
}

fn declared_length(request: &Request) -> Option<usize> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse::<u64>()
        .ok()
        .map(|length| usize::try_from(length).unwrap_or(usize::MAX))
}

fn megabytes(bytes: usize) -> String {
    format!("{} MB", bytes / (1024 * 1024))
}

#[derive(Debug, Clone, Copy)]
enum Tripped {
    TooLarge,
    TooSlow,
}

/// A request body that fails once it passes the route's limit or the body deadline, and
/// records which, so [`enforce`] answers 413 or 408 whatever the handler made of the error.
struct GuardedBody {
    inner: Body,
    remaining: usize,
    deadline: Pin<Box<Sleep>>,
    tripped: Arc<OnceLock<Tripped>>,
}

#[derive(Debug, thiserror::Error)]
enum GuardError {
    #[error("the body is over the route's limit")]
    TooLarge,
    #[error("the body did not arrive in time")]
    TooSlow,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    let _ = this.tripped.set(Tripped::TooSlow);
                    return Poll::Ready(Some(Err(GuardError::TooSlow.into())));
                }
                return Poll::Pending;
            }
        };
        let frame = match frame {
            Some(Ok(frame)) => frame,
            Some(Err(error)) => return Poll::Ready(Some(Err(error.into()))),
            None => return Poll::Ready(None),
        };
        if let Some(data) = frame.data_ref() {
            if data.len() > this.remaining {
                let _ = this.tripped.set(Tripped::TooLarge);
                return Poll::Ready(Some(Err(GuardError::TooLarge.into())));
            }
            this.remaining -= data.len();
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Rewrites error responses that are not JSON (axum's and tower-http's rejections: 405, a
/// failed extractor, …) into the JSON error shape, keeping status and headers. The timeline
/// page's own HTML answers (its sign-in form after a wrong token, its not-found page) are meant
/// for people and pass unchanged.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || is_json(&response)
        || is_html_page(&response)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Rejection texts are short and say what was wrong; anything else gets a generic detail.
    let text = axum::body::to_bytes(body, 1024)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty());
    let (error, generic) = describe(status);
    let detail = text.unwrap_or_else(|| generic.to_owned());
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let rewritten = ApiError::new(status, error, detail).into_response();
    let (rewritten_parts, body) = rewritten.into_parts();
    parts.headers.extend(rewritten_parts.headers);
    Response::from_parts(parts, body)
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let essence = value.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")
        })
}

fn is_html_page(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"))
}

/// The `error` word and a default detail for a status.
fn describe(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => ("bad_request", "the request is malformed"),
        StatusCode::UNAUTHORIZED => ("unauthorized", "the request is not authenticated"),
        StatusCode::FORBIDDEN => ("forbidden", "the request is not allowed"),
        StatusCode::NOT_FOUND => (
            "not_found",
            "no such route; see the README for the list of routes",
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not accept this method; see the README for the list of routes",
        ),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request did not arrive in time"),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("payload_too_large", "the body is over this route's limit")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "this route does not accept this content type",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid", "the request has an invalid field"),
        StatusCode::TOO_MANY_REQUESTS => ("too_many_requests", "slow down and retry later"),
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "the server is busy; retry shortly"),
        status if status.is_server_error() => {
            ("internal", "an internal error occurred; see the server log")
        }
        _ => ("client_error", "the request was refused"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    fn limited_routes(limits: Limits, body_limit: usize) -> Router {
        let factory = RouteLimitsFactory::new(limits);
        Router::new()
            .route(
                "/echo",
                post(|body: Bytes| async move { body.len().to_string() }).route_layer(
                    axum::middleware::from_fn_with_state(factory.route(body_limit), enforce),
                ),
            )
            .layer(axum::middleware::from_fn(json_errors))
            .layer(axum::extract::DefaultBodyLimit::disable())
    }

    async fn json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        serde_json::from_slice(&bytes).expect("JSON body")
    }

    /// The status and JSON body `routes` answer `request` with.
    async fn answer(routes: Router, request: Request<Body>) -> (StatusCode, serde_json::Value) {
        let response = routes.oneshot(request).await.expect("infallible");
        (response.status(), json(response).await)
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_413_without_reading() {
        let request = Request::post("/echo")
            .header(header::CONTENT_LENGTH, "2000")
            .body(Body::empty())
            .expect("request");
        let (status, body) = answer(limited_routes(Limits::default(), 1000), request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"], "payload_too_large");
    }

    #[tokio::test]
    async fn a_chunked_body_is_cut_off_at_the_limit_with_json() {
        let chunks = futures::stream::iter(
            (0..10).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 300]))),
        );
        let request = Request::post("/echo")
            .body(Body::from_stream(chunks))
            .expect("request");
        let (status, body) = answer(limited_routes(Limits::default(), 1000), request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"], "payload_too_large");
    }

    #[tokio::test]
    async fn a_body_slower_than_the_deadline_is_408() {
        let limits = Limits {
            body_read_timeout: Duration::from_millis(50),
            ..Limits::default()
        };
        let stalled = futures::stream::pending::<Result<Bytes, std::io::Error>>();
        let request = Request::post("/echo")
            .body(Body::from_stream(stalled))
            .expect("request");
        let (status, body) = answer(limited_routes(limits, 1000), request).await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(body["error"], "request_timeout");
    }

    #[tokio::test]
    async fn non_json_errors_are_rewritten_keeping_their_headers() {
        let routes = Router::new()
            .route(
                "/plain",
                axum::routing::get(|| async {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(header::RETRY_AFTER, "5")],
                        "try later",
                    )
                }),
            )
            .layer(axum::middleware::from_fn(json_errors));
        let response = routes
            .oneshot(Request::get("/plain").body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        let body = json(response).await;
        assert_eq!(body["error"], "unavailable");
        assert_eq!(body["detail"], "try later");
    }
}
