//! What the Slack and Discord fakes share: a server on 127.0.0.1, the bot token its API
//! accepts, the inbox of what Greenlight sent it and the hiccups it was told to answer with.
//! Each platform's module adds its own reads (`FakeSlack::next_call`, `FakeDiscord::next_post`).

use std::marker::PhantomData;
use std::sync::Arc;

use wiremock::{Mock, MockServer};

use super::faults::{Faults, Hiccup};
use super::Inbox;

/// A fake of platform `P`'s API (`P` only tells the platforms apart).
pub struct PlatformFake<P> {
    server: MockServer,
    /// The bot token the fake accepts; Greenlight must be configured with it.
    pub bot_token: String,
    shared: Shared,
    platform: PhantomData<P>,
}

/// What the fake and the responders behind its server share.
#[derive(Clone)]
pub(super) struct Shared {
    pub bot_token: String,
    pub inbox: Inbox,
    pub faults: Arc<Faults<Hiccup>>,
}

impl<P> PlatformFake<P> {
    /// Starts a server for the platform named `name` (in failure messages) accepting
    /// `bot_token`, answering with the mocks `routes` makes from what they share.
    pub(super) async fn start_with(
        name: &'static str,
        bot_token: &str,
        routes: impl FnOnce(&Shared) -> Vec<Mock>,
    ) -> Self {
        let server = MockServer::start().await;
        let shared = Shared {
            bot_token: bot_token.to_owned(),
            inbox: Inbox::new(name),
            faults: Arc::default(),
        };
        for mock in routes(&shared) {
            mock.mount(&server).await;
        }
        Self {
            server,
            bot_token: bot_token.to_owned(),
            shared,
            platform: PhantomData,
        }
    }

    /// Adds a route to the fake's server (a platform's extra endpoints: Socket Mode's
    /// `apps.connections.open`, the Gateway's `GET /gateway`).
    pub(super) async fn mount(&self, mock: Mock) {
        mock.mount(&self.server).await;
    }

    /// The server's base URL.
    pub(super) fn uri(&self) -> String {
        self.server.uri()
    }

    /// What Greenlight sent, for reads the platform's methods do not cover and for
    /// [`Inbox::allow_unread`].
    pub fn inbox(&self) -> &Inbox {
        &self.shared.inbox
    }

    /// Makes the next API calls fail in the given ways, in order.
    pub fn hiccup(&self, hiccups: impl IntoIterator<Item = Hiccup>) {
        self.shared.faults.queue(hiccups);
    }

    /// API calls received so far (Slack: Web API calls, not `response_url` posts), including
    /// those answered with a hiccup or refused, which the inbox does not keep.
    pub fn api_requests(&self) -> usize {
        self.shared.faults.requests()
    }

    /// Fails when the app sent something the test never looked at.
    pub fn assert_all_read(&self) {
        self.inbox().assert_all_read();
    }
}
