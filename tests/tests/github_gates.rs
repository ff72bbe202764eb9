//! GitHub deployment protection rules end to end (SPEC §5.2): signed `deployment_protection_rule`
//! webhooks into the real app, CI events and reviewer decisions driving the approval, and the
//! answer POSTed to a fake GitHub that checks the App JWT, hands out installation tokens and
//! records each callback. Time is a manual clock shared by the app and the fake.

use greenlight::engine::DecisionReply;
use greenlight_commands::Verdict;
use greenlight_storage::{gates, ApprovalRequest, GateAnswer, GithubGate};
use greenlight_tests::ci::{self, Fields};
use greenlight_tests::clock::manual_clock;
use greenlight_tests::config::{shop_app, slack_section};
use greenlight_tests::fakes::github::{private_key_file, APP_ID};
use greenlight_tests::fakes::{FakeGithub, FakeSlack};
use greenlight_tests::inbound::github::{self as from_github, delivery_id};
use greenlight_tests::shop::{self, production, shop as app};
use greenlight_tests::{spawn_app_with_clock, TestApp};
use serde_json::{json, Value};

const WEBHOOK_SECRET: &str = "gate-webhook-secret";
const CI_TOKEN: &str = "shop-ci-token";
const CHANNEL: &str = "C0DEPLOYS";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const FAULTY_SHA: &str = "89abcdef0123456789abcdef0123456789abcdef";
const NEWER_SHA: &str = "fedcba9876543210fedcba9876543210fedcba98";

/// Greenlight as a GitHub App for `Codertocat/Hello-World` (app `shop`): staging, then a
/// production gated by two of alice and bob and deployed by GitHub behind a protection rule.
/// Slack is the channel a gated environment needs: the tests read what it is told, not the
/// cards (slack_approvals' subject).
struct GateBot {
    app: TestApp,
    github: FakeGithub,
    slack: FakeSlack,
}

impl GateBot {
    async fn start() -> Self {
        let clock = manual_clock();
        let github = FakeGithub::start(clock.clone()).await;
        let slack = FakeSlack::start().await;
        slack.allow_unread_cards("GitHub gate tests read announcements, not cards");
        let config = format!(
            r#"
            {slack}
            [github]
            webhook_secret = "${{GITHUB_WEBHOOK_SECRET}}"
            app_id = {APP_ID}
            private_key_file = "{key}"
            api_url = "{github_url}"

            [people]
            alice = {{ slack = "U0ALICE", github = "alice" }}
            bob = {{ slack = "U0BOB", github = "bob" }}

            {shop}"#,
            shop = shop_app(
                &format!(
                    "repository = \"Codertocat/Hello-World\"\nci_token = \"${{SHOP_CI_TOKEN}}\"\n\
                     channels = {{ slack = \"{CHANNEL}\" }}"
                ),
                "",
                r#"reviewers = ["alice", "bob"]
required_approvals = 2
approval_timeout = "2h"
deploy = { kind = "github-protection-rule" }"#,
            ),
            slack = slack_section(&slack),
            key = private_key_file().display(),
            github_url = github.api_url(),
        );
        let app = spawn_app_with_clock(
            &config,
            &[
                ("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET),
                ("SHOP_CI_TOKEN", CI_TOKEN),
            ],
            clock,
        )
        .await;
        Self { app, github, slack }
    }

    /// GitHub asks whether `sha` may deploy to production, for workflow run `run_id`. Returns
    /// the webhook's answer, which says what Greenlight decided.
    async fn protection_rule(&self, sha: &str, run_id: u64) -> Value {
        // GitHub's spelling, echoed back in the callback.
        let mut rule =
            from_github::protection_rule("Production", &self.github.callback_url(run_id));
        rule["deployment"]["sha"] = json!(sha);
        rule["deployment"]["environment"] = json!("Production");
        let response = from_github::deliver(
            &self.app,
            WEBHOOK_SECRET,
            "deployment_protection_rule",
            &delivery_id(),
            rule.to_string().into_bytes(),
        )
        .await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON answer")
    }

    async fn ci_event(&self, event: Value) {
        ci::report(&self.app, CI_TOKEN, event).await;
    }

    async fn build(&self, sha: &str) {
        self.ci_event(
            ci::build(sha).with(json!({"ref": "refs/heads/main", "author": "carol",
            "message": "Fix checkout", "url": "https://ci.example/run/1"})),
        )
        .await;
    }

    /// CI reports the deploy of `sha` to staging: `status` success or failure, and the smoke
    /// checks it ran (`None`: none).
    async fn deployed_to_staging(&self, sha: &str, status: &str, smoke: Option<Value>) {
        let mut event = ci::deployed("staging", sha, status)
            .with(json!({"image": shop::image(sha), "url": "https://ci.example/run/2"}));
        if let Some(smoke) = smoke {
            event["smoke"] = smoke;
        }
        self.ci_event(event).await;
    }

    /// A release whose staging smoke checks failed.
    async fn faulty_in_staging(&self, sha: &str) {
        self.build(sha).await;
        self.deployed_to_staging(sha, "success", Some(ci::smoke_failed()))
            .await;
    }

    async fn waiting_request(&self) -> ApprovalRequest {
        self.app
            .storage()
            .waiting_approval_request(&app(), &production())
            .await
            .expect("read")
            .expect("a waiting approval request for production")
    }

    async fn decide(&self, request: i64, slack_user: &str, verdict: Verdict) -> DecisionReply {
        self.app.decide_on_slack(request, slack_user, verdict).await
    }

    /// The next message to the channel that mentions `needle` (cards aside).
    async fn announced(&self, needle: &str) {
        self.slack
            .next_call_mentioning("chat.postMessage", CHANNEL, needle)
            .await;
    }

    async fn waiting_gates(&self, sha: &str) -> Vec<GithubGate> {
        let mut conn = self.app.storage().reader().await.expect("reader");
        gates::waiting_github_gates(&mut conn, &app(), &production(), &shop::sha(sha))
            .await
            .expect("waiting gates")
    }

    /// GitHub received `count` callback requests in all, refused ones included.
    fn assert_callback_attempts(&self, count: usize) {
        assert_eq!(
            self.github.callback_attempts(),
            count,
            "{:#?}",
            self.github.attempt_log()
        );
    }

    /// Lets everything due be delivered, then checks GitHub got nothing more than the test read.
    async fn teardown(self) {
        self.app.state.outbox.run_once().await.expect("outbox pass");
        self.github.assert_all_read();
        self.app.teardown().await;
    }
}

/// A protection-rule answer as GitHub should receive it.
fn gate_answer(state: &str, comment: &str) -> Value {
    json!({"environment_name": "Production", "state": state, "comment": comment})
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn a_rule_waits_for_staging_then_is_answered_by_the_approval() {
    let bot = GateBot::start().await;

    // Nothing is known about the sha yet: the rule waits, and GitHub is told why.
    let answer = bot.protection_rule(SHA, 1).await;
    assert_eq!(answer["decision"]["outcome"], "waiting", "{answer}");
    assert_eq!(answer["gate"]["answer"], Value::Null);
    let report = bot.github.next_status_report().await;
    assert_eq!(report.body["environment_name"], "Production");
    let comment = report.body["comment"].as_str().unwrap_or_default();
    assert!(comment.contains("staging"), "{comment}");
    assert_eq!(
        report.header("authorization"),
        Some(bearer(&bot.github.issued_tokens()[0]).as_str())
    );
    assert_eq!(report.header("x-github-api-version"), Some("2022-11-28"));
    assert!(report
        .header("user-agent")
        .is_some_and(|agent| agent.starts_with("greenlight/")));

    // Staging turns healthy: the approval request opens; the rule joins it and still waits.
    bot.build(SHA).await;
    bot.deployed_to_staging(SHA, "success", None).await;
    let request = bot.waiting_request().await;
    assert_eq!(request.sha.as_str(), SHA);
    assert!(matches!(
        bot.decide(request.id, "U0ALICE", Verdict::Approve).await,
        DecisionReply::Accepted(_)
    ));
    assert_eq!(bot.waiting_gates(SHA).await.len(), 1);

    // The second approval decides it: GitHub gets exactly one answer, with the App's token.
    assert!(matches!(
        bot.decide(request.id, "U0BOB", Verdict::Approve).await,
        DecisionReply::Accepted(_)
    ));
    bot.announced("approved for production by alice, bob").await;
    let callback = bot.github.next_answer().await;
    assert_eq!(
        callback.body,
        gate_answer("approved", "approved in Greenlight by alice, bob")
    );
    assert!(callback
        .path
        .ends_with("/actions/runs/1/deployment_protection_rule"));
    // The token minted for the status report is still good: no second exchange.
    assert_eq!(bot.github.issued_tokens().len(), 1);
    assert_eq!(
        callback.header("authorization"),
        Some(bearer(&bot.github.issued_tokens()[0]).as_str())
    );
    assert_eq!(
        callback.header("accept"),
        Some("application/vnd.github+json")
    );
    assert!(bot.waiting_gates(SHA).await.is_empty());

    // A rule that arrives after the approval (a re-run job) is answered at once, the same way.
    let late = bot.protection_rule(SHA, 2).await;
    assert_eq!(late["decision"]["outcome"], "answered", "{late}");
    assert_eq!(late["gate"]["answer"], "approved");
    let callback = bot.github.next_answer().await;
    assert!(callback
        .path
        .ends_with("/actions/runs/2/deployment_protection_rule"));
    assert_eq!(callback.body["state"], "approved");
    assert_eq!(
        callback.body["comment"],
        "approved in Greenlight by alice, bob"
    );

    // Exactly once each: a later pass sends nothing more.
    bot.app
        .outbox_pass_after(chrono::Duration::minutes(30))
        .await;
    bot.assert_callback_attempts(3);
    bot.teardown().await;
}

#[tokio::test]
async fn a_rejection_in_greenlight_rejects_the_rule_with_the_reason() {
    let bot = GateBot::start().await;
    bot.build(SHA).await;
    bot.deployed_to_staging(SHA, "success", None).await;
    let request = bot.waiting_request().await;
    let answer = bot.protection_rule(SHA, 1).await;
    assert_eq!(answer["decision"]["outcome"], "joined", "{answer}");
    assert_eq!(answer["decision"]["approval_request_id"], request.id);

    bot.decide(
        request.id,
        "U0BOB",
        Verdict::Reject {
            reason: "breaks checkout".to_owned(),
        },
    )
    .await;
    bot.announced("rejected for production by bob: breaks checkout")
        .await;
    let callback = bot.github.next_answer().await;
    assert_eq!(
        callback.body,
        gate_answer("rejected", "rejected by bob: breaks checkout")
    );
    bot.teardown().await;
}

#[tokio::test]
async fn a_rule_for_a_sha_whose_staging_failed_is_rejected_at_once() {
    let bot = GateBot::start().await;
    bot.faulty_in_staging(FAULTY_SHA).await;

    let answer = bot.protection_rule(FAULTY_SHA, 1).await;
    assert_eq!(answer["decision"]["outcome"], "answered", "{answer}");
    assert_eq!(answer["gate"]["answer"], "rejected");
    let callback = bot.github.next_answer().await;
    assert_eq!(
        callback.body,
        gate_answer("rejected", "smoke checks failed in staging: checkout")
    );

    // A rule that waited for staging is rejected when the deploy there fails.
    let answer = bot.protection_rule(SHA, 2).await;
    assert_eq!(answer["decision"]["outcome"], "waiting", "{answer}");
    bot.github.next_status_report().await;
    bot.deployed_to_staging(SHA, "failure", None).await;
    let callback = bot.github.next_answer().await;
    assert!(callback
        .path
        .ends_with("/actions/runs/2/deployment_protection_rule"));
    assert_eq!(callback.body["state"], "rejected");
    assert_eq!(callback.body["comment"], "deploy to staging failed");
    assert!(bot.waiting_gates(SHA).await.is_empty());
    bot.teardown().await;
}

#[tokio::test]
async fn a_rule_for_a_release_behind_a_newer_waiting_one_is_rejected() {
    let bot = GateBot::start().await;
    bot.build(SHA).await;
    bot.build(NEWER_SHA).await;
    bot.deployed_to_staging(NEWER_SHA, "success", None).await;
    // The older release turns healthy after the newer one asked: it does not take its place.
    bot.deployed_to_staging(SHA, "success", None).await;
    assert_eq!(bot.waiting_request().await.sha.as_str(), NEWER_SHA);

    let answer = bot.protection_rule(SHA, 1).await;
    assert_eq!(answer["decision"]["outcome"], "answered", "{answer}");
    let callback = bot.github.next_answer().await;
    assert_eq!(callback.body["state"], "rejected");
    assert_eq!(
        callback.body["comment"],
        "superseded by fedcba9, which is waiting for approval"
    );
    assert_eq!(bot.waiting_request().await.sha.as_str(), NEWER_SHA);
    bot.teardown().await;
}

#[tokio::test]
async fn a_rule_nobody_answers_is_rejected_as_expired() {
    let bot = GateBot::start().await;
    bot.protection_rule(SHA, 1).await;
    bot.github.next_status_report().await;

    bot.app
        .run_timers_after(chrono::Duration::minutes(119))
        .await;
    assert_eq!(bot.waiting_gates(SHA).await.len(), 1, "not due before 2 h");

    // The app's own timer task may get there first; either way the rule is answered once.
    let pass = bot.app.run_timers_after(chrono::Duration::minutes(1)).await;
    assert!(pass.gates_expired <= 1, "{pass:?}");
    let callback = bot.github.next_answer().await;
    assert_eq!(callback.body, gate_answer("rejected", "expired"));
    let gate = bot.app.storage().github_gate(1).await.expect("the gate");
    assert_eq!(gate.answer, Some(GateAnswer::Rejected));
    // The hour-old token was replaced before use rather than risked near its end.
    assert_eq!(bot.github.issued_tokens().len(), 2);
    bot.teardown().await;
}

#[tokio::test]
async fn a_github_outage_delays_the_answer_which_arrives_once() {
    let bot = GateBot::start().await;
    bot.faulty_in_staging(FAULTY_SHA).await;
    bot.github.hiccup([500]);

    bot.protection_rule(FAULTY_SHA, 1).await;
    bot.github.wait_for_callback_attempts(1).await;
    // Less than the outbox lease, more than the first backoff: only the retry is due.
    bot.app
        .outbox_pass_after(chrono::Duration::seconds(30))
        .await;
    let callback = bot.github.next_answer().await;
    assert_eq!(callback.body["state"], "rejected");
    bot.assert_callback_attempts(2);

    bot.app
        .outbox_pass_after(chrono::Duration::minutes(30))
        .await;
    bot.assert_callback_attempts(2);
    bot.teardown().await;
}

#[tokio::test]
async fn a_refused_token_is_replaced_and_the_answer_still_delivered() {
    let bot = GateBot::start().await;
    bot.faulty_in_staging(FAULTY_SHA).await;
    bot.protection_rule(FAULTY_SHA, 1).await;
    let first = bot.github.next_answer().await;
    let tokens = bot.github.issued_tokens();
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        first.header("authorization"),
        Some(bearer(&tokens[0]).as_str())
    );

    // GitHub revokes the cached token: the callback's 401 makes Greenlight mint a new one.
    bot.github.revoke_tokens();
    bot.protection_rule(FAULTY_SHA, 2).await;
    let second = bot.github.next_answer().await;
    let tokens = bot.github.issued_tokens();
    assert_eq!(tokens.len(), 2);
    assert_eq!(
        second.header("authorization"),
        Some(bearer(&tokens[1]).as_str())
    );
    assert!(second
        .path
        .ends_with("/actions/runs/2/deployment_protection_rule"));
    assert_eq!(
        bot.github.callback_attempts(),
        3,
        "answer, refused answer, answer"
    );
    bot.teardown().await;
}

/// `SHA` healthy in staging and approved by both reviewers before any protection rule came.
async fn approved_before_any_rule(bot: &GateBot) -> i64 {
    bot.build(SHA).await;
    bot.deployed_to_staging(SHA, "success", None).await;
    let request = bot.waiting_request().await;
    for reviewer in ["U0ALICE", "U0BOB"] {
        assert!(matches!(
            bot.decide(request.id, reviewer, Verdict::Approve).await,
            DecisionReply::Accepted(_)
        ));
    }
    bot.announced("approved for production by alice, bob").await;
    request.id
}

#[tokio::test]
async fn a_lock_holds_a_rule_until_unlock_and_an_old_approval_asks_again() {
    let bot = GateBot::start().await;
    let first = approved_before_any_rule(&bot).await;
    let engine = &bot.app.state.engine;
    engine
        .lock(&app(), &production(), "incident 42", "alice")
        .await
        .expect("stored")
        .expect("locked");
    bot.announced("locked by alice: incident 42").await;

    // The approval stands, but answering `approved` would let GitHub deploy into the lock.
    let held = bot.protection_rule(SHA, 1).await;
    assert_eq!(held["decision"]["outcome"], "waiting", "{held}");
    let report = bot.github.next_status_report().await;
    let comment = report.body["comment"].as_str().unwrap_or_default();
    assert!(
        comment.contains("production is locked by alice (incident 42)"),
        "{comment}"
    );
    assert_eq!(bot.waiting_gates(SHA).await.len(), 1);

    // `/unlock` lets it through, once.
    engine
        .unlock(&app(), &production(), "alice")
        .await
        .expect("stored")
        .expect("unlocked");
    bot.announced("GitHub may now run the 1 approved deployment job(s) held by the lock")
        .await;
    let callback = bot.github.next_answer().await;
    assert_eq!(callback.body["state"], "approved");
    assert_eq!(
        callback.body["comment"],
        "approved in Greenlight by alice, bob"
    );
    assert!(callback
        .path
        .ends_with("/actions/runs/1/deployment_protection_rule"));
    assert!(bot.waiting_gates(SHA).await.is_empty());

    // Past approval_timeout (2h) the old approval answers nothing new: a re-run job asks the
    // reviewers again, on a new request of the same release.
    bot.app
        .clock
        .advance(chrono::Duration::hours(2) + chrono::Duration::minutes(1));
    let again = bot.protection_rule(SHA, 2).await;
    assert_eq!(again["decision"]["outcome"], "joined", "{again}");
    let second = bot.waiting_request().await;
    assert_ne!(second.id, first);
    assert_eq!(second.sha.as_str(), SHA);
    assert_eq!(
        again["decision"]["approval_request_id"],
        json!(second.id),
        "{again}"
    );
    assert_eq!(bot.waiting_gates(SHA).await.len(), 1);
    bot.teardown().await;
}

#[tokio::test]
async fn a_rule_held_by_a_lock_expires_naming_the_lock() {
    let bot = GateBot::start().await;
    approved_before_any_rule(&bot).await;
    bot.app
        .state
        .engine
        .lock(&app(), &production(), "db migration", "bob")
        .await
        .expect("stored")
        .expect("locked");
    bot.announced("locked by bob: db migration").await;
    bot.protection_rule(SHA, 1).await;
    bot.github.next_status_report().await;

    bot.app.run_timers_after(chrono::Duration::hours(2)).await;
    let callback = bot.github.next_answer().await;
    assert_eq!(
        callback.body,
        gate_answer(
            "rejected",
            "expired: production is locked by bob (db migration)"
        )
    );
    bot.teardown().await;
}
