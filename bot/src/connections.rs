//! The outbound connections Greenlight keeps to chat platforms when it has no public URL
//! (SPEC §12): Slack Socket Mode and the Discord Gateway. Each transport reports its state
//! here in words an operator can act on; `GET /api/v1/status` shows them and `/metrics`
//! counts their reconnects.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One outbound connection kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Transport {
    SlackSocketMode,
    DiscordGateway,
}

impl Transport {
    /// The `transport` label of the reconnect counter.
    pub fn label(self) -> &'static str {
        match self {
            Transport::SlackSocketMode => "slack_socket_mode",
            Transport::DiscordGateway => "discord_gateway",
        }
    }

    /// How the status route introduces this transport's state ("socket mode: connected").
    fn prefix(self) -> &'static str {
        match self {
            Transport::SlackSocketMode => "socket mode",
            Transport::DiscordGateway => "gateway",
        }
    }
}

/// The state of every outbound connection this process runs. Cheap to clone; every clone
/// sees the same states.
#[derive(Debug, Clone, Default)]
pub struct Connections {
    states: Arc<Mutex<BTreeMap<Transport, String>>>,
}

impl Connections {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records what `transport` is doing now, e.g. `"connected"`, `"connected, shard 0"`,
    /// `"reconnecting: the server closed the connection"`.
    pub fn set(&self, transport: Transport, state: impl Into<String>) {
        let state = state.into();
        tracing::debug!(transport = transport.label(), %state, "connection state");
        self.lock().insert(transport, state);
    }

    /// Counts one reconnect (after a drop, a `disconnect` envelope or a resume) and records
    /// the state that follows it.
    pub fn reconnecting(&self, transport: Transport, why: &str) {
        metrics::counter!("greenlight_chat_reconnects_total", "transport" => transport.label())
            .increment(1);
        self.set(transport, format!("reconnecting: {why}"));
    }

    /// What the status route shows for `transport`: `None` when this process does not run it.
    pub fn describe(&self, transport: Transport) -> Option<String> {
        self.lock()
            .get(&transport)
            .map(|state| format!("{}: {state}", transport.prefix()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Transport, String>> {
        // A panic while holding this lock leaves a whole map of strings; keep using it.
        self.states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transport_is_described_with_its_prefix_only_once_it_reports() {
        let connections = Connections::new();
        assert_eq!(connections.describe(Transport::SlackSocketMode), None);
        connections.set(Transport::SlackSocketMode, "connecting");
        connections.set(Transport::DiscordGateway, "connected, shard 0");
        let clone = connections.clone();
        clone.set(Transport::SlackSocketMode, "connected");
        assert_eq!(
            connections.describe(Transport::SlackSocketMode).as_deref(),
            Some("socket mode: connected")
        );
        assert_eq!(
            connections.describe(Transport::DiscordGateway).as_deref(),
            Some("gateway: connected, shard 0")
        );
        connections.reconnecting(Transport::DiscordGateway, "resuming after a dropped socket");
        assert_eq!(
            connections.describe(Transport::DiscordGateway).as_deref(),
            Some("gateway: reconnecting: resuming after a dropped socket")
        );
    }
}
