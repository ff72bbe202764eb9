//! Chaos run for several replicas (SPEC §11; not in CI): three `greenlight serve` processes on
//! one fresh PostgreSQL database take random CI events and Approve clicks (each sent to a random
//! live replica, as a load balancer would) while a random replica is killed with SIGKILL every
//! few seconds and restarted a moment later. Then the killing stops, the survivors drain, and
//! the database is checked: each approval deployed at most once, each command run at most once,
//! no acknowledged click lost, every outbox item delivered or dead with a reason, no command
//! deploy left running without a live replica. Prints the counts and the worst fail-over time.
//!
//! Usage: `GREENLIGHT_TEST_POSTGRES_URL=postgres://… chaos_replicas BINARY [MINUTES]`
//! (BINARY: a release `greenlight`; MINUTES defaults to 10). Exits 1 if a check fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use greenlight_tests::bench::server::Server;
use greenlight_tests::bench::slack::BenchSlack;
use greenlight_tests::database::SharedDatabase;
use greenlight_tests::inbound::slack::{click, interaction_body};
use greenlight_tests::signing::slack_signature;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, Row};

const SECRET: &str = "chaos-slack-secret";
const CI_TOKEN: &str = "chaos-ci";
const CHANNEL: &str = "C0DEPLOYS";
const REVIEWERS: usize = 6;
const REPLICAS: usize = 3;
/// The product's default lease: what the fail-over times are measured against.
const LEASE: Duration = Duration::from_secs(20);

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(binary) = args.next().map(PathBuf::from) else {
        eprintln!("usage: chaos_replicas BINARY [MINUTES]");
        return ExitCode::from(2);
    };
    // Each replica runs in a directory of its own.
    let binary = match std::fs::canonicalize(&binary) {
        Ok(binary) => binary,
        Err(error) => {
            eprintln!("{}: {error}", binary.display());
            return ExitCode::from(2);
        }
    };
    let minutes: f64 = args.next().and_then(|m| m.parse().ok()).unwrap_or(10.0);
    if std::env::var(greenlight_tests::database::POSTGRES_URL_VAR).is_err() {
        eprintln!("set GREENLIGHT_TEST_POSTGRES_URL: replicas share a PostgreSQL database");
        return ExitCode::from(2);
    }
    let database = SharedDatabase::create().await;
    let slack = BenchSlack::start().await;
    let scripts = tempfile::tempdir().expect("temporary folder");
    let runs = scripts.path().join("runs");
    let config = config(&database.url, &slack, &deploy_script(scripts.path(), &runs));
    let mut chaos = Chaos::start(binary, config, slack, &database.url).await;

    let report = chaos.run(Duration::from_secs_f64(minutes * 60.0)).await;
    let violations = chaos.check(&runs).await;
    report.print(&chaos.counts);
    chaos.print_totals().await;
    chaos.stop();
    database.remove().await;
    if violations.is_empty() {
        println!("consistency: OK");
        ExitCode::SUCCESS
    } else {
        println!("consistency: {} violation(s)", violations.len());
        for violation in violations {
            println!("  - {violation}");
        }
        ExitCode::FAILURE
    }
}

/// A deploy command that notes its deployment id, then takes 0–4 s, so kills land mid-deploy.
fn deploy_script(dir: &Path, runs: &Path) -> String {
    let script = dir.join("deploy.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1\" >> '{}'\nsleep $(( $1 % 5 ))\n",
            runs.display()
        ),
    )
    .expect("write the deploy script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script.display().to_string()
}

fn config(database_url: &str, slack: &BenchSlack, script: &str) -> String {
    let people: String = (0..REVIEWERS)
        .map(|n| format!("r{n} = {{ slack = \"{}\" }}\n", reviewer(n)))
        .collect();
    let reviewers: Vec<String> = (0..REVIEWERS).map(|n| format!("\"r{n}\"")).collect();
    format!(
        r#"
[database]
url = "{database_url}"

[slack]
bot_token = "xoxb-chaos"
signing_secret = "{SECRET}"
api_url = "{api_url}"

[people]
alice = {{ slack = "U0ALICE01" }}
{people}
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "{CI_TOKEN}"
channels = {{ slack = "{CHANNEL}" }}

[apps.shop.environments.staging]

[apps.shop.environments.production]
after = "staging"
reviewers = [{reviewers}]
required_approvals = 2
approval_timeout = "1h"
deploy = {{ kind = "command", run = ["{script}", "{{deployment_id}}"], timeout = "2m" }}
"#,
        api_url = slack.api_url,
        reviewers = reviewers.join(", "),
    )
}

fn reviewer(n: usize) -> String {
    format!("U0R{n:06}")
}

/// A replica process and its name among the replicas.
struct Replica {
    server: Server,
    name: String,
}

#[derive(Default)]
struct Counts {
    ci_events: u64,
    requests: u64,
    clicks_acknowledged: u64,
    clicks_unanswered: u64,
    kills: u64,
    restarts: u64,
}

struct Chaos {
    binary: PathBuf,
    config: String,
    slack: BenchSlack,
    replicas: Vec<Replica>,
    client: reqwest::Client,
    rng: StdRng,
    db: PgConnection,
    counts: Counts,
    /// Clicks acknowledged (HTTP 200): request id, Slack user, when (ms since the epoch).
    acknowledged: Vec<(i64, String, i64)>,
    /// The newest requests, which clicks are spread over.
    open: Vec<i64>,
    next_sha: u64,
}

/// What the run measured.
struct Report {
    /// Per kill: how long until every outbox item the dead replica held was delivered or taken
    /// by another replica.
    outbox_failovers: Vec<Duration>,
    /// Per command deploy a dead replica ran: how long until another marked it interrupted.
    command_failovers: Vec<Duration>,
}

impl Chaos {
    async fn start(binary: PathBuf, config: String, slack: BenchSlack, url: &str) -> Self {
        let db = PgConnection::connect(url).await.expect("connect to check");
        let mut chaos = Self {
            binary,
            config,
            slack,
            replicas: Vec::new(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            rng: StdRng::seed_from_u64(
                std::env::var("CHAOS_SEED")
                    .ok()
                    .and_then(|seed| seed.parse().ok())
                    .unwrap_or(20261203),
            ),
            db,
            counts: Counts::default(),
            acknowledged: Vec::new(),
            open: Vec::new(),
            next_sha: 1,
        };
        for _ in 0..REPLICAS {
            chaos.start_replica().await;
        }
        chaos
    }

    async fn start_replica(&mut self) {
        let server = Server::greenlight(&self.binary, &self.config).await;
        let status: Value = self
            .client
            .get(format!("{}/api/v1/status", server.base))
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("status JSON");
        let name = status["replica"]["name"]
            .as_str()
            .expect("a replica name")
            .to_owned();
        self.replicas.push(Replica { server, name });
    }

    fn any_replica(&mut self) -> String {
        let index = self.rng.gen_range(0..self.replicas.len());
        self.replicas[index].server.base.clone()
    }

    async fn run(&mut self, duration: Duration) -> Report {
        let mut report = Report {
            outbox_failovers: Vec::new(),
            command_failovers: Vec::new(),
        };
        let started = Instant::now();
        let mut next_kill = Instant::now() + Duration::from_secs(5);
        let mut restart_at: Option<Instant> = None;
        let mut watches: Vec<Watch> = Vec::new();
        while started.elapsed() < duration {
            if self.rng.gen_bool(0.1) || self.open.is_empty() {
                self.ci_event().await;
            } else {
                self.click().await;
            }
            if Instant::now() >= next_kill && self.replicas.len() == REPLICAS {
                watches.push(self.kill().await);
                restart_at =
                    Some(Instant::now() + Duration::from_millis(self.rng.gen_range(1000..4000)));
                next_kill = Instant::now() + Duration::from_millis(self.rng.gen_range(3000..9000));
            }
            if restart_at.is_some_and(|at| Instant::now() >= at) {
                self.start_replica().await;
                self.counts.restarts += 1;
                restart_at = None;
            }
            self.follow(&mut watches, &mut report).await;
            tokio::time::sleep(Duration::from_millis(self.rng.gen_range(5..60))).await;
        }
        if restart_at.is_some() {
            self.start_replica().await;
            self.counts.restarts += 1;
        }
        // No more kills: the survivors take over what is left and drain the outbox.
        let drain = Instant::now();
        while !watches.is_empty() && drain.elapsed() < LEASE * 3 {
            self.follow(&mut watches, &mut report).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for watch in &watches {
            println!("not taken over within {:?}: {watch:?}", LEASE * 3);
        }
        self.wait_until_drained().await;
        report
    }

    async fn ci_event(&mut self) {
        let sha = format!("{:040x}", self.next_sha);
        self.next_sha += 1;
        let build = json!({"event": "build", "app": "shop", "sha": sha,
            "image": format!("ghcr.io/acme/shop:{sha}"), "author": "alice", "message": "chaos"});
        let staging = json!({"event": "deployed", "app": "shop", "environment": "staging",
            "sha": sha, "status": "success"});
        for event in [build, staging] {
            let answer = self.post_event(&event).await;
            self.counts.ci_events += 1;
            if let Some(id) = answer["approval_requests"][0]["id"].as_i64() {
                // Clicks go to the newest few requests (older ones are superseded anyway).
                self.open.push(id);
                if self.open.len() > 4 {
                    self.open.remove(0);
                }
                self.counts.requests += 1;
            }
        }
    }

    /// Posts a CI event to live replicas until one accepts it, as CI retries.
    async fn post_event(&mut self, event: &Value) -> Value {
        for _ in 0..20 {
            let base = self.any_replica();
            let sent = self
                .client
                .post(format!("{base}/api/v1/events"))
                .bearer_auth(CI_TOKEN)
                .json(event)
                .send()
                .await;
            if let Ok(response) = sent {
                if response.status().is_success() {
                    return response.json().await.unwrap_or(Value::Null);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no replica accepted {event}");
    }

    async fn click(&mut self) {
        let request = self.open[self.rng.gen_range(0..self.open.len())];
        let user = reviewer(self.rng.gen_range(0..REVIEWERS));
        let payload = click(
            &user,
            CHANNEL,
            "approve",
            &request.to_string(),
            &self.slack.response_url(&format!("{request}-{user}")),
        );
        let body = interaction_body(&payload);
        let timestamp = chrono::Utc::now().timestamp();
        let base = self.any_replica();
        let sent = self
            .client
            .post(format!("{base}/slack/interactions"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", timestamp.to_string())
            .header(
                "x-slack-signature",
                slack_signature(SECRET, timestamp, &body),
            )
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                self.counts.clicks_acknowledged += 1;
                let at = chrono::Utc::now().timestamp_millis();
                self.acknowledged.push((request, user, at));
            }
            // Slack shows the user an error and they click again; not acknowledged, not owed.
            _ => self.counts.clicks_unanswered += 1,
        }
    }

    /// Kills a random replica and notes what it held.
    async fn kill(&mut self) -> Watch {
        let index = self.rng.gen_range(0..self.replicas.len());
        let replica = self.replicas.remove(index);
        replica.server.kill();
        self.counts.kills += 1;
        let items: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM outbox WHERE leased_by = $1 AND state = 'pending'")
                .bind(&replica.name)
                .fetch_all(&mut self.db)
                .await
                .expect("outbox held");
        let commands: Vec<i64> = sqlx::query_scalar(
            "SELECT c.deployment_id FROM command_runs c JOIN deployments d \
             ON d.id = c.deployment_id WHERE c.replica = $1 AND d.state = 'deploying'",
        )
        .bind(&replica.name)
        .fetch_all(&mut self.db)
        .await
        .expect("commands held");
        Watch {
            replica: replica.name,
            killed_at: Instant::now(),
            items: items.into_iter().collect(),
            commands: commands.into_iter().collect(),
        }
    }

    /// Notes the fail-overs that completed.
    async fn follow(&mut self, watches: &mut Vec<Watch>, report: &mut Report) {
        for watch in watches.iter_mut() {
            let mut taken = Vec::new();
            for id in &watch.items {
                let row = sqlx::query("SELECT state, leased_by FROM outbox WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut self.db)
                    .await
                    .expect("item");
                let state: String = row.get("state");
                let leased_by: Option<String> = row.get("leased_by");
                if state != "pending" || leased_by.is_some_and(|name| name != watch.replica) {
                    taken.push(*id);
                }
            }
            for id in taken {
                watch.items.remove(&id);
                if watch.items.is_empty() {
                    report.outbox_failovers.push(watch.killed_at.elapsed());
                }
            }
            let mut settled = Vec::new();
            for id in &watch.commands {
                let state: String =
                    sqlx::query_scalar("SELECT state FROM deployments WHERE id = $1")
                        .bind(id)
                        .fetch_one(&mut self.db)
                        .await
                        .expect("deployment");
                if state != "deploying" {
                    settled.push(*id);
                }
            }
            for id in settled {
                watch.commands.remove(&id);
                report.command_failovers.push(watch.killed_at.elapsed());
            }
        }
        watches.retain(|watch| !watch.items.is_empty() || !watch.commands.is_empty());
    }

    /// Waits (up to a few leases) until nothing in the outbox is due or leased.
    async fn wait_until_drained(&mut self) {
        let started = Instant::now();
        while started.elapsed() < LEASE * 4 {
            if self.outbox_busy().await == 0 && self.deploying().await == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Outbox items due now or leased: work not finished.
    async fn outbox_busy(&mut self) -> i64 {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE state = 'pending' \
             AND (leased_by IS NOT NULL OR next_attempt_at <= $1)",
        )
        .bind(chrono::Utc::now().timestamp_millis())
        .fetch_one(&mut self.db)
        .await
        .expect("outbox")
    }

    /// Deployments still deploying.
    async fn deploying(&mut self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM deployments WHERE state = 'deploying'")
            .fetch_one(&mut self.db)
            .await
            .expect("deployments")
    }

    /// The consistency checks; each violation in words.
    async fn check(&mut self, runs: &Path) -> Vec<String> {
        let mut violations = Vec::new();
        let per_release: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT release_id, COUNT(*) FROM deployments \
             WHERE environment = 'production' AND kind = 'deploy' GROUP BY release_id HAVING COUNT(*) > 1",
        )
        .fetch_all(&mut self.db)
        .await
        .expect("deploys per release");
        for (release, count) in per_release {
            violations.push(format!(
                "release {release} was deployed to production {count} times"
            ));
        }
        let ran = std::fs::read_to_string(runs).unwrap_or_default();
        let mut seen = BTreeMap::<&str, u32>::new();
        for id in ran.lines() {
            *seen.entry(id).or_default() += 1;
        }
        for (id, times) in seen.iter().filter(|(_, times)| **times > 1) {
            violations.push(format!("deployment {id}'s command ran {times} times"));
        }
        let decided: BTreeSet<(i64, String)> =
            sqlx::query_as("SELECT request_id, platform_user FROM decisions")
                .fetch_all(&mut self.db)
                .await
                .expect("decisions")
                .into_iter()
                .collect();
        // A click on a request already decided is not recorded (it changes nothing); any other
        // acknowledged click must be.
        let decided_at: BTreeMap<i64, Option<i64>> =
            sqlx::query_as::<_, (i64, Option<i64>)>("SELECT id, decided_at FROM approval_requests")
                .fetch_all(&mut self.db)
                .await
                .expect("requests")
                .into_iter()
                .collect();
        let lost: Vec<_> = self
            .acknowledged
            .iter()
            .filter(|(request, user, at)| {
                let final_before = decided_at
                    .get(request)
                    .copied()
                    .flatten()
                    .is_some_and(|decided| decided <= *at);
                !final_before && !decided.contains(&(*request, user.clone()))
            })
            .collect();
        if !lost.is_empty() {
            violations.push(format!(
                "{} acknowledged clicks have no decision: {:?}",
                lost.len(),
                &lost[..lost.len().min(5)]
            ));
        }
        let stuck = self.outbox_busy().await;
        if stuck > 0 {
            violations.push(format!(
                "{stuck} outbox items due or leased after the drain"
            ));
        }
        let dead_without_reason: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE state = 'dead' AND last_error IS NULL",
        )
        .fetch_one(&mut self.db)
        .await
        .expect("dead");
        if dead_without_reason > 0 {
            violations.push(format!(
                "{dead_without_reason} dead outbox items without a reason"
            ));
        }
        let deploying = self.deploying().await;
        if deploying > 0 {
            violations.push(format!(
                "{deploying} deployments still deploying after the drain"
            ));
        }
        violations
    }

    /// Deployments and outbox items by state.
    async fn print_totals(&mut self) {
        for (what, query) in [
            ("deployments", "SELECT state, COUNT(*) FROM deployments WHERE environment = 'production' GROUP BY state ORDER BY state"),
            ("outbox items", "SELECT state, COUNT(*) FROM outbox GROUP BY state ORDER BY state"),
            ("approval requests", "SELECT state, COUNT(*) FROM approval_requests GROUP BY state ORDER BY state"),
        ] {
            let rows: Vec<(String, i64)> = sqlx::query_as(query)
                .fetch_all(&mut self.db)
                .await
                .expect("totals");
            let line: Vec<String> = rows
                .iter()
                .map(|(state, count)| format!("{state} {count}"))
                .collect();
            println!("  {what}: {}", line.join(", "));
        }
        let interrupted: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM deployments WHERE detail LIKE 'interrupted%'")
                .fetch_one(&mut self.db)
                .await
                .expect("interrupted");
        println!("  of which interrupted command deploys: {interrupted}");
    }

    fn stop(&mut self) {
        // Dropping a server sends SIGTERM and waits.
        self.replicas.clear();
    }
}

/// What a killed replica held, until another replica took it over.
#[derive(Debug)]
struct Watch {
    replica: String,
    killed_at: Instant,
    items: BTreeSet<i64>,
    commands: BTreeSet<i64>,
}

impl Report {
    fn print(&self, counts: &Counts) {
        println!("chaos run: {} replicas, lease {:?}", REPLICAS, LEASE);
        println!(
            "  CI events {} (requests opened {}), clicks acknowledged {}, unanswered {}",
            counts.ci_events, counts.requests, counts.clicks_acknowledged, counts.clicks_unanswered
        );
        println!("  kills {}, restarts {}", counts.kills, counts.restarts);
        let worst = |times: &[Duration]| times.iter().max().copied().unwrap_or_default();
        println!(
            "  outbox take-overs {} (worst {:.1} s), command deploys interrupted by another {} (worst {:.1} s)",
            self.outbox_failovers.len(),
            worst(&self.outbox_failovers).as_secs_f64(),
            self.command_failovers.len(),
            worst(&self.command_failovers).as_secs_f64()
        );
    }
}
