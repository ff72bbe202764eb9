//! GitHub's REST API as a GitHub App: the RS256 JWT that proves Greenlight is the App, the
//! installation tokens it is exchanged for (REFERENCE §3.5), cached until shortly before they
//! expire, and POSTs made with them, sorted into "try again" and "refused".
//!
//! Neither the private key nor any token leaves this module except as a request header; they
//! are `[redacted]` in `Debug` output and never part of an error message.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::clock::Clock;
use crate::config::{GithubApp, GithubConfig};
use crate::secret::Secret;

/// The REST API version Greenlight is written against (`X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";
const MEDIA_TYPE: &str = "application/vnd.github+json";
/// GitHub refuses requests without a User-Agent (REFERENCE §3.4); reqwest sends none by default.
const USER_AGENT: &str = concat!("greenlight/", env!("CARGO_PKG_VERSION"));
const TIMEOUT: Duration = Duration::from_secs(30);

/// GitHub recommends back-dating `iat` by 60 s against clock drift and allows `exp` at most
/// 10 minutes ahead; 9 leaves the same margin on the other side.
const JWT_BACKDATE: chrono::Duration = chrono::Duration::seconds(60);
const JWT_LIFETIME: chrono::Duration = chrono::Duration::minutes(9);
/// Installation tokens live an hour; one this close to its end is replaced rather than risked
/// on a request that may be retried or slow.
const TOKEN_MARGIN: chrono::Duration = chrono::Duration::minutes(5);
/// Used when GitHub's answer has no readable `expires_at` (documented lifetime: one hour).
const TOKEN_LIFETIME: chrono::Duration = chrono::Duration::hours(1);
/// The longest wait taken from `Retry-After` or `x-ratelimit-reset`; the outbox keeps trying.
const MAX_WAIT: Duration = Duration::from_secs(60 * 60);
/// How much of an error body is kept for the log.
const MAX_MESSAGE: usize = 300;

/// Why a call to GitHub did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GithubError {
    /// Down, slow, throttling or unreachable: try again, not before `retry_after` if given.
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// GitHub refused the request; repeating it cannot help. `message` is GitHub's own.
    #[error("GitHub answered {status}: {message}")]
    Refused { status: u16, message: String },
    /// The token was refused (401): a new one may succeed.
    #[error("GitHub answered 401: {message}")]
    Unauthorized { message: String },
    /// What `[github]` holds cannot make this call (no App, an api_url without a path).
    #[error("{0}")]
    Setup(String),
    /// The App JWT could not be made (a key that loaded but cannot sign).
    #[error("cannot sign the GitHub App JWT: {0}")]
    Signing(String),
}

impl GithubError {
    fn transient(reason: impl Into<String>) -> Self {
        Self::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }
}

/// Why the App's private key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    /// The contents are never quoted: they are the secret.
    #[error("{path} is not an RSA private key in PEM format (as GitHub's \"Generate a private key\" downloads it): {reason}")]
    NotRsaPem { path: String, reason: String },
}

/// The GitHub App's id and private key, read once at start-up.
pub struct AppKey {
    app_id: u64,
    key: EncodingKey,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppClaims {
    pub iat: i64,
    pub exp: i64,
    /// The App's id, as a string (a JWT `iss` is a StringOrURI; GitHub accepts either).
    pub iss: String,
}

impl AppKey {
    /// Reads `private_key_file` of `[github]`.
    pub fn load(app: &GithubApp) -> Result<Self, KeyError> {
        let path = app.private_key_file.display().to_string();
        let pem = std::fs::read(&app.private_key_file).map_err(|source| KeyError::Unreadable {
            path: path.clone(),
            source,
        })?;
        Self::from_pem(app.app_id, &pem, Path::new(&path))
    }

    /// `path` only names the key in errors.
    pub fn from_pem(app_id: u64, pem: &[u8], path: &Path) -> Result<Self, KeyError> {
        let key = EncodingKey::from_rsa_pem(pem).map_err(|error| KeyError::NotRsaPem {
            path: path.display().to_string(),
            reason: error.to_string(),
        })?;
        Ok(Self { app_id, key })
    }

    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// A JWT that authenticates as the App until `now` + 9 minutes.
    fn jwt(&self, now: DateTime<Utc>) -> Result<Secret, jsonwebtoken::errors::Error> {
        let claims = AppClaims {
            iat: (now - JWT_BACKDATE).timestamp(),
            exp: (now + JWT_LIFETIME).timestamp(),
            iss: self.app_id.to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key).map(Secret::new)
    }
}

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppKey")
            .field("app_id", &self.app_id)
            .field("key", &"[redacted]")
            .finish()
    }
}

#[derive(Clone)]
struct CachedToken {
    token: Secret,
    expires_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
    expires_at: Option<String>,
}

/// Calls GitHub as one of the App's installations, or (reads only) with `github.token`.
pub struct GithubAppClient {
    http: reqwest::Client,
    api_url: Url,
    /// `None` with only `github.token`: protection rules cannot be answered then.
    key: Option<AppKey>,
    /// `github.token`, preferred for reads when set.
    token: Option<Secret>,
    clock: Clock,
    /// Installation id → its current token.
    tokens: Mutex<HashMap<i64, CachedToken>>,
    /// "owner/name" → the App's installation on that repository.
    installations: Mutex<HashMap<String, i64>>,
}

#[derive(Deserialize)]
struct InstallationAnswer {
    id: i64,
}

impl GithubAppClient {
    /// `key` is the App's (if `[github]` has one); `github.token` comes from `config`.
    pub fn new(
        config: &GithubConfig,
        key: Option<AppKey>,
        clock: Clock,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(TIMEOUT)
            // Requests carry a token; they go where the payload or config said and nowhere else.
            .redirect(reqwest::redirect::Policy::none())
            // Proxies would come from the process environment, which only `config` may read.
            .no_proxy()
            .build()?;
        Ok(Self {
            http,
            api_url: config.api_url.clone(),
            key,
            token: config.token.clone(),
            clock,
            tokens: Mutex::new(HashMap::new()),
            installations: Mutex::new(HashMap::new()),
        })
    }

    /// Whether protection rules can be answered (an App is configured).
    pub fn has_app(&self) -> bool {
        self.key.is_some()
    }

    /// `{api_url}/{segments…}`, each segment percent-encoded as one path segment.
    pub fn api(&self, segments: &[&str]) -> Result<Url, GithubError> {
        let mut url = self.api_url.clone();
        url.path_segments_mut()
            .map_err(|()| GithubError::Setup("github.api_url cannot take a path".to_owned()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// GETs `url` (a read of `owner/name`) as JSON: with `github.token` when set, else with a
    /// token of the App's installation on the repository. A 401 on a cached installation token
    /// mints a new one and tries once more.
    pub async fn get_for_repository<T: serde::de::DeserializeOwned>(
        &self,
        owner: &str,
        name: &str,
        url: Url,
    ) -> Result<T, GithubError> {
        if let Some(token) = &self.token {
            return self.get(url, token).await;
        }
        let installation = self.repository_installation(owner, name).await?;
        let (token, cached) = self.installation_token(installation).await?;
        match self.get(url.clone(), &token).await {
            Err(GithubError::Unauthorized { .. }) if cached => {
                self.forget_token(installation);
                let (token, _) = self.installation_token(installation).await?;
                self.get(url, &token)
                    .await
                    .map_err(|error| self.unauthorized_is_transient(installation, error))
            }
            other => other.map_err(|error| self.unauthorized_is_transient(installation, error)),
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        token: &Secret,
    ) -> Result<T, GithubError> {
        let response = self
            .http
            .get(url)
            .header(AUTHORIZATION, format!("Bearer {}", token.expose()))
            .header(ACCEPT, MEDIA_TYPE)
            .header("X-GitHub-Api-Version", API_VERSION)
            .send()
            .await
            .map_err(|error| network_failure("calling GitHub", &error))?;
        if !response.status().is_success() {
            return Err(self.failure(response).await);
        }
        response
            .json()
            .await
            .map_err(|error| GithubError::transient(format!("unreadable GitHub answer: {error}")))
    }

    /// The App's installation on `owner/name` (`GET /repos/{owner}/{repo}/installation`, as
    /// the App), remembered once found.
    async fn repository_installation(&self, owner: &str, name: &str) -> Result<i64, GithubError> {
        let full_name = format!("{owner}/{name}");
        if let Some(id) = lock(&self.installations).get(&full_name) {
            return Ok(*id);
        }
        let Some(key) = &self.key else {
            return Err(GithubError::Setup(
                "[github] has neither a token nor a GitHub App".to_owned(),
            ));
        };
        let jwt = key
            .jwt(self.clock.now())
            .map_err(|error| GithubError::Signing(error.to_string()))?;
        let url = self.api(&["repos", owner, name, "installation"])?;
        let answer: InstallationAnswer = match self.get(url, &jwt).await {
            Err(GithubError::Unauthorized { message }) => {
                return Err(GithubError::transient(format!(
                    "GitHub refused the App JWT for app_id {} (check github.app_id, the private key and the clock): {message}",
                    key.app_id()
                )))
            }
            other => other?,
        };
        lock(&self.installations).insert(full_name, answer.id);
        Ok(answer.id)
    }

    /// POSTs `body` to `url` with a token of `installation`. A 401 on a token from the cache
    /// (revoked, or expired early) is answered by minting a new one and trying once more.
    pub async fn post_as_installation(
        &self,
        installation: i64,
        url: &str,
        body: &Value,
    ) -> Result<(), GithubError> {
        let (token, cached) = self.installation_token(installation).await?;
        match self.post(url, &token, body).await {
            Err(GithubError::Unauthorized { .. }) if cached => {
                tracing::info!(
                    installation,
                    "GitHub refused a cached installation token; minting a new one"
                );
                self.forget_token(installation);
                let (token, _) = self.installation_token(installation).await?;
                self.post(url, &token, body)
                    .await
                    .map_err(|error| self.unauthorized_is_transient(installation, error))
            }
            other => other.map_err(|error| self.unauthorized_is_transient(installation, error)),
        }
    }

    /// A token for `installation`, and whether it came from the cache.
    async fn installation_token(&self, installation: i64) -> Result<(Secret, bool), GithubError> {
        let now = self.clock.now();
        if let Some(cached) = self.lock_tokens().get(&installation) {
            if now + TOKEN_MARGIN < cached.expires_at {
                return Ok((cached.token.clone(), true));
            }
        }
        let Some(key) = &self.key else {
            return Err(GithubError::Setup(
                "[github] has no GitHub App (app_id and private_key_file)".to_owned(),
            ));
        };
        let jwt = key
            .jwt(now)
            .map_err(|error| GithubError::Signing(error.to_string()))?;
        let url = format!(
            "{}/app/installations/{installation}/access_tokens",
            self.api_url.as_str().trim_end_matches('/')
        );
        let response = self
            .http
            .post(&url)
            .header(AUTHORIZATION, format!("Bearer {}", jwt.expose()))
            .header(ACCEPT, MEDIA_TYPE)
            .header("X-GitHub-Api-Version", API_VERSION)
            .send()
            .await
            .map_err(|error| network_failure("getting an installation token", &error))?;
        let status = response.status();
        if !status.is_success() {
            return Err(match self.failure(response).await {
                // The JWT, not an installation token, was refused: the App id or key is
                // wrong, or this machine's clock is off. Worth retrying once that is fixed.
                GithubError::Unauthorized { message } => GithubError::transient(format!(
                    "GitHub refused the App JWT for app_id {} (check github.app_id, the private key and the clock): {message}",
                    key.app_id()
                )),
                GithubError::Refused { status, message } => GithubError::Refused {
                    status,
                    message: format!("installation {installation}: {message}"),
                },
                transient => transient,
            });
        }
        let answer: TokenAnswer = response.json().await.map_err(|error| {
            GithubError::transient(format!("unreadable installation token answer: {error}"))
        })?;
        let expires_at = answer
            .expires_at
            .as_deref()
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map_or(now + TOKEN_LIFETIME, |at| at.with_timezone(&Utc));
        let token = Secret::new(answer.token);
        self.lock_tokens().insert(
            installation,
            CachedToken {
                token: token.clone(),
                expires_at,
            },
        );
        tracing::debug!(installation, %expires_at, "new GitHub installation token");
        Ok((token, false))
    }

    /// Drops the cached token of `installation`, so the next call mints a new one.
    pub fn forget_token(&self, installation: i64) {
        self.lock_tokens().remove(&installation);
    }

    async fn post(&self, url: &str, token: &Secret, body: &Value) -> Result<(), GithubError> {
        let response = self
            .http
            .post(url)
            .header(AUTHORIZATION, format!("Bearer {}", token.expose()))
            .header(ACCEPT, MEDIA_TYPE)
            .header("X-GitHub-Api-Version", API_VERSION)
            .json(body)
            .send()
            .await
            .map_err(|error| network_failure("calling GitHub", &error))?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(self.failure(response).await)
    }

    /// A 401 that survived a fresh token: drop it and let the outbox try again later.
    fn unauthorized_is_transient(&self, installation: i64, error: GithubError) -> GithubError {
        match error {
            GithubError::Unauthorized { message } => {
                self.forget_token(installation);
                GithubError::transient(format!(
                    "GitHub refused a fresh installation token of installation {installation}: {message}"
                ))
            }
            other => other,
        }
    }

    /// Sorts a non-2xx answer. GitHub signals rate limits with 429, or with 403 plus
    /// `Retry-After` or `x-ratelimit-remaining: 0`; both are waits, not refusals.
    async fn failure(&self, response: Response) -> GithubError {
        let status = response.status();
        let headers = response.headers().clone();
        let message = github_message(&response.text().await.unwrap_or_default());
        let wait = retry_after(&headers, self.clock.now());
        let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::FORBIDDEN
                && (headers.contains_key(RETRY_AFTER)
                    || header_str(&headers, "x-ratelimit-remaining") == Some("0")));
        if rate_limited || status.is_server_error() {
            return GithubError::Transient {
                reason: format!("GitHub answered {}: {message}", status.as_u16()),
                retry_after: wait,
            };
        }
        if status == StatusCode::UNAUTHORIZED {
            return GithubError::Unauthorized { message };
        }
        GithubError::Refused {
            status: status.as_u16(),
            message,
        }
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<i64, CachedToken>> {
        self.tokens
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn network_failure(doing: &str, error: &reqwest::Error) -> GithubError {
    // reqwest's message names the URL, never headers; callback URLs hold no secret.
    GithubError::transient(format!("{doing} failed: {error}"))
}

/// GitHub's `{"message": …}`, or the start of whatever else the body was.
fn github_message(body: &str) -> String {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|value| value.get("message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_owned());
    if message.is_empty() {
        return "(no message)".to_owned();
    }
    let mut end = message.len().min(MAX_MESSAGE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_owned()
}

/// How long GitHub asks us to wait: `Retry-After` (seconds or an HTTP date), else, when the
/// rate limit is used up, until `x-ratelimit-reset` (epoch seconds).
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let until = |at: DateTime<Utc>| (at - now).to_std().unwrap_or_default();
    let wait = if let Some(text) = header_str(headers, RETRY_AFTER.as_str()) {
        match text.trim().parse::<u64>() {
            Ok(seconds) => Some(Duration::from_secs(seconds)),
            Err(_) => DateTime::parse_from_rfc2822(text.trim())
                .ok()
                .map(|at| until(at.with_timezone(&Utc))),
        }
    } else if header_str(headers, "x-ratelimit-remaining") == Some("0") {
        header_str(headers, "x-ratelimit-reset")
            .and_then(|text| text.trim().parse::<i64>().ok())
            .and_then(|epoch| DateTime::from_timestamp(epoch, 0))
            .map(until)
    } else {
        None
    };
    wait.map(|wait| wait.min(MAX_WAIT))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_str(value).expect("header"));
        }
        headers
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn waits_come_from_retry_after_or_the_rate_limit_reset() {
        let now = at("2026-11-27T12:00:00Z");
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Fri, 27 Nov 2026 12:00:30 GMT")]),
                now
            ),
            Some(Duration::from_secs(30))
        );
        let reset = (now + chrono::Duration::seconds(90))
            .timestamp()
            .to_string();
        assert_eq!(
            retry_after(
                &headers(&[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", &reset)
                ]),
                now
            ),
            Some(Duration::from_secs(90))
        );
        // Remaining calls: the reset time is no reason to wait.
        assert_eq!(
            retry_after(
                &headers(&[
                    ("x-ratelimit-remaining", "12"),
                    ("x-ratelimit-reset", &reset)
                ]),
                now
            ),
            None
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "999999")]), now),
            Some(MAX_WAIT)
        );
        assert_eq!(retry_after(&headers(&[]), now), None);
    }

    #[test]
    fn messages_are_githubs_own_and_short() {
        assert_eq!(
            github_message(r#"{"message":"Not Found","documentation_url":"https://docs"}"#),
            "Not Found"
        );
        assert_eq!(github_message("  "), "(no message)");
        assert_eq!(github_message(&"é".repeat(400)).len(), MAX_MESSAGE);
    }

    /// The test-only key pair of the end-to-end tests (tests/fixtures/github-app/README.md).
    const TEST_KEY: &[u8] = include_bytes!("../../../tests/fixtures/github-app/test-app-key.pem");
    const TEST_PUBLIC_KEY: &[u8] =
        include_bytes!("../../../tests/fixtures/github-app/test-app-key.pub.pem");

    #[test]
    fn the_app_jwt_is_rs256_with_githubs_claims() {
        let key = AppKey::from_pem(123456, TEST_KEY, Path::new("test-app-key.pem")).expect("key");
        let now = at("2026-11-27T12:00:00Z");
        let jwt = key.jwt(now).expect("signed");
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        // The claims are checked against `now` below, not against this machine's clock.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let decoded = jsonwebtoken::decode::<AppClaims>(
            jwt.expose(),
            &jsonwebtoken::DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY).expect("public key"),
            &validation,
        )
        .expect("valid signature");
        assert_eq!(decoded.header.alg, Algorithm::RS256);
        assert_eq!(
            decoded.claims,
            AppClaims {
                iat: now.timestamp() - 60,
                exp: now.timestamp() + 9 * 60,
                iss: "123456".to_owned(),
            }
        );
        assert_eq!(
            format!("{key:?}"),
            "AppKey { app_id: 123456, key: \"[redacted]\" }"
        );
    }

    #[test]
    fn a_bad_key_is_named_but_never_quoted() {
        let error = AppKey::from_pem(
            1,
            b"-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0\n",
            Path::new("app.pem"),
        )
        .expect_err("not a key");
        let text = error.to_string();
        assert!(
            text.starts_with("app.pem is not an RSA private key"),
            "{text}"
        );
        assert!(!text.contains("c2VjcmV0"), "{text}");
    }
}
