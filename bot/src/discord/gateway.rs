//! The Discord Gateway (SPEC §12, `[discord] gateway = true`): an outbound WebSocket, so
//! Greenlight needs no public URL. serenity keeps the connection (IDENTIFY, heartbeats, RESUME
//! with replay, reconnects); every `INTERACTION_CREATE` goes through the same
//! [`interactions::answer`] as `POST /discord/interactions`, minus the signature check (the
//! event arrived on the bot's own authenticated connection), and its answer is POSTed to the
//! interaction callback on the REST API (`api_url`) within the same 3 seconds.
//!
//! Interactions are read from the raw event by our own parser, not serenity's models: when
//! serenity reads the event, its `Interaction` is serialized back to JSON; when it cannot (its
//! models require fields such as `member.flags` or `attachment_size_limit`, REFERENCE §4.2),
//! the event reaches us as `Event::Unknown` with the raw payload, which we read all the same.
//!
//! Intents: none. Interactions are sent whatever the intents, so asking for none means Discord
//! sends nothing else to parse, and no privileged intent can be refused (close code 4014).

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use serenity::all::{
    ApplicationId, ClientBuilder, ConnectionStage, Context, Event, EventHandler, GatewayError,
    GatewayIntents, HttpBuilder, Interaction, RawEventHandler, Ready, ResumedEvent, ShardId,
    ShardManager, ShardStageUpdateEvent,
};
use serenity::async_trait;
use tokio::time::{timeout, timeout_at, Instant};

use super::client::DiscordClient;
use super::interactions::{self, Inbound, ACK_BUDGET};
use super::message::{InteractionResponse, Message};
use super::notices;
use crate::background::{Background, StopSignal};
use crate::config::DiscordConfig;
use crate::connections::{Connections, Transport};
use crate::http::AppState;

/// What the answer may take beyond [`ACK_BUDGET`] before a holding answer is sent instead
/// (every wait inside is bounded by the budget already; this is the last guard of the 3 s).
const ANSWER_GRACE: Duration = Duration::from_millis(250);
/// Waits between attempts to learn the Gateway's URL, and after serenity gave up.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);
/// How long serenity gets to close the shard cleanly at shutdown.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(6);

const TRANSPORT: Transport = Transport::DiscordGateway;

/// Keeps the Gateway connection until `stop`; started by `App::serve` when
/// `[discord] gateway = true`. A refusal that retrying cannot fix (a bad token, refused
/// intents) is logged and shown in the status, and the task waits for shutdown.
pub async fn run(app: AppState, client: Arc<DiscordClient>, mut stop: StopSignal) {
    let Some(config) = app.config.discord.clone() else {
        return;
    };
    let connections = app.connections.clone();
    connections.set(TRANSPORT, "connecting");
    tracing::info!(api_url = %config.api_url, "connecting to the Discord Gateway (no intents)");
    let mut wait = RETRY_FIRST;
    loop {
        // It watches `stop` itself, to close the connection cleanly.
        match connect_and_run(&app, &client, &config, stop.clone()).await {
            Ended::Stopped => return,
            Ended::Refused(why) => {
                tracing::error!(%why, "the Discord Gateway refused Greenlight; not retrying");
                connections.set(TRANSPORT, format!("stopped: {why}"));
                stop.stopped().await;
                return;
            }
            Ended::Failed(why) => {
                tracing::warn!(%why, retry_in_s = wait.as_secs(), "the Discord Gateway failed");
                connections.reconnecting(TRANSPORT, &why);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.stopped() => return,
        }
        wait = (wait * 2).min(RETRY_MAX);
    }
}

/// How one run of serenity's client ended.
enum Ended {
    /// Shutdown was asked for.
    Stopped,
    /// Discord refused in a way retrying cannot fix.
    Refused(String),
    /// Anything else; worth another try.
    Failed(String),
}

async fn connect_and_run(
    app: &AppState,
    client: &Arc<DiscordClient>,
    config: &DiscordConfig,
    mut stop: StopSignal,
) -> Ended {
    let http = rest_client(config);
    // serenity falls back to the real Discord, silently, when this call fails; ask first so a
    // failure here is a visible retry, and the URL it gives is the one used.
    let asking = timeout(super::client::CALL_TIMEOUT, http.get_gateway());
    let url = tokio::select! {
        answer = asking => match answer {
            Ok(Ok(gateway)) => gateway.url,
            Ok(Err(error)) => {
                return Ended::Failed(format!(
                    "GET /api/v10/gateway on {} failed: {}",
                    config.api_url,
                    error_chain(&error)
                ))
            }
            Err(_) => return Ended::Failed("GET /api/v10/gateway timed out".to_owned()),
        },
        () = stop.stopped() => return Ended::Stopped,
    };
    let handler = Arc::new(Handler {
        inbound: Arc::new(Inbound::new(app.clone(), Some(client.clone()))),
        client: client.clone(),
        background: app.background.clone(),
        link: Link::new(app.connections.clone()),
    });
    let built = ClientBuilder::new_with_http(http, GatewayIntents::empty())
        .raw_event_handler(RawHandler(handler.clone()))
        .event_handler(StageHandler(handler.clone()));
    // The builder asks again: the same answer, or serenity's real-Discord fallback, which the
    // URL we got replaces.
    let mut serenity = match built.await {
        Ok(serenity) => serenity,
        Err(error) => return Ended::Failed(format!("starting the Gateway client: {error}")),
    };
    *serenity.ws_url.lock().await = url;
    let _ = handler
        .link
        .manager
        .set(Arc::downgrade(&serenity.shard_manager));
    let shards = serenity.shard_manager.clone();
    let started = serenity.start();
    tokio::pin!(started);
    tokio::select! {
        ended = &mut started => {
            // serenity's shard queuer outlives a failed start; tell it to stop, off this path.
            app.background.spawn("discord gateway cleanup", async move {
                shards.shutdown_all().await;
            });
            match ended {
                Ok(()) => Ended::Failed("the Gateway connection ended".to_owned()),
                Err(serenity::Error::Gateway(error)) => match refusal(&error) {
                    Some(why) => Ended::Refused(why),
                    None => Ended::Failed(format!("Gateway error: {error}")),
                },
                Err(error) => Ended::Failed(format!("Gateway client error: {error}")),
            }
        }
        () = stop.stopped() => {
            shards.shutdown_all().await;
            // serenity returns once its shard closed; a shard still connecting never does.
            let _ = timeout(SHUTDOWN_WAIT, &mut started).await;
            Ended::Stopped
        }
    }
}

/// serenity's REST client pointed at `api_url` (its `proxy` rewrites `https://discord.com`),
/// with the application id known before any READY. Its rate limiter is off because it builds
/// requests without the proxy (serenity 0.12.5 `http/ratelimiting.rs` passes `None`), so it
/// would ask the real Discord; serenity makes one call here (`GET /gateway`) and Greenlight's
/// own calls go through `client.rs` and the outbox's pacing.
fn rest_client(config: &DiscordConfig) -> serenity::http::Http {
    HttpBuilder::new(config.bot_token.expose())
        .proxy(config.api_url.as_str().trim_end_matches('/'))
        .ratelimiter_disabled(true)
        .application_id(application_id(config))
        .build()
}

/// An error and its causes on one line (serenity's own text hides reqwest's reason).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

fn application_id(config: &DiscordConfig) -> ApplicationId {
    // A `Snowflake` is never 0, which `ApplicationId::new` requires.
    ApplicationId::new(config.application_id.get())
}

/// The close codes that retrying cannot fix (Discord's gateway close codes), in words an
/// operator can act on.
fn refusal(error: &GatewayError) -> Option<String> {
    Some(match error {
        GatewayError::InvalidAuthentication => {
            "Discord refused the bot token (close code 4004); check discord.bot_token".to_owned()
        }
        GatewayError::DisallowedGatewayIntents => {
            "Discord refused the intents (close code 4014: not enabled for this app)".to_owned()
        }
        GatewayError::InvalidGatewayIntents => {
            "Discord refused the intents (close code 4013: invalid intents)".to_owned()
        }
        _ => return None,
    })
}

/// What the Gateway's events reach.
struct Handler {
    inbound: Arc<Inbound>,
    client: Arc<DiscordClient>,
    background: Background,
    link: Link,
}

/// The connection's state as `connections.rs` shows it, from serenity's events.
struct Link {
    connections: Connections,
    seen: Mutex<Seen>,
    /// serenity's shard manager, once built (weak: it holds this handler).
    manager: OnceLock<Weak<ShardManager>>,
}

/// What the connection went through.
#[derive(Default)]
struct Seen {
    /// A session was established before: a later READY or RESUMED is a reconnect.
    connected_before: bool,
}

impl Link {
    fn new(connections: Connections) -> Self {
        Self {
            connections,
            seen: Mutex::default(),
            manager: OnceLock::new(),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A session is up (READY or RESUMED). Each reconnect is counted here, once, when it
    /// completed: serenity reports no stage change for a RECONNECT (op 7), and its events are
    /// handled in tasks of their own, in no guaranteed order.
    fn connected(&self, shard: u32, how: &str) {
        let again = std::mem::replace(&mut self.seen().connected_before, true);
        if again {
            self.connections.reconnecting(TRANSPORT, how);
        }
        tracing::info!(shard, how, "connected to the Discord Gateway");
        self.connections
            .set(TRANSPORT, format!("connected, shard {shard}"));
    }

    /// serenity's shard moved to `new`; `now` is its stage as serenity's manager reports it
    /// when this is handled, so a late event never hides a connection already back.
    fn stage_changed(&self, new: ConnectionStage, now: Option<ConnectionStage>) {
        if new == ConnectionStage::Connected || now == Some(ConnectionStage::Connected) {
            return;
        }
        let why = match new {
            ConnectionStage::Resuming => "resuming the session",
            ConnectionStage::Identifying => "identifying again",
            ConnectionStage::Handshake => "waiting for the Gateway's HELLO",
            _ => "connecting again",
        };
        tracing::info!(?new, "Discord Gateway connection stage");
        let state = if self.seen().connected_before {
            "reconnecting"
        } else {
            "connecting"
        };
        self.connections.set(TRANSPORT, format!("{state}: {why}"));
    }

    /// The stage serenity's manager reports for `shard` now.
    async fn stage_now(&self, shard: ShardId) -> Option<ConnectionStage> {
        let manager = self.manager.get()?.upgrade()?;
        let runners = manager.runners.lock().await;
        runners.get(&shard).map(|runner| runner.stage)
    }
}

impl Handler {
    /// Answers one interaction: parsed by our parser, answered by the shared core within the
    /// budget that started when the event arrived, the answer POSTed to its callback.
    async fn interaction(self: Arc<Self>, payload: Vec<u8>, received: Instant) {
        let deadline = received + ACK_BUDGET;
        let interaction = match interactions::parse_interaction(&payload) {
            Ok(interaction) => interaction,
            Err(error) => {
                // Without an id and token there is nothing to answer.
                tracing::warn!(detail = %error.detail, "an INTERACTION_CREATE Greenlight cannot read");
                return;
            }
        };
        let (id, token) = (interaction.id.clone(), interaction.token.clone());
        let answering = interactions::answer(&self.inbound, interaction, deadline);
        let response = match timeout_at(deadline + ANSWER_GRACE, answering).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) if error.status.is_client_error() => ephemeral(&format!(
                "Greenlight could not read this interaction: {}",
                error.detail
            )),
            Ok(Err(_)) => ephemeral("Greenlight could not do that just now; please try again."),
            Err(_) => ephemeral(notices::UNAVAILABLE),
        };
        // The Gateway never sends PING; nothing to answer if it did.
        if response == InteractionResponse::Pong {
            return;
        }
        if let Err(error) = self
            .client
            .create_interaction_response(&id, &token, &response.to_json())
            .await
        {
            tracing::warn!(%error, interaction = %id, "answering a Gateway interaction failed");
        }
    }
}

fn ephemeral(text: &str) -> InteractionResponse {
    InteractionResponse::Message(Message::ephemeral(text))
}

/// Every dispatch, as serenity read it (or could not).
struct RawHandler(Arc<Handler>);

#[async_trait]
impl RawEventHandler for RawHandler {
    async fn raw_event(&self, _ctx: Context, event: Event) {
        let received = Instant::now();
        let payload = match event {
            Event::InteractionCreate(event) => interaction_json(&event.interaction),
            Event::Unknown(unknown) if unknown.kind == "INTERACTION_CREATE" => {
                serde_json::to_vec(&unknown.value)
            }
            _ => return,
        };
        let payload = match payload {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, "an INTERACTION_CREATE could not be re-encoded");
                return;
            }
        };
        let handler = self.0.clone();
        // A tracked task: its panic is counted, and shutdown waits for the answer.
        self.0.background.spawn(
            "discord gateway interaction",
            handler.interaction(payload, received),
        );
    }
}

/// An interaction serenity read, as JSON again. serenity writes every field back except
/// `type`, which it keeps as the enum's variant.
fn interaction_json(interaction: &Interaction) -> serde_json::Result<Vec<u8>> {
    let kind: u8 = match interaction {
        Interaction::Ping(_) => 1,
        Interaction::Command(_) => 2,
        Interaction::Component(_) => 3,
        Interaction::Autocomplete(_) => 4,
        Interaction::Modal(_) => 5,
        // serenity refuses unknown types, so none reaches here; our parser refuses 0.
        _ => 0,
    };
    let mut value = serde_json::to_value(interaction)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("type".to_owned(), kind.into());
    }
    serde_json::to_vec(&value)
}

/// The connection's life: READY, RESUMED and serenity's stage changes.
struct StageHandler(Arc<Handler>);

#[async_trait]
impl EventHandler for StageHandler {
    async fn ready(&self, ctx: Context, _ready: Ready) {
        self.0.link.connected(ctx.shard_id.0, "identified again");
    }

    async fn resume(&self, ctx: Context, _event: ResumedEvent) {
        self.0.link.connected(ctx.shard_id.0, "resumed the session");
    }

    async fn shard_stage_update(&self, _ctx: Context, event: ShardStageUpdateEvent) {
        let now = self.0.link.stage_now(event.shard_id).await;
        self.0.link.stage_changed(event.new, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refusals_that_retrying_cannot_fix_are_named() {
        let why = refusal(&GatewayError::InvalidAuthentication).unwrap_or_default();
        assert!(
            why.contains("4004") && why.contains("discord.bot_token"),
            "{why}"
        );
        let why = refusal(&GatewayError::DisallowedGatewayIntents).unwrap_or_default();
        assert!(why.contains("4014"), "{why}");
        assert_eq!(refusal(&GatewayError::HeartbeatFailed), None);
        assert_eq!(refusal(&GatewayError::NoSessionId), None);
    }

    #[test]
    fn the_status_follows_the_connection() {
        use ConnectionStage::{Connected, Identifying, Resuming};
        let connections = Connections::new();
        let link = Link::new(connections.clone());
        let shown = || connections.describe(TRANSPORT).unwrap_or_default();
        link.stage_changed(Identifying, Some(Identifying));
        assert_eq!(shown(), "gateway: connecting: identifying again");
        link.connected(0, "identified again");
        assert_eq!(shown(), "gateway: connected, shard 0");
        link.stage_changed(Resuming, Some(Resuming));
        assert_eq!(shown(), "gateway: reconnecting: resuming the session");
        link.connected(0, "resumed the session");
        assert_eq!(shown(), "gateway: connected, shard 0");
        // Handled late, after the connection came back: it changes nothing.
        link.stage_changed(Resuming, Some(Connected));
        assert_eq!(shown(), "gateway: connected, shard 0");
    }

    #[test]
    fn an_interaction_serenity_read_is_read_again_with_its_type() {
        let delivered = json!({
            "id": "900000000000000001", "application_id": "1100000000000000001", "type": 3,
            "token": "tok", "version": 1, "guild_id": "290926798626357999",
            "channel_id": "1100000000000000000", "locale": "en-US", "entitlements": [],
            "app_permissions": "0", "attachment_size_limit": 26214400,
            "authorizing_integration_owners": {"0": "290926798626357999"}, "context": 0,
            "data": {"custom_id": "approve:7", "component_type": 2},
            "member": {"user": {"id": "100000000000000002", "username": "bob",
                "discriminator": "0", "avatar": null}, "roles": [], "deaf": false,
                "mute": false, "flags": 0, "joined_at": "2024-01-02T03:04:05.000000+00:00"},
            "message": {"id": "1", "channel_id": "1100000000000000000", "type": 0,
                "content": "", "timestamp": "2024-01-02T03:04:05.000000+00:00",
                "edited_timestamp": null, "tts": false, "mention_everyone": false,
                "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
                "pinned": false, "author": {"id": "1", "username": "g",
                    "discriminator": "0", "avatar": null}},
        });
        let interaction: Interaction =
            serde_json::from_value(delivered).expect("serenity reads a full delivery");
        let json = interaction_json(&interaction).expect("re-encoded");
        let ours = interactions::parse_interaction(&json).expect("our parser reads it");
        assert_eq!(ours.kind, 3);
        assert_eq!(ours.id, "900000000000000001");
        assert_eq!(ours.token, "tok");
        let value: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
        assert_eq!(value["member"]["user"]["id"], "100000000000000002");
        assert_eq!(value["data"]["custom_id"], "approve:7");
    }
}
