//! Several replicas on one PostgreSQL database behave as one bot (SPEC §11): three Greenlight
//! apps share a fresh database and the same fakes, and requests are spread over them as a load
//! balancer would. One card and one release per event, one approval and one deploy however the
//! clicks land, each timer once, flag changes everywhere within a second, and a killed
//! replica's work taken over by another once its lease lapses.
//!
//! PostgreSQL only (`GREENLIGHT_TEST_POSTGRES_URL`, set by `.ci/run`): a SQLite file is for one
//! process, so without PostgreSQL each test says it was skipped and passes.

use std::time::{Duration, Instant};

use greenlight::clock::Clock;
use greenlight_commands::DeploymentState;
use greenlight_storage::Deployment;
use greenlight_tests::ci::{self, Fields};
use greenlight_tests::clock::manual_clock;
use greenlight_tests::config::{http_deploy, slack_section, SLACK_SIGNING_SECRET as SECRET};
use greenlight_tests::database::{SharedDatabase, POSTGRES_URL_VAR};
use greenlight_tests::fakes::slack::Hiccup;
use greenlight_tests::fakes::{DeployHook, FakeSlack};
use greenlight_tests::gated::slow_deploy_script;
use greenlight_tests::inbound::slack as from_slack;
use greenlight_tests::shop::{production, shop};
use greenlight_tests::{spawn_app_on_with_clock, TestApp};
use serde_json::{json, Value};

const CI_TOKEN: &str = "shop-ci";
const CHANNEL: &str = "C0DEPLOYS";
const HOOK_SECRET: &str = "deploy-hook-secret";
const FLAGS_TOKEN: &str = "shop-staging-flags-token";
/// Short, so a killed replica's work is taken over within seconds.
const LEASE: &str = "3s";
/// Ten reviewers, `r0`…`r9`, with Slack ids `U0R00000n`.
const REVIEWERS: usize = 10;

fn reviewer(n: usize) -> String {
    format!("U0R{n:06}")
}

/// shop: staging, then production approved by two of the ten reviewers and deployed by
/// `deploy` (`production_extra` adds to production's table).
fn config(slack: &FakeSlack, deploy: &str, production_extra: &str) -> String {
    let people: String = (0..REVIEWERS)
        .map(|n| format!("r{n} = {{ slack = \"{}\" }}\n", reviewer(n)))
        .collect();
    let reviewers: Vec<String> = (0..REVIEWERS).map(|n| format!("\"r{n}\"")).collect();
    format!(
        r#"
[database]
lease = "{LEASE}"

{slack}
[people]
alice = {{ slack = "U0ALICE01" }}
{people}
[apps.shop]
image = "ghcr.io/acme/shop"
repository = "acme/shop"
ci_token = "{CI_TOKEN}"
channels = {{ slack = "{CHANNEL}" }}
operators = ["alice"]

[apps.shop.environments.staging]
flags_token = "{FLAGS_TOKEN}"

[apps.shop.environments.production]
after = "staging"
reviewers = [{reviewers}]
required_approvals = 2
approval_timeout = "1h"
{deploy}
{production_extra}
"#,
        slack = slack_section(slack),
        reviewers = reviewers.join(", "),
    )
}

/// Three replicas on one fresh PostgreSQL database, sharing the fakes.
struct Cluster {
    database: SharedDatabase,
    slack: FakeSlack,
    replicas: Vec<TestApp>,
    config: String,
    clock: Clock,
}

fn postgres_set() -> bool {
    std::env::var(POSTGRES_URL_VAR).is_ok_and(|url| !url.trim().is_empty())
}

/// `None` (and a note) without PostgreSQL.
async fn cluster(slack: FakeSlack, config: String, clock: Clock) -> Option<Cluster> {
    if !postgres_set() {
        eprintln!("skipped: several replicas need PostgreSQL; set {POSTGRES_URL_VAR}");
        return None;
    }
    let database = SharedDatabase::create().await;
    assert!(database.is_postgres());
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(start_replica(&database, &config, &clock).await);
    }
    Some(Cluster {
        database,
        slack,
        replicas,
        config,
        clock,
    })
}

async fn start_replica(database: &SharedDatabase, config: &str, clock: &Clock) -> TestApp {
    spawn_app_on_with_clock(
        config,
        &[("HOOK_SECRET", HOOK_SECRET)],
        &database.url,
        clock.clone(),
    )
    .await
}

impl Cluster {
    /// The replica a load balancer sends request number `n` to.
    fn any(&self, n: usize) -> &TestApp {
        &self.replicas[n % self.replicas.len()]
    }

    /// Kills replica `index` (`kill -9`); the others watch the fakes it watched.
    async fn kill(&mut self, index: usize) {
        let killed = self.replicas.remove(index);
        let inboxes = killed.crash().await;
        self.replicas[0].watch_fakes(inboxes);
    }

    /// The replica named `name` (in `outbox.leased_by`, `/api/v1/status`).
    fn index_of(&self, name: &str) -> usize {
        self.replicas
            .iter()
            .position(|replica| replica.replica_name() == name)
            .unwrap_or_else(|| panic!("no live replica named {name}"))
    }

    async fn teardown(self) {
        for replica in self.replicas {
            replica.teardown().await;
        }
        self.database.remove().await;
    }
}

/// CI reports the build of `sha` and its healthy staging deploy to replica `app`.
async fn staging_healthy(app: &TestApp, sha: &str) -> i64 {
    let build = ci::build(sha).with(json!({"author": "alice", "message": "Change"}));
    ci::report(app, CI_TOKEN, build).await;
    let answer = ci::report(app, CI_TOKEN, ci::deployed("staging", sha, "success")).await;
    ci::opened_request(&answer)
}

fn sha(round: usize) -> String {
    format!("{round:x}").repeat(40)[..40].to_owned()
}

async fn click(cluster: &Cluster, n: usize, user: &str, request: i64) -> u16 {
    let response_url = cluster.slack.response_url(&format!("{user}-{request}"));
    let payload = from_slack::click(
        user,
        CHANNEL,
        "approve",
        &request.to_string(),
        &response_url,
    );
    from_slack::interact(cluster.any(n), SECRET, &payload)
        .await
        .status()
        .as_u16()
}

/// `GET /api/v1/status` of `app`.
async fn status(app: &TestApp) -> Value {
    app.get("/api/v1/status")
        .await
        .json()
        .await
        .expect("status is JSON")
}

/// Waits (up to `bound`) until `check` holds; the value it found, or a failure naming `what`.
async fn eventually<T, F, Fut>(what: &str, bound: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + bound;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "not within {bound:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What runs in production now.
async fn in_production(app: &TestApp) -> Deployment {
    app.storage()
        .current_deployment(&shop(), &production())
        .await
        .expect("read")
        .expect("something runs in production")
}

#[tokio::test]
async fn one_event_sent_to_every_replica_at_once_makes_one_release_and_one_card() {
    let slack = FakeSlack::start().await;
    let config = config(&slack, "", "");
    let Some(cluster) = cluster(slack, config, Clock::system()).await else {
        return;
    };
    let sha = sha(1);
    let build = ci::build(&sha).with(json!({"author": "alice", "message": "Change"}));
    let builds = cluster
        .replicas
        .iter()
        .map(|replica| ci::post(replica, Some(CI_TOKEN), &build));
    for (status, answer) in futures::future::join_all(builds).await {
        assert_eq!(status, 202, "{answer}");
    }
    let staging = ci::deployed("staging", &sha, "success");
    let reports = cluster
        .replicas
        .iter()
        .map(|replica| ci::post(replica, Some(CI_TOKEN), &staging));
    let mut requests = Vec::new();
    for (status, answer) in futures::future::join_all(reports).await {
        assert_eq!(status, 202, "{answer}");
        requests.extend(
            answer["approval_requests"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|request| request["id"].as_i64()),
        );
    }
    requests.sort_unstable();
    requests.dedup();
    assert_eq!(requests.len(), 1, "one approval request: {requests:?}");

    for replica in &cluster.replicas {
        replica.deliver_due().await;
    }
    let posts: Vec<_> = cluster
        .slack
        .inbox()
        .take_all()
        .into_iter()
        .filter(|call| call.path == "/api/chat.postMessage")
        .collect();
    assert_eq!(posts.len(), 1, "one card: {posts:#?}");
    cluster.teardown().await;
}

#[tokio::test]
async fn ten_concurrent_approvals_over_three_replicas_approve_once_and_deploy_once() {
    const ROUNDS: usize = 5;
    if !postgres_set() {
        eprintln!("skipped: several replicas need PostgreSQL; set {POSTGRES_URL_VAR}");
        return;
    }
    let slack = FakeSlack::start().await;
    let hook = DeployHook::start(HOOK_SECRET, ROUNDS as u64).await;
    let config = config(&slack, &http_deploy(&hook), "");
    let Some(cluster) = cluster(slack, config, Clock::system()).await else {
        return;
    };
    for round in 1..=ROUNDS {
        let sha = sha(round);
        let request = staging_healthy(cluster.any(round), &sha).await;
        let clicks = (0..REVIEWERS).map(|n| {
            let cluster = &cluster;
            async move { click(cluster, n + round, &reviewer(n), request).await }
        });
        let statuses = futures::future::join_all(clicks).await;
        assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");

        let app = cluster.any(round + 1);
        assert_eq!(
            app.request_state(request).await,
            "approved",
            "round {round}"
        );
        assert_eq!(app.approver_count(request).await, 2, "round {round}");
        let triggered = hook.next_request().await;
        assert_eq!(triggered.body["sha"], sha.as_str(), "round {round}");
        // The deploy finished; the next round starts from a healthy production.
        let done = ci::deployed("production", &sha, "success")
            .with(json!({"deployment_id": triggered.body["deployment_id"]}));
        ci::report(cluster.any(round + 2), CI_TOKEN, done).await;
        let deployment = in_production(app).await;
        assert_eq!(deployment.sha.as_str(), sha, "round {round}");
        assert_eq!(deployment.state, DeploymentState::Healthy, "round {round}");
    }
    let owed = cluster.replicas[0].audit("deploy_owed").await;
    assert_eq!(owed.len(), ROUNDS, "one deploy per approval: {owed:#?}");
    for replica in &cluster.replicas {
        replica.deliver_due().await;
    }
    // Cards, edits, announcements and the refusals of the late clicks: what the single-replica
    // tests check; here only that each round's card was posted once.
    let calls = cluster.slack.inbox().take_all();
    let cards = calls
        .iter()
        .filter(|call| call.path == "/api/chat.postMessage" && !call.body["blocks"].is_null())
        .count();
    assert_eq!(cards, ROUNDS, "one card per round");
    hook.assert_all_read();
    cluster.teardown().await;
}

#[tokio::test]
async fn each_timer_fires_once_whichever_replicas_find_it_due() {
    let slack = FakeSlack::start().await;
    let config = config(&slack, "", "");
    let Some(cluster) = cluster(slack, config, manual_clock()).await else {
        return;
    };
    let request = staging_healthy(cluster.any(0), &sha(7)).await;
    for replica in &cluster.replicas {
        replica.deliver_due().await;
    }
    cluster.slack.next_call("chat.postMessage", CHANNEL).await;

    // An hour later every replica finds the expiry due at the same moment.
    cluster.clock.advance(chrono::Duration::minutes(61));
    let passes = cluster
        .replicas
        .iter()
        .map(|replica| replica.state.engine.run_due_timers());
    let expired: u32 = futures::future::join_all(passes)
        .await
        .into_iter()
        .map(|pass| pass.expect("timers").expired)
        .sum();
    assert_eq!(expired, 1, "one replica expires the request");
    assert_eq!(cluster.any(1).request_state(request).await, "expired");
    for replica in &cluster.replicas {
        replica.deliver_due().await;
    }
    let edit = cluster.slack.next_final_update(CHANNEL).await;
    assert!(edit.body.to_string().contains("expired"), "{}", edit.body);
    let rest = cluster.slack.inbox().take_all();
    assert!(
        rest.iter()
            .all(|call| !call.body.to_string().contains("expired")
                || call.path == "/api/chat.postMessage"),
        "the expiry was announced at most once more, never edited twice: {rest:#?}"
    );
    let announcements = rest
        .iter()
        .filter(|call| call.path == "/api/chat.postMessage")
        .count();
    assert!(announcements <= 1, "{rest:#?}");
    cluster.teardown().await;
}

#[tokio::test]
async fn a_flag_changed_through_one_replica_is_served_by_the_others_within_a_second() {
    let slack = FakeSlack::start().await;
    let config = config(&slack, "", "");
    let Some(cluster) = cluster(slack, config, Clock::system()).await else {
        return;
    };
    let evaluate = |replica: &TestApp| {
        let request = replica
            .client
            .post(replica.url("/ofrep/v1/evaluate/flags/new_checkout"))
            .bearer_auth(FLAGS_TOKEN)
            .header("content-type", "application/json")
            .body(r#"{"context": {"targetingKey": "user-1"}}"#)
            .send();
        async move {
            let response = request.await.expect("OFREP");
            let body: Value = response.json().await.unwrap_or_default();
            body["value"].clone()
        }
    };
    for replica in &cluster.replicas {
        assert_ne!(
            evaluate(replica).await,
            json!(true),
            "off before the change"
        );
    }
    let (status, _) = from_slack::command(
        &cluster.replicas[0],
        SECRET,
        "U0ALICE01",
        CHANNEL,
        "/flag",
        "shop staging new_checkout on",
    )
    .await;
    assert_eq!(status, 200);
    let changed = Instant::now();
    for replica in &cluster.replicas[1..] {
        eventually(
            "the other replica serves the new value",
            Duration::from_secs(1).saturating_sub(changed.elapsed()),
            || async { (evaluate(replica).await == json!(true)).then_some(()) },
        )
        .await;
    }
    cluster.replicas[0].deliver_due().await;
    cluster.slack.next_call("chat.postMessage", CHANNEL).await;
    cluster.teardown().await;
}

#[tokio::test]
async fn a_replica_killed_while_delivering_leaves_its_card_edit_to_another_within_the_lease() {
    let slack = FakeSlack::start().await;
    let config = config(&slack, "", "");
    let Some(mut cluster) = cluster(slack, config, Clock::system()).await else {
        return;
    };
    let request = staging_healthy(cluster.any(0), &sha(3)).await;
    cluster.slack.next_call("chat.postMessage", CHANNEL).await;

    // Slack takes a minute to answer the next call, then fails twice: the replica that claims
    // the card edit holds it, and dies holding it.
    cluster.slack.hiccup([
        Hiccup::Slow { secs: 60 },
        Hiccup::Status(500),
        Hiccup::Status(503),
    ]);
    assert_eq!(click(&cluster, 0, &reviewer(0), request).await, 200);
    cluster.slack.next_call("chat.update", CHANNEL).await;
    let holder = eventually(
        "a replica holds the card edit",
        Duration::from_secs(10),
        || {
            let replicas = &cluster.replicas;
            async move {
                for replica in replicas {
                    if status(replica).await["replica"]["holds"]["outbox_items"] == 1 {
                        return Some(replica.replica_name().to_owned());
                    }
                }
                None
            }
        },
    )
    .await;
    let killed_at = Instant::now();
    let index = cluster.index_of(&holder);
    cluster.kill(index).await;

    // Another replica delivers it once the lease lapsed, through Slack's two failures.
    let edit = cluster
        .slack
        .inbox()
        .next_matching(Duration::from_secs(30), |call| {
            call.path == "/api/chat.update"
        })
        .await
        .expect("another replica edits the card within 30 s");
    let took = killed_at.elapsed();
    assert!(edit.body.to_string().contains("r0"), "{}", edit.body);
    eprintln!("card edit delivered by another replica {took:?} after the kill (lease {LEASE})");
    // The delivering replica may still be recording what Slack answered.
    for survivor in &cluster.replicas {
        survivor.outbox_idle().await;
    }
    let counts = cluster.replicas[0]
        .storage()
        .outbox_counts()
        .await
        .expect("outbox");
    assert_eq!(
        (counts.pending, counts.dead),
        (0, 0),
        "nothing left over: {:#?}",
        outbox_rows(&cluster.database).await
    );
    assert_eq!(
        cluster.slack.api_requests(),
        5,
        "the post, the dead replica's slow edit, two failures, one edit"
    );
    cluster.teardown().await;
}

/// Every outbox row, for failure messages.
async fn outbox_rows(database: &SharedDatabase) -> Vec<String> {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::PgConnection::connect(&database.url)
        .await
        .expect("connect");
    sqlx::query(
        "SELECT id, kind, state, attempts, deferrals, next_attempt_at, leased_by, last_error \
         FROM outbox ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .expect("outbox rows")
    .iter()
    .map(|row| {
        format!(
            "{} {} {} attempts {} deferrals {} due {} leased {:?} error {:?}",
            row.get::<i64, _>("id"),
            row.get::<String, _>("kind"),
            row.get::<String, _>("state"),
            row.get::<i64, _>("attempts"),
            row.get::<i64, _>("deferrals"),
            row.get::<i64, _>("next_attempt_at"),
            row.get::<Option<String>, _>("leased_by"),
            row.get::<Option<String>, _>("last_error"),
        )
    })
    .collect()
}

#[tokio::test]
async fn a_command_deploy_is_its_replicas_and_interrupted_only_once_that_replica_died() {
    let slack = FakeSlack::start().await;
    let scripts = tempfile::tempdir().expect("temporary folder");
    let (script, runs) = slow_deploy_script(scripts.path());
    let deploy = format!(
        r#"deploy = {{ kind = "command", run = ["{script}", "{{deployment_id}}"], timeout = "10m" }}"#
    );
    let config = config(&slack, &deploy, "");
    let Some(mut cluster) = cluster(slack, config, Clock::system()).await else {
        return;
    };
    cluster
        .slack
        .allow_unread_cards("the deploy's progress is not this test's subject");
    let sha = sha(5);
    let request = staging_healthy(cluster.any(0), &sha).await;
    assert_eq!(click(&cluster, 0, &reviewer(0), request).await, 200);
    assert_eq!(click(&cluster, 1, &reviewer(1), request).await, 200);
    let (runner, deployment) = eventually(
        "a replica runs the deploy command",
        Duration::from_secs(10),
        || {
            let replicas = &cluster.replicas;
            async move {
                for replica in replicas {
                    let holds = &status(replica).await["replica"]["holds"]["command_deploys"];
                    if let Some(id) = holds.get(0).and_then(Value::as_i64) {
                        return Some((replica.replica_name().to_owned(), id));
                    }
                }
                None
            }
        },
    )
    .await;

    // A replica starting meanwhile leaves the live one's deploy alone.
    let late = start_replica(&cluster.database, &cluster.config, &cluster.clock).await;
    late.state
        .engine
        .run_due_timers()
        .await
        .expect("the newcomer's timers");
    let running = late.storage().deployment(deployment).await.expect("read");
    assert_eq!(running.state, DeploymentState::Deploying);
    cluster.replicas.push(late);

    let index = cluster.index_of(&runner);
    cluster.kill(index).await;
    let interrupted = eventually(
        "another replica marks the deploy interrupted",
        Duration::from_secs(30),
        || {
            let app = &cluster.replicas[0];
            async move {
                let found = app.storage().deployment(deployment).await.ok()?;
                (found.state != DeploymentState::Deploying).then_some(found)
            }
        },
    )
    .await;
    assert_eq!(interrupted.state, DeploymentState::Failed);
    let detail = interrupted.detail.unwrap_or_default();
    assert!(detail.starts_with("interrupted"), "{detail}");
    for replica in &cluster.replicas {
        replica.deliver_due().await;
    }
    let ran = std::fs::read_to_string(&runs).unwrap_or_default();
    assert_eq!(ran.lines().count(), 1, "the command ran once: {ran}");
    cluster
        .slack
        .next_call_mentioning("chat.postMessage", CHANNEL, "interrupted")
        .await;
    cluster.slack.inbox().take_all();
    cluster.teardown().await;
}
