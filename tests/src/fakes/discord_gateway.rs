//! A fake Discord Gateway (v10, JSON, text frames) on 127.0.0.1, speaking the real protocol
//! (discord-api-docs `topics/gateway.mdx`, and what serenity 0.12.5 reads, `src/gateway/`):
//! HELLO (op 10) with a heartbeat interval; IDENTIFY (op 2), whose token and intents it
//! records, answered with READY (op 0) or closed with 4004 (bad token) / 4014 (privileged
//! intents not granted); heartbeats (op 1) acknowledged (op 11); dispatches with sequence
//! numbers kept per session; RESUME (op 6) answered with the missed dispatches and RESUMED, or
//! INVALID_SESSION (op 9) for an unknown session. Tests make it send RECONNECT (op 7), drop
//! the TCP connection without a close frame, or invalidate the session.
//!
//! Dispatches sent while no connection holds the session (after a drop or a RECONNECT) are
//! kept, like Discord's, and replayed on RESUME: nothing sent is lost.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use crate::config::{DISCORD_APPLICATION_ID, DISCORD_BOT_TOKEN};

/// How long a test waits for the gateway to reach a state.
const WAIT: Duration = Duration::from_secs(20);
/// GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT: the privileged intents.
const PRIVILEGED_INTENTS: u64 = (1 << 1) | (1 << 8) | (1 << 15);
/// The guild the test interactions come from.
const GUILD_ID: &str = "290926798626357999";

/// What IDENTIFY carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identify {
    pub token: String,
    pub intents: u64,
}

/// What RESUME carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub session_id: String,
    pub seq: u64,
}

/// What the fake tells a connection to do.
enum Order {
    Send(Value),
    /// Drop the TCP connection without a close frame (a network failure).
    Drop,
}

struct Session {
    id: String,
    /// Every dispatch of the session: (sequence number, frame).
    sent: Vec<(u64, Value)>,
}

#[derive(Default)]
struct State {
    identifies: Vec<Identify>,
    resumes: Vec<Resume>,
    heartbeats: usize,
    connections: usize,
    sessions_started: usize,
    session: Option<Session>,
    /// The connection holding the session (after READY or RESUMED): its number and orders.
    live: Option<(usize, mpsc::UnboundedSender<Order>)>,
}

struct Shared {
    state: Mutex<State>,
    changed: Notify,
    url: String,
    heartbeat_interval_ms: u64,
}

/// The fake Gateway. Dropping it stops its server.
pub struct FakeGateway {
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeGateway {
    /// A gateway on a free port, asking for a heartbeat every second.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake gateway");
        let address = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            changed: Notify::new(),
            url: format!("ws://{address}"),
            heartbeat_interval_ms: 1_000,
        });
        let accepting = shared.clone();
        let server = tokio::spawn(async move {
            let mut number = 0;
            while let Ok((stream, _)) = listener.accept().await {
                number += 1;
                tokio::spawn(connection(accepting.clone(), stream, number));
            }
        });
        Self { shared, server }
    }

    /// The `ws://` URL that `GET /api/v10/gateway` answers with.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// Sends `d` as dispatch `t` in the current session (waiting for one to exist): to the
    /// connection holding it, or, when none does, kept for the RESUME that follows.
    pub async fn dispatch(&self, t: &str, d: Value) -> u64 {
        self.wait_for("a session", |state| state.session.is_some())
            .await;
        let mut state = self.shared.lock();
        let seq = next_seq(&state);
        let frame = json!({"op": 0, "t": t, "s": seq, "d": d});
        if let Some(session) = state.session.as_mut() {
            session.sent.push((seq, frame.clone()));
        }
        if let Some((_, live)) = &state.live {
            let _ = live.send(Order::Send(frame));
        }
        seq
    }

    /// Sends `interaction` as an `INTERACTION_CREATE`, completed with what Discord's Gateway
    /// deliveries carry (see [`as_delivered`]).
    pub async fn dispatch_interaction(&self, interaction: &Value) -> u64 {
        self.dispatch("INTERACTION_CREATE", as_delivered(interaction))
            .await
    }

    /// Sends `interaction` exactly as given (no completion).
    pub async fn dispatch_raw_interaction(&self, interaction: Value) -> u64 {
        self.dispatch("INTERACTION_CREATE", interaction).await
    }

    /// op 7 RECONNECT: the client is to reconnect and resume. Later dispatches wait for it.
    pub fn reconnect(&self) {
        self.order_live(Some(json!({"op": 7, "d": null})));
    }

    /// Drops the TCP connection without a close frame. Later dispatches wait for the resume.
    pub fn drop_connection(&self) {
        self.order_live(None);
    }

    /// op 9 INVALID_SESSION; unless `resumable`, the session is forgotten, so the client must
    /// IDENTIFY again.
    pub fn invalidate_session(&self, resumable: bool) {
        let mut state = self.shared.lock();
        if let Some((_, live)) = &state.live {
            let _ = live.send(Order::Send(json!({"op": 9, "d": resumable})));
        }
        if !resumable {
            state.session = None;
            state.live = None;
        }
        drop(state);
        self.shared.changed.notify_waiters();
    }

    fn order_live(&self, frame: Option<Value>) {
        let mut state = self.shared.lock();
        if let Some((_, live)) = state.live.take() {
            let _ = live.send(match frame {
                Some(frame) => Order::Send(frame),
                None => Order::Drop,
            });
        }
        drop(state);
        self.shared.changed.notify_waiters();
    }

    /// Waits until a connection holds a session (READY or RESUMED sent).
    pub async fn wait_connected(&self) {
        self.wait_for("a connected client", |state| state.live.is_some())
            .await;
    }

    /// Waits until `count` RESUMEs arrived and a connection holds the session again.
    pub async fn wait_resumed(&self, count: usize) {
        self.wait_for(&format!("{count} resume(s)"), |state| {
            state.resumes.len() >= count && state.live.is_some()
        })
        .await;
    }

    /// Waits until `count` heartbeats arrived.
    pub async fn wait_heartbeats(&self, count: usize) {
        self.wait_for(&format!("{count} heartbeat(s)"), |state| {
            state.heartbeats >= count
        })
        .await;
    }

    /// Waits until `count` IDENTIFYs arrived.
    pub async fn wait_identifies(&self, count: usize) -> Vec<Identify> {
        self.wait_for(&format!("{count} identify(s)"), |state| {
            state.identifies.len() >= count
        })
        .await;
        self.identifies()
    }

    pub fn identifies(&self) -> Vec<Identify> {
        self.shared.lock().identifies.clone()
    }

    pub fn resumes(&self) -> Vec<Resume> {
        self.shared.lock().resumes.clone()
    }

    /// Sessions started by a successful IDENTIFY.
    pub fn sessions_started(&self) -> usize {
        self.shared.lock().sessions_started
    }

    /// WebSocket connections opened so far.
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&State) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(&self.shared.lock()) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("the fake Discord Gateway saw no {what} within {WAIT:?}");
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        let result = change(&mut self.lock());
        self.changed.notify_waiters();
        result
    }
}

fn next_seq(state: &State) -> u64 {
    state
        .session
        .as_ref()
        .and_then(|session| session.sent.last())
        .map_or(1, |(seq, _)| seq + 1)
}

/// One client connection: HELLO, then the client's ops and the fake's orders until either
/// side ends it.
async fn connection(shared: Arc<Shared>, stream: TcpStream, number: usize) {
    let Ok(socket) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut sink, mut source) = socket.split();
    let (orders, mut received) = mpsc::unbounded_channel();
    shared.update(|state| state.connections += 1);
    let hello = json!({"op": 10, "d": {"heartbeat_interval": shared.heartbeat_interval_ms}});
    if sink.send(text(&hello)).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            message = source.next() => {
                let frame: Value = match message {
                    Some(Ok(Message::Text(text))) => serde_json::from_str(&text).unwrap_or(Value::Null),
                    Some(Ok(Message::Close(_))) => {
                        // Sends the close reply tungstenite queued: a clean close, as Discord's.
                        let _ = sink.flush().await;
                        break;
                    }
                    None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                match client_op(&shared, &frame, number, &orders) {
                    Reply::Frames(frames) => {
                        for frame in frames {
                            if sink.send(text(&frame)).await.is_err() {
                                break;
                            }
                        }
                    }
                    Reply::Close(code, reason) => {
                        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                        let _ = sink.send(Message::Close(Some(frame))).await;
                        // Let the client read it and answer before the socket goes.
                        let _ = tokio::time::timeout(Duration::from_secs(2), source.next()).await;
                        break;
                    }
                }
            }
            order = received.recv() => match order {
                Some(Order::Send(frame)) => {
                    if sink.send(text(&frame)).await.is_err() {
                        break;
                    }
                }
                // Dropping both halves closes the TCP connection with no close frame.
                Some(Order::Drop) | None => break,
            }
        }
    }
    shared.update(|state| {
        if state.live.as_ref().is_some_and(|(live, _)| *live == number) {
            state.live = None;
        }
    });
}

enum Reply {
    Frames(Vec<Value>),
    Close(u16, &'static str),
}

fn text(frame: &Value) -> Message {
    Message::text(frame.to_string())
}

/// The fake's answer to one frame from the client.
fn client_op(
    shared: &Shared,
    frame: &Value,
    number: usize,
    orders: &mpsc::UnboundedSender<Order>,
) -> Reply {
    match frame["op"].as_u64() {
        Some(1) => {
            shared.update(|state| state.heartbeats += 1);
            Reply::Frames(vec![json!({"op": 11})])
        }
        Some(2) => identify(shared, &frame["d"], number, orders),
        Some(6) => resume(shared, &frame["d"], number, orders),
        // Presence updates and anything else need no answer here.
        _ => Reply::Frames(Vec::new()),
    }
}

fn token_is_right(token: &str) -> bool {
    token.strip_prefix("Bot ").unwrap_or(token) == DISCORD_BOT_TOKEN
}

fn identify(
    shared: &Shared,
    d: &Value,
    number: usize,
    orders: &mpsc::UnboundedSender<Order>,
) -> Reply {
    let identify = Identify {
        token: d["token"].as_str().unwrap_or_default().to_owned(),
        intents: d["intents"].as_u64().unwrap_or_default(),
    };
    let token_ok = token_is_right(&identify.token);
    let intents_ok = identify.intents & PRIVILEGED_INTENTS == 0;
    shared.update(|state| {
        state.identifies.push(identify);
        if !(token_ok && intents_ok) {
            return Reply::Close(
                if token_ok { 4014 } else { 4004 },
                if token_ok {
                    "Disallowed intent(s)."
                } else {
                    "Authentication failed."
                },
            );
        }
        state.sessions_started += 1;
        let session_id = format!("fake-session-{}", state.sessions_started);
        let ready = json!({"op": 0, "t": "READY", "s": 1, "d": {
            "v": 10,
            "user": {"id": DISCORD_APPLICATION_ID, "username": "Greenlight", "discriminator": "0",
                "global_name": null, "avatar": null, "bot": true, "flags": 0},
            "guilds": [{"id": GUILD_ID, "unavailable": true}],
            "session_id": session_id,
            "session_type": "normal",
            "resume_gateway_url": shared.url,
            "shard": [0, 1],
            "application": {"id": DISCORD_APPLICATION_ID, "flags": 565248},
            "_trace": ["[\"fake-gateway\",{\"micros\":1}]"],
        }});
        state.session = Some(Session {
            id: session_id,
            sent: vec![(1, ready.clone())],
        });
        state.live = Some((number, orders.clone()));
        Reply::Frames(vec![ready])
    })
}

fn resume(
    shared: &Shared,
    d: &Value,
    number: usize,
    orders: &mpsc::UnboundedSender<Order>,
) -> Reply {
    let resume = Resume {
        session_id: d["session_id"].as_str().unwrap_or_default().to_owned(),
        seq: d["seq"].as_u64().unwrap_or_default(),
    };
    let token_ok = token_is_right(d["token"].as_str().unwrap_or_default());
    shared.update(|state| {
        state.resumes.push(resume.clone());
        let known = state
            .session
            .as_ref()
            .is_some_and(|session| session.id == resume.session_id);
        if !token_ok {
            return Reply::Close(4004, "Authentication failed.");
        }
        if !known {
            // Discord: the session cannot be resumed; IDENTIFY again.
            return Reply::Frames(vec![json!({"op": 9, "d": false})]);
        }
        let seq = next_seq(state);
        let mut frames: Vec<Value> = state
            .session
            .as_ref()
            .map(|session| {
                session
                    .sent
                    .iter()
                    .filter(|(sent, _)| *sent > resume.seq)
                    .map(|(_, frame)| frame.clone())
                    .collect()
            })
            .unwrap_or_default();
        let resumed = json!({"op": 0, "t": "RESUMED", "s": seq, "d": {"_trace": ["fake-gateway"]}});
        if let Some(session) = state.session.as_mut() {
            session.sent.push((seq, resumed.clone()));
        }
        frames.push(resumed);
        state.live = Some((number, orders.clone()));
        Reply::Frames(frames)
    })
}

/// `interaction` as the Gateway delivers it: the fields Discord sends on every interaction
/// that documentation examples often leave out (`attachment_size_limit`, `locale`,
/// `entitlements`, `app_permissions`, `authorizing_integration_owners`, `context`, the
/// member's `flags`, `joined_at`, `deaf`, `mute`, and for components the full `message`),
/// each only where it is missing.
pub fn as_delivered(interaction: &Value) -> Value {
    let mut payload = interaction.clone();
    let defaults = json!({
        "application_id": DISCORD_APPLICATION_ID,
        "version": 1,
        "locale": "en-US",
        "guild_locale": "en-US",
        "app_permissions": "2248473465835073",
        "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD_ID},
        "context": 0,
        "attachment_size_limit": 26_214_400,
        "token": "gateway-interaction-token",
    });
    fill(&mut payload, &defaults);
    if payload["member"].is_object() {
        let member = json!({
            "roles": [], "joined_at": "2024-01-02T03:04:05.000000+00:00", "premium_since": null,
            "deaf": false, "mute": false, "flags": 0, "pending": false, "nick": null,
            "avatar": null, "permissions": "2248473465835073",
            "communication_disabled_until": null, "unusual_dm_activity_until": null,
        });
        fill(&mut payload["member"], &member);
        let user = json!({"username": "someone", "discriminator": "0", "global_name": null,
            "avatar": null, "public_flags": 0});
        fill(&mut payload["member"]["user"], &user);
    }
    if payload["type"] == 3 && !payload["message"].is_object() {
        payload["message"] = json!({
            "id": "1300000000000000001", "channel_id": payload["channel_id"], "type": 0,
            "content": "", "timestamp": "2024-01-02T03:04:05.000000+00:00",
            "edited_timestamp": null, "tts": false, "mention_everyone": false, "mentions": [],
            "mention_roles": [], "attachments": [], "embeds": [], "pinned": false, "flags": 0,
            "components": [],
            "author": {"id": DISCORD_APPLICATION_ID, "username": "Greenlight",
                "discriminator": "0", "avatar": null, "bot": true},
        });
    }
    payload
}

/// Adds each key of `defaults` that `target` (an object) lacks.
fn fill(target: &mut Value, defaults: &Value) {
    let (Some(target), Some(defaults)) = (target.as_object_mut(), defaults.as_object()) else {
        return;
    };
    for (key, value) in defaults {
        target.entry(key.clone()).or_insert_with(|| value.clone());
    }
}
