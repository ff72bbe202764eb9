//! A fake Discord REST API (v10): create and edit channel messages, edit an interaction's
//! original response, answer an interaction (`POST /interactions/{id}/{token}/callback`,
//! `204`), and, with [`FakeDiscord::start_gateway`], `GET /gateway` naming a
//! [`FakeGateway`]. Answers as Discord does (the message object with a snowflake `id`,
//! `401` without the bot token, `enforce_nonce` returning the first message, each answer naming
//! its route's rate-limit bucket in `X-RateLimit-Bucket`), and can throttle with `429
//! Retry-After` (per route or global), report an exhausted bucket, or fail with 5xx.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

use super::discord_gateway::FakeGateway;
use super::platform::{PlatformFake, Shared};
use super::Recorded;

pub use super::faults::Hiccup;

/// Stands for Discord among the platform fakes.
pub enum Discord {}

pub type FakeDiscord = PlatformFake<Discord>;

struct RestApi {
    shared: Shared,
    next_id: AtomicU64,
    /// `nonce` → message id, for `enforce_nonce`.
    nonces: Mutex<HashMap<String, String>>,
}

impl FakeDiscord {
    pub async fn start() -> Self {
        Self::start_with("Discord", crate::config::DISCORD_BOT_TOKEN, |shared| {
            vec![
                Mock::given(path_regex(r"^/api/v10/")).respond_with(RestApi {
                    shared: shared.clone(),
                    next_id: AtomicU64::new(1_300_000_000_000_000_000),
                    nonces: Mutex::new(HashMap::new()),
                }),
            ]
        })
        .await
    }

    /// Starts a fake Gateway and answers `GET /api/v10/gateway` with its URL, as Discord
    /// answers with `wss://gateway.discord.gg`.
    pub async fn start_gateway(&self) -> FakeGateway {
        let gateway = FakeGateway::start().await;
        self.mount(
            Mock::given(method("GET"))
                .and(path("/api/v10/gateway"))
                .respond_with(
                    ResponseTemplate::new(200).set_body_json(json!({"url": gateway.url()})),
                )
                // Before the REST routes, which would answer 404.
                .with_priority(1),
        )
        .await;
        gateway
    }

    /// The answer Greenlight POSTed to interaction `id`'s callback (an interaction received
    /// over the Gateway).
    pub async fn next_callback(&self, id: &str) -> Recorded {
        let prefix = format!("/api/v10/interactions/{id}/");
        self.next(
            "POST",
            move |r| r.path.starts_with(&prefix) && r.path.ends_with("/callback"),
            &format!("callback of interaction {id}"),
        )
        .await
    }

    /// The value for `discord.api_url`.
    pub fn api_url(&self) -> String {
        self.uri()
    }

    /// The next message posted in `channel` (a card, an announcement or a reply to the card).
    pub async fn next_post(&self, channel: &str) -> Recorded {
        let path = format!("/api/v10/channels/{channel}/messages");
        self.next(
            "POST",
            move |r| r.path == path,
            &format!("post in {channel}"),
        )
        .await
    }

    /// The next edit of a message in `channel`.
    pub async fn next_edit(&self, channel: &str) -> Recorded {
        let prefix = format!("/api/v10/channels/{channel}/messages/");
        self.next(
            "PATCH",
            move |r| r.path.starts_with(&prefix),
            &format!("edit in {channel}"),
        )
        .await
    }

    /// The next edit of the card in `channel` that has no buttons left (its final state);
    /// earlier edits are skipped.
    pub async fn next_final_edit(&self, channel: &str) -> Recorded {
        loop {
            let edit = self.next_edit(channel).await;
            if !has_buttons(&edit.body) {
                return edit;
            }
        }
    }

    /// The next edit of an interaction's original response (a late answer).
    pub async fn next_interaction_edit(&self) -> Recorded {
        self.next(
            "PATCH",
            |r| r.path.starts_with("/api/v10/webhooks/"),
            "interaction edit",
        )
        .await
    }

    async fn next(
        &self,
        http_method: &str,
        matches: impl Fn(&Recorded) -> bool,
        what: &str,
    ) -> Recorded {
        self.inbox()
            .next(what, |r| r.method == http_method && matches(r))
            .await
    }
}

/// Whether a message still offers buttons (any component row).
pub fn has_buttons(message: &Value) -> bool {
    message["components"]
        .as_array()
        .is_some_and(|rows| !rows.is_empty())
}

fn record(request: &Request) -> Recorded {
    Recorded::of(
        request,
        serde_json::from_slice(&request.body).unwrap_or(Value::Null),
    )
}

fn error(status: u16, code: u64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"code": code, "message": message}))
}

impl Respond for RestApi {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let recorded = record(request);
        let segments: Vec<&str> = recorded
            .path
            .trim_start_matches("/api/v10/")
            .split('/')
            .collect();
        let bucket = bucket(&recorded.method, &segments);
        let mut exhausted = None;
        match self.shared.faults.arrived() {
            Some(Hiccup::RateLimited { retry_after_secs }) => {
                return rate_limited(retry_after_secs, false)
                    .insert_header("X-RateLimit-Bucket", bucket);
            }
            Some(Hiccup::GlobalRateLimited { retry_after_secs }) => {
                return rate_limited(retry_after_secs, true);
            }
            Some(Hiccup::Status(code)) => return ResponseTemplate::new(code),
            Some(Hiccup::ApiError(message)) => return error(400, 50035, &message),
            Some(Hiccup::BucketExhausted { reset_after_secs }) => {
                exhausted = Some(reset_after_secs);
            }
            Some(Hiccup::Slow { .. }) | None => {}
        }
        let is_webhook = matches!(segments.first(), Some(&"webhooks" | &"interactions"));
        // Interaction webhooks are authorized by their token; everything else by the bot's.
        let authorized = is_webhook
            || recorded.header("authorization") == Some(&format!("Bot {}", self.shared.bot_token));
        if !authorized {
            return error(401, 0, "401: Unauthorized");
        }
        let method_name = recorded.method.clone();
        let reply = match (method_name.as_str(), segments.as_slice()) {
            ("POST", ["channels", channel, "messages"]) => {
                let nonce = recorded.body["nonce"].as_str().map(str::to_owned);
                let enforced = recorded.body["enforce_nonce"] == true;
                let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
                if let (Some(nonce), true) = (&nonce, enforced) {
                    if let Some(id) = nonces.get(nonce) {
                        // Discord returns the first message and creates none.
                        return ResponseTemplate::new(200)
                            .set_body_json(json!({"id": id, "channel_id": channel}));
                    }
                }
                let id = self.next_id.fetch_add(1, Ordering::SeqCst).to_string();
                if let (Some(nonce), true) = (nonce, enforced) {
                    nonces.insert(nonce, id.clone());
                }
                let mut message = recorded.body.clone();
                message["id"] = json!(id);
                message["channel_id"] = json!(channel);
                message
            }
            ("PATCH", ["channels", channel, "messages", id]) => {
                let mut message = recorded.body.clone();
                message["id"] = json!(id);
                message["channel_id"] = json!(channel);
                message
            }
            ("PATCH", ["webhooks", _, _, "messages", "@original"]) => recorded.body.clone(),
            ("POST", ["interactions", _, _, "callback"]) => {
                // Discord answers an interaction callback with 204 and no body.
                self.shared.inbox.push(recorded);
                return ResponseTemplate::new(204);
            }
            _ => return error(404, 0, "404: Not Found"),
        };
        self.shared.inbox.push(recorded);
        // A bucket of five calls per five seconds, as Discord's message routes have.
        let (remaining, reset_after) = match exhausted {
            Some(secs) => (0, secs),
            None => (4, 5),
        };
        ResponseTemplate::new(200)
            .set_body_json(reply)
            .insert_header("X-RateLimit-Bucket", bucket)
            .insert_header("X-RateLimit-Limit", "5")
            .insert_header("X-RateLimit-Remaining", remaining.to_string().as_str())
            .insert_header("X-RateLimit-Reset-After", reset_after.to_string().as_str())
    }
}

/// The bucket Discord names for a route (a different one per route here).
fn bucket(http_method: &str, segments: &[&str]) -> &'static str {
    match (http_method, segments) {
        ("POST", ["channels", _, "messages"]) => "b0create",
        ("PATCH", ["channels", _, "messages", _]) => "b0edit",
        ("PATCH", ["webhooks", ..]) => "b0webhook",
        _ => "b0other",
    }
}

/// Discord's 429: `Retry-After`, the JSON body, and for a global limit `X-RateLimit-Global`.
fn rate_limited(retry_after_secs: u64, global: bool) -> ResponseTemplate {
    let template = ResponseTemplate::new(429)
        .insert_header("Retry-After", retry_after_secs.to_string().as_str())
        .set_body_json(json!({"message": "You are being rate limited.",
            "retry_after": retry_after_secs as f64, "global": global}));
    if global {
        template
            .insert_header("X-RateLimit-Global", "true")
            .insert_header("X-RateLimit-Scope", "global")
    } else {
        template.insert_header("X-RateLimit-Scope", "user")
    }
}
