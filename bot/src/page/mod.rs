//! The release timeline page (SPEC §14): `GET /` and `GET /apps/{app}`, server-rendered HTML
//! behind a sign-in (`session`), read-only.
//!
//! Architecture invariant: nothing here writes to storage or reaches the engine's transitions;
//! the only thing a route of this module changes is the visitor's session cookie.

mod charts;
mod model;
mod session;
mod view;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Form, Router};
use greenlight_commands::AppName;
use maud::Markup;
use serde::Deserialize;

use crate::http::{AppState, RouteKit, DEFAULT_BODY_LIMIT};
pub use session::PageAccess;

/// The sign-in form's body is one short field.
const SIGN_IN_BODY_LIMIT: usize = 4 * 1024;

/// The page's routes; `access` decides who may read them.
pub fn routes(kit: &RouteKit, access: PageAccess) -> Router<AppState> {
    Router::new()
        .route("/", kit.limited(get(home), DEFAULT_BODY_LIMIT))
        .route(
            "/apps/{app}",
            kit.limited(get(app_page), DEFAULT_BODY_LIMIT),
        )
        .route(
            "/sign-in",
            kit.limited(get(sign_in_page).post(sign_in), SIGN_IN_BODY_LIMIT),
        )
        .layer(Extension(access))
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    before: Option<String>,
}

async fn home(
    State(state): State<AppState>,
    Extension(access): Extension<PageAccess>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    if !signed_in(&state, &access, &headers) {
        return to_sign_in();
    }
    overview(&state, None, &query).await
}

async fn app_page(
    State(state): State<AppState>,
    Extension(access): Extension<PageAccess>,
    headers: HeaderMap,
    Path(app): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    if !signed_in(&state, &access, &headers) {
        return to_sign_in();
    }
    let config = state.config.clone();
    let Some(configured) = AppName::parse(&app).ok().and_then(|name| config.app(&name)) else {
        let what = format!("No app named {app:?} is configured.");
        return page(StatusCode::NOT_FOUND, view::not_found(&what));
    };
    overview(&state, Some(configured), &query).await
}

async fn overview(
    state: &AppState,
    only: Option<&crate::config::AppConfig>,
    query: &PageQuery,
) -> Response {
    // A cursor that is not a release id shows the newest page.
    let before = query
        .before
        .as_deref()
        .and_then(|id| id.parse::<i64>().ok());
    match model::load(state, only, before).await {
        Ok(overview) => page(StatusCode::OK, view::overview(&overview)),
        Err(error) => {
            tracing::error!(%error, "reading the timeline page failed");
            page(StatusCode::SERVICE_UNAVAILABLE, view::unavailable())
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    token: Option<String>,
}

/// The form, or, with the token `serve` printed, the session at once.
async fn sign_in_page(
    State(state): State<AppState>,
    Extension(access): Extension<PageAccess>,
    Query(query): Query<LinkQuery>,
) -> Response {
    match query.token {
        Some(token) if access.accepts_link_tokens() && access.accepts(&token) => {
            signed_in_now(&state, &access)
        }
        Some(_) => refused(&access),
        None => page(
            StatusCode::OK,
            view::sign_in(None, !access.accepts_link_tokens()),
        ),
    }
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    token: String,
}

async fn sign_in(
    State(state): State<AppState>,
    Extension(access): Extension<PageAccess>,
    form: Result<Form<SignInForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    match form {
        Ok(Form(form)) if access.accepts(&form.token) => signed_in_now(&state, &access),
        _ => refused(&access),
    }
}

fn refused(access: &PageAccess) -> Response {
    page(
        StatusCode::UNAUTHORIZED,
        view::sign_in(
            Some("That token is not accepted. Try again."),
            !access.accepts_link_tokens(),
        ),
    )
}

fn signed_in_now(state: &AppState, access: &PageAccess) -> Response {
    let cookie = access.session_cookie(state.engine.clock().now());
    let mut response = to("/");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn signed_in(state: &AppState, access: &PageAccess, headers: &HeaderMap) -> bool {
    let now = state.engine.clock().now();
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|cookies| access.has_session(cookies, now))
}

fn to_sign_in() -> Response {
    to("/sign-in")
}

/// A `303 See Other` to `location`.
fn to(location: &'static str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static(location))],
    )
        .into_response()
}

/// An HTML page that no one caches, frames, or extends with scripts; the sign-in link's token
/// never leaves in a `Referer`.
fn page(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                 frame-ancestors 'none'",
            ),
        ],
        markup.into_string(),
    )
        .into_response()
}
