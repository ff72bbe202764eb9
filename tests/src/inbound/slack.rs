//! Slack's requests: interactions (`payload=` JSON) and slash commands, form-encoded and signed
//! with the app's signing secret (`X-Slack-Signature`, v0).

use serde_json::{json, Value};

use crate::signing::{slack_action_ts, slack_signature, slack_trigger_id};
use crate::{fixtures, TestApp};

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
    payload
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
