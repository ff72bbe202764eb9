//! Driving the engine directly, as a platform's click or a background task would: for tests
//! about what a decision or the passing of time causes rather than how it arrives.

use greenlight::engine::{ChatActor, DecisionReply, ReplyTo, TimerPass};
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

    /// Lets `wait` pass on the app's clock (once the outbox is idle, so nothing in flight looks
    /// abandoned) and runs the timers that came due: expiries, reminders, deploy timeouts. The
    /// app's own timer task may get there first; either way each runs once.
    pub async fn run_timers_after(&self, wait: chrono::Duration) -> TimerPass {
        self.outbox_idle().await;
        self.clock.advance(wait);
        self.state.engine.run_due_timers().await.expect("timers")
    }
}
