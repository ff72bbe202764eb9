//! A fake of Slack Socket Mode, as Slack runs it (docs.slack.dev "Using Socket Mode";
//! REFERENCE §1.9): `apps.connections.open` on the fake Web API hands out single-use
//! `ws://127.0.0.1` URLs for the app-level token; each connection starts with `hello`;
//! envelopes (`interactive`, `slash_commands`) go to one open connection and must be
//! acknowledged with their `envelope_id`; `disconnect` asks the client to reconnect; an
//! envelope not acknowledged before its connection dies is sent again on another one with
//! `retry_attempt` counted up, as Slack retries.
//!
//! The frames carry what slack-morphism 2.31 requires of them (`hello`:
//! `connection_info.app_id`, `num_connections`, `debug_info.host`; `disconnect`: `reason`,
//! `debug_info.host`).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use super::FakeSlack;

/// The app-level token the fake accepts.
pub const APP_TOKEN: &str = "xapp-1-A0FAKE-1-fake-app-token";
/// How long a test waits for an acknowledgement or a connection.
const PATIENCE: Duration = Duration::from_secs(15);

/// Slack's side of Socket Mode for one app.
#[derive(Clone)]
pub struct FakeSocketMode {
    inner: Arc<Inner>,
}

struct Inner {
    address: SocketAddr,
    /// Tickets handed out by `apps.connections.open` and not used yet.
    tickets: Mutex<HashSet<String>>,
    next_ticket: AtomicU64,
    next_connection: AtomicU64,
    next_envelope: AtomicU64,
    /// Open connections, by id, in the order they opened.
    open: Mutex<BTreeMap<u64, Connection>>,
    /// Envelopes sent and not acknowledged, with the connection they went to.
    unacked: Mutex<BTreeMap<String, Unacked>>,
    acks: Mutex<BTreeMap<String, Ack>>,
    /// Notified whenever a connection opens or closes, or an ack arrives.
    changed: Notify,
    hellos: AtomicUsize,
    connections_opened: AtomicUsize,
    /// The next acknowledgement is lost with its connection (see `lose_next_ack`).
    lose_next_ack: AtomicBool,
}

struct Connection {
    frames: mpsc::UnboundedSender<Outgoing>,
    /// Told to reconnect: Slack sends nothing more on it.
    draining: bool,
}

enum Outgoing {
    Frame(Value),
    /// Drop the TCP connection without a close frame.
    Drop,
}

#[derive(Clone)]
struct Unacked {
    envelope: Value,
    connection: u64,
    sent: Instant,
}

/// What the client answered to one envelope.
#[derive(Debug, Clone)]
pub struct Ack {
    /// The acknowledgement's `payload`: a command's reply, a modal's `response_action`.
    pub payload: Option<Value>,
    /// From the envelope's (last) sending to its acknowledgement.
    pub after: Duration,
    /// How many times the envelope was sent before it was acknowledged.
    pub attempts: u64,
}

impl FakeSocketMode {
    /// Starts the WebSocket side and teaches `slack`'s Web API `apps.connections.open`.
    pub async fn start(slack: &FakeSlack) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let inner = Arc::new(Inner {
            address: listener.local_addr().expect("address"),
            tickets: Mutex::default(),
            next_ticket: AtomicU64::new(1),
            next_connection: AtomicU64::new(1),
            next_envelope: AtomicU64::new(1),
            open: Mutex::default(),
            unacked: Mutex::default(),
            acks: Mutex::default(),
            changed: Notify::new(),
            hellos: AtomicUsize::new(0),
            connections_opened: AtomicUsize::new(0),
            lose_next_ack: AtomicBool::new(false),
        });
        let fake = Self { inner };
        let accepting = fake.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let fake = accepting.clone();
                tokio::spawn(async move { fake.serve(stream).await });
            }
        });
        let opening = fake.clone();
        slack
            .mount(
                Mock::given(method("POST"))
                    .and(path("/api/apps.connections.open"))
                    .respond_with(move |request: &wiremock::Request| {
                        ResponseTemplate::new(200).set_body_json(opening.open_connection(request))
                    })
                    .with_priority(1),
            )
            .await;
        fake
    }

    /// `apps.connections.open`: a fresh URL for the app token, `invalid_auth` for any other.
    fn open_connection(&self, request: &wiremock::Request) -> Value {
        let authorized = request
            .headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            == Some(&format!("Bearer {APP_TOKEN}"));
        if !authorized {
            return json!({"ok": false, "error": "invalid_auth"});
        }
        let ticket = format!(
            "ticket-{}",
            self.inner.next_ticket.fetch_add(1, Ordering::SeqCst)
        );
        self.lock_tickets().insert(ticket.clone());
        let url = format!(
            "ws://{}/link/?ticket={ticket}&app_id=A0FAKE",
            self.inner.address
        );
        json!({"ok": true, "url": url})
    }

    // The handshake callback's error type is tungstenite's HTTP response, large by nature.
    #[allow(clippy::result_large_err)]
    async fn serve(&self, stream: tokio::net::TcpStream) {
        let mut ticket = None;
        let accepted =
            tokio_tungstenite::accept_hdr_async(stream, |request: &Request, response: Response| {
                ticket = request.uri().query().and_then(|query| {
                    url::form_urlencoded::parse(query.as_bytes())
                        .find(|(key, _)| key == "ticket")
                        .map(|(_, value)| value.into_owned())
                });
                Ok(response)
            })
            .await;
        let Ok(socket) = accepted else { return };
        let (mut sink, mut frames) = socket.split();
        // A URL is good for one connection.
        let valid = ticket.is_some_and(|ticket| self.lock_tickets().remove(&ticket));
        if !valid {
            let _ = sink.close().await;
            return;
        }
        let id = self.inner.next_connection.fetch_add(1, Ordering::SeqCst);
        let (sender, mut outgoing) = mpsc::unbounded_channel();
        let open_now = {
            let mut open = self.lock_open();
            open.insert(
                id,
                Connection {
                    frames: sender,
                    draining: false,
                },
            );
            open.len()
        };
        self.inner.connections_opened.fetch_add(1, Ordering::SeqCst);
        let hello = json!({
            "type": "hello",
            "num_connections": open_now,
            "debug_info": {"host": format!("applink-fake-{id}"), "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": "A0FAKE"},
        });
        if sink.send(Message::text(hello.to_string())).await.is_err() {
            self.closed(id);
            return;
        }
        self.inner.hellos.fetch_add(1, Ordering::SeqCst);
        self.inner.changed.notify_waiters();
        // Envelopes left unacknowledged by connections that died before this one opened.
        self.resend_orphans();
        loop {
            tokio::select! {
                frame = frames.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        if self.inner.lose_next_ack.swap(false, Ordering::SeqCst) {
                            // The connection died with the ack on the wire: Slack never saw it.
                            break;
                        }
                        self.acknowledged(&text);
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    // Pings are answered by tungstenite itself.
                    Some(Ok(_)) => {}
                },
                out = outgoing.recv() => match out {
                    Some(Outgoing::Frame(frame)) => {
                        if sink.send(Message::text(frame.to_string())).await.is_err() {
                            break;
                        }
                    }
                    Some(Outgoing::Drop) | None => {
                        // Gone without a close frame, as a dropped TCP connection is.
                        drop(sink);
                        drop(frames);
                        self.closed(id);
                        return;
                    }
                },
            }
        }
        self.closed(id);
    }

    fn acknowledged(&self, text: &str) {
        let Ok(ack) = serde_json::from_str::<Value>(text) else {
            return;
        };
        let Some(envelope_id) = ack["envelope_id"].as_str() else {
            return;
        };
        let Some(unacked) = self.lock_unacked().remove(envelope_id) else {
            // Acknowledged twice, or never sent: Slack ignores it.
            return;
        };
        let payload = ack
            .get("payload")
            .cloned()
            .filter(|payload| !payload.is_null());
        self.lock_acks().insert(
            envelope_id.to_owned(),
            Ack {
                payload,
                after: unacked.sent.elapsed(),
                attempts: unacked.envelope["retry_attempt"].as_u64().unwrap_or(0) + 1,
            },
        );
        self.inner.changed.notify_waiters();
    }

    /// A connection ended: what it left unacknowledged goes to another one.
    fn closed(&self, id: u64) {
        self.lock_open().remove(&id);
        self.inner.changed.notify_waiters();
        self.resend_orphans();
    }

    /// Sends again every unacknowledged envelope whose connection is gone, with
    /// `retry_attempt` counted up and `retry_reason` as Slack words it.
    fn resend_orphans(&self) {
        let orphans: Vec<(String, Unacked)> = {
            let open = self.lock_open();
            self.lock_unacked()
                .iter()
                .filter(|(_, unacked)| !open.contains_key(&unacked.connection))
                .map(|(id, unacked)| (id.clone(), unacked.clone()))
                .collect()
        };
        for (envelope_id, unacked) in orphans {
            let mut envelope = unacked.envelope;
            let attempt = envelope["retry_attempt"].as_u64().unwrap_or(0) + 1;
            envelope["retry_attempt"] = json!(attempt);
            envelope["retry_reason"] = json!("timeout");
            if let Some(connection) = self.pick_connection() {
                self.send_on(connection, &envelope_id, envelope);
            }
        }
    }

    fn pick_connection(&self) -> Option<u64> {
        // Slack spreads envelopes over the open connections; the newest is as good as any.
        let open = self.lock_open();
        let candidates: Vec<u64> = open
            .iter()
            .filter(|(_, connection)| !connection.draining)
            .map(|(id, _)| *id)
            .collect();
        let turn = self.inner.next_envelope.load(Ordering::SeqCst) as usize;
        (!candidates.is_empty()).then(|| candidates[turn % candidates.len()])
    }

    fn send_on(&self, connection: u64, envelope_id: &str, envelope: Value) {
        self.lock_unacked().insert(
            envelope_id.to_owned(),
            Unacked {
                envelope: envelope.clone(),
                connection,
                sent: Instant::now(),
            },
        );
        if let Some(open) = self.lock_open().get(&connection) {
            let _ = open.frames.send(Outgoing::Frame(envelope));
        }
    }

    /// Sends an envelope of `kind` with `payload` on an open connection (waiting for one);
    /// returns its `envelope_id`.
    pub async fn send(&self, kind: &str, payload: Value, accepts_response_payload: bool) -> String {
        let connection = self.wait_for(|fake| fake.pick_connection()).await;
        let number = self.inner.next_envelope.fetch_add(1, Ordering::SeqCst);
        let envelope_id = format!("0c5b4a4e-fake-{number:08}");
        let envelope = json!({
            "envelope_id": envelope_id,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
            "payload": payload,
        });
        self.send_on(connection, &envelope_id, envelope);
        envelope_id
    }

    /// The acknowledgement of `envelope_id`, waiting for it.
    pub async fn ack(&self, envelope_id: &str) -> Ack {
        self.wait_for(|fake| fake.lock_acks().get(envelope_id).cloned())
            .await
    }

    /// An interaction (`block_actions`, `view_submission`, …) as Slack sends it; returns its
    /// acknowledgement.
    pub async fn interact(&self, payload: &Value) -> Ack {
        // Slack takes a response payload only where one can change what the user sees.
        let accepts = payload["type"] == "view_submission";
        let envelope_id = self.send("interactive", payload.clone(), accepts).await;
        self.ack(&envelope_id).await
    }

    /// A slash command as Slack sends it over Socket Mode: the form fields as JSON.
    pub async fn command(&self, fields: Value) -> Ack {
        let envelope_id = self.send("slash_commands", fields, true).await;
        self.ack(&envelope_id).await
    }

    /// Waits until `count` connections are open and receiving.
    pub async fn connected(&self, count: usize) {
        self.wait_for(|fake| {
            let open = fake.lock_open();
            (open.values().filter(|c| !c.draining).count() >= count).then_some(())
        })
        .await
    }

    /// Waits until connection `id` has closed.
    pub async fn gone(&self, id: u64) {
        self.wait_for(|fake| (!fake.lock_open().contains_key(&id)).then_some(()))
            .await
    }

    /// Ids of the open connections, oldest first.
    pub fn open_connections(&self) -> Vec<u64> {
        self.lock_open().keys().copied().collect()
    }

    /// Tells connection `id` to reconnect (`disconnect`, reason `refresh_requested`, as Slack
    /// sends before refreshing a connection); nothing more goes to it.
    pub fn disconnect(&self, id: u64) {
        let mut open = self.lock_open();
        if let Some(connection) = open.get_mut(&id) {
            connection.draining = true;
            let frame = json!({
                "type": "disconnect",
                "reason": "refresh_requested",
                "debug_info": {"host": format!("applink-fake-{id}")},
            });
            let _ = connection.frames.send(Outgoing::Frame(frame));
        }
    }

    /// Drops connection `id`'s TCP connection without a close frame.
    pub fn drop_connection(&self, id: u64) {
        if let Some(connection) = self.lock_open().get(&id) {
            let _ = connection.frames.send(Outgoing::Drop);
        }
    }

    /// The next acknowledgement any connection sends is lost: that connection drops (no
    /// close frame) as the ack arrives, so its envelope, already handled by the app, is sent
    /// again on another connection.
    pub fn lose_next_ack(&self) {
        self.inner.lose_next_ack.store(true, Ordering::SeqCst);
    }

    /// `hello`s sent: connections opened, reconnects included.
    pub fn hellos(&self) -> usize {
        self.inner.hellos.load(Ordering::SeqCst)
    }

    /// Envelopes sent and not acknowledged yet.
    pub fn unacknowledged(&self) -> usize {
        self.lock_unacked().len()
    }

    async fn wait_for<T>(&self, mut ready: impl FnMut(&Self) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let changed = self.inner.changed.notified();
            if let Some(value) = ready(self) {
                return value;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                // One last look: a change may have come between the check and the wait.
                if let Some(value) = ready(self) {
                    return value;
                }
                panic!(
                    "fake Socket Mode: nothing happened for {PATIENCE:?} ({} open connections, {} unacknowledged envelopes)",
                    self.lock_open().len(),
                    self.unacknowledged()
                );
            }
        }
    }

    fn lock_open(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Connection>> {
        self.inner.open.lock().expect("open connections")
    }

    fn lock_unacked(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Unacked>> {
        self.inner.unacked.lock().expect("unacknowledged envelopes")
    }

    fn lock_acks(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Ack>> {
        self.inner.acks.lock().expect("acknowledgements")
    }

    fn lock_tickets(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.inner.tickets.lock().expect("tickets")
    }
}
