//! Driving the engine directly, as a platform's click would after verification: for tests
//! about what a decision causes rather than how it arrives.

use greenlight::engine::{ChatActor, DecisionReply, ReplyTo};
use greenlight_commands::{Platform, Verdict};

use crate::TestApp;

impl TestApp {
    /// Slack user `user` decides request `request`; nobody is told the answer.
    pub async fn decide_on_slack(
        &self,
        request: i64,
        user: &str,
        verdict: Verdict,
    ) -> DecisionReply {
        self.state
            .engine
            .decide(
                request,
                ChatActor {
                    platform: Platform::Slack,
                    user_id: user.to_owned(),
                    reply_to: ReplyTo::Nobody,
                },
                verdict,
            )
            .await
            .expect("decision stored")
    }

    /// Slack user `user` approves request `request`, and the approval is accepted.
    pub async fn approve_on_slack(&self, request: i64, user: &str) {
        let reply = self.decide_on_slack(request, user, Verdict::Approve).await;
        assert!(
            matches!(reply, DecisionReply::Accepted(_)),
            "approval refused: {reply:?}"
        );
    }
}
