//! A fake Discord REST API (v10): create and edit channel messages, edit an interaction's
//! original response. Answers as Discord does (the message object with a snowflake `id`,
//! `401` without the bot token, `enforce_nonce` returning the first message), and can throttle
//! with `429 Retry-After` or fail with 5xx.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::{Inbox, Recorded};

/// What the fake answers to the next REST calls before behaving normally again.
#[derive(Debug, Clone)]
pub enum Hiccup {
    /// `429 Too Many Requests` with `Retry-After` and Discord's JSON body (`retry_after`).
    RateLimited { retry_after_secs: u64 },
    /// A bare HTTP error status, e.g. 500 or 503.
    Status(u16),
}

pub struct FakeDiscord {
    server: MockServer,
    pub bot_token: String,
    inbox: Inbox,
    hiccups: Arc<Mutex<VecDeque<Hiccup>>>,
    requests: Arc<AtomicUsize>,
}

struct RestApi {
    bot_token: String,
    inbox: Inbox,
    hiccups: Arc<Mutex<VecDeque<Hiccup>>>,
    requests: Arc<AtomicUsize>,
    next_id: AtomicU64,
    /// `nonce` → message id, for `enforce_nonce`.
    nonces: Mutex<HashMap<String, String>>,
}

impl FakeDiscord {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let bot_token = "discord-bot-token".to_owned();
        let inbox = Inbox::default();
        let hiccups = Arc::new(Mutex::new(VecDeque::new()));
        let requests = Arc::new(AtomicUsize::new(0));
        Mock::given(path_regex(r"^/api/v10/"))
            .respond_with(RestApi {
                bot_token: bot_token.clone(),
                inbox: inbox.clone(),
                hiccups: hiccups.clone(),
                requests: requests.clone(),
                next_id: AtomicU64::new(1_300_000_000_000_000_000),
                nonces: Mutex::new(HashMap::new()),
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

    /// The value for `discord.api_url`.
    pub fn api_url(&self) -> String {
        self.server.uri()
    }

    /// Makes the next REST calls fail in the given ways, in order.
    pub fn hiccup(&self, hiccups: impl IntoIterator<Item = Hiccup>) {
        let mut queue = self.hiccups.lock().unwrap_or_else(|p| p.into_inner());
        queue.extend(hiccups);
    }

    /// REST requests received so far, including those answered with a hiccup or refused.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
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
        self.inbox
            .next_matching(Duration::from_secs(10), |r| {
                r.method == http_method && matches(r)
            })
            .await
            .unwrap_or_else(|| {
                panic!(
                    "no Discord {what} within 10 s; unread: {:#?}",
                    self.inbox.unread()
                )
            })
    }

    /// Fails when the app sent something the test never looked at.
    pub fn assert_all_read(&self) {
        let unread = self.inbox.unread();
        assert!(unread.is_empty(), "unread Discord calls: {unread:#?}");
    }
}

fn record(request: &Request) -> Recorded {
    Recorded {
        method: request.method.to_string(),
        path: request.url.path().to_owned(),
        headers: request
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: serde_json::from_slice(&request.body).unwrap_or(Value::Null),
    }
}

fn error(status: u16, code: u64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"code": code, "message": message}))
}

impl Respond for RestApi {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let hiccup = self
            .hiccups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        match hiccup {
            Some(Hiccup::RateLimited { retry_after_secs }) => {
                return ResponseTemplate::new(429)
                    .insert_header("Retry-After", retry_after_secs.to_string().as_str())
                    .set_body_json(json!({"message": "You are being rate limited.",
                        "retry_after": retry_after_secs as f64, "global": false}));
            }
            Some(Hiccup::Status(code)) => return ResponseTemplate::new(code),
            None => {}
        }
        let recorded = record(request);
        let segments: Vec<&str> = recorded
            .path
            .trim_start_matches("/api/v10/")
            .split('/')
            .collect();
        let is_webhook = segments.first() == Some(&"webhooks");
        // Interaction webhooks are authorized by their token; everything else by the bot's.
        let authorized = is_webhook
            || recorded.header("authorization") == Some(&format!("Bot {}", self.bot_token));
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
            _ => return error(404, 0, "404: Not Found"),
        };
        self.inbox.push(recorded);
        ResponseTemplate::new(200).set_body_json(reply)
    }
}
