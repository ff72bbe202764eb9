//! The Discord REST client: the few calls Greenlight makes (post and edit a channel message,
//! answer an interaction received over the Gateway, edit an interaction's original response), one attempt each, with errors sorted into "try
//! again (maybe after Retry-After)" and "Discord refused".
//!
//! Plain reqwest rather than serenity's `Http`: four calls do not need serenity's rate limiter
//! (which sleeps and retries inside the call, where the outbox should decide), and serenity
//! 0.12 would add a second rustls (REFERENCE §5 items 2-3). It never retries; the outbox does.
//! The calls the outbox makes also report what Discord's `X-RateLimit-*` headers said, for the
//! platform's shared limits (`chat::pace`).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use super::message::Message;
use crate::chat::pace::Limits;
use crate::config::DiscordConfig;
use crate::secret::Secret;

/// How long one call may take before it counts as a transient failure; well inside the
/// outbox lease.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Discord asks bots to say who they are (developers/reference "User Agent").
const USER_AGENT: &str = concat!(
    "DiscordBot (https://github.com/greenlight, ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// Why a call did not do what was asked. Never carries the token (or a URL holding one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscordError {
    /// HTTP 429: try again after `retry_after` (`Retry-After` or the body's `retry_after`).
    #[error("rate limited by Discord{}", retry_after.map(|d| format!(" (retry after {:.1}s)", d.as_secs_f64())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// Discord was down, slow or unreachable; the same call may well succeed later.
    #[error("{call}: Discord unavailable: {reason}")]
    Transient { call: &'static str, reason: String },
    /// A 4xx: the same call would be refused again.
    #[error("{call}: Discord refused: HTTP {status}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        call: &'static str,
        status: u16,
        detail: Option<String>,
    },
}

impl DiscordError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Refused { .. })
    }
}

#[derive(Clone)]
pub struct DiscordClient {
    http: reqwest::Client,
    /// `…/api/v10`, without a trailing slash.
    api: String,
    application_id: String,
    token: Secret,
}

impl std::fmt::Debug for DiscordClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordClient")
            .field("api", &self.api)
            .field("application_id", &self.application_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// A call's outcome and what its answer said about Discord's rate limits.
pub type Answered<T> = (Result<T, DiscordError>, Limits);

/// Discord's bucket ids are short hashes; anything longer is not one and is not kept.
const MAX_BUCKET_LEN: usize = 64;

impl DiscordClient {
    pub fn new(config: &DiscordConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(CALL_TIMEOUT)
            .build()?;
        Ok(Self {
            http,
            api: format!("{}/api/v10", config.api_url.as_str().trim_end_matches('/')),
            application_id: config.application_id.to_string(),
            token: config.bot_token.clone(),
        })
    }

    /// Posts `message` in `channel`; returns the new message's id.
    pub async fn create_message(&self, channel: &str, message: &Message) -> Answered<String> {
        const CALL: &str = "create message";
        let url = format!("{}/channels/{channel}/messages", self.api);
        let (answer, limits) = self.call(CALL, Method::POST, &url, message, true).await;
        let created = answer.and_then(|body| {
            serde_json::from_value::<Created>(body)
                .map(|created| created.id)
                .map_err(|error| DiscordError::Transient {
                    call: CALL,
                    reason: format!("answer without a message id: {error}"),
                })
        });
        (created, limits)
    }

    /// Replaces the content, embeds and components of message `message_id` in `channel`.
    pub async fn edit_message(
        &self,
        channel: &str,
        message_id: &str,
        message: &Message,
    ) -> Answered<()> {
        let url = format!("{}/channels/{channel}/messages/{message_id}", self.api);
        let (answer, limits) = self
            .call("edit message", Method::PATCH, &url, message, true)
            .await;
        (answer.map(drop), limits)
    }

    /// Edits the original response of the interaction with `interaction_token` (valid for 15
    /// minutes): the follow-up when a decision outlasted Discord's 3-second deadline.
    pub async fn edit_original_response(
        &self,
        interaction_token: &str,
        message: &Message,
    ) -> Result<(), DiscordError> {
        let url = format!(
            "{}/webhooks/{}/{interaction_token}/messages/@original",
            self.api, self.application_id
        );
        // Interaction webhooks are authorized by the token in the path, not the bot token.
        self.call(
            "edit interaction response",
            Method::PATCH,
            &url,
            message,
            false,
        )
        .await
        .0
        .map(|_| ())
    }

    /// Answers interaction `interaction_id` with `response` (an interaction response object,
    /// REFERENCE §2.3): how an interaction received over the Gateway is answered, within the
    /// same 3 seconds as the HTTP endpoint's reply.
    pub async fn create_interaction_response(
        &self,
        interaction_id: &str,
        interaction_token: &str,
        response: &Value,
    ) -> Result<(), DiscordError> {
        let url = format!(
            "{}/interactions/{interaction_id}/{interaction_token}/callback",
            self.api
        );
        // Authorized by the token in the path, like the interaction webhooks.
        self.call("interaction callback", Method::POST, &url, response, false)
            .await
            .0
            .map(drop)
    }

    /// Replaces every slash command of the application (globally, or in one guild, where
    /// changes show at once) with `commands`: Discord's bulk overwrite, one request.
    pub async fn overwrite_commands(
        &self,
        guild: Option<&str>,
        commands: &Value,
    ) -> Result<Value, DiscordError> {
        let url = match guild {
            Some(guild) => format!(
                "{}/applications/{}/guilds/{guild}/commands",
                self.api, self.application_id
            ),
            None => format!("{}/applications/{}/commands", self.api, self.application_id),
        };
        self.call("overwrite commands", Method::PUT, &url, commands, true)
            .await
            .0
    }

    async fn call(
        &self,
        call: &'static str,
        method: Method,
        url: &str,
        body: &impl serde::Serialize,
        as_bot: bool,
    ) -> Answered<Value> {
        let mut request = self.http.request(method, url).json(body);
        if as_bot {
            request = request.header(
                reqwest::header::AUTHORIZATION,
                format!("Bot {}", self.token.expose()),
            );
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                let error = DiscordError::Transient {
                    call,
                    // The URL may hold an interaction token.
                    reason: error.without_url().to_string(),
                };
                return (Err(error), Limits::default());
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let retry_after = header(&headers, reqwest::header::RETRY_AFTER.as_str()).and_then(seconds);
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let limits = limits(&headers, status, &body);
        (classify(call, status, retry_after, body, &text), limits)
    }
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// What an answer said about the route's bucket (REFERENCE §2.6): its id, whether it has no
/// calls left (`Remaining: 0`, for `Reset-After`), and whether a 429 is global (the
/// `X-RateLimit-Global` header or the body's `global`), pausing every call.
fn limits(headers: &reqwest::header::HeaderMap, status: StatusCode, body: &Value) -> Limits {
    let remaining =
        header(headers, "x-ratelimit-remaining").and_then(|n| n.trim().parse::<u64>().ok());
    let reset_after = header(headers, "x-ratelimit-reset-after").and_then(seconds);
    let global = status == StatusCode::TOO_MANY_REQUESTS
        && (header(headers, "x-ratelimit-global").is_some_and(|v| v.trim() == "true")
            || body["global"] == true);
    Limits {
        bucket: header(headers, "x-ratelimit-bucket")
            .map(str::trim)
            .filter(|bucket| !bucket.is_empty() && bucket.len() <= MAX_BUCKET_LEN)
            .map(str::to_owned),
        exhausted_for: reset_after.filter(|_| remaining == Some(0)),
        global,
    }
}

/// Sorts an answer into success, retry or refusal (REFERENCE §2.6: honour `Retry-After` or the
/// body's `retry_after`).
fn classify(
    call: &'static str,
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Value,
    text: &str,
) -> Result<Value, DiscordError> {
    if status.is_success() {
        return Ok(body);
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let from_body = body["retry_after"].as_f64().and_then(duration_from_secs);
        return Err(DiscordError::RateLimited {
            retry_after: retry_after.max(from_body),
        });
    }
    if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_EARLY
    {
        return Err(DiscordError::Transient {
            call,
            reason: format!("HTTP {}", status.as_u16()),
        });
    }
    let detail = match (body["code"].as_i64(), body["message"].as_str()) {
        (Some(code), Some(message)) => Some(format!("{code}: {}", short(message))),
        (None, Some(message)) => Some(short(message)),
        _ if !text.trim().is_empty() => Some(short(text)),
        _ => None,
    };
    Err(DiscordError::Refused {
        call,
        status: status.as_u16(),
        detail,
    })
}

fn seconds(text: &str) -> Option<Duration> {
    text.trim().parse::<f64>().ok().and_then(duration_from_secs)
}

fn duration_from_secs(secs: f64) -> Option<Duration> {
    (0.0..86_400.0)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

fn short(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rate_limits_take_the_longer_of_header_and_body() {
        let error = classify(
            "x",
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(1)),
            json!({"message": "You are being rate limited.", "retry_after": 64.57, "global": false}),
            "",
        )
        .expect_err("429");
        assert_eq!(
            error,
            DiscordError::RateLimited {
                retry_after: Some(Duration::from_secs_f64(64.57))
            }
        );
        let error =
            classify("x", StatusCode::TOO_MANY_REQUESTS, None, Value::Null, "").expect_err("429");
        assert_eq!(error, DiscordError::RateLimited { retry_after: None });
        assert_eq!(seconds("2"), Some(Duration::from_secs(2)));
        assert_eq!(seconds("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(seconds("soon"), None);
    }

    #[test]
    fn rate_limit_headers_name_the_bucket_and_when_it_refills() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut map = reqwest::header::HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, value.parse().expect("header value"));
            }
            map
        };
        let exhausted = headers(&[
            ("x-ratelimit-bucket", "abcd1234"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset-after", "1.5"),
        ]);
        assert_eq!(
            limits(&exhausted, StatusCode::OK, &Value::Null),
            Limits {
                bucket: Some("abcd1234".to_owned()),
                exhausted_for: Some(Duration::from_millis(1500)),
                global: false,
            }
        );
        let left = headers(&[
            ("x-ratelimit-bucket", "abcd1234"),
            ("x-ratelimit-remaining", "4"),
            ("x-ratelimit-reset-after", "1.5"),
        ]);
        assert_eq!(
            limits(&left, StatusCode::OK, &Value::Null).exhausted_for,
            None
        );
        let global = headers(&[("x-ratelimit-global", "true")]);
        assert!(limits(&global, StatusCode::TOO_MANY_REQUESTS, &Value::Null).global);
        assert!(
            limits(
                &headers(&[]),
                StatusCode::TOO_MANY_REQUESTS,
                &json!({"global": true})
            )
            .global
        );
        assert!(
            !limits(
                &headers(&[]),
                StatusCode::TOO_MANY_REQUESTS,
                &json!({"global": false})
            )
            .global
        );
        let long = "x".repeat(MAX_BUCKET_LEN + 1);
        assert_eq!(
            limits(
                &headers(&[("x-ratelimit-bucket", long.as_str())]),
                StatusCode::OK,
                &Value::Null
            )
            .bucket,
            None
        );
    }

    #[test]
    fn server_errors_retry_and_client_errors_do_not() {
        let error = classify("x", StatusCode::BAD_GATEWAY, None, Value::Null, "").expect_err("502");
        assert!(error.is_retryable());
        let error = classify(
            "x",
            StatusCode::FORBIDDEN,
            None,
            json!({"code": 50001, "message": "Missing Access"}),
            "",
        )
        .expect_err("403");
        assert!(!error.is_retryable());
        assert!(
            error.to_string().contains("50001: Missing Access"),
            "{error}"
        );
        assert!(classify("x", StatusCode::OK, None, json!({"id": "1"}), "").is_ok());
    }
}
