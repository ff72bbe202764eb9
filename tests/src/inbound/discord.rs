//! Discord's interactions: JSON bodies signed with the application's Ed25519 key over
//! `timestamp ‖ body` (`X-Signature-Ed25519`, `X-Signature-Timestamp`).

use serde_json::{json, Value};

use crate::config::DISCORD_APPLICATION_ID;
use crate::signing::{discord_interaction_id, DiscordSigner};
use crate::{fixtures, TestApp};

/// POSTs `body` to `/discord/interactions` with exactly the signature headers given.
pub async fn post(
    app: &TestApp,
    body: &[u8],
    signature: Option<String>,
    timestamp: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/discord/interactions"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("x-signature-ed25519", signature);
    }
    if let Some(timestamp) = timestamp {
        request = request.header("x-signature-timestamp", timestamp);
    }
    request.send().await.expect("POST /discord/interactions")
}

/// POSTs `body` signed by `signer` at `timestamp` (unix seconds).
pub async fn post_signed_at(
    app: &TestApp,
    signer: &DiscordSigner,
    body: &[u8],
    timestamp: i64,
) -> reqwest::Response {
    let timestamp = timestamp.to_string();
    let signature = signer.sign(&timestamp, body);
    post(app, body, Some(signature), Some(&timestamp)).await
}

/// Posts the interaction `payload` signed now; returns the status and the JSON answer
/// (`null` when there is none).
pub async fn interact(app: &TestApp, signer: &DiscordSigner, payload: &Value) -> (u16, Value) {
    let body = payload.to_string();
    let response = post_signed_at(app, signer, body.as_bytes(), app.clock.now().timestamp()).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A click by `user` in `channel` on the button `custom_id`, built from Discord's documented
/// component interaction.
pub fn click(user: &str, channel: &str, custom_id: &str) -> Value {
    let mut payload = fixtures::read_json("discord/component_interaction_button.json");
    payload["id"] = json!(discord_interaction_id());
    payload["application_id"] = json!(DISCORD_APPLICATION_ID);
    payload["channel_id"] = json!(channel);
    payload["member"]["user"]["id"] = json!(user);
    payload["data"] = json!({"custom_id": custom_id, "component_type": 2});
    payload
}

/// Slash command `name` with `options` by `user` in `channel`, as Discord sends it.
pub fn slash_command(user: &str, channel: &str, name: &str, options: Value) -> Value {
    json!({
        "id": discord_interaction_id(),
        "application_id": DISCORD_APPLICATION_ID, "type": 2, "token": "interaction-token",
        "version": 1, "guild_id": "290926798626357999", "channel_id": channel,
        "member": {"user": {"id": user, "username": "someone"}, "roles": []},
        "data": {"id": "771825006014889984", "name": name, "type": 1, "options": options},
    })
}
