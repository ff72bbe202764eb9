//! Driving the engine and the outbox directly, as a platform's click or a background task
//! would: for tests about what a decision or the passing of time causes, never by sleeping.

use greenlight::engine::{ChatActor, DecisionReply, ReplyTo, TimerPass};
use greenlight::outbox::PassSummary;
use greenlight_commands::{Platform, Verdict};

use crate::TestApp;

impl TestApp {
    /// Delivers everything due now (in as many passes as that takes) and waits until the outbox
    /// is idle again.
    pub async fn deliver_due(&self) {
        self.outbox_idle().await;
        for _ in 0..100 {
            let pass = self.state.outbox.run_once().await.expect("outbox pass");
            // Deferred items are due again only when their pause ends.
            if pass.claimed() == 0 {
                break;
            }
        }
        self.outbox_idle().await;
    }

    /// Lets `wait` pass on the app's clock (once the outbox is idle, so nothing in flight looks
    /// abandoned) and runs one outbox pass.
    pub async fn outbox_pass_after(&self, wait: chrono::Duration) -> PassSummary {
        self.outbox_idle().await;
        self.clock.advance(wait);
        self.state.outbox.run_once().await.expect("outbox pass")
    }

    /// Runs `passes` outbox passes, each 31 s (on the app's clock) after the last, so what a
    /// platform refused for a while (throttled for 30 s, server errors) is retried until it
    /// goes through.
    pub async fn retry_outbox(&self, passes: usize) {
        for _ in 0..passes {
            self.outbox_pass_after(chrono::Duration::seconds(31)).await;
        }
    }

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
