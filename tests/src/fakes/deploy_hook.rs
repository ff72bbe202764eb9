//! A fake deploy hook (the `http` deployer's other end) and a fake production service whose
//! health check can be switched between healthy and failing.
//!
//! The hook checks every request the way a real hook must: `X-Greenlight-Signature` is the
//! HMAC-SHA256 of the raw body with the shared secret, and `Idempotency-Key` is the body's
//! `deployment_id`. Badly signed requests get 401 and fail the test at teardown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::faults::Faults;
use super::{Inbox, Recorded};

/// The path the hook listens on.
pub const HOOK_PATH: &str = "/deploy";

pub struct DeployHook {
    server: MockServer,
    inbox: Inbox,
    statuses: Arc<Faults<u16>>,
}

struct Hook {
    secret: String,
    inbox: Inbox,
    statuses: Arc<Faults<u16>>,
}

impl DeployHook {
    /// A hook that accepts (202) every correctly signed request, and fails the test at drop
    /// unless it received exactly `expected` requests in all.
    pub async fn start(secret: &str, expected: u64) -> Self {
        let server = MockServer::start().await;
        let inbox = Inbox::new("deploy hook");
        let statuses = Arc::new(Faults::default());
        Mock::given(method("POST"))
            .and(path(HOOK_PATH))
            .respond_with(Hook {
                secret: secret.to_owned(),
                inbox: inbox.clone(),
                statuses: statuses.clone(),
            })
            .named("deploy hook")
            .expect(expected)
            .mount(&server)
            .await;
        Self {
            server,
            inbox,
            statuses,
        }
    }

    /// What Greenlight sent, for [`Inbox::allow_unread`] and reads `next_request` does not cover.
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// The deployer's `url`.
    pub fn url(&self) -> String {
        format!("{}{HOOK_PATH}", self.server.uri())
    }

    /// Answers the next requests with these statuses (e.g. 503, 422) before accepting again.
    pub fn answer(&self, statuses: impl IntoIterator<Item = u16>) {
        self.statuses.queue(statuses);
    }

    /// The next request the hook received (whatever it answered), within 10 s.
    pub async fn next_request(&self) -> Recorded {
        self.inbox.next("request", |_| true).await
    }

    /// Fails when a request was not signed correctly or was never looked at.
    pub fn assert_all_read(&self) {
        self.inbox.assert_all_read();
    }
}

impl Respond for Hook {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let signed = request
            .headers
            .get("x-greenlight-signature")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value == sign(&self.secret, &request.body));
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let keyed = request
            .headers
            .get("idempotency-key")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|key| {
                body["deployment_id"]
                    .as_i64()
                    .map(|id| id.to_string())
                    .as_deref()
                    == Some(key)
            });
        if !signed || !keyed {
            self.inbox.refused(format!(
                "a badly signed or keyed request: {}",
                String::from_utf8_lossy(&request.body)
            ));
            return ResponseTemplate::new(401);
        }
        self.inbox.push(Recorded::of(request, body));
        let status = self.statuses.arrived().unwrap_or(202);
        ResponseTemplate::new(status).set_body_string(if status < 300 {
            "accepted"
        } else {
            "deploy refused by the fake hook"
        })
    }
}

/// `sha256=<hex HMAC-SHA256 of body>`, computed independently of Greenlight's code.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A production service with a `/health` endpoint that answers 200 or 503.
pub struct FakeProduction {
    server: MockServer,
    healthy: Arc<AtomicBool>,
}

impl FakeProduction {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let healthy = Arc::new(AtomicBool::new(true));
        let flag = healthy.clone();
        Mock::given(method("GET"))
            .and(path("/health"))
            .respond_with(move |_: &Request| {
                if flag.load(Ordering::SeqCst) {
                    ResponseTemplate::new(200).set_body_string("ok")
                } else {
                    ResponseTemplate::new(503).set_body_string("down")
                }
            })
            .mount(&server)
            .await;
        Self { server, healthy }
    }

    /// The URL of the health check, for `smoke`.
    pub fn health_url(&self) -> String {
        format!("{}/health", self.server.uri())
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }
}
