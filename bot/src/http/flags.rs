//! Applications read their feature flags (SPEC §7): `GET /api/v1/flags/{app}/{env}` and OFREP
//! v0.3 (`POST /ofrep/v1/evaluate/flags[/{key}]`), authenticated by an environment's
//! `flags_token`, answered from the flags held in memory (`flags::FlagStore`).
//!
//! The token is read from `Authorization: Bearer …` or, as OFREP also allows, `X-API-Key`, and
//! compared with every environment's token in constant time. It decides the app and the
//! environment; on the JSON API a path naming another one is `403`. OFREP answers use OFREP's
//! shapes: `{"key","errorCode","errorDetails"}` for a flag's failure, `{"errorCode",
//! "errorDetails"}` for a failed bulk request, `{"errorDetails"}` for 401 and 500 (for which
//! OFREP defines no body or only that one).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::auth::bearer;
use super::ApiError;
use crate::config::{AppConfig, Config, EnvironmentConfig};
use crate::flags::ofrep::{ErrorCode, FailureItem};
use crate::flags::{FlagAnswer, Snapshot};
use crate::http::AppState;

const API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
/// Clients may keep the answer but must revalidate it (with `If-None-Match`) before each use.
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");

// ---------------------------------------------------------------------------------------------
// Authentication

/// Why a request carries no usable flags token. The detail never echoes the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unauthenticated {
    Missing,
    Rejected,
}

impl Unauthenticated {
    fn detail(self) -> &'static str {
        match self {
            Self::Missing => {
                "send the environment's flags_token as Authorization: Bearer <token> \
                 (or X-API-Key: <token>)"
            }
            Self::Rejected => "the flags token is not accepted",
        }
    }
}

/// The token: `Authorization: Bearer …`, else `X-API-Key` (OFREP's two schemes).
fn flags_credential(headers: &HeaderMap) -> Option<&[u8]> {
    bearer(headers).or_else(|| {
        headers
            .get(API_KEY)
            .map(|value| value.as_bytes().trim_ascii())
            .filter(|token| !token.is_empty())
    })
}

/// The app and environment whose `flags_token` the request carries.
fn authenticate<'c>(
    config: &'c Config,
    headers: &HeaderMap,
) -> Result<(&'c AppConfig, &'c EnvironmentConfig), Unauthenticated> {
    let token = flags_credential(headers).ok_or(Unauthenticated::Missing)?;
    config
        .environment_for_flags_token(token)
        .ok_or(Unauthenticated::Rejected)
}

/// Mounted before the OFREP handlers: the refusal (OFREP's 401 body) of a request without an
/// accepted flags token, given before its body is read.
pub fn ofrep_refusal(state: &AppState, headers: &HeaderMap) -> Result<(), OfrepUnauthorized> {
    authenticate(&state.config, headers)
        .map(drop)
        .map_err(OfrepUnauthorized)
}

/// OFREP's 401, for a request without an accepted flags token.
pub struct OfrepUnauthorized(Unauthenticated);

impl IntoResponse for OfrepUnauthorized {
    fn into_response(self) -> Response {
        ofrep_unauthorized(self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// ETags

/// Whether `If-None-Match` names `etag` (or is `*`). Compared weakly, as RFC 9110 §13.1.2 asks
/// for this header, so `W/"…"` matches too; a tag sent without its quotes is accepted as well.
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    let wanted = etag.trim_matches('"');
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|candidate| {
            candidate == "*"
                || candidate
                    .strip_prefix("W/")
                    .unwrap_or(candidate)
                    .trim_matches('"')
                    == wanted
        })
}

/// `body` as JSON with its `ETag` and `Cache-Control: no-cache`, or `304 Not Modified` (same
/// headers, no body) when the request's `If-None-Match` already names it. ETags come from the
/// flags' version (`flags/snapshot.rs`), never from hashing each answer.
fn cacheable_json(request: &HeaderMap, etag: HeaderValue, body: Bytes) -> Response {
    let not_modified = etag.to_str().is_ok_and(|etag| none_match(request, etag));
    let headers = [(header::ETAG, etag), (header::CACHE_CONTROL, NO_CACHE)];
    if not_modified {
        (StatusCode::NOT_MODIFIED, headers).into_response()
    } else {
        (headers, [(header::CONTENT_TYPE, JSON)], body).into_response()
    }
}

/// The flags of the environment the token named, from memory (loaded on first use).
async fn snapshot_of(
    state: &AppState,
    app: &AppConfig,
    environment: &EnvironmentConfig,
) -> Option<std::sync::Arc<Snapshot>> {
    match state.flags.snapshot(&app.name, &environment.name).await {
        Ok(snapshot) => Some(snapshot),
        Err(error) => {
            tracing::error!(%error, "loading flags failed");
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GET /api/v1/flags/{app}/{env}

/// `{"flags": {"new_checkout": {"enabled": true, "rollout": 100}}}`, keys sorted, with a strong
/// `ETag`; `If-None-Match` naming it → `304`.
pub async fn environment_flags(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let (app, environment) = match authenticate(&state.config, &headers) {
        Ok(found) => found,
        Err(unauthenticated) => {
            return ApiError::unauthorized(unauthenticated.detail()).into_response();
        }
    };
    let (asked_app, asked_environment) = match path {
        Ok(Path(names)) => names,
        Err(rejection) => return ApiError::bad_request(rejection.body_text()).into_response(),
    };
    if app.name.as_str() != asked_app || environment.name.as_str() != asked_environment {
        return ApiError::forbidden(format!(
            "this flags token belongs to {}/{}, not {asked_app}/{asked_environment}",
            app.name, environment.name
        ))
        .into_response();
    }
    match snapshot_of(&state, app, environment).await {
        Some(snapshot) => cacheable_json(&headers, snapshot.etag().clone(), snapshot.listing()),
        None => ApiError::internal().into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// OFREP wire format

/// A request or flag that could not be evaluated: the status and the OFREP failure body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    status: StatusCode,
    code: ErrorCode,
    details: String,
}

impl Failure {
    fn bad_request(code: ErrorCode, details: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            details: details.into(),
        }
    }

    /// A body that could not be read: too large (413, SPEC §5) or broken off (400).
    fn unreadable_body(rejection: &BytesRejection) -> Self {
        Self {
            status: rejection.status(),
            code: ErrorCode::ParseError,
            details: rejection.body_text(),
        }
    }

    /// `{"key","errorCode","errorDetails"}` (a flag's failure) or, without a key,
    /// `{"errorCode","errorDetails"}` (a bulk request's failure).
    fn into_body(self, key: Option<&str>) -> FailureItem<'_> {
        FailureItem::new(key, self.code, self.details)
    }

    fn into_response(self, key: Option<&str>) -> Response {
        let status = self.status;
        (status, axum::Json(self.into_body(key))).into_response()
    }
}

/// `{"errorDetails": …}`: OFREP's body for errors that concern no flag (401, 500).
fn general_error(status: StatusCode, details: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "errorDetails": details })),
    )
        .into_response()
}

/// The route limits' refusals in OFREP's shapes: a body over the limit is a `PARSE_ERROR`
/// (as when the handler cuts it off), 408 and 503 carry `errorDetails` only.
pub fn ofrep_limit_refusal(status: StatusCode, _error: &'static str, detail: String) -> Response {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        let failure = Failure {
            status,
            code: ErrorCode::ParseError,
            details: detail,
        };
        return failure.into_response(None);
    }
    general_error(status, &detail)
}

fn ofrep_unauthorized(unauthenticated: Unauthenticated) -> Response {
    general_error(StatusCode::UNAUTHORIZED, unauthenticated.detail())
}

fn ofrep_internal() -> Response {
    general_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "an internal error occurred; see the server log",
    )
}

/// The targeting key of an OFREP request body `{"context": {"targetingKey": "…", …}}`.
///
/// An empty body, `{}`, a missing or `null` context and a missing, `null` or empty
/// `targetingKey` all mean "no targeting key": flags that need none still evaluate. Other
/// context attributes are accepted and ignored.
fn targeting_key(body: &[u8]) -> Result<Option<String>, Failure> {
    if body.trim_ascii().is_empty() {
        return Ok(None);
    }
    let request: Value = serde_json::from_slice(body).map_err(|error| {
        Failure::bad_request(
            ErrorCode::ParseError,
            format!("the body is not valid JSON: {error}"),
        )
    })?;
    let Value::Object(mut request) = request else {
        return Err(Failure::bad_request(
            ErrorCode::ParseError,
            "the body must be a JSON object: {\"context\": {\"targetingKey\": \"…\"}}",
        ));
    };
    let mut context = match request.remove("context") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(context)) => context,
        Some(_) => {
            return Err(Failure::bad_request(
                ErrorCode::InvalidContext,
                "context must be a JSON object",
            ));
        }
    };
    match context.remove("targetingKey") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(key)) if key.is_empty() => Ok(None),
        Some(Value::String(key)) => Ok(Some(key)),
        Some(_) => Err(Failure::bad_request(
            ErrorCode::InvalidContext,
            "context.targetingKey must be a string",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// POST /ofrep/v1/evaluate/flags/{key}

/// OFREP single-flag evaluation: 200 `{"key","value","reason","variant","metadata"}`, 404
/// `FLAG_NOT_FOUND`, 400 `PARSE_ERROR` / `INVALID_CONTEXT` / `TARGETING_KEY_MISSING`.
pub async fn evaluate_flag(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (app, environment) = match authenticate(&state.config, &headers) {
        Ok(found) => found,
        Err(unauthenticated) => return ofrep_unauthorized(unauthenticated),
    };
    let key = match path {
        Ok(Path(key)) => key,
        Err(rejection) => {
            return Failure::bad_request(ErrorCode::ParseError, rejection.body_text())
                .into_response(None);
        }
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return Failure::unreadable_body(&rejection).into_response(Some(&key)),
    };
    let targeting_key = match targeting_key(&body) {
        Ok(targeting_key) => targeting_key,
        Err(failure) => return failure.into_response(Some(&key)),
    };
    let Some(snapshot) = snapshot_of(&state, app, environment).await else {
        return ofrep_internal();
    };
    match snapshot.evaluate_one(&key, targeting_key.as_deref()) {
        FlagAnswer::Evaluated(item) => json_response(StatusCode::OK, item),
        FlagAnswer::TargetingKeyMissing(item) => json_response(StatusCode::BAD_REQUEST, item),
        FlagAnswer::NotFound => {
            let failure = Failure {
                status: StatusCode::NOT_FOUND,
                code: ErrorCode::FlagNotFound,
                details: format!(
                    "no flag {key:?} in {}/{}; create it with /flag {} {} {key} on",
                    app.name, environment.name, app.name, environment.name
                ),
            };
            failure.into_response(Some(&key))
        }
    }
}

/// A prepared JSON body.
fn json_response(status: StatusCode, body: Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, JSON)], body).into_response()
}

// ---------------------------------------------------------------------------------------------
// POST /ofrep/v1/evaluate/flags

/// OFREP bulk evaluation: 200 `{"flags": [item…]}`, every flag of the token's environment by
/// key, each a success or its own failure (`TARGETING_KEY_MISSING`), with an `ETag` of the
/// flags' version and the caller's rollout answers; `If-None-Match` naming it → `304`. A body that is no OFREP request → 400
/// `{"errorCode","errorDetails"}`.
pub async fn evaluate_flags(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (app, environment) = match authenticate(&state.config, &headers) {
        Ok(found) => found,
        Err(unauthenticated) => return ofrep_unauthorized(unauthenticated),
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return Failure::unreadable_body(&rejection).into_response(None),
    };
    let targeting_key = match targeting_key(&body) {
        Ok(targeting_key) => targeting_key,
        Err(failure) => return failure.into_response(None),
    };
    let Some(snapshot) = snapshot_of(&state, app, environment).await else {
        return ofrep_internal();
    };
    let answer = snapshot.evaluate_all(targeting_key.as_deref());
    cacheable_json(&headers, answer.etag, answer.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name.clone(), HeaderValue::from_str(value).expect("header"));
        }
        headers
    }

    #[test]
    fn the_targeting_key_is_optional_until_a_rollout_needs_it() {
        for body in [
            "",
            "  \n",
            "{}",
            r#"{"context":null}"#,
            r#"{"context":{}}"#,
            r#"{"context":{"targetingKey":null,"plan":"pro"}}"#,
            r#"{"context":{"targetingKey":""}}"#,
        ] {
            assert_eq!(targeting_key(body.as_bytes()), Ok(None), "{body}");
        }
        assert_eq!(
            targeting_key(br#"{"context":{"targetingKey":"user-1","plan":{"tier":3}}}"#),
            Ok(Some("user-1".to_owned()))
        );
    }

    #[test]
    fn malformed_bodies_are_parse_errors_and_bad_contexts_invalid_context() {
        for body in [
            "{",
            "not json",
            "[1,2]",
            "\"context\"",
            "42",
            "{\"context\":{}} x",
        ] {
            let failure = targeting_key(body.as_bytes()).expect_err(body);
            assert_eq!(failure.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(failure.code, ErrorCode::ParseError, "{body}");
        }
        for body in [
            r#"{"context":"user-1"}"#,
            r#"{"context":[]}"#,
            r#"{"context":{"targetingKey":42}}"#,
            r#"{"context":{"targetingKey":["a"]}}"#,
        ] {
            let failure = targeting_key(body.as_bytes()).expect_err(body);
            assert_eq!(failure.code, ErrorCode::InvalidContext, "{body}");
        }
    }

    #[test]
    fn deeply_nested_bodies_fail_cleanly() {
        let body = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let failure = targeting_key(body.as_bytes()).expect_err("too deep");
        assert_eq!(failure.code, ErrorCode::ParseError);
    }

    #[test]
    fn failure_bodies_have_ofreps_field_names() {
        let failure = Failure::bad_request(ErrorCode::TargetingKeyMissing, "send one");
        let with_key = serde_json::to_value(failure.clone().into_body(Some("f"))).expect("json");
        assert_eq!(
            with_key,
            serde_json::json!({"key": "f", "errorCode": "TARGETING_KEY_MISSING", "errorDetails": "send one"})
        );
        let without_key = serde_json::to_value(failure.into_body(None)).expect("json");
        assert_eq!(
            without_key,
            serde_json::json!({"errorCode": "TARGETING_KEY_MISSING", "errorDetails": "send one"})
        );
    }

    #[test]
    fn if_none_match_lists_wildcards_and_weak_tags_match() {
        let etag = "\"abc\"";
        let matching = ["\"abc\"", "W/\"abc\"", "\"x\", \"abc\"", "*", "abc"];
        for value in matching {
            assert!(
                none_match(&headers(&[(header::IF_NONE_MATCH, value)]), etag),
                "{value}"
            );
        }
        for value in ["\"abd\"", "\"\"", "", "W/\"ab\""] {
            assert!(
                !none_match(&headers(&[(header::IF_NONE_MATCH, value)]), etag),
                "{value}"
            );
        }
        let two_lines = headers(&[
            (header::IF_NONE_MATCH, "\"x\""),
            (header::IF_NONE_MATCH, "\"abc\""),
        ]);
        assert!(none_match(&two_lines, etag));
        assert!(!none_match(&HeaderMap::new(), etag));
    }

    #[test]
    fn the_token_comes_from_bearer_or_x_api_key() {
        assert_eq!(
            flags_credential(&headers(&[(header::AUTHORIZATION, "Bearer t1")])),
            Some(&b"t1"[..])
        );
        assert_eq!(
            flags_credential(&headers(&[(API_KEY, " t2 ")])),
            Some(&b"t2"[..])
        );
        assert_eq!(
            flags_credential(&headers(&[
                (header::AUTHORIZATION, "Bearer t1"),
                (API_KEY, "t2")
            ])),
            Some(&b"t1"[..])
        );
        assert_eq!(flags_credential(&headers(&[(API_KEY, " ")])), None);
        assert_eq!(
            flags_credential(&headers(&[(header::AUTHORIZATION, "Basic dTpw")])),
            None
        );
    }
}
