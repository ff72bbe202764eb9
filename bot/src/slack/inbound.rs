//! Slack's inbound routes: `POST /slack/interactions` (buttons, the reject-reason modal) and
//! `POST /slack/commands`. Every request is verified as Slack signs it before it is parsed, and
//! answered within Slack's 3-second deadline whatever happens downstream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use axum::{Extension, Router};
use greenlight_commands::chat;
use greenlight_commands::{Platform, Refusal, Verdict};
use serde::Deserialize;
use serde_json::{json, Value};

use super::card::{APPROVE_ACTION_ID, REJECT_ACTION_ID};
use super::client::SlackClient;
use super::notices::{
    reject_reason_modal, REASON_ACTION_ID, REASON_BLOCK_ID, REJECT_MODAL_CALLBACK_ID,
    ROLLBACK_CANCEL_ACTION_ID, ROLLBACK_CONFIRM_ACTION_ID,
};
use crate::background::Deadline;
use crate::cards::CardKey;
use crate::chat::ReplyAddress;
use crate::engine::{ChatActor, CommandReply, DecisionReply, InboundDelivery, ReplyTo};
use crate::http::{ApiError, AppState, RouteKit};
use crate::secret::SecretList;
use crate::verify;

/// Slack shows the user an error after 3 s; leave room for the network.
const ACK_BUDGET: Duration = Duration::from_millis(2500);

/// Slack's client, for the one inline call (opening a modal); `None` without `[slack]`.
#[derive(Clone)]
struct Client(Option<Arc<SlackClient>>);

/// `POST /slack/interactions` and `POST /slack/commands`, signed by Slack.
pub fn routes(kit: &RouteKit, client: Option<Arc<SlackClient>>) -> Router<AppState> {
    Router::new()
        .route(
            "/slack/interactions",
            kit.signed(post(interactions), check_headers),
        )
        .route("/slack/commands", kit.signed(post(commands), check_headers))
        .layer(Extension(Client(client)))
}

fn reply_to(address: ReplyAddress) -> ReplyTo {
    ReplyTo::Chat {
        platform: Platform::Slack,
        address,
    }
}

async fn interactions(
    State(state): State<AppState>,
    Extension(Client(client)): Extension<Client>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers, &body)?;
    let interaction = match parse_interaction(&body)? {
        SlackInteraction::Challenge(challenge) => {
            return Ok(Json(json!({ "challenge": challenge })).into_response())
        }
        SlackInteraction::Interaction(interaction) => interaction,
    };
    let replay_key = signature_of(&headers);
    let work_state = state.clone();
    let work =
        async move { handle_interaction(&work_state, client, interaction, &replay_key).await };
    let answer = answer_within(
        &state,
        "slack interaction",
        ACK_BUDGET,
        work,
        SlackAnswer::Empty,
    );
    Ok(answer.await?.into_response())
}

async fn commands(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers, &body)?;
    let SlackCommandRequest::Command(form) = parse_command(&body)? else {
        return Ok(StatusCode::OK.into_response());
    };
    let replay_key = signature_of(&headers);
    let work_state = state.clone();
    let work = async move { handle_command(&work_state, form, &replay_key).await };
    let late = ephemeral(STILL_APPLYING);
    let answer = answer_within(&state, "slack command", ACK_BUDGET, work, late);
    Ok(answer.await?.into_response())
}

/// Slack's deadline holds whatever the database does: work that outlasts `budget` goes on in
/// its own task (its effects reach the channel through the outbox) and `late` answers now.
pub async fn answer_within<F>(
    state: &AppState,
    name: &str,
    budget: Duration,
    work: F,
    late: SlackAnswer,
) -> Result<SlackAnswer, ApiError>
where
    F: std::future::Future<Output = Result<SlackAnswer, ApiError>> + Send + 'static,
{
    let deadline = tokio::time::Instant::now() + budget;
    match state.background.within(name, deadline, work).await {
        Deadline::Done(Ok(answer)) => answer,
        Deadline::Done(Err(lost)) => {
            tracing::error!(%lost, name, "a Slack request's task failed");
            Err(ApiError::internal())
        }
        Deadline::Late(_) => Ok(late),
    }
}

/// What Slack gets back for an interaction or a command, whichever way it came: the body of
/// the HTTP response, or the payload of a Socket Mode acknowledgement.
#[derive(Debug, Clone, PartialEq)]
pub enum SlackAnswer {
    /// Received; nothing to show.
    Empty,
    /// A message (a command's reply) or a `response_action` (a modal's errors).
    Json(Value),
}

impl IntoResponse for SlackAnswer {
    fn into_response(self) -> Response {
        match self {
            SlackAnswer::Empty => StatusCode::OK.into_response(),
            SlackAnswer::Json(body) => Json(body).into_response(),
        }
    }
}

/// Applies a (verified) interaction: the one code path of `POST /slack/interactions` and
/// Socket Mode. `replay_key` identifies this delivery where the payload has no id of its own
/// (the HTTP request's signature, or a digest of the envelope's payload).
pub async fn handle_interaction(
    state: &AppState,
    client: Option<Arc<SlackClient>>,
    interaction: Interaction,
    replay_key: &str,
) -> Result<SlackAnswer, ApiError> {
    match interaction {
        Interaction::BlockActions(actions) => {
            block_actions(state, client, actions, replay_key).await
        }
        Interaction::ViewSubmission(submission) => {
            view_submission(state, submission, replay_key).await
        }
        // Shortcuts, view closings and the like: acknowledged, nothing to do.
        Interaction::Other => Ok(SlackAnswer::Empty),
    }
}

/// Runs a (verified) slash command: the one code path of `POST /slack/commands` and Socket
/// Mode. Mistakes in the words are answered as ephemeral messages.
pub async fn handle_command(
    state: &AppState,
    form: SlackCommand,
    replay_key: &str,
) -> Result<SlackAnswer, ApiError> {
    let command = form.command.as_str();
    let parsed = match chat::parse(command, &form.text, &state.engine.catalog()) {
        Ok(parsed) => parsed,
        Err(error) => return Ok(ephemeral(&error.to_string())),
    };
    let actor = ChatActor {
        platform: Platform::Slack,
        user_id: form.user_id.clone(),
        reply_to: match &form.response_url {
            Some(url) if response_url_allowed(state, url) => {
                reply_to(ReplyAddress::ResponseUrl(url.clone()))
            }
            _ => ReplyTo::Nobody,
        },
    };
    // Each invocation has its own trigger id; a replay repeats it.
    let replay_key = match &form.trigger_id {
        Some(trigger) if !trigger.is_empty() => format!("command:{trigger}"),
        _ => format!("command:{replay_key}"),
    };
    if !first_delivery(state, replay_key).await? {
        return Ok(ephemeral(ALREADY_HANDLED));
    }
    let engine = state.engine.clone();
    let work = async move { engine.run_command(&actor, parsed).await };
    let deadline = tokio::time::Instant::now() + ACK_BUDGET;
    let reply = match state
        .background
        .within("slack command", deadline, work)
        .await
    {
        Deadline::Done(Ok(Ok(reply))) => reply,
        Deadline::Done(Ok(Err(error))) => {
            tracing::error!(%error, command, "a Slack command failed");
            return Ok(ephemeral(
                "Greenlight could not do that just now; please try again.",
            ));
        }
        Deadline::Done(Err(lost)) => {
            tracing::error!(%lost, command, "a Slack command task failed");
            return Ok(ephemeral(
                "Greenlight could not do that just now; please try again.",
            ));
        }
        Deadline::Late(_) => return Ok(ephemeral(STILL_APPLYING)),
    };
    Ok(match reply {
        CommandReply::Ephemeral(text) => ephemeral(&text),
        CommandReply::ConfirmRollback {
            text,
            confirm_value,
        } => SlackAnswer::Json(
            crate::slack::notices::rollback_confirmation(&text, &confirm_value).to_json(),
        ),
    })
}

/// A command's reply when the database is too slow to answer within Slack's deadline.
pub const STILL_APPLYING: &str =
    "Greenlight is slow right now; your command is still being applied. The channel will show the result.";

/// `webhook_deliveries.source` of Slack's replay keys.
const DELIVERY_SOURCE: &str = "slack";
const ALREADY_HANDLED: &str = "This was already handled; nothing changed.";

/// The request's own signature: what identifies a replay of it when Slack's payload carries no
/// id of its own (a replay must repeat the signature to pass verification).
fn signature_of(headers: &HeaderMap) -> String {
    headers
        .get(verify::slack::SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn delivery(key: String) -> InboundDelivery {
    InboundDelivery {
        source: DELIVERY_SOURCE,
        id: key,
    }
}

/// Records a command or confirmation as seen before it runs; `false` for a replay, which must
/// change nothing (SPEC §10).
async fn first_delivery(state: &AppState, key: String) -> Result<bool, ApiError> {
    state
        .engine
        .first_delivery(&delivery(key))
        .await
        .map_err(|error| {
            tracing::error!(%error, "recording a Slack delivery failed");
            ApiError::internal()
        })
}

/// What a `/slack/interactions` body asks for, read before any state is.
pub enum SlackInteraction {
    /// The Events API handshake: answered with its challenge.
    Challenge(String),
    Interaction(Interaction),
}

/// Reads a (verified) `/slack/interactions` body: the handshake, or the form field `payload`
/// as an interaction. Pure, so the property tests and the fuzz harness run what the route runs.
pub fn parse_interaction(body: &[u8]) -> Result<SlackInteraction, ApiError> {
    if let Some(challenge) = url_verification(body) {
        return Ok(SlackInteraction::Challenge(challenge));
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let payload = form
        .get("payload")
        .ok_or_else(|| ApiError::bad_request("payload: missing form field"))?;
    let interaction: Interaction = serde_json::from_str(payload)
        .map_err(|error| ApiError::bad_request(format!("payload: {error}")))?;
    Ok(SlackInteraction::Interaction(interaction))
}

/// What a `/slack/commands` body asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackCommandRequest {
    /// Slack checks the certificate of command URLs with `ssl_check=1`; nothing to answer.
    SslCheck,
    Command(SlackCommand),
}

/// The form fields of a slash command that Greenlight reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackCommand {
    pub command: String,
    pub text: String,
    pub user_id: String,
    pub response_url: Option<String>,
    /// Unique per invocation: what a replay of the command repeats.
    pub trigger_id: Option<String>,
}

/// Reads a (verified) `/slack/commands` form body. The words themselves are parsed afterwards
/// against the configured apps, and their mistakes are answered as ephemeral messages.
pub fn parse_command(body: &[u8]) -> Result<SlackCommandRequest, ApiError> {
    let mut form: HashMap<String, String> =
        url::form_urlencoded::parse(body).into_owned().collect();
    if form.get("ssl_check").is_some_and(|value| value == "1") {
        return Ok(SlackCommandRequest::SslCheck);
    }
    let mut field = |name: &str| form.remove(name).unwrap_or_default();
    let (command, text, user_id) = (field("command"), field("text"), field("user_id"));
    if command.is_empty() || user_id.is_empty() {
        return Err(ApiError::bad_request(
            "command and user_id are required form fields",
        ));
    }
    Ok(SlackCommandRequest::Command(SlackCommand {
        command,
        text,
        user_id,
        response_url: form.remove("response_url"),
        trigger_id: form.remove("trigger_id"),
    }))
}

/// A reply only the person who typed the command sees (Slack's default for command replies).
pub fn ephemeral(text: &str) -> SlackAnswer {
    let message = crate::slack::Message::plain(text);
    let mut body = message.to_json();
    body["response_type"] = json!("ephemeral");
    SlackAnswer::Json(body)
}

/// Mounted before both handlers: what [`authenticate`] can refuse without the body (Slack not
/// configured, a header missing or malformed, a timestamp outside the replay window) is
/// refused before the body is read, with the same answer.
fn check_headers(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    signing_secrets(state)?;
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    verify::slack::check_headers(
        header(verify::slack::TIMESTAMP_HEADER),
        header(verify::slack::SIGNATURE_HEADER),
        state.engine.clock().now().timestamp(),
    )
    .map(drop)
    .map_err(unauthenticated)
}

fn slack_config(state: &AppState) -> Result<&crate::config::SlackConfig, ApiError> {
    state
        .config
        .slack
        .as_ref()
        .ok_or_else(|| ApiError::not_found("Slack is not configured ([slack] in greenlight.toml)"))
}

/// The secrets HTTP requests must be signed with. Socket Mode alone needs none, and then the
/// HTTP routes refuse everything: nothing unsigned gets in.
fn signing_secrets(state: &AppState) -> Result<&SecretList, ApiError> {
    slack_config(state)?.signing_secret.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "Slack's HTTP routes are off: [slack] has no signing_secret (Socket Mode only)",
        )
    })
}

fn unauthenticated(error: verify::VerifyError) -> ApiError {
    metrics::counter!("greenlight_slack_unauthenticated_total").increment(1);
    ApiError::unauthorized(format!("Slack signature check failed: {error}"))
}

/// Verifies Slack's signature with the engine's clock (so tests can pin time) and every
/// configured signing secret. 404 when Slack is not configured at all, or has no signing
/// secret.
fn authenticate(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let secrets = signing_secrets(state)?;
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    verify::slack::verify(
        secrets.iter().map(|secret| secret.expose().as_bytes()),
        header(verify::slack::TIMESTAMP_HEADER),
        header(verify::slack::SIGNATURE_HEADER),
        body,
        state.engine.clock().now().timestamp(),
    )
    .map_err(unauthenticated)
}

/// Whether a `response_url` from a payload may be followed (SPEC §10); a refused one is logged
/// and counted, and the reply goes to the user in the channel, or nowhere.
fn response_url_allowed(state: &AppState, url: &str) -> bool {
    let Some(slack) = state.config.slack.as_ref() else {
        return false;
    };
    let allowed = crate::slack::response_url::allowed(url, &slack.api_url);
    if !allowed {
        tracing::warn!("a Slack payload named a response_url outside hooks.slack.com; ignored");
        metrics::counter!("greenlight_slack_response_url_refused_total").increment(1);
    }
    allowed
}

/// Slack's Events API handshake (`{"type":"url_verification","challenge":…}`), which arrives
/// as JSON rather than a form.
fn url_verification(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    (value["type"] == "url_verification")
        .then(|| value["challenge"].as_str().map(str::to_owned))
        .flatten()
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum Interaction {
    #[serde(rename = "block_actions")]
    BlockActions(BlockActions),
    #[serde(rename = "view_submission")]
    ViewSubmission(ViewSubmission),
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct SlackUser {
    id: String,
}

#[derive(Debug, Deserialize)]
struct SlackChannel {
    id: String,
}

#[derive(Debug, Deserialize)]
pub struct BlockActions {
    user: SlackUser,
    #[serde(default)]
    actions: Vec<Action>,
    trigger_id: Option<String>,
    response_url: Option<String>,
    channel: Option<SlackChannel>,
}

#[derive(Debug, Deserialize)]
struct Action {
    action_id: String,
    value: Option<String>,
    /// When Slack saw the click: with the user and the value, what makes a click unique.
    action_ts: Option<String>,
}

impl Action {
    /// The key under which this click is applied at most once.
    fn replay_key(&self, user: &str, signature: &str) -> String {
        let at = self.action_ts.as_deref().unwrap_or(signature);
        format!(
            "action:{at}:{user}:{}:{}",
            self.action_id,
            self.value.as_deref().unwrap_or_default()
        )
    }
}

#[derive(Debug, Deserialize)]
pub struct ViewSubmission {
    user: SlackUser,
    view: View,
}

#[derive(Debug, Deserialize)]
struct View {
    #[serde(default)]
    callback_id: String,
    #[serde(default)]
    private_metadata: String,
    #[serde(default)]
    state: ViewState,
}

#[derive(Debug, Default, Deserialize)]
struct ViewState {
    #[serde(default)]
    values: HashMap<String, HashMap<String, InputValue>>,
}

#[derive(Debug, Deserialize)]
struct InputValue {
    value: Option<String>,
}

async fn block_actions(
    state: &AppState,
    client: Option<Arc<SlackClient>>,
    payload: BlockActions,
    replay_key: &str,
) -> Result<SlackAnswer, ApiError> {
    let response_url = payload
        .response_url
        .as_deref()
        .filter(|url| response_url_allowed(state, url));
    let reply_to = match (response_url, &payload.channel) {
        (Some(url), _) => reply_to(ReplyAddress::ResponseUrl(url.to_owned())),
        (None, Some(channel)) => reply_to(ReplyAddress::User {
            channel: channel.id.clone(),
            user: payload.user.id.clone(),
        }),
        (None, None) => ReplyTo::Nobody,
    };
    let actor = ChatActor {
        platform: Platform::Slack,
        user_id: payload.user.id.clone(),
        reply_to,
    };
    for action in &payload.actions {
        match action.action_id.as_str() {
            ROLLBACK_CONFIRM_ACTION_ID => {
                let key = action.replay_key(&payload.user.id, replay_key);
                if !first_delivery(state, key).await? {
                    continue;
                }
                let reference = action.value.clone().unwrap_or_default();
                let engine = state.engine.clone();
                let actor = actor.clone();
                state
                    .background
                    .spawn("slack rollback confirmation", async move {
                        let text = match engine.confirm_rollback(&actor, &reference).await {
                            Ok(text) => text,
                            Err(error) => {
                                tracing::error!(%error, "confirming a rollback failed");
                                "Greenlight could not start the rollback; please try again."
                                    .to_owned()
                            }
                        };
                        if let Err(error) = engine.reply_privately(&actor.reply_to, &text).await {
                            tracing::error!(%error, "answering a rollback confirmation failed");
                        }
                    });
                continue;
            }
            ROLLBACK_CANCEL_ACTION_ID => {
                let engine = state.engine.clone();
                let reply_to = actor.reply_to.clone();
                state.background.spawn("slack rollback cancel", async move {
                    let text = "Rollback cancelled; nothing changed.";
                    if let Err(error) = engine.reply_privately(&reply_to, text).await {
                        tracing::error!(%error, "answering a rollback cancel failed");
                    }
                });
                continue;
            }
            _ => {}
        }
        // The button's value names the request; whether the clicker may act is decided from
        // server state alone.
        let Some(request_id) = action.value.as_deref().and_then(|v| v.parse::<i64>().ok()) else {
            continue;
        };
        match action.action_id.as_str() {
            APPROVE_ACTION_ID => {
                let engine = state.engine.clone();
                let actor = actor.clone();
                let once = delivery(action.replay_key(&payload.user.id, replay_key));
                within_deadline(state, async move {
                    engine
                        .decide_once(request_id, actor, Verdict::Approve, Some(once))
                        .await
                })
                .await;
            }
            REJECT_ACTION_ID => {
                let trigger_id = payload.trigger_id.as_deref();
                open_reject_modal(state, client.clone(), request_id, &actor, trigger_id).await;
            }
            _ => {}
        }
    }
    Ok(SlackAnswer::Empty)
}

/// A Reject click asks for a reason in a modal, unless the clicker could not reject anyway:
/// then the refusal is recorded and told at once instead of after they typed a reason.
async fn open_reject_modal(
    state: &AppState,
    client: Option<Arc<SlackClient>>,
    request_id: i64,
    actor: &ChatActor,
    trigger_id: Option<&str>,
) {
    let probe = Verdict::Reject {
        reason: "(asking for a reason)".to_owned(),
    };
    match state.engine.may_decide(request_id, actor, &probe).await {
        Ok(Ok(())) => {}
        Ok(Err(_refusal)) => {
            let engine = state.engine.clone();
            let actor = actor.clone();
            within_deadline(state, async move {
                engine
                    .decide(
                        request_id,
                        actor,
                        Verdict::Reject {
                            reason: String::new(),
                        },
                    )
                    .await
            })
            .await;
            return;
        }
        Err(error) => {
            tracing::error!(%error, request_id, "checking a reject click failed");
            return;
        }
    }
    let (Some(client), Some(trigger_id)) = (client, trigger_id.map(str::to_owned)) else {
        return;
    };
    let card = match state.engine.card(CardKey::Approval(request_id)).await {
        Ok(card) => card,
        Err(error) => {
            tracing::error!(%error, request_id, "loading the card for the reject modal failed");
            return;
        }
    };
    // The trigger id is valid for 3 s and only as the answer to this click, so the modal is
    // opened here (the one inline call allowed) rather than through the outbox.
    let view = reject_reason_modal(&card, request_id);
    state.background.spawn("slack reject modal", async move {
        if let Err(error) = client.open_view(&trigger_id, &view).await {
            tracing::warn!(%error, request_id, "opening the reject-reason modal failed");
        }
    });
}

async fn view_submission(
    state: &AppState,
    submission: ViewSubmission,
    replay_key: &str,
) -> Result<SlackAnswer, ApiError> {
    if submission.view.callback_id != REJECT_MODAL_CALLBACK_ID {
        return Ok(SlackAnswer::Empty);
    }
    let request_id: i64 = submission
        .view
        .private_metadata
        .parse()
        .map_err(|_| ApiError::bad_request("view.private_metadata: not a request id"))?;
    let reason = submission
        .view
        .state
        .values
        .get(REASON_BLOCK_ID)
        .and_then(|block| block.get(REASON_ACTION_ID))
        .and_then(|input| input.value.clone())
        .unwrap_or_default();
    // Not the view id alone: after a refused reason the same modal is submitted again with a
    // new one. A replay repeats the delivery exactly, so its signature (HTTP) or the digest
    // of its payload (Socket Mode) is the key.
    let once = delivery(format!("view:{replay_key}"));
    let actor = ChatActor {
        platform: Platform::Slack,
        user_id: submission.user.id,
        // The modal itself shows refusals; nothing else to tell.
        reply_to: ReplyTo::Nobody,
    };
    let engine = state.engine.clone();
    let outcome = within_deadline(state, async move {
        engine
            .decide_once(request_id, actor, Verdict::Reject { reason }, Some(once))
            .await
    })
    .await;
    match outcome {
        Some(DecisionReply::Refused(refusal)) => Ok(SlackAnswer::Json(modal_error(&refusal))),
        // Accepted, or still being applied: close the modal; the card shows the outcome.
        _ => Ok(SlackAnswer::Empty),
    }
}

fn modal_error(refusal: &Refusal) -> Value {
    json!({
        "response_action": "errors",
        "errors": { REASON_BLOCK_ID: refusal.to_string() },
    })
}

/// Runs a decision but answers Slack in time even if the database is slow: the work goes on in
/// its own task, and its effects reach the card through the outbox either way.
async fn within_deadline<F, R>(state: &AppState, work: F) -> Option<DecisionReply>
where
    F: std::future::Future<Output = Result<R, greenlight_storage::StorageError>> + Send + 'static,
    R: Into<Option<DecisionReply>> + Send + 'static,
{
    let deadline = tokio::time::Instant::now() + ACK_BUDGET;
    match state
        .background
        .within("slack decision", deadline, work)
        .await
    {
        // `None` from `decide_once`: a replayed click, which changed nothing.
        Deadline::Done(Ok(Ok(reply))) => reply.into(),
        Deadline::Done(Ok(Err(error))) => {
            tracing::error!(%error, "applying a Slack decision failed");
            None
        }
        Deadline::Done(Err(lost)) => {
            tracing::error!(%lost, "a Slack decision task failed");
            None
        }
        Deadline::Late(_) => None,
    }
}
