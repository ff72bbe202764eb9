//! A fake Slack Web API: `chat.postMessage`, `chat.update`, `chat.postEphemeral`, `views.open`
//! and `response_url` hooks, answering as Slack does (JSON `{"ok": …}`, HTTP 200 even for API
//! errors, `ts` per message) and able to throttle with `429 Retry-After` or fail with 5xx.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::{Inbox, Recorded};

/// What the fake answers to the next Web API calls before behaving normally again.
#[derive(Debug, Clone)]
pub enum Hiccup {
    /// `429 Too Many Requests` with `Retry-After: seconds` and Slack's JSON body
    /// `{"ok": false, "error": "ratelimited"}`.
    RateLimited { retry_after_secs: u64 },
    /// A bare HTTP error status, e.g. 500 or 503.
    Status(u16),
    /// HTTP 200 with `{"ok": false, "error": code}`, e.g. `channel_not_found`.
    ApiError(String),
}

pub struct FakeSlack {
    server: MockServer,
    pub bot_token: String,
    inbox: Inbox,
    hiccups: Arc<Mutex<VecDeque<Hiccup>>>,
    requests: Arc<AtomicUsize>,
}

struct WebApi {
    bot_token: String,
    inbox: Inbox,
    hiccups: Arc<Mutex<VecDeque<Hiccup>>>,
    requests: Arc<AtomicUsize>,
    next_ts: AtomicU64,
}

impl FakeSlack {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let bot_token = "xoxb-test-token".to_owned();
        let inbox = Inbox::default();
        let hiccups = Arc::new(Mutex::new(VecDeque::new()));
        let requests = Arc::new(AtomicUsize::new(0));
        Mock::given(method("POST"))
            .and(path_regex(r"^/api/[a-zA-Z.]+$"))
            .respond_with(WebApi {
                bot_token: bot_token.clone(),
                inbox: inbox.clone(),
                hiccups: hiccups.clone(),
                requests: requests.clone(),
                next_ts: AtomicU64::new(1_700_000_000_000_100),
            })
            .mount(&server)
            .await;
        let hooks = inbox.clone();
        Mock::given(method("POST"))
            .and(path_regex(r"^/hooks/"))
            .respond_with(move |request: &Request| {
                hooks.push(record(request));
                ResponseTemplate::new(200).set_body_string("ok")
            })
            .mount(&server)
            .await;
        Self {
            server,
            bot_token,
            inbox,
            hiccups,
            requests,
        }
    }

    /// The value for `slack.api_url`.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.server.uri())
    }

    /// A `response_url` that Slack would put in an interaction payload.
    pub fn response_url(&self, id: &str) -> String {
        format!("{}/hooks/{id}", self.server.uri())
    }

    /// Makes the next Web API calls fail in the given ways, in order.
    pub fn hiccup(&self, hiccups: impl IntoIterator<Item = Hiccup>) {
        let mut queue = self.hiccups.lock().unwrap_or_else(|p| p.into_inner());
        queue.extend(hiccups);
    }

    /// Web API requests received so far, including those answered with a hiccup or refused
    /// (which the inbox does not keep).
    pub fn web_api_requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The next call of Web API `method_name` (e.g. `chat.postMessage`) to `channel`.
    pub async fn next_call(&self, method_name: &str, channel: &str) -> Recorded {
        let path = format!("/api/{method_name}");
        self.inbox
            .next_matching(Duration::from_secs(10), |r| {
                r.path == path && r.body["channel"] == channel
            })
            .await
            .unwrap_or_else(|| {
                panic!(
                    "no {method_name} to {channel} within 10 s; unread: {:#?}",
                    self.inbox.unread()
                )
            })
    }

    /// The next call of Web API `method_name` that names no channel (e.g. `views.open`).
    pub async fn next_method(&self, method_name: &str) -> Recorded {
        let path = format!("/api/{method_name}");
        self.inbox
            .next_matching(Duration::from_secs(10), |r| r.path == path)
            .await
            .unwrap_or_else(|| panic!("no {method_name} within 10 s"))
    }

    /// The next message posted to a `response_url`.
    pub async fn next_response_url_post(&self) -> Recorded {
        self.inbox
            .next_matching(Duration::from_secs(10), |r| r.path.starts_with("/hooks/"))
            .await
            .unwrap_or_else(|| panic!("no response_url post within 10 s"))
    }

    /// Fails when the app sent something the test never looked at.
    pub fn assert_all_read(&self) {
        let unread = self.inbox.unread();
        assert!(unread.is_empty(), "unread Slack calls: {unread:#?}");
    }
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
    Recorded {
        method: request.method.to_string(),
        path: request.url.path().to_owned(),
        headers: request
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body,
    }
}

impl Respond for WebApi {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let hiccup = self
            .hiccups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        match hiccup {
            Some(Hiccup::RateLimited { retry_after_secs }) => {
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
            None => {}
        }
        let authorized = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {}", self.bot_token));
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
        self.inbox.push(recorded);
        ResponseTemplate::new(200).set_body_json(reply)
    }
}
