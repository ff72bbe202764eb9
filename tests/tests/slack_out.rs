//! Slack's side of outgoing effects, end to end: outbox items delivered by the real Slack
//! deliverer to a fake Slack Web API, with a manual clock and the worker driven pass by pass.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use greenlight::cards::CardKey;
use greenlight::chat::{ChatDeliverer, ChatEffect, ReplyAddress};
use greenlight::clock::Clock;
use greenlight::config::Config;
use greenlight::outbox::{OutboxWorker, PassSummary, RetryPolicy};
use greenlight::slack::blocks::message_violations;
use greenlight::slack::{SlackAdapter, SlackClient};
use greenlight_commands::{
    AppName, ApprovalState, CommitSha, DecisionVerdict, DeploymentKind, DeploymentState,
    EnvironmentName, PersonName, Platform,
};
use greenlight_storage::{
    ApprovalSource, ApprovalTransition, NewApprovalRequest, NewDecision, NewDeployment, NewRelease,
    OutboxState, SmokeResult, Storage,
};
use greenlight_tests::config::shop_app;
use greenlight_tests::fakes::slack::Hiccup;
use greenlight_tests::fakes::{FakeSlack, Recorded};
use serde_json::{json, Value};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const CHANNEL: &str = "C0DEPLOYS";

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
        .single()
        .expect("time")
}

struct Harness {
    slack: FakeSlack,
    storage: Storage,
    clock: Clock,
    worker: OutboxWorker,
    /// The approval request whose card the tests post.
    request_id: i64,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Self {
        Self::start_with_token(None).await
    }

    /// `token`: the bot token Greenlight is configured with (the fake's own when `None`).
    async fn start_with_token(token: Option<&str>) -> Self {
        let slack = FakeSlack::start().await;
        let token = token.unwrap_or(&slack.bot_token).to_owned();
        let config = Config::from_toml_str(
            &format!(
                r#"
[slack]
bot_token = "{token}"
signing_secret = "signing-secret"
api_url = "{api_url}"

[people]
alice = {{ slack = "U012AB3CD", github = "alice" }}
carol = {{ slack = "U0CAROL01", github = "carol" }}

{shop}"#,
                api_url = slack.api_url(),
                shop = shop_app(
                    &format!(
                        "repository = \"acme/shop\"\nci_token = \"shop-ci-token\"\n\
                         channels = {{ slack = \"{CHANNEL}\" }}"
                    ),
                    "",
                    r#"reviewers = ["carol", "alice"]"#,
                ),
            ),
            &|_| None,
        )
        .expect("config");
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("slack.db").display());
        let storage = Storage::connect(&url).await.expect("open");
        storage.migrate().await.expect("migrate");
        let clock = Clock::manual(start_time());

        let release = storage
            .insert_release(NewRelease {
                app: AppName::parse("shop").expect("app"),
                sha: CommitSha::parse(SHA).expect("sha"),
                image: format!("ghcr.io/acme/shop:{SHA}"),
                author: Some("alice".to_owned()),
                message: Some("Fix checkout <totals> & taxes\n\nLonger body".to_owned()),
                git_ref: Some("refs/heads/main".to_owned()),
                commit_url: Some(format!("https://github.com/acme/shop/commit/{SHA}")),
                ci_url: None,
                committed_at: None,
                created_at: start_time(),
            })
            .await
            .expect("release")
            .into_inner();
        storage
            .insert_deployment(NewDeployment {
                release_id: release.id,
                environment: env("staging"),
                kind: DeploymentKind::Deploy,
                state: DeploymentState::Healthy,
                previous_sha: None,
                deployer: None,
                deployer_ref: None,
                triggered_by: None,
                smoke: vec![SmokeResult {
                    name: "health".to_owned(),
                    status: "passed".to_owned(),
                    duration_ms: Some(12),
                    detail: None,
                }],
                detail: None,
                approved: true,
                at: start_time(),
            })
            .await
            .expect("staging deployment");
        let request = storage
            .insert_approval_request(NewApprovalRequest {
                release_id: release.id,
                environment: env("production"),
                source: ApprovalSource::Ci,
                policy: json!({"reviewers": ["carol", "alice"], "required_approvals": 1,
                    "prevent_self_review": true}),
                required_approvals: 1,
                opens_at: start_time(),
                expires_at: start_time() + chrono::Duration::hours(24),
                next_reminder_at: None,
                at: start_time(),
            })
            .await
            .expect("approval request");

        let slack_config = config.slack.clone().expect("slack section");
        let deliverer = ChatDeliverer::new(
            SlackAdapter(Arc::new(SlackClient::new(&slack_config))),
            storage.clone(),
            Arc::new(config),
            clock.clone(),
        );
        let worker = OutboxWorker::new(storage.clone(), clock.clone(), RetryPolicy::default())
            .with_deliverer("slack", Arc::new(deliverer));
        Self {
            slack,
            storage,
            clock,
            worker,
            request_id: request.id,
            _dir: dir,
        }
    }

    fn card(&self) -> CardKey {
        CardKey::Approval(self.request_id)
    }

    async fn enqueue(&self, effect: ChatEffect, key: &str) -> i64 {
        self.storage
            .enqueue_outbox(effect.outbox_item(Platform::Slack, key, self.clock.now()))
            .await
            .expect("enqueue")
            .into_inner()
            .id
    }

    async fn post_card(&self) -> i64 {
        self.enqueue(
            ChatEffect::PostCard {
                card: self.card(),
                channel: CHANNEL.to_owned(),
            },
            &format!("post:{}", self.request_id),
        )
        .await
    }

    async fn pass(&self) -> PassSummary {
        self.worker.run_once().await.expect("outbox pass")
    }

    /// Runs a pass that must deliver exactly the items due.
    async fn deliver_all(&self, expected: u32) {
        let summary = self.pass().await;
        assert_eq!(
            summary,
            PassSummary {
                delivered: expected,
                ..PassSummary::default()
            }
        );
    }

    async fn posted_ts(&self) -> String {
        let messages = self
            .storage
            .chat_messages(&self.card().as_string())
            .await
            .expect("chat messages");
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert_eq!(messages[0].platform, Platform::Slack);
        assert_eq!(messages[0].channel, CHANNEL);
        messages[0].message_ref.clone()
    }
}

fn env(name: &str) -> EnvironmentName {
    EnvironmentName::parse(name).expect("environment")
}

fn blocks_of_type(call: &Recorded, kind: &str) -> Vec<Value> {
    call.body["blocks"]
        .as_array()
        .map(|blocks| {
            blocks
                .iter()
                .filter(|block| block["type"] == kind)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn assert_within_limits(call: &Recorded) {
    let problems = message_violations(&call.body);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn a_card_is_posted_once_with_buttons_and_its_ts_recorded() {
    let h = Harness::start().await;
    h.post_card().await;
    h.deliver_all(1).await;

    let call = h.slack.next_call("chat.postMessage", CHANNEL).await;
    assert_eq!(
        call.header("authorization"),
        Some(format!("Bearer {}", h.slack.bot_token).as_str())
    );
    assert!(call
        .header("content-type")
        .is_some_and(|value| value.starts_with("application/json")));
    assert_within_limits(&call);
    let text = call.body["text"].as_str().expect("fallback text");
    assert!(
        text.contains("shop → production: waiting for approval"),
        "{text}"
    );
    assert!(
        text.contains("Fix checkout &lt;totals&gt; &amp; taxes"),
        "{text}"
    );
    let actions = blocks_of_type(&call, "actions");
    assert_eq!(actions.len(), 1);
    let buttons = actions[0]["elements"].as_array().expect("buttons");
    assert_eq!(buttons[0]["action_id"], "approve");
    assert_eq!(buttons[0]["value"], h.request_id.to_string());
    assert!(buttons[0]["confirm"].is_object());
    assert_eq!(buttons[1]["action_id"], "reject");
    assert!(call.body.to_string().contains("✅ *health* · 12 ms"));

    assert_eq!(h.posted_ts().await, "1700000000.000100");
    h.slack.assert_all_read();
}

#[tokio::test]
async fn a_redelivered_post_posts_nothing() {
    let h = Harness::start().await;
    let id = h.post_card().await;
    h.deliver_all(1).await;
    h.slack.next_call("chat.postMessage", CHANNEL).await;

    // The same item delivered again, as after a crash between the post and `delivered`.
    let item = h.storage.outbox_item(id).await.expect("item");
    let deliverer = ChatDeliverer::new(
        SlackAdapter(Arc::new(SlackClient::new(
            &greenlight::config::SlackConfig {
                bot_token: greenlight::secret::Secret::new(h.slack.bot_token.clone()),
                signing_secret: Some(greenlight::secret::SecretList::single(
                    greenlight::secret::Secret::new("s"),
                )),
                app_token: None,
                api_url: h.slack.api_url().parse().expect("url"),
            },
        ))),
        h.storage.clone(),
        Arc::new(Config::default()),
        h.clock.clone(),
    );
    use greenlight::outbox::Deliverer;
    deliverer.deliver(&item).await.expect("redelivery");
    // And a second item for the same card and channel (an engine that enqueued it twice).
    h.enqueue(
        ChatEffect::PostCard {
            card: h.card(),
            channel: CHANNEL.to_owned(),
        },
        "post-again",
    )
    .await;
    h.deliver_all(1).await;

    assert_eq!(h.slack.api_requests(), 1);
    h.posted_ts().await;
    h.slack.assert_all_read();
}

#[tokio::test]
async fn an_update_edits_the_recorded_message_and_drops_the_buttons() {
    let h = Harness::start().await;
    h.post_card().await;
    h.deliver_all(1).await;
    h.slack.next_call("chat.postMessage", CHANNEL).await;
    let ts = h.posted_ts().await;

    h.clock.advance(chrono::Duration::minutes(3));
    h.storage
        .record_decision(NewDecision {
            request_id: h.request_id,
            person: Some(PersonName::parse("carol").expect("person")),
            platform: Platform::Discord,
            platform_user: "123456789012345678".to_owned(),
            verdict: DecisionVerdict::Approve,
            comment: None,
            refused_reason: None,
            at: h.clock.now(),
        })
        .await
        .expect("decision");
    h.storage
        .transition_approval_request(
            h.request_id,
            ApprovalTransition {
                to: ApprovalState::Approved,
                comment: None,
                at: h.clock.now(),
            },
        )
        .await
        .expect("approve");
    h.enqueue(ChatEffect::UpdateCard { card: h.card() }, "update:1")
        .await;
    h.deliver_all(1).await;

    let call = h.slack.next_call("chat.update", CHANNEL).await;
    assert_eq!(call.body["ts"], ts);
    assert_within_limits(&call);
    assert!(blocks_of_type(&call, "actions").is_empty());
    let body = call.body.to_string();
    assert!(body.contains("approved — waiting for deploy"), "{body}");
    assert!(body.contains("*carol* approved on Discord"), "{body}");
    h.slack.assert_all_read();
}

#[tokio::test]
async fn an_update_before_the_post_waits_for_it() {
    let h = Harness::start().await;
    let update = h
        .enqueue(ChatEffect::UpdateCard { card: h.card() }, "update:early")
        .await;
    assert_eq!(h.pass().await.retried, 1);
    assert_eq!(h.slack.api_requests(), 0);
    let item = h.storage.outbox_item(update).await.expect("item");
    assert!(item
        .last_error
        .as_deref()
        .is_some_and(|error| error.contains("not posted")));

    h.post_card().await;
    h.deliver_all(1).await;
    h.slack.next_call("chat.postMessage", CHANNEL).await;
    h.clock.advance(chrono::Duration::minutes(1));
    h.deliver_all(1).await;
    let call = h.slack.next_call("chat.update", CHANNEL).await;
    assert_eq!(call.body["ts"], h.posted_ts().await);
    h.slack.assert_all_read();
}

#[tokio::test]
async fn throttling_and_an_outage_delay_the_card_but_post_it_exactly_once() {
    let h = Harness::start().await;
    h.slack.hiccup([
        Hiccup::RateLimited {
            retry_after_secs: 30,
        },
        Hiccup::Status(500),
    ]);
    let id = h.post_card().await;

    // The 429 pauses chat.postMessage; the item waits for the pause without using an attempt.
    assert_eq!(h.pass().await.deferred, 1);
    let item = h.storage.outbox_item(id).await.expect("item");
    assert_eq!(
        item.next_attempt_at,
        start_time() + chrono::Duration::seconds(30)
    );
    assert_eq!((item.attempts, item.deferrals), (0, 1));
    assert!(item
        .last_error
        .as_deref()
        .is_some_and(|error| error.contains("chat.postMessage paused")));

    // Retry-After is honoured: nothing happens before it passes.
    h.clock.advance(chrono::Duration::seconds(29));
    assert_eq!(h.pass().await, PassSummary::default());
    h.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(h.pass().await.retried, 1);
    let item = h.storage.outbox_item(id).await.expect("item");
    assert!(item
        .last_error
        .as_deref()
        .is_some_and(|error| error.contains("HTTP 500")));

    h.clock.advance(chrono::Duration::minutes(1));
    h.deliver_all(1).await;
    let item = h.storage.outbox_item(id).await.expect("item");
    assert_eq!(item.state, OutboxState::Delivered);
    assert_eq!(
        (item.attempts, item.deferrals),
        (2, 1),
        "the 500 used an attempt, the 429 did not"
    );
    assert_eq!(h.slack.api_requests(), 3);

    h.slack.next_call("chat.postMessage", CHANNEL).await;
    h.posted_ts().await;
    h.clock.advance(chrono::Duration::hours(1));
    assert_eq!(h.pass().await, PassSummary::default());
    h.slack.assert_all_read();
}

#[tokio::test]
async fn a_bare_429_without_slacks_json_is_still_retried() {
    // slack-morphism cannot read Retry-After from a 429 without a JSON body; backoff stands in.
    let h = Harness::start().await;
    h.slack.hiccup([Hiccup::Status(429)]);
    let id = h.post_card().await;
    assert_eq!(h.pass().await.retried, 1);
    let item = h.storage.outbox_item(id).await.expect("item");
    assert_eq!(item.state, OutboxState::Pending);
    h.clock.advance(chrono::Duration::minutes(1));
    h.deliver_all(1).await;
    h.slack.next_call("chat.postMessage", CHANNEL).await;
    h.slack.assert_all_read();
}

#[tokio::test]
async fn a_wrong_token_ends_in_a_dead_item_naming_not_authed() {
    let h = Harness::start_with_token(Some("xoxb-revoked")).await;
    let id = h.post_card().await;
    assert_eq!(h.pass().await.dead, 1);
    let item = h.storage.outbox_item(id).await.expect("item");
    assert_eq!(item.state, OutboxState::Dead);
    let error = item.last_error.expect("error");
    assert!(error.contains("not_authed"), "{error}");
    assert!(!error.contains("xoxb"), "the token leaked into {error}");
    assert!(h
        .storage
        .chat_messages(&h.card().as_string())
        .await
        .expect("messages")
        .is_empty());
    h.slack.assert_all_read();
}

#[tokio::test]
async fn an_unknown_channel_ends_in_a_dead_item_naming_channel_not_found() {
    let h = Harness::start().await;
    h.slack
        .hiccup([Hiccup::ApiError("channel_not_found".to_owned())]);
    let id = h.post_card().await;
    assert_eq!(h.pass().await.dead, 1);
    let item = h.storage.outbox_item(id).await.expect("item");
    assert_eq!(item.state, OutboxState::Dead);
    assert!(item
        .last_error
        .as_deref()
        .is_some_and(|error| error.contains("channel_not_found")));
    h.slack.assert_all_read();
}

#[tokio::test]
async fn reminders_go_into_the_cards_thread() {
    let h = Harness::start().await;
    h.post_card().await;
    h.deliver_all(1).await;
    h.slack.next_call("chat.postMessage", CHANNEL).await;
    let ts = h.posted_ts().await;

    h.enqueue(
        ChatEffect::Thread {
            card: h.card(),
            text: "⏰ Reminder: still waiting <!here>".to_owned(),
        },
        "reminder:1",
    )
    .await;
    h.deliver_all(1).await;
    let call = h.slack.next_call("chat.postMessage", CHANNEL).await;
    assert_eq!(call.body["thread_ts"], ts);
    assert_eq!(
        call.body["text"],
        "⏰ Reminder: still waiting &lt;!here&gt;"
    );
    assert_within_limits(&call);
    h.slack.assert_all_read();
}

#[tokio::test]
async fn announcements_and_ephemeral_answers_reach_their_people() {
    let h = Harness::start().await;
    let response_url = h.slack.response_url("T0/123/abc");
    h.enqueue(
        ChatEffect::Message {
            channel: CHANNEL.to_owned(),
            text: "✅ shop 0123456 → production approved by carol.".to_owned(),
            marker: None,
        },
        "announce:1",
    )
    .await;
    h.enqueue(
        ChatEffect::Ephemeral {
            to: ReplyAddress::User {
                channel: CHANNEL.to_owned(),
                user: "U0DAVE001".to_owned(),
            },
            text: "🚫 you are not a reviewer".to_owned(),
        },
        "refusal:1",
    )
    .await;
    h.enqueue(
        ChatEffect::Ephemeral {
            to: ReplyAddress::ResponseUrl(response_url),
            text: "🚫 approvals open at 12:35 UTC".to_owned(),
        },
        "refusal:2",
    )
    .await;
    h.deliver_all(3).await;

    let announcement = h.slack.next_call("chat.postMessage", CHANNEL).await;
    assert_eq!(
        announcement.body["text"],
        "✅ shop 0123456 → production approved by carol."
    );
    assert!(announcement.body["thread_ts"].is_null());
    let ephemeral = h.slack.next_call("chat.postEphemeral", CHANNEL).await;
    assert_eq!(ephemeral.body["user"], "U0DAVE001");
    assert_eq!(ephemeral.body["text"], "🚫 you are not a reviewer");
    let response = h.slack.next_response_url_post().await;
    assert_eq!(response.body["text"], "🚫 approvals open at 12:35 UTC");
    assert_eq!(response.body["response_type"], "ephemeral");
    assert_eq!(response.body["replace_original"], false);
    assert_eq!(
        response.header("authorization"),
        None,
        "the bot token must not go to a response_url"
    );
    h.slack.assert_all_read();
}

#[tokio::test]
async fn a_smoke_failed_card_has_no_buttons() {
    let h = Harness::start().await;
    let release = h
        .storage
        .release(
            &AppName::parse("shop").expect("app"),
            &CommitSha::parse(SHA).expect("sha"),
        )
        .await
        .expect("release");
    let failed = h
        .storage
        .insert_deployment(NewDeployment {
            release_id: release.id,
            environment: env("staging"),
            kind: DeploymentKind::Deploy,
            state: DeploymentState::Faulty,
            previous_sha: None,
            deployer: None,
            deployer_ref: None,
            triggered_by: None,
            smoke: vec![SmokeResult {
                name: "status".to_owned(),
                status: "failed".to_owned(),
                duration_ms: Some(5000),
                detail: Some("database: expected \"ok\", got \"down\"".to_owned()),
            }],
            detail: None,
            approved: true,
            at: h.clock.now(),
        })
        .await
        .expect("deployment");
    h.enqueue(
        ChatEffect::PostCard {
            card: CardKey::SmokeFailed(failed.id),
            channel: CHANNEL.to_owned(),
        },
        "smoke:1",
    )
    .await;
    h.deliver_all(1).await;
    let call = h.slack.next_call("chat.postMessage", CHANNEL).await;
    assert_within_limits(&call);
    assert!(blocks_of_type(&call, "actions").is_empty());
    let body = call.body.to_string();
    assert!(
        body.contains("smoke checks failed — not promotable"),
        "{body}"
    );
    assert!(body.contains("❌ *status* · 5.0 s"), "{body}");
    h.slack.assert_all_read();
}

#[tokio::test]
async fn a_slow_slack_is_retried_not_waited_for() {
    // A client that gives up quickly, against a server that never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let _hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let client = SlackClient::new(&greenlight::config::SlackConfig {
        bot_token: greenlight::secret::Secret::new("xoxb-test"),
        signing_secret: Some(greenlight::secret::SecretList::single(
            greenlight::secret::Secret::new("s"),
        )),
        app_token: None,
        api_url: format!("http://{address}/api").parse().expect("url"),
    })
    .with_timeout(Duration::from_millis(200));
    let error = client
        .post_message(CHANNEL, &greenlight::slack::Message::plain("hi"), None)
        .await
        .expect_err("no answer");
    assert!(error.is_retryable(), "{error}");
    assert!(error.to_string().contains("no answer"), "{error}");
}
