//! Discord's interactions, over either transport: JSON bodies signed with the application's
//! Ed25519 key over `timestamp ‖ body` (`X-Signature-Ed25519`, `X-Signature-Timestamp`) and
//! POSTed to `/discord/interactions`, or `INTERACTION_CREATE` dispatches on the (fake) Gateway
//! answered through the interaction callback. [`Via`] delivers one either way, so the same
//! test body runs over both ([`over_both_transports!`](crate::over_both_transports)).

use serde_json::{json, Value};

use crate::config::{discord_gateway_section, discord_section, DISCORD_APPLICATION_ID};
use crate::fakes::{FakeDiscord, FakeGateway, Inbox};
use crate::signing::{discord_interaction_id, DiscordSigner};
use crate::{fixtures, TestApp};

/// How Discord reaches Greenlight in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `POST /discord/interactions`, signed.
    Http,
    /// The Gateway, with `[discord] gateway = true` and no public key.
    Gateway,
}

/// Delivers interactions over one [`Transport`] and returns Greenlight's answer either way.
pub enum Via {
    Http(DiscordSigner),
    Gateway {
        gateway: FakeGateway,
        /// The fake REST API's inbox, where the callbacks arrive.
        rest: Inbox,
    },
}

impl Via {
    /// Prepares `transport` next to `discord` (for the Gateway: starts it and has `discord`
    /// name it in `GET /api/v10/gateway`).
    pub async fn new(transport: Transport, discord: &FakeDiscord) -> Self {
        match transport {
            Transport::Http => Self::Http(DiscordSigner::new()),
            Transport::Gateway => Self::Gateway {
                gateway: discord.start_gateway().await,
                rest: discord.inbox().clone(),
            },
        }
    }

    /// The `[discord]` section for this transport, talking to `discord`.
    pub fn section(&self, discord: &FakeDiscord) -> String {
        match self {
            Self::Http(signer) => discord_section(&signer.public_key_hex(), &discord.api_url()),
            Self::Gateway { .. } => discord_gateway_section(&discord.api_url()),
        }
    }

    /// The fake Gateway, when this is the Gateway.
    pub fn gateway(&self) -> Option<&FakeGateway> {
        match self {
            Self::Http(_) => None,
            Self::Gateway { gateway, .. } => Some(gateway),
        }
    }

    /// Delivers `payload`; returns the HTTP status (200 for the Gateway's callback) and the
    /// interaction response.
    pub async fn interact(&self, app: &TestApp, payload: &Value) -> (u16, Value) {
        match self {
            Self::Http(signer) => interact(app, signer, payload).await,
            Self::Gateway { gateway, rest } => {
                gateway.dispatch_interaction(payload).await;
                let answer = callback(rest, payload).await;
                (200, answer.body)
            }
        }
    }
}

/// The callback Greenlight POSTed for `payload` (by its id and token).
pub async fn callback(rest: &Inbox, payload: &Value) -> crate::fakes::Recorded {
    let id = payload["id"].as_str().unwrap_or_default();
    let token = payload["token"]
        .as_str()
        .unwrap_or("gateway-interaction-token");
    let path = format!("/api/v10/interactions/{id}/{token}/callback");
    rest.next(&format!("callback of interaction {id}"), move |r| {
        r.method == "POST" && r.path == path
    })
    .await
}

/// Runs each named test body (`async fn name(transport: Transport)` in the calling file)
/// twice, as `name::over_http` and `name::over_the_gateway`.
#[macro_export]
macro_rules! over_both_transports {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::inbound::discord::Transport;

            #[tokio::test]
            async fn over_http() {
                super::$name(Transport::Http).await
            }

            #[tokio::test]
            async fn over_the_gateway() {
                super::$name(Transport::Gateway).await
            }
        }
    )*};
}

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
