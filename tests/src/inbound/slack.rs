//! Slack's requests: interactions (`payload=` JSON) and slash commands, form-encoded and signed
//! with the app's signing secret (`X-Slack-Signature`, v0).

use serde_json::{json, Value};

use crate::fakes::{FakeSlack, FakeSocketMode};
use crate::signing::{slack_action_ts, slack_signature, slack_trigger_id};
use crate::{fixtures, TestApp};

/// How a test's Slack reaches Greenlight: signed HTTP requests to `/slack/*`, or envelopes
/// over Socket Mode (SPEC §12). Tests written against this run the same over both.
#[derive(Clone)]
pub enum Via {
    /// Requests signed with this secret.
    Http { secret: String },
    /// Envelopes over this fake's WebSockets; the app has no signing secret at all.
    SocketMode(FakeSocketMode),
}

/// Which way Slack reaches the app, for tests that run over both.
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    Http,
    SocketMode,
}

impl Transport {
    /// The driver for this transport; HTTP requests are signed with `secret`.
    pub async fn via(self, slack: &FakeSlack, secret: &str) -> Via {
        match self {
            Transport::Http => Via::http(secret),
            Transport::SocketMode => Via::socket_mode(slack).await,
        }
    }
}

/// Makes each `async fn name(transport: Transport)` two tests, `name::over_http` and
/// `name::over_socket_mode`.
#[macro_export]
macro_rules! over_http_and_socket_mode {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn over_http() {
                super::$name($crate::inbound::slack::Transport::Http).await
            }

            #[tokio::test]
            async fn over_socket_mode() {
                super::$name($crate::inbound::slack::Transport::SocketMode).await
            }
        }
    )*};
}

/// What Slack got back: the HTTP status and JSON body, or (Socket Mode) 200 and the
/// acknowledgement's payload. `Value::Null` when there is none.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Via {
    /// Signed requests with `secret` (which the config must name).
    pub fn http(secret: &str) -> Self {
        Via::Http {
            secret: secret.to_owned(),
        }
    }

    /// Socket Mode against a fake started beside `slack`.
    pub async fn socket_mode(slack: &FakeSlack) -> Self {
        Via::SocketMode(FakeSocketMode::start(slack).await)
    }

    /// `[slack]` for this transport: `http_section` (which names the signing secret) for
    /// HTTP; the app token and no signing secret for Socket Mode.
    pub fn section(&self, slack: &FakeSlack, http_section: String) -> String {
        match self {
            Via::Http { .. } => http_section,
            Via::SocketMode(_) => crate::config::slack_socket_mode_section(slack),
        }
    }

    /// Waits until the app can be reached this way (Socket Mode: a connection is open).
    pub async fn ready(&self) {
        if let Via::SocketMode(fake) = self {
            fake.connected(1).await;
        }
    }

    /// Delivers the interaction `payload`.
    pub async fn interact(&self, app: &TestApp, payload: &Value) -> Answer {
        match self {
            Via::Http { secret } => {
                let response = interact(app, secret, payload).await;
                let status = response.status().as_u16();
                Answer {
                    status,
                    body: response.json().await.unwrap_or(Value::Null),
                }
            }
            Via::SocketMode(fake) => {
                let ack = fake.interact(payload).await;
                Answer {
                    status: 200,
                    body: ack.payload.unwrap_or(Value::Null),
                }
            }
        }
    }

    /// Runs slash command `name` with `text` as `user` in `channel`.
    pub async fn command(
        &self,
        app: &TestApp,
        user: &str,
        channel: &str,
        name: &str,
        text: &str,
    ) -> (u16, Value) {
        match self {
            Via::Http { secret } => command(app, secret, user, channel, name, text).await,
            Via::SocketMode(fake) => {
                let ack = fake
                    .command(command_fields(user, channel, name, text))
                    .await;
                (200, ack.payload.unwrap_or(Value::Null))
            }
        }
    }
}

/// POSTs form-encoded `body` to `path`, signed with `secret` at the app's time plus
/// `skew_secs`, as Slack does.
pub async fn post_signed(
    app: &TestApp,
    path: &str,
    body: Vec<u8>,
    secret: &str,
    skew_secs: i64,
) -> reqwest::Response {
    let timestamp = app.clock.now().timestamp() + skew_secs;
    app.client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", timestamp.to_string())
        .header(
            "x-slack-signature",
            slack_signature(secret, timestamp, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap_or_else(|error| panic!("POST {path}: {error}"))
}

/// An interaction's body: its JSON form-encoded as `payload=`.
pub fn interaction_body(payload: &Value) -> Vec<u8> {
    format!(
        "payload={}",
        url::form_urlencoded::byte_serialize(payload.to_string().as_bytes()).collect::<String>()
    )
    .into_bytes()
}

/// Posts the interaction `payload`, signed with `secret`.
pub async fn interact(app: &TestApp, secret: &str, payload: &Value) -> reqwest::Response {
    post_signed(
        app,
        "/slack/interactions",
        interaction_body(payload),
        secret,
        0,
    )
    .await
}

/// A click by `user` in `channel` on the button `action` with `value`, built from Slack's
/// documented `block_actions` example; refusals go to `response_url`.
pub fn click(user: &str, channel: &str, action: &str, value: &str, response_url: &str) -> Value {
    let mut payload = fixtures::read_json("slack/block_actions_docs.json");
    payload["user"]["id"] = json!(user);
    payload["channel"] = json!({"id": channel, "name": "deploys"});
    payload["response_url"] = json!(response_url);
    payload["actions"][0]["action_id"] = json!(action);
    payload["actions"][0]["value"] = json!(value);
    payload["actions"][0]["action_ts"] = json!(slack_action_ts());
    // As Slack sends it for a message button (the docs' example leaves out the message's
    // `ts`, which slack-morphism requires over Socket Mode).
    payload["container"] = json!({"type": "message", "message_ts": "1700000000.000100",
        "channel_id": channel, "is_ephemeral": false});
    payload
}

/// A `view_submission` of the modal `opened` (the `view` Greenlight sent to `views.open`) by
/// `user` with the inputs' `values` (`{block_id: {action_id: {type, value}}}`), shaped as Slack
/// sends it: the view as opened plus its id, team, state and hash.
pub fn view_submission(opened: &Value, user: &str, values: Value) -> Value {
    let mut view = opened.clone();
    view["id"] = json!("V0FAKEVIEW");
    view["team_id"] = json!("T0CAG");
    view["state"] = json!({ "values": values });
    view["hash"] = json!("1700000000.fakehash");
    view["previous_view_id"] = Value::Null;
    view["root_view_id"] = json!("V0FAKEVIEW");
    view["app_id"] = json!("A0FAKE");
    view["bot_id"] = json!("B0FAKE");
    json!({
        "type": "view_submission",
        "team": {"id": "T0CAG", "domain": "acme-creamery"},
        "user": {"id": user, "username": user, "name": user, "team_id": "T0CAG"},
        "api_app_id": "A0FAKE",
        "token": "Shh_its_a_seekrit",
        "trigger_id": slack_trigger_id(),
        "view": view,
        "response_urls": [],
        "is_enterprise_install": false,
    })
}

/// Slash command `name` with `text` by `user` in `channel`: Slack's documented example body
/// with these fields and a fresh `trigger_id` swapped in.
pub fn command_body(user: &str, channel: &str, name: &str, text: &str) -> Vec<u8> {
    let example = String::from_utf8(fixtures::read("slack/slash_command_weather.body"))
        .expect("fixture is text");
    let mut fields: Vec<(String, String)> = url::form_urlencoded::parse(example.trim().as_bytes())
        .into_owned()
        .filter(|(key, _)| {
            !matches!(
                key.as_str(),
                "user_id" | "command" | "text" | "channel_id" | "trigger_id"
            )
        })
        .collect();
    fields.push(("trigger_id".into(), slack_trigger_id()));
    fields.push(("user_id".into(), user.into()));
    fields.push(("command".into(), name.into()));
    fields.push(("text".into(), text.into()));
    fields.push(("channel_id".into(), channel.into()));
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
        .into_bytes()
}

/// The fields of [`command_body`] as a JSON object: how a slash command arrives over Socket
/// Mode.
pub fn command_fields(user: &str, channel: &str, name: &str, text: &str) -> Value {
    let body = command_body(user, channel, name, text);
    let fields: serde_json::Map<String, Value> = url::form_urlencoded::parse(&body)
        .map(|(key, value)| (key.into_owned(), Value::String(value.into_owned())))
        .collect();
    Value::Object(fields)
}

/// Runs slash command `name` with `text` as `user` in `channel`; returns the status and the
/// JSON answer (`null` when there is none).
pub async fn command(
    app: &TestApp,
    secret: &str,
    user: &str,
    channel: &str,
    name: &str,
    text: &str,
) -> (u16, Value) {
    let body = command_body(user, channel, name, text);
    let response = post_signed(app, "/slack/commands", body, secret, 0).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}
