//! A fake Slack Web API: `chat.postMessage`, `chat.update`, `chat.postEphemeral`, `views.open`
//! and `response_url` hooks, answering as Slack does (JSON `{"ok": …}`, HTTP 200 even for API
//! errors, `ts` per message) and able to throttle with `429 Retry-After` or fail with 5xx.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

use super::platform::{PlatformFake, Shared};
use super::Recorded;

pub use super::faults::Hiccup;

/// Stands for Slack among the platform fakes.
pub enum Slack {}

pub type FakeSlack = PlatformFake<Slack>;

struct WebApi {
    shared: Shared,
    next_ts: AtomicU64,
}

impl FakeSlack {
    pub async fn start() -> Self {
        Self::start_with("Slack", "xoxb-test-token", |shared| {
            let hooks = shared.inbox.clone();
            vec![
                Mock::given(method("POST"))
                    .and(path_regex(r"^/api/[a-zA-Z.]+$"))
                    .respond_with(WebApi {
                        shared: shared.clone(),
                        next_ts: AtomicU64::new(1_700_000_000_000_100),
                    }),
                Mock::given(method("POST"))
                    .and(path_regex(r"^/hooks/"))
                    .respond_with(move |request: &Request| {
                        hooks.push(record(request));
                        ResponseTemplate::new(200).set_body_string("ok")
                    }),
            ]
        })
        .await
    }

    /// The value for `slack.api_url`.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.uri())
    }

    /// A `response_url` that Slack would put in an interaction payload.
    pub fn response_url(&self, id: &str) -> String {
        format!("{}/hooks/{id}", self.uri())
    }

    /// The next call of Web API `method_name` (e.g. `chat.postMessage`) to `channel`.
    pub async fn next_call(&self, method_name: &str, channel: &str) -> Recorded {
        let path = format!("/api/{method_name}");
        self.inbox()
            .next(&format!("{method_name} to {channel}"), |r| {
                r.path == path && r.body["channel"] == channel
            })
            .await
    }

    /// The next call of Web API `method_name` to `channel` whose body mentions `needle`; calls
    /// that do not stay unread, whatever order they came in.
    pub async fn next_call_mentioning(
        &self,
        method_name: &str,
        channel: &str,
        needle: &str,
    ) -> Recorded {
        let path = format!("/api/{method_name}");
        self.inbox()
            .next(
                &format!("{method_name} to {channel} mentioning {needle:?}"),
                |r| {
                    r.path == path
                        && r.body["channel"] == channel
                        && r.body.to_string().contains(needle)
                },
            )
            .await
    }

    /// The next edit of a card in `channel` that has no buttons left (its final state);
    /// earlier edits are skipped.
    pub async fn next_final_update(&self, channel: &str) -> Recorded {
        loop {
            let update = self.next_call("chat.update", channel).await;
            if !has_buttons(&update.body) {
                return update;
            }
        }
    }

    /// Lets this test leave cards (posts and edits with Block Kit blocks) unread, for `reason`,
    /// while plain messages to the channel must still be read.
    pub fn allow_unread_cards(&self, reason: &str) {
        self.inbox()
            .allow_unread_where(reason, |call| !call.body["blocks"].is_null());
    }

    /// The next call of Web API `method_name` that names no channel (e.g. `views.open`).
    pub async fn next_method(&self, method_name: &str) -> Recorded {
        let path = format!("/api/{method_name}");
        self.inbox().next(method_name, |r| r.path == path).await
    }

    /// The next message posted to a `response_url`.
    pub async fn next_response_url_post(&self) -> Recorded {
        self.inbox()
            .next("response_url post", |r| r.path.starts_with("/hooks/"))
            .await
    }
}

/// Whether a message's blocks still offer buttons (an `actions` block).
pub fn has_buttons(message: &Value) -> bool {
    message["blocks"]
        .as_array()
        .is_some_and(|blocks| blocks.iter().any(|block| block["type"] == "actions"))
}

fn record(request: &Request) -> Recorded {
    let body = if request.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&request.body).unwrap_or_else(|_| {
            // Slack also accepts form-encoded Web API calls.
            let pairs: serde_json::Map<String, Value> = url::form_urlencoded::parse(&request.body)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect();
            Value::Object(pairs)
        })
    };
    Recorded::of(request, body)
}

impl Respond for WebApi {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut answer_after = None;
        match self.shared.faults.arrived() {
            Some(
                Hiccup::RateLimited { retry_after_secs }
                | Hiccup::GlobalRateLimited { retry_after_secs },
            ) => {
                // As Slack answers (JSON envelope, `Retry-After` in seconds).
                return ResponseTemplate::new(429)
                    .insert_header("Retry-After", retry_after_secs.to_string().as_str())
                    .set_body_json(json!({"ok": false, "error": "ratelimited"}));
            }
            Some(Hiccup::Status(code)) => return ResponseTemplate::new(code),
            Some(Hiccup::ApiError(code)) => {
                return ResponseTemplate::new(200)
                    .set_body_json(json!({"ok": false, "error": code}));
            }
            Some(Hiccup::Slow { secs }) => answer_after = Some(Duration::from_secs(secs)),
            Some(Hiccup::BucketExhausted { .. }) | None => {}
        }
        let authorized = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {}", self.shared.bot_token));
        if !authorized {
            return ResponseTemplate::new(200)
                .set_body_json(json!({"ok": false, "error": "not_authed"}));
        }
        let recorded = record(request);
        let method_name = recorded.path.trim_start_matches("/api/").to_owned();
        let channel = recorded.body["channel"].clone();
        let reply = match method_name.as_str() {
            "chat.postMessage" => {
                let ts = self.next_ts.fetch_add(1, Ordering::SeqCst);
                let ts = format!("{}.{:06}", ts / 1_000_000, ts % 1_000_000);
                json!({"ok": true, "channel": channel, "ts": ts, "message": recorded.body})
            }
            "chat.update" => {
                json!({"ok": true, "channel": channel, "ts": recorded.body["ts"], "text": recorded.body["text"]})
            }
            "chat.postEphemeral" => {
                let ts = self.next_ts.fetch_add(1, Ordering::SeqCst);
                json!({"ok": true, "message_ts": format!("{}.{:06}", ts / 1_000_000, ts % 1_000_000)})
            }
            "views.open" => json!({"ok": true, "view": {"id": "V0FAKE", "type": "modal"}}),
            "auth.test" => json!({"ok": true, "user_id": "UBOT", "team_id": "T0FAKE"}),
            _ => json!({"ok": false, "error": "unknown_method"}),
        };
        self.shared.inbox.push(recorded);
        let answer = ResponseTemplate::new(200).set_body_json(reply);
        match answer_after {
            Some(delay) => answer.set_delay(delay),
            None => answer,
        }
    }
}
