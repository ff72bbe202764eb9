//! Slack Socket Mode (SPEC §12): Greenlight opens WebSockets to Slack instead of Slack
//! calling `/slack/*`, so it works without a public URL. slack-morphism's client keeps the
//! connections (two, each reopened on a `disconnect` envelope or a drop while the other keeps
//! receiving) and acknowledges every envelope with what the callback returns.
//!
//! Envelopes go to the same code as the HTTP routes (`inbound::handle_interaction`,
//! `inbound::handle_command`): same authorization, same de-duplication, same replies. The
//! WebSocket is authenticated by the app token, so there is no signature to check.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use slack_morphism::api::SlackApiAppsConnectionOpenRequest;
use slack_morphism::errors::SlackClientError;
use slack_morphism::events::{
    SlackCommandEvent, SlackCommandEventResponse, SlackInteractionEvent, SlackInteractionResponse,
};
use slack_morphism::hyper_tokio::SlackClientHyperHttpsConnector;
use slack_morphism::listener::{SlackClientEventsListenerEnvironment, SlackClientEventsUserState};
use slack_morphism::{
    SlackApiToken, SlackApiTokenType, SlackApiTokenValue, SlackClientSocketModeConfig,
    SlackClientSocketModeListener, SlackMessageContent, SlackMessageResponseType,
    SlackSocketModeListenerCallbacks,
};

use super::client::SlackClient;
use super::inbound::{self, Interaction, SlackAnswer, SlackCommand};
use crate::background::StopSignal;
use crate::connections::Transport;
use crate::http::AppState;
use crate::secret::Secret;

/// slack-morphism reads one connection's envelopes one after another and acknowledges each
/// only when its callback returns. So that envelopes queued behind a slow one are still
/// acknowledged within Slack's 3 s, each waits at most this long for its work; the work goes
/// on, and its effects reach the channel through the outbox.
const ENVELOPE_BUDGET: Duration = Duration::from_millis(1000);

/// The Slack client type slack-morphism's listener runs on (our connector, `api_url`'s base).
type Api = slack_morphism::SlackClient<SlackClientHyperHttpsConnector>;

/// What the callbacks reach. slack-morphism's callbacks are plain `fn` pointers, so this
/// travels as the listener's user state.
struct Handlers {
    state: AppState,
    client: Arc<SlackClient>,
    /// `hello`s received: the first `CONNECTIONS` open the connections, every later one is a
    /// connection reopened.
    hellos: AtomicU32,
}

/// Connections kept open at once (slack-morphism's default, and what SPEC §12 relies on: one
/// keeps receiving while the other reconnects).
const CONNECTIONS: u32 = SlackClientSocketModeConfig::DEFAULT_CONNECTIONS_COUNT;

/// Keeps the Socket Mode connections until `stop`, then closes them.
pub async fn run(
    state: AppState,
    client: Arc<SlackClient>,
    app_token: Secret,
    mut stop: StopSignal,
) {
    let connections = state.connections.clone();
    connections.set(Transport::SlackSocketMode, "connecting");
    // The WebSocket's TLS (tokio-tungstenite) takes rustls' process-wide provider, which a
    // build with two providers compiled in does not have (REFERENCE §5.4): name ring, the one
    // the rest of Greenlight uses. Already installed is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let token = SlackApiToken::new(SlackApiTokenValue::new(app_token.expose().to_owned()))
        .with_token_type(SlackApiTokenType::App);
    let api = Arc::new(client.api().clone());
    // slack-morphism only logs a refused `apps.connections.open` and retries every 30 s; ask
    // once first so a wrong token shows in the status, not only in the logs.
    if let Err(why) = probe(&api, &token).await {
        tracing::error!(%why, "Slack Socket Mode cannot connect (slack.app_token)");
        connections.set(
            Transport::SlackSocketMode,
            format!("not connected: {why}; retrying every 30 s"),
        );
    }
    let handlers = Handlers {
        state,
        client,
        hellos: AtomicU32::new(0),
    };
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(api)
            .with_error_handler(on_error)
            .with_user_state(handlers),
    );
    let callbacks = SlackSocketModeListenerCallbacks::new()
        // slack-morphism does not export the `hello` type by any path; a closure that captures
        // nothing is the `fn` it wants, with the type inferred.
        .with_hello_events(|hello, _api, states| async move {
            on_hello(hello.num_connections, &hello.debug_info.host, states).await
        })
        .with_interaction_events(on_interaction)
        .with_command_events(on_command);
    let listener = SlackClientSocketModeListener::new(
        &SlackClientSocketModeConfig::new(),
        environment,
        callbacks,
    );
    if let Err(error) = listener.listen_for(&token).await {
        tracing::error!(%error, "starting Slack Socket Mode failed");
        connections.set(Transport::SlackSocketMode, format!("not started: {error}"));
        return;
    }
    // Not `serve()`: it installs its own signal handlers; Greenlight's shutdown stops this.
    listener.start().await;
    stop.stopped().await;
    listener.shutdown().await;
    connections.set(Transport::SlackSocketMode, "stopped");
}

/// Asks Slack for a connection URL, which is then left unused (each is good for one
/// connection, and expires).
async fn probe(api: &Api, token: &SlackApiToken) -> Result<(), String> {
    let session = api.open_session(token);
    let request = SlackApiAppsConnectionOpenRequest::new();
    let asking = session.apps_connections_open(&request);
    match tokio::time::timeout(super::client::CALL_TIMEOUT, asking).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(SlackClientError::ApiError(error))) => Err(format!(
            "Slack refused apps.connections.open ({})",
            error.code
        )),
        Ok(Err(error)) => Err(format!("apps.connections.open failed: {error}")),
        Err(_) => Err("apps.connections.open did not answer".to_owned()),
    }
}

async fn handlers(states: &SlackClientEventsUserState) -> Option<(AppState, Arc<SlackClient>)> {
    let storage = states.read().await;
    storage
        .get_user_state::<Handlers>()
        .map(|handlers| (handlers.state.clone(), handlers.client.clone()))
}

async fn on_hello(open: u32, host: &str, states: SlackClientEventsUserState) {
    let storage = states.read().await;
    let Some(handlers) = storage.get_user_state::<Handlers>() else {
        return;
    };
    let seen = handlers.hellos.fetch_add(1, Ordering::SeqCst) + 1;
    let connections = &handlers.state.connections;
    if seen > CONNECTIONS {
        // A connection came back after a `disconnect`, a close or a drop.
        connections.reconnecting(Transport::SlackSocketMode, "a connection was reopened");
    }
    tracing::info!(host, open, "Slack Socket Mode connection ready");
    connections.set(Transport::SlackSocketMode, "connected");
}

/// slack-morphism's error handler: protocol errors and frames it could not read. Dropped
/// connections are reopened by slack-morphism; the status says so until the next `hello`.
fn on_error(
    error: Box<dyn std::error::Error + Send + Sync>,
    _api: Arc<Api>,
    states: SlackClientEventsUserState,
) -> http::StatusCode {
    tracing::warn!(%error, "Slack Socket Mode error");
    let connection_failed = error
        .downcast_ref::<SlackClientError>()
        .is_some_and(|error| matches!(error, SlackClientError::SocketModeProtocolError(_)));
    if connection_failed {
        if let Ok(storage) = states.try_read() {
            if let Some(handlers) = storage.get_user_state::<Handlers>() {
                handlers.state.connections.set(
                    Transport::SlackSocketMode,
                    "reconnecting: the connection failed",
                );
            }
        }
    }
    // "Success" makes slack-morphism acknowledge the envelope anyway: it would fail the same
    // way if Slack sent it again.
    http::StatusCode::OK
}

async fn on_interaction(
    event: SlackInteractionEvent,
    _api: Arc<Api>,
    states: SlackClientEventsUserState,
) -> Result<SlackInteractionResponse, Box<dyn std::error::Error + Send + Sync>> {
    let Some((state, client)) = handlers(&states).await else {
        return Ok(SlackInteractionResponse::Empty);
    };
    // Read as the HTTP route reads it, so both paths see the same fields.
    let payload = serde_json::to_value(&event)?;
    let replay_key = digest(&payload);
    let interaction: Interaction = match serde_json::from_value(payload) {
        Ok(interaction) => interaction,
        Err(error) => {
            tracing::warn!(%error, "a Slack Socket Mode interaction could not be read");
            return Ok(SlackInteractionResponse::Empty);
        }
    };
    let work_state = state.clone();
    let work = async move {
        inbound::handle_interaction(&work_state, Some(client), interaction, &replay_key).await
    };
    let answer = within_budget(&state, "slack socket interaction", work, SlackAnswer::Empty).await;
    Ok(match answer {
        SlackAnswer::Json(body) => match serde_json::from_value(body) {
            Ok(response) => SlackInteractionResponse::ViewSubmission(response),
            Err(error) => {
                tracing::error!(%error, "an interaction answer is not a view response");
                SlackInteractionResponse::Empty
            }
        },
        SlackAnswer::Empty => SlackInteractionResponse::Empty,
    })
}

async fn on_command(
    event: SlackCommandEvent,
    _api: Arc<Api>,
    states: SlackClientEventsUserState,
) -> Result<SlackCommandEventResponse, Box<dyn std::error::Error + Send + Sync>> {
    let Some((state, _client)) = handlers(&states).await else {
        return Ok(command_reply(inbound::ephemeral(NOT_READY)));
    };
    let form = SlackCommand {
        command: event.command.0.clone(),
        text: event.text.clone().unwrap_or_default(),
        user_id: event.user_id.0.clone(),
        response_url: Some(event.response_url.0.to_string()),
        trigger_id: Some(event.trigger_id.0.clone()),
    };
    let replay_key = digest(&serde_json::to_value(&event)?);
    let work_state = state.clone();
    let work = async move { inbound::handle_command(&work_state, form, &replay_key).await };
    let late = inbound::ephemeral(inbound::STILL_APPLYING);
    let answer = within_budget(&state, "slack socket command", work, late).await;
    Ok(command_reply(answer))
}

const NOT_READY: &str = "Greenlight is starting; please try again in a moment.";

/// Runs `work` for at most [`ENVELOPE_BUDGET`]: `late` when it is still running (it goes
/// on); a refusal or a lost task is logged and answered with nothing.
async fn within_budget<F>(state: &AppState, name: &str, work: F, late: SlackAnswer) -> SlackAnswer
where
    F: std::future::Future<Output = Result<SlackAnswer, crate::http::ApiError>> + Send + 'static,
{
    match inbound::answer_within(state, name, ENVELOPE_BUDGET, work, late).await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::warn!(?error, name, "a Slack Socket Mode envelope was refused");
            SlackAnswer::Empty
        }
    }
}

/// A command's answer as the acknowledgement's payload. The reply is one of our own
/// messages; one slack-morphism cannot read is sent as its text alone.
fn command_reply(answer: SlackAnswer) -> SlackCommandEventResponse {
    let body = match answer {
        SlackAnswer::Json(body) => body,
        SlackAnswer::Empty => {
            return SlackCommandEventResponse::new(SlackMessageContent::new());
        }
    };
    serde_json::from_value(body.clone()).unwrap_or_else(|error| {
        tracing::error!(%error, "a command reply could not be sent as Block Kit; sending its text");
        let text = body["text"].as_str().unwrap_or_default().to_owned();
        SlackCommandEventResponse::new(SlackMessageContent::new().with_text(text))
            .with_response_type(SlackMessageResponseType::Ephemeral)
    })
}

/// What identifies a delivery of this payload when it has no id of its own: Slack sends a
/// redelivered envelope with the same payload.
fn digest(payload: &Value) -> String {
    hex::encode(Sha256::digest(payload.to_string().as_bytes()))
}
