//! The Slack Web API client: the few calls Greenlight makes, one attempt each, with errors
//! sorted into "try again (maybe after Retry-After)" and "Slack refused".
//!
//! It never retries: the outbox decides when to try again, so a retry survives a restart and
//! is visible in the outbox. slack-morphism's own rate control (which sleeps and retries) is
//! therefore not installed.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use slack_morphism::api::{
    SlackApiChatPostEphemeralRequest, SlackApiChatPostMessageRequest, SlackApiChatUpdateRequest,
    SlackApiViewsOpenRequest,
};
use slack_morphism::blocks::{SlackBlock, SlackView};
use slack_morphism::errors::SlackClientError;
use slack_morphism::hyper_tokio::SlackClientHyperHttpsConnector;
use slack_morphism::{
    SlackApiToken, SlackApiTokenType, SlackApiTokenValue, SlackChannelId,
    SlackClientApiCallContext, SlackClientHttpConnector, SlackMessageContent, SlackTriggerId,
    SlackTs, SlackUserId,
};
use url::Url;

use super::blocks::Message;
use crate::config::SlackConfig;

/// How long one call may take before it counts as a transient failure. Well inside the
/// outbox lease, so a slow Slack never lets a second worker deliver the same item.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a call did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackError {
    /// HTTP 429 (or `ratelimited`): try again after `retry_after`, Slack's `Retry-After`.
    #[error("rate limited by Slack{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// Slack was down, slow or unreachable; the same call may well succeed later.
    #[error("{method}: Slack unavailable: {reason}")]
    Transient { method: String, reason: String },
    /// Slack answered `ok: false` (or a 4xx); the same call would be refused again.
    #[error("{method}: Slack refused: {code}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        method: String,
        code: String,
        detail: Option<String>,
    },
}

impl SlackError {
    /// Slack's error code (`channel_not_found`, …) when Slack refused the call.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Refused { .. })
    }

    fn from_client(method: &str, error: SlackClientError) -> Self {
        let transient = |reason: String| Self::Transient {
            method: method.to_owned(),
            reason: short(&reason),
        };
        match error {
            SlackClientError::RateLimitError(error) => Self::RateLimited {
                retry_after: error.retry_after,
            },
            SlackClientError::ApiError(error) => {
                let code = error.code;
                if matches!(code.as_str(), "ratelimited" | "rate_limited") {
                    return Self::RateLimited { retry_after: None };
                }
                if is_transient_code(&code) {
                    return transient(code);
                }
                Self::Refused {
                    method: method.to_owned(),
                    code,
                    detail: error
                        .errors
                        .filter(|errors| !errors.is_empty())
                        .map(|errors| short(&errors.join("; "))),
                }
            }
            SlackClientError::HttpError(error) => {
                let status = error.status_code.as_u16();
                if status == 408 || status == 425 || status >= 500 {
                    transient(format!("HTTP {status}"))
                } else {
                    Self::Refused {
                        method: method.to_owned(),
                        code: format!("http_{status}"),
                        detail: error.http_response_body.map(|body| short(&body)),
                    }
                }
            }
            // A body that is not Slack's JSON envelope: a proxy's error page, or a bare 429
            // without a JSON body (slack-morphism then cannot read its Retry-After). Trying
            // again is right for both; backoff stands in for the lost Retry-After.
            SlackClientError::ProtocolError(error) => {
                transient(format!("unreadable answer: {}", error.json_error))
            }
            // Connection refused or reset, TLS, DNS: the network, not the request.
            other => transient(other.to_string()),
        }
    }
}

/// Slack's `ok: false` codes that mean "Slack had a problem", not "your request is wrong"
/// (docs.slack.dev method pages, "Errors").
fn is_transient_code(code: &str) -> bool {
    matches!(
        code,
        "internal_error"
            | "fatal_error"
            | "service_unavailable"
            | "request_timeout"
            | "team_added_to_org"
    )
}

fn short(text: &str) -> String {
    super::blocks::truncate(text.trim(), 300)
}

/// One Slack workspace's Web API, authenticated with the bot token.
pub struct SlackClient {
    api: slack_morphism::SlackClient<SlackClientHyperHttpsConnector>,
    token: SlackApiToken,
    timeout: Duration,
    /// `slack.api_url`: with `hooks.slack.com`, the only origin a `response_url` may name.
    api_url: Url,
}

impl fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackClient")
            .field("token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// The answer to `chat.postMessage`: only what Greenlight needs, so an answer with fields
/// this crate does not model can never turn a posted message into a failure (and a repost).
#[derive(Deserialize)]
struct Posted {
    ts: String,
}

/// An answer whose content does not matter beyond `ok: true`.
#[derive(Deserialize)]
struct Accepted {}

#[derive(Deserialize)]
struct Opened {
    view: Option<OpenedView>,
}

#[derive(Deserialize)]
struct OpenedView {
    id: String,
}

/// A `response_url` body. slack-morphism's webhook request has no `response_type`, and Slack
/// posts `in_channel` for some interactions unless told otherwise.
#[derive(Serialize)]
struct ResponseUrlBody<'a> {
    text: &'a str,
    #[serde(skip_serializing_if = "<[SlackBlock]>::is_empty")]
    blocks: &'a [SlackBlock],
    response_type: &'static str,
    replace_original: bool,
}

impl SlackClient {
    /// A client for `config.api_url` (a fake on `http://127.0.0.1` in tests, Slack otherwise).
    pub fn new(config: &SlackConfig) -> Self {
        // Name the crypto provider instead of relying on rustls' process default: a build with
        // both ring and aws-lc-rs compiled in (the workspace's test build is one; the OFREP
        // test client brings aws-lc-rs) has no default, and rustls would panic here
        // (REFERENCE §5.4).
        let ring = || std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let https = match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(ring())
        {
            Ok(builder) => builder,
            Err(error) => {
                // A container without CA certificates: Mozilla's roots still reach Slack.
                tracing::warn!(%error, "no system CA roots; using the bundled webpki roots for Slack");
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_webpki_roots(ring())
                    .expect("ring supports rustls' default TLS versions")
            }
        }
        // Plain http only ever reaches what `slack.api_url` names: the fake in tests.
        .https_or_http()
        .enable_all_versions()
        .build();
        let base = config.api_url.as_str().trim_end_matches('/');
        let connector =
            slack_morphism::hyper_tokio::SlackClientHyperConnector::with_connector(https)
                .with_slack_api_url(base);
        let token = SlackApiToken::new(SlackApiTokenValue::new(
            config.bot_token.expose().to_owned(),
        ))
        .with_token_type(SlackApiTokenType::Bot);
        Self {
            api: slack_morphism::SlackClient::new(connector),
            token,
            timeout: CALL_TIMEOUT,
            api_url: config.api_url.clone(),
        }
    }

    /// slack-morphism's client on the same connector and `api_url`, for Socket Mode.
    pub fn api(&self) -> &slack_morphism::SlackClient<SlackClientHyperHttpsConnector> {
        &self.api
    }

    /// Gives up on a call after `timeout` instead of [`CALL_TIMEOUT`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `chat.postMessage`; in the thread of `thread_ts` when given. Returns the message's `ts`.
    pub async fn post_message(
        &self,
        channel: &str,
        message: &Message,
        thread_ts: Option<&str>,
    ) -> Result<String, SlackError> {
        let request = SlackApiChatPostMessageRequest::new(channel_id(channel), content(message))
            .opt_thread_ts(thread_ts.map(|ts| SlackTs::new(ts.to_owned())))
            // Cards carry their own links; an unfurled GitHub preview would bury the buttons.
            .with_unfurl_links(false)
            .with_unfurl_media(false);
        let posted: Posted = self.call("chat.postMessage", &request).await?;
        Ok(posted.ts)
    }

    /// `chat.update` of the message `ts` in `channel`: replaces its text and all its blocks.
    pub async fn update_message(
        &self,
        channel: &str,
        ts: &str,
        message: &Message,
    ) -> Result<(), SlackError> {
        let mut content = content(message);
        // Without `blocks`, chat.update keeps the old ones (and their live buttons).
        content.blocks = Some(message.blocks.clone());
        let request = SlackApiChatUpdateRequest::new(
            channel_id(channel),
            content,
            SlackTs::new(ts.to_owned()),
        );
        let _: Accepted = self.call("chat.update", &request).await?;
        Ok(())
    }

    /// `chat.postEphemeral`: a message only `user` sees, in `channel`.
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        message: &Message,
    ) -> Result<(), SlackError> {
        let request = SlackApiChatPostEphemeralRequest::new(
            channel_id(channel),
            SlackUserId::new(user.to_owned()),
            content(message),
        );
        let _: Accepted = self.call("chat.postEphemeral", &request).await?;
        Ok(())
    }

    /// Posts to an interaction's `response_url`: ephemeral to the person who acted, or in
    /// place of the message they acted on when `replace_original`.
    ///
    /// The bot token is not sent: the URL itself is the credential, and it came in a request.
    pub async fn respond(
        &self,
        response_url: &str,
        message: &Message,
        replace_original: bool,
    ) -> Result<(), SlackError> {
        const METHOD: &str = "response_url";
        if !super::response_url::allowed(response_url, &self.api_url) {
            tracing::warn!("refused to follow a response_url outside hooks.slack.com");
            return Err(SlackError::Refused {
                method: METHOD.to_owned(),
                code: "response_url_not_slack".to_owned(),
                detail: Some(format!(
                    "response_urls are followed only to {} or slack.api_url's origin",
                    super::response_url::SLACK_HOOKS_HOST
                )),
            });
        }
        let url = Url::parse(response_url).map_err(|error| SlackError::Refused {
            method: METHOD.to_owned(),
            code: "invalid_response_url".to_owned(),
            detail: Some(error.to_string()),
        })?;
        let body = ResponseUrlBody {
            text: &message.text,
            blocks: &message.blocks,
            response_type: "ephemeral",
            replace_original,
        };
        let span = tracing::Span::current();
        let context = SlackClientApiCallContext {
            rate_control_params: None,
            token: None,
            tracing_span: &span,
            // Keeps the URL (a capability) out of slack-morphism's debug logs.
            is_sensitive_url: true,
        };
        let call = self
            .api
            .http_api
            .connector
            .http_post_uri::<_, Accepted>(url, &body, context);
        self.bounded(METHOD, call).await.map(|_| ())
    }

    /// `views.open` with `trigger_id` (valid for 3 s, once). Returns the view's id.
    pub async fn open_view(
        &self,
        trigger_id: &str,
        view: &SlackView,
    ) -> Result<String, SlackError> {
        let request =
            SlackApiViewsOpenRequest::new(SlackTriggerId::new(trigger_id.to_owned()), view.clone());
        let opened: Opened = self.call("views.open", &request).await?;
        Ok(opened.view.map(|view| view.id).unwrap_or_default())
    }

    async fn call<RQ, RS>(&self, method: &str, request: &RQ) -> Result<RS, SlackError>
    where
        RQ: Serialize + Send + Sync,
        RS: for<'de> Deserialize<'de> + Send,
    {
        let session = self.api.open_session(&self.token);
        let call = session.http_session_api.http_post(method, request, None);
        self.bounded(method, call).await
    }

    async fn bounded<RS>(
        &self,
        method: &str,
        call: impl std::future::Future<Output = Result<RS, SlackClientError>>,
    ) -> Result<RS, SlackError> {
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(|error| SlackError::from_client(method, error)),
            Err(_) => Err(SlackError::Transient {
                method: method.to_owned(),
                reason: format!("no answer within {}s", self.timeout.as_secs()),
            }),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(SlackError::RateLimited { .. }) => "rate_limited",
            Err(SlackError::Transient { .. }) => "transient",
            Err(SlackError::Refused { .. }) => "refused",
        };
        metrics::histogram!("greenlight_slack_call_seconds", "method" => method.to_owned(), "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        result
    }
}

fn channel_id(channel: &str) -> SlackChannelId {
    SlackChannelId::new(channel.to_owned())
}

fn content(message: &Message) -> SlackMessageContent {
    SlackMessageContent::new()
        .with_text(message.text.clone())
        .opt_blocks((!message.blocks.is_empty()).then(|| message.blocks.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use slack_morphism::errors::{SlackClientApiError, SlackClientHttpError, SlackRateLimitError};

    fn api_error(code: &str) -> SlackError {
        SlackError::from_client(
            "chat.postMessage",
            SlackClientError::ApiError(SlackClientApiError::new(code.to_owned())),
        )
    }

    #[test]
    fn slack_problems_are_retried_and_refusals_are_not() {
        for code in [
            "internal_error",
            "fatal_error",
            "service_unavailable",
            "request_timeout",
        ] {
            assert!(api_error(code).is_retryable(), "{code}");
        }
        assert_eq!(
            api_error("ratelimited"),
            SlackError::RateLimited { retry_after: None }
        );
        for code in [
            "channel_not_found",
            "not_authed",
            "invalid_auth",
            "invalid_blocks",
            "msg_too_long",
            "not_in_channel",
        ] {
            let error = api_error(code);
            assert!(!error.is_retryable(), "{code}");
            assert_eq!(error.code(), Some(code));
        }
    }

    #[test]
    fn http_statuses_sort_into_retry_and_refusal() {
        let http = |status: u16| {
            SlackError::from_client(
                "chat.update",
                SlackClientError::HttpError(SlackClientHttpError::new(
                    http::StatusCode::from_u16(status).expect("status"),
                )),
            )
        };
        assert!(http(500).is_retryable());
        assert!(http(503).is_retryable());
        assert!(http(408).is_retryable());
        assert!(!http(404).is_retryable());
        assert!(!http(403).is_retryable());
        let limited = SlackError::from_client(
            "chat.update",
            SlackClientError::RateLimitError(
                SlackRateLimitError::new().with_retry_after(Duration::from_secs(7)),
            ),
        );
        assert_eq!(
            limited,
            SlackError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            limited.to_string(),
            "rate limited by Slack (retry after 7s)"
        );
    }

    #[test]
    fn debug_output_hides_the_token() {
        let config = SlackConfig {
            bot_token: crate::secret::Secret::new("xoxb-very-secret"),
            signing_secret: Some(crate::secret::SecretList::single(
                crate::secret::Secret::new("s"),
            )),
            app_token: None,
            api_url: Url::parse("http://127.0.0.1:9/api").expect("url"),
        };
        let client = SlackClient::new(&config);
        assert!(!format!("{client:?}").contains("xoxb"));
    }

    #[tokio::test]
    async fn unreachable_slack_is_transient() {
        // Port 9 (discard) is closed on test machines: connection refused, at once.
        let config = SlackConfig {
            bot_token: crate::secret::Secret::new("xoxb-very-secret"),
            signing_secret: Some(crate::secret::SecretList::single(
                crate::secret::Secret::new("s"),
            )),
            app_token: None,
            api_url: Url::parse("http://127.0.0.1:9/api").expect("url"),
        };
        let client = SlackClient::new(&config).with_timeout(Duration::from_secs(5));
        let error = client
            .post_message("C1", &Message::plain("hi"), None)
            .await
            .expect_err("nothing listens");
        assert!(error.is_retryable(), "{error}");
        assert!(!error.to_string().contains("xoxb"), "{error}");
    }
}
