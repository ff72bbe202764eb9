//! Discord's interactions (PING, the card's buttons, the approve confirmation, the
//! reject-reason modal, slash commands), whichever way they arrive: `POST /discord/interactions`
//! verifies (Ed25519 over timestamp ‖ body), parses and hands over to [`answer`]; the Gateway
//! (`gateway.rs`) parses the `INTERACTION_CREATE` event and hands over to the same [`answer`].
//! Either way the answer is ready within Discord's 3-second deadline whatever happens
//! downstream.
//!
//! Payloads are read with our own minimal serde types, not serenity's models: serenity 0.12.5
//! requires fields the bot never uses (`attachment_size_limit`, a full `message`, …; REFERENCE
//! §5 item 1), so a payload Discord sends without one of them would be refused. Only `id`,
//! `type`, `token`, `data.custom_id`, `data.components` (modal values), `member.user.id` or
//! `user.id` are read; everything else may be absent or anything.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use axum::{Extension, Router};
use greenlight_commands::chat;
use greenlight_commands::{Platform, Verdict};
use greenlight_storage::StorageError;
use serde::Deserialize;
use serde_json::Value;
use tokio::time::{timeout_at, Instant};

use super::card::ButtonAction;
use super::client::DiscordClient;
use super::commands;
use super::message::{InteractionResponse, Message, EPHEMERAL};
use super::notices::{
    self, approve_confirmation, cancelled, decision_text, reject_reason_modal, REASON_INPUT_ID,
};
use crate::background::{Deadline, TaskLost};
use crate::cards::{Card, CardKey};
use crate::config::DiscordConfig;
use crate::engine::{ChatActor, CommandReply, DecisionReply, InboundDelivery, ReplyTo};
use crate::http::{ApiError, AppState, RouteKit};
use crate::verify;

/// Discord invalidates the interaction after 3 s; leave room for the network.
pub(super) const ACK_BUDGET: Duration = Duration::from_millis(2500);
/// `webhook_deliveries.source` of interaction ids.
const DELIVERY_SOURCE: &str = "discord";

const PING: u8 = 1;
const APPLICATION_COMMAND: u8 = 2;
const MESSAGE_COMPONENT: u8 = 3;
const AUTOCOMPLETE: u8 = 4;
const MODAL_SUBMIT: u8 = 5;

/// Discord's client, for the one inline call (editing an interaction's own answer when a
/// decision outlasts the deadline); `None` without `[discord]`.
#[derive(Clone)]
struct Client(Option<Arc<DiscordClient>>);

/// `POST /discord/interactions`, signed by Discord.
pub fn routes(kit: &RouteKit, client: Option<Arc<DiscordClient>>) -> Router<AppState> {
    Router::new()
        .route(
            "/discord/interactions",
            kit.signed(post(interactions), check_headers),
        )
        .layer(Extension(Client(client)))
}

/// What a handler here reaches: the app's state and Discord's client.
pub(super) struct Inbound {
    app: AppState,
    client: Option<Arc<DiscordClient>>,
}

impl Inbound {
    pub(super) fn new(app: AppState, client: Option<Arc<DiscordClient>>) -> Self {
        Self { app, client }
    }
}

impl Deref for Inbound {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.app
    }
}

async fn interactions(
    State(app): State<AppState>,
    Extension(Client(client)): Extension<Client>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let state = Inbound { app, client };
    let discord = discord_config(&state)?;
    authenticate(
        discord,
        &headers,
        &body,
        state.engine.clock().now().timestamp(),
    )?;
    let interaction = parse_interaction(&body)?;
    let deadline = Instant::now() + ACK_BUDGET;
    let response = answer(&state, interaction, deadline).await?;
    Ok(Json(response.to_json()).into_response())
}

/// What Greenlight answers `interaction` with, by `deadline`: the one place every interaction
/// is handled, however it arrived (authorization, de-duplication by interaction id, replies).
/// Every wait on the database inside is bounded by `deadline`.
pub(super) async fn answer(
    state: &Inbound,
    interaction: Interaction,
    deadline: Instant,
) -> Result<InteractionResponse, ApiError> {
    Ok(match interaction.kind {
        PING => InteractionResponse::Pong,
        APPLICATION_COMMAND => application_command(state, interaction, deadline).await?,
        MESSAGE_COMPONENT => component(state, interaction, deadline).await?,
        AUTOCOMPLETE => InteractionResponse::NoChoices,
        MODAL_SUBMIT => modal_submit(state, interaction, deadline).await?,
        other => unknown_kind(other)?,
    })
}

fn discord_config(state: &AppState) -> Result<&DiscordConfig, ApiError> {
    state.config.discord.as_ref().ok_or_else(|| {
        ApiError::not_found("Discord is not configured ([discord] in greenlight.toml)")
    })
}

/// Mounted before the handler: Discord not configured, or configured for the Gateway without
/// a public key (404: nothing here can verify a signature, so nothing is accepted), or a
/// signature header that is missing or not 128 hex digits, or no timestamp (401), is refused
/// before the body is read.
fn check_headers(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if discord_config(state)?.public_key.is_none() {
        return Err(ApiError::not_found(
            "Discord interactions arrive over the Gateway here ([discord] gateway = true without \
             public_key); set public_key to accept them on this endpoint",
        ));
    }
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    verify::discord::check_headers(
        header(verify::discord::SIGNATURE_HEADER),
        header(verify::discord::TIMESTAMP_HEADER),
    )
    .map(drop)
    .map_err(unauthenticated)
}

fn unauthenticated(error: verify::VerifyError) -> ApiError {
    metrics::counter!("greenlight_discord_unauthenticated_total").increment(1);
    ApiError::unauthorized(format!("Discord signature check failed: {error}"))
}

/// 404 is for "not configured"; any failure here is 401 with no detail of the key, as Discord's
/// deliberate bad-signature probes expect.
fn authenticate(
    discord: &DiscordConfig,
    headers: &HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> Result<(), ApiError> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let key = discord
        .public_key
        .as_ref()
        .map(|key| ed25519_dalek::VerifyingKey::from_bytes(key.as_bytes()));
    let outcome = match key {
        // `check_headers` refused the request already; fail closed all the same.
        None => Err(verify::VerifyError::NoSecret),
        Some(Ok(key)) => verify::discord::verify(
            &key,
            header(verify::discord::SIGNATURE_HEADER),
            header(verify::discord::TIMESTAMP_HEADER),
            body,
            now_unix,
        ),
        Some(Err(_)) => {
            tracing::error!("discord.public_key is not a valid Ed25519 public key");
            Err(verify::VerifyError::NoSecret)
        }
    };
    outcome.map_err(unauthenticated)
}

/// Reads a (verified) interaction body: 400 naming the field when it is not an interaction of
/// a type Greenlight knows. Pure, so the property tests and the fuzz harness run what the route
/// runs.
pub fn parse_interaction(body: &[u8]) -> Result<Interaction, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let interaction: Interaction =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path = error.path().to_string();
            ApiError::bad_request(refusal_detail(&path, &error.into_inner()))
        })?;
    match interaction.kind {
        PING | APPLICATION_COMMAND | MESSAGE_COMPONENT | AUTOCOMPLETE | MODAL_SUBMIT => {
            Ok(interaction)
        }
        other => unknown_kind(other).map(|()| interaction),
    }
}

/// Names the field at fault: serde reports a missing field at its parent, and errors of the
/// body as a whole at `.`, which names nothing.
fn refusal_detail(path: &str, error: &serde_json::Error) -> String {
    let message = error.to_string();
    // Broken JSON is the body's fault wherever it breaks; the message says where.
    if error.is_syntax() || error.is_eof() {
        return format!("the body is not JSON: {message}");
    }
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field);
    // `.` is the body itself; `?` a place serde could not name (the body cut short).
    let at_top = matches!(path, "." | "?");
    match missing {
        Some(field) if at_top => format!("{field}: is required"),
        Some(field) => format!("{path}.{field}: is required"),
        None if at_top => format!("the body must be a JSON object with id and type: {message}"),
        None => format!("{path}: {message}"),
    }
}

fn unknown_kind<T>(kind: u8) -> Result<T, ApiError> {
    Err(ApiError::bad_request(format!(
        "type: unknown interaction type {kind}"
    )))
}

/// The fields Greenlight reads (see the module docs). No `Debug`: `token` is a credential for
/// 15 minutes.
#[derive(Deserialize)]
pub struct Interaction {
    pub(super) id: String,
    #[serde(rename = "type")]
    pub(super) kind: u8,
    #[serde(default)]
    pub(super) token: String,
    #[serde(default)]
    data: Option<InteractionData>,
    /// Set in a guild; `user` is set in a DM.
    #[serde(default)]
    member: Option<Member>,
    #[serde(default)]
    user: Option<User>,
}

#[derive(Deserialize, Default)]
struct InteractionData {
    #[serde(default)]
    custom_id: Option<String>,
    /// An application command's name.
    #[serde(default)]
    name: Option<String>,
    /// A modal submission's inputs: action rows of text inputs, or labels wrapping one.
    #[serde(default)]
    components: Vec<Value>,
    /// An application command's typed options (`[{name, type, value}]`).
    #[serde(default)]
    options: Vec<Value>,
}

#[derive(Deserialize)]
struct Member {
    #[serde(default)]
    user: Option<User>,
}

#[derive(Deserialize)]
struct User {
    id: String,
}

impl Interaction {
    fn user_id(&self) -> Option<&str> {
        self.member
            .as_ref()
            .and_then(|member| member.user.as_ref())
            .or(self.user.as_ref())
            .map(|user| user.id.as_str())
    }

    fn actor(&self) -> Result<ChatActor, ApiError> {
        let user_id = self
            .user_id()
            .ok_or_else(|| ApiError::bad_request("member.user.id / user.id: missing"))?;
        Ok(ChatActor {
            platform: Platform::Discord,
            user_id: user_id.to_owned(),
            // The interaction's own response carries the answer; nothing goes through the
            // outbox for the clicker.
            reply_to: ReplyTo::Nobody,
        })
    }

    fn delivery(&self) -> InboundDelivery {
        InboundDelivery {
            source: DELIVERY_SOURCE,
            id: self.id.clone(),
        }
    }

    fn custom_id(&self) -> &str {
        self.data
            .as_ref()
            .and_then(|data| data.custom_id.as_deref())
            .unwrap_or_default()
    }
}

/// A slash command: its typed options become the words of the shared grammar, then the same
/// authorization and executor as Slack's. Answered privately.
async fn application_command(
    state: &Inbound,
    interaction: Interaction,
    deadline: Instant,
) -> Result<InteractionResponse, ApiError> {
    let data = interaction.data.as_ref();
    let name = data.and_then(|data| data.name.clone()).unwrap_or_default();
    let options = data
        .map(|data| commands::option_pairs(&data.options))
        .unwrap_or_default();
    let words = chat::words_from_options(&name, &options);
    let parsed = match chat::parse(&name, &words, &state.engine.catalog()) {
        Ok(parsed) => parsed,
        Err(error) => {
            return Ok(InteractionResponse::Message(Message::ephemeral_markdown(
                &error.to_string(),
            )))
        }
    };
    let actor = interaction.actor()?;
    let (engine, delivery) = (state.engine.clone(), interaction.delivery());
    // Recording the interaction id is a write too: it waits for the database within the same
    // deadline as the command.
    let work = async move {
        if !engine.first_delivery(&delivery).await? {
            return Ok(None);
        }
        engine.run_command(&actor, parsed).await.map(Some)
    };
    Ok(match state.background.within("discord command", deadline, work).await {
        Deadline::Done(Ok(Ok(None))) => already_handled(),
        Deadline::Done(Ok(Ok(Some(reply)))) => match reply {
            CommandReply::Ephemeral(text) => {
                InteractionResponse::Message(Message::ephemeral_markdown(&text))
            }
            CommandReply::ConfirmRollback {
                text,
                confirm_value,
            } => InteractionResponse::Message(notices::rollback_confirmation(&text, &confirm_value)),
        },
        Deadline::Done(Ok(Err(error))) => {
            tracing::error!(%error, command = %name, "a Discord command failed");
            ephemeral("Greenlight could not do that just now; please try again.")
        }
        Deadline::Done(Err(lost)) => {
            tracing::error!(%lost, command = %name, "a Discord command task failed");
            ephemeral("Greenlight could not do that just now; please try again.")
        }
        Deadline::Late(_) => ephemeral(
            "Greenlight is slow right now; your command is still being applied. The channel will show the result.",
        ),
    })
}

fn already_handled() -> InteractionResponse {
    ephemeral("This interaction was already handled; nothing changed.")
}

async fn component(
    state: &Inbound,
    interaction: Interaction,
    deadline: Instant,
) -> Result<InteractionResponse, ApiError> {
    if interaction.custom_id() == notices::ROLLBACK_CANCEL_ID {
        return Ok(InteractionResponse::UpdateMessage(Message::plain(
            "Rollback cancelled; nothing changed.",
        )));
    }
    if let Some(reference) = interaction
        .custom_id()
        .strip_prefix(notices::ROLLBACK_CONFIRM_PREFIX)
    {
        let actor = interaction.actor()?;
        let (engine, reference) = (state.engine.clone(), reference.to_owned());
        let delivery = interaction.delivery();
        // A replayed (or redelivered) interaction id changes nothing.
        let work = async move {
            if !engine.first_delivery(&delivery).await? {
                return Ok(None);
            }
            engine.confirm_rollback(&actor, &reference).await.map(Some)
        };
        let confirming = state
            .background
            .within("discord rollback confirmation", deadline, work);
        let text = match confirming.await {
            Deadline::Done(Ok(Ok(None))) => return Ok(already_handled()),
            Deadline::Done(Ok(Ok(Some(text)))) => text,
            Deadline::Done(Ok(Err(error))) => {
                tracing::error!(%error, "confirming a rollback failed");
                "Greenlight could not start the rollback; please try again.".to_owned()
            }
            Deadline::Done(Err(lost)) => {
                tracing::error!(%lost, "a rollback confirmation task failed");
                "Greenlight could not start the rollback; please try again.".to_owned()
            }
            Deadline::Late(_) => {
                "The rollback is still being started; the channel will show it.".to_owned()
            }
        };
        return Ok(InteractionResponse::UpdateMessage(Message::plain(&text)));
    }
    let Some(action) = ButtonAction::parse(interaction.custom_id()) else {
        return Ok(ephemeral(
            "This component is not one of Greenlight's; nothing changed.",
        ));
    };
    let actor = interaction.actor()?;
    let click = |request_id, answer| Click {
        request_id,
        actor,
        delivery: interaction.delivery(),
        token: interaction.token.clone(),
        deadline,
        answer,
    };
    Ok(match action {
        ButtonAction::Approve(request_id) => {
            approve_clicked(state, click(request_id, Answer::NewEphemeral)).await
        }
        ButtonAction::Reject(request_id) => {
            reject_clicked(state, click(request_id, Answer::NewEphemeral)).await
        }
        // The confirmation message turns into the result, without its buttons.
        ButtonAction::Confirm(request_id) => {
            decide(
                state,
                click(request_id, Answer::UpdateMessage),
                Verdict::Approve,
            )
            .await
        }
        ButtonAction::Cancel(_) => InteractionResponse::UpdateMessage(cancelled()),
        ButtonAction::RejectReason(_) => ephemeral("Nothing changed."),
    })
}

async fn modal_submit(
    state: &Inbound,
    interaction: Interaction,
    deadline: Instant,
) -> Result<InteractionResponse, ApiError> {
    let Some(ButtonAction::RejectReason(request_id)) = ButtonAction::parse(interaction.custom_id())
    else {
        return Ok(ephemeral(
            "This form is not one of Greenlight's; nothing changed.",
        ));
    };
    let reason = interaction
        .data
        .as_ref()
        .and_then(|data| input_value(&data.components, REASON_INPUT_ID))
        .unwrap_or_default();
    let click = Click {
        request_id,
        actor: interaction.actor()?,
        delivery: interaction.delivery(),
        token: interaction.token,
        deadline,
        answer: Answer::NewEphemeral,
    };
    Ok(decide(state, click, Verdict::Reject { reason }).await)
}

/// The value of the text input `custom_id`, wherever the submission nests it (action rows, or
/// the newer label components).
fn input_value(components: &[Value], custom_id: &str) -> Option<String> {
    components
        .iter()
        .find_map(|component| find_input(component, custom_id))
}

fn find_input(component: &Value, custom_id: &str) -> Option<String> {
    if !component.is_object() {
        return None;
    }
    if component["custom_id"] == custom_id {
        if let Some(value) = component["value"].as_str() {
            return Some(value.to_owned());
        }
    }
    component["components"]
        .as_array()
        .and_then(|children| input_value(children, custom_id))
        .or_else(|| find_input(&component["component"], custom_id))
}

/// How the answer to an interaction is shown.
#[derive(Clone, Copy)]
enum Answer {
    /// A new message only the clicker sees.
    NewEphemeral,
    /// Replaces the (ephemeral) message whose button was clicked.
    UpdateMessage,
}

impl Answer {
    fn respond(self, message: Message) -> InteractionResponse {
        match self {
            Self::NewEphemeral => InteractionResponse::Message(Message {
                flags: Some(EPHEMERAL),
                ..message
            }),
            Self::UpdateMessage => InteractionResponse::UpdateMessage(message),
        }
    }
}

/// One click (or submission) on one request.
struct Click {
    request_id: i64,
    actor: ChatActor,
    delivery: InboundDelivery,
    /// The interaction token, for a follow-up edit when the decision outlasts the deadline.
    token: String,
    deadline: Instant,
    answer: Answer,
}

/// Approve asks for confirmation, unless the clicker could not approve anyway: then the
/// refusal is recorded and told at once.
async fn approve_clicked(state: &Inbound, click: Click) -> InteractionResponse {
    let check = timeout_at(
        click.deadline,
        state
            .engine
            .may_decide(click.request_id, &click.actor, &Verdict::Approve),
    )
    .await;
    match check {
        Ok(Ok(Ok(()))) => {
            let card = load_card(state, click.request_id, click.deadline).await;
            InteractionResponse::Message(approve_confirmation(card.as_ref(), click.request_id))
        }
        Ok(Ok(Err(_refusal))) => decide(state, click, Verdict::Approve).await,
        Ok(Err(error)) => unavailable(click.answer, click.request_id, &error),
        Err(_) => click.answer.respond(Message::plain(notices::UNAVAILABLE)),
    }
}

/// Reject asks for a reason in a modal, unless the clicker could not reject anyway: then the
/// refusal is recorded and told at once instead of after they typed a reason.
async fn reject_clicked(state: &Inbound, click: Click) -> InteractionResponse {
    let probe = Verdict::Reject {
        reason: "(asking for a reason)".to_owned(),
    };
    let check = timeout_at(
        click.deadline,
        state
            .engine
            .may_decide(click.request_id, &click.actor, &probe),
    )
    .await;
    match check {
        Ok(Ok(Ok(()))) => {
            let card = load_card(state, click.request_id, click.deadline).await;
            InteractionResponse::Modal(reject_reason_modal(card.as_ref(), click.request_id))
        }
        // Without a reason the rejection cannot count, so this only records the refusal.
        Ok(Ok(Err(_refusal))) => {
            decide(
                state,
                click,
                Verdict::Reject {
                    reason: String::new(),
                },
            )
            .await
        }
        Ok(Err(error)) => unavailable(click.answer, click.request_id, &error),
        Err(_) => click.answer.respond(Message::plain(notices::UNAVAILABLE)),
    }
}

/// The card for the confirmation's wording; the question is asked without it if it cannot be
/// read in time.
async fn load_card(state: &Inbound, request_id: i64, deadline: Instant) -> Option<Card> {
    match timeout_at(deadline, state.engine.card(CardKey::Approval(request_id))).await {
        Ok(Ok(card)) => Some(card),
        Ok(Err(error)) => {
            tracing::warn!(%error, request_id, "loading the card for a Discord answer failed");
            None
        }
        Err(_) => None,
    }
}

fn unavailable(answer: Answer, request_id: i64, error: &StorageError) -> InteractionResponse {
    if error.is_not_found() {
        return answer.respond(Message::plain(notices::NO_SUCH_REQUEST));
    }
    tracing::error!(%error, request_id, "checking a Discord click failed");
    answer.respond(Message::plain(notices::UNAVAILABLE))
}

/// Applies the decision, once per interaction id, and answers with its outcome. If it takes
/// longer than Discord waits, the answer says so and is edited with the outcome later; the
/// decision itself runs in its own task, so it completes either way.
async fn decide(state: &Inbound, click: Click, verdict: Verdict) -> InteractionResponse {
    let engine = state.engine.clone();
    let Click {
        request_id,
        actor,
        delivery,
        token,
        deadline,
        answer,
    } = click;
    let work = async move {
        engine
            .decide_once(request_id, actor, verdict, Some(delivery))
            .await
    };
    match state
        .background
        .within("discord decision", deadline, work)
        .await
    {
        Deadline::Done(outcome) => answer.respond(outcome_message(outcome, request_id)),
        Deadline::Late(task) => {
            if let Some(client) = state.client.clone() {
                state.background.spawn("discord late answer", async move {
                    let message = outcome_message(task.await, request_id);
                    if let Err(error) = client.edit_original_response(&token, &message).await {
                        tracing::warn!(%error, request_id, "editing a Discord answer failed");
                    }
                });
            }
            answer.respond(Message::plain(notices::STILL_WORKING))
        }
    }
}

fn outcome_message(
    outcome: Result<Result<Option<DecisionReply>, StorageError>, TaskLost>,
    request_id: i64,
) -> Message {
    match outcome {
        Ok(Ok(Some(reply))) => Message::plain(&decision_text(&reply)),
        Ok(Ok(None)) => Message::plain(notices::DUPLICATE),
        Ok(Err(error)) if error.is_not_found() => Message::plain(notices::NO_SUCH_REQUEST),
        Ok(Err(error)) => {
            tracing::error!(%error, request_id, "applying a Discord decision failed");
            Message::plain(notices::NOT_RECORDED)
        }
        Err(lost) => {
            tracing::error!(%lost, request_id, "a Discord decision task failed");
            Message::plain(notices::NOT_RECORDED)
        }
    }
}

fn ephemeral(text: &str) -> InteractionResponse {
    InteractionResponse::Message(Message::ephemeral(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn modal_values_are_found_in_rows_and_labels() {
        let rows = json!([{"type": 1, "components": [
            {"type": 4, "custom_id": "reason", "value": "breaks checkout"}]}]);
        let rows = rows.as_array().expect("array");
        assert_eq!(
            input_value(rows, "reason").as_deref(),
            Some("breaks checkout")
        );
        let labels = json!([{"type": 18, "id": 1, "component":
            {"type": 4, "id": 2, "custom_id": "reason", "value": "typo"}}]);
        let labels = labels.as_array().expect("array");
        assert_eq!(input_value(labels, "reason").as_deref(), Some("typo"));
        assert_eq!(input_value(labels, "other"), None);
        assert_eq!(input_value(&[], "reason"), None);
    }

    #[test]
    fn refusals_name_the_field_even_at_the_top_of_the_body() {
        let detail = |body: &str| parse_interaction(body.as_bytes()).err().map(|e| e.detail);
        // Found by the property tests: a missing `id` was refused as ".: missing field `id`".
        assert_eq!(detail(r#"{"type": 1}"#).as_deref(), Some("id: is required"));
        assert_eq!(
            detail(r#"{"id": "1", "type": 3, "member": {"user": {}}}"#).as_deref(),
            Some("member.user.id: is required")
        );
        let type_error = detail(r#"{"id": "1", "type": "ping"}"#).unwrap_or_default();
        assert!(type_error.starts_with("type: invalid type"), "{type_error}");
        for broken in [
            "{",
            r#"{"id": "1", "type": 3, "member": {"user": {"id": "1",}}}"#,
        ] {
            let not_json = detail(broken).unwrap_or_default();
            assert!(not_json.starts_with("the body is not JSON: "), "{not_json}");
        }
        let not_object = detail("7").unwrap_or_default();
        assert!(
            not_object.starts_with("the body must be a JSON object"),
            "{not_object}"
        );
        assert_eq!(
            detail(r#"{"id": "1", "type": 9}"#).as_deref(),
            Some("type: unknown interaction type 9")
        );
        // Nesting deeper than serde_json's limit is a quick 400, not a stack overflow.
        let deep = format!(
            "{{\"id\":\"1\",\"type\":5,\"data\":{{\"components\":{}",
            "[".repeat(100_000)
        );
        assert!(detail(&deep).is_some_and(|detail| detail.contains("recursion limit")));
    }

    #[test]
    fn the_invoking_user_comes_from_member_or_user() {
        let guild: Interaction = serde_json::from_value(json!({"id": "1", "type": 3,
            "member": {"user": {"id": "80351110224678912"}}}))
        .expect("guild interaction");
        assert_eq!(guild.user_id(), Some("80351110224678912"));
        let dm: Interaction =
            serde_json::from_value(json!({"id": "1", "type": 3, "user": {"id": "42"}}))
                .expect("DM interaction");
        assert_eq!(dm.user_id(), Some("42"));
        let nobody: Interaction =
            serde_json::from_value(json!({"id": "1", "type": 3})).expect("interaction");
        assert!(nobody.actor().is_err());
    }
}
