//! `greenlight demo` (SPEC §4): the timeline page over a temporary SQLite database seeded with
//! 90 days of a sample app's history — builds, staging, approvals, production deploys, a few
//! faulty releases with their rollbacks and locks — for a newcomer's first look.
//!
//! The history is written through storage, as the engine would have left it; nothing is sent
//! anywhere (no chat platform, no deployer is configured).

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use greenlight_commands::{
    AppName, ApprovalState, CommitSha, DecisionVerdict, DeploymentKind, DeploymentState,
    EnvironmentName, PersonName, Platform,
};
use greenlight_storage::{
    ApprovalSource, ApprovalTransition, Deployment, DeploymentTransition, NewApprovalRequest,
    NewDecision, NewDeployment, NewLock, NewRelease, SmokeResult, Storage, StorageError,
};
use serde_json::json;

/// The sample configuration: one app, staging then production behind two approvals.
pub const CONFIG: &str = r#"
# Gated environments need a chat channel; this Slack goes nowhere, and the demo posts nothing.
[slack]
bot_token = "xoxb-demo"
signing_secret = "demo"
api_url = "http://127.0.0.1:9/api"

[people]
alice = { slack = "U0ALICE" }
bob = { slack = "U0BOB" }
carol = { slack = "U0CAROL" }

[groups]
sre = ["alice", "bob"]

[apps.shop]
image = "ghcr.io/acme/shop"
# A demo only: a real configuration reads its tokens from the environment.
ci_token = "demo-ci-token"
channels = { slack = "C0DEMO" }

[apps.shop.environments.staging]

[apps.shop.environments.production]
after = "staging"
reviewers = ["group:sre", "carol"]
required_approvals = 2
wait_timer = "5m"
approval_timeout = "24h"
auto_rollback = true
lock_after_rollback = true
"#;

const DAYS: i64 = 90;
const AUTHORS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const SUBJECTS: [&str; 8] = [
    "Fix checkout rounding",
    "Add gift cards to the cart",
    "Speed up the product search",
    "Upgrade the payment SDK",
    "Cache shipping quotes",
    "Show stock per warehouse",
    "Retry failed webhooks",
    "Tidy the order e-mails",
];

/// A small deterministic generator: the same history every run.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % sides
    }
}

fn app() -> AppName {
    AppName::parse("shop").unwrap_or_else(|_| unreachable!("a valid app name"))
}

fn environment(name: &str) -> EnvironmentName {
    EnvironmentName::parse(name).unwrap_or_else(|_| unreachable!("a valid environment name"))
}

fn check(name: &str, passed: bool, detail: &str) -> SmokeResult {
    SmokeResult {
        name: name.to_owned(),
        status: if passed {
            SmokeResult::PASSED
        } else {
            SmokeResult::FAILED
        }
        .to_owned(),
        duration_ms: Some(if passed { 42 } else { 5_000 }),
        detail: Some(detail.to_owned()),
    }
}

/// Writes 90 days of history up to `now`: about a release a working day, most of them approved
/// and healthy, some rejected, expired or faulty (then rolled back and locked), the newest one
/// waiting for its second approval.
pub async fn seed(storage: &Storage, now: DateTime<Utc>) -> Result<(), StorageError> {
    let mut dice = Dice(2026);
    let mut seeder = Seeder {
        storage,
        production: None,
    };
    let start = now - TimeDelta::days(DAYS);
    let mut n = 0_u32;
    for day in 0..DAYS {
        let date = start + TimeDelta::days(day);
        let weekend = matches!(
            chrono::Datelike::weekday(&date),
            chrono::Weekday::Sat | chrono::Weekday::Sun
        );
        let releases = if weekend { 0 } else { 1 + dice.roll(2) };
        for slot in 0..releases {
            n += 1;
            let at = date
                + TimeDelta::hours(9 + 4 * slot as i64)
                + TimeDelta::minutes(dice.roll(50) as i64);
            let last = day == DAYS - 1 && slot + 1 == releases;
            seeder.release(n, at, &mut dice, last).await?;
        }
    }
    Ok(())
}

struct Seeder<'a> {
    storage: &'a Storage,
    /// What runs in production: the deployment to supersede and roll back to.
    production: Option<Deployment>,
}

impl Seeder<'_> {
    async fn release(
        &mut self,
        n: u32,
        at: DateTime<Utc>,
        dice: &mut Dice,
        last: bool,
    ) -> Result<(), StorageError> {
        let sha = CommitSha::parse(&format!(
            "{:08x}{:032x}",
            n.wrapping_mul(2_654_435_761),
            u128::from(n) * 7919
        ))
        .unwrap_or_else(|_| unreachable!("40 hex digits"));
        let author = AUTHORS[dice.roll(4) as usize];
        let release = self
            .storage
            .insert_release(NewRelease {
                app: app(),
                sha: sha.clone(),
                image: format!("ghcr.io/acme/shop:{sha}"),
                author: Some(author.to_owned()),
                message: Some(SUBJECTS[dice.roll(SUBJECTS.len() as u64) as usize].to_owned()),
                git_ref: Some("refs/heads/main".to_owned()),
                commit_url: None,
                ci_url: None,
                committed_at: Some(at - TimeDelta::minutes(20 + dice.roll(240) as i64)),
                created_at: at,
            })
            .await?
            .into_inner();
        let staging_ok = last || dice.roll(14) != 0;
        let smoke = vec![
            check("health", true, "200 OK"),
            if staging_ok {
                check("status", true, "200 OK")
            } else {
                check("status", false, "database: \"timeout\"")
            },
        ];
        let state = if staging_ok {
            DeploymentState::Healthy
        } else {
            DeploymentState::Faulty
        };
        self.deploy(
            release.id,
            "staging",
            state,
            smoke,
            "ci",
            at + TimeDelta::minutes(8),
        )
        .await?;
        if !staging_ok {
            return Ok(());
        }
        let opened = at + TimeDelta::minutes(10);
        let request = self
            .storage
            .insert_approval_request(NewApprovalRequest {
                release_id: release.id,
                environment: environment("production"),
                source: ApprovalSource::Ci,
                policy: json!({"reviewers": ["group:sre", "carol"], "required_approvals": 2}),
                required_approvals: 2,
                opens_at: opened + TimeDelta::minutes(5),
                expires_at: opened + TimeDelta::hours(24),
                next_reminder_at: None,
                at: opened,
            })
            .await?;
        let reviewers: Vec<&str> = ["alice", "bob", "carol"]
            .into_iter()
            .filter(|r| *r != author)
            .collect();
        let outcome = if last { 0 } else { dice.roll(20) };
        let decide = |person: &str, verdict, minutes: i64, comment: Option<&str>| NewDecision {
            request_id: request.id,
            person: PersonName::parse(person).ok(),
            platform: Platform::Slack,
            platform_user: format!("U0{}", person.to_uppercase()),
            verdict,
            comment: comment.map(str::to_owned),
            refused_reason: None,
            at: opened + TimeDelta::minutes(minutes),
        };
        if outcome == 1 {
            self.storage
                .record_decision(decide(
                    reviewers[0],
                    DecisionVerdict::Reject,
                    25,
                    Some("needs a feature flag first"),
                ))
                .await?;
            self.end(
                request.id,
                ApprovalState::Rejected,
                opened + TimeDelta::minutes(25),
            )
            .await?;
            return Ok(());
        }
        if outcome == 2 {
            self.end(
                request.id,
                ApprovalState::Expired,
                opened + TimeDelta::hours(24),
            )
            .await?;
            return Ok(());
        }
        self.storage
            .record_decision(decide(
                reviewers[0],
                DecisionVerdict::Approve,
                12,
                Some("looks good"),
            ))
            .await?;
        if last {
            return Ok(());
        }
        self.storage
            .record_decision(decide(reviewers[1], DecisionVerdict::Approve, 30, None))
            .await?;
        let approved = opened + TimeDelta::minutes(30);
        self.end(request.id, ApprovalState::Approved, approved)
            .await?;
        let faulty = dice.roll(9) == 0;
        let smoke = vec![if faulty {
            check("health", false, "503 Service Unavailable")
        } else {
            check("health", true, "200 OK")
        }];
        let state = if faulty {
            DeploymentState::Faulty
        } else {
            DeploymentState::Healthy
        };
        let finished = approved + TimeDelta::minutes(6);
        let previous = self.production.clone();
        let deployed = self
            .deploy(
                release.id,
                "production",
                state,
                smoke,
                "greenlight",
                finished,
            )
            .await?;
        if let Some(previous) = &previous {
            self.step(
                previous.id,
                previous.state,
                DeploymentState::Superseded,
                finished,
            )
            .await?;
        }
        if !faulty {
            self.production = Some(deployed);
            return Ok(());
        }
        let Some(good) = previous else { return Ok(()) };
        let back = finished + TimeDelta::minutes(2);
        let rollback = self
            .storage
            .insert_deployment(NewDeployment {
                release_id: good.release_id,
                environment: environment("production"),
                kind: DeploymentKind::Rollback,
                state: DeploymentState::Healthy,
                previous_sha: Some(sha.clone()),
                deployer: None,
                deployer_ref: None,
                triggered_by: Some("greenlight".to_owned()),
                smoke: vec![check("health", true, "200 OK")],
                detail: None,
                approved: true,
                at: back,
            })
            .await?;
        self.step(
            deployed.id,
            DeploymentState::Faulty,
            DeploymentState::RolledBack,
            back,
        )
        .await?;
        self.production = Some(rollback);
        self.storage
            .acquire_lock(NewLock {
                app: app(),
                environment: environment("production"),
                locked_by: "greenlight".to_owned(),
                reason: format!(
                    "{} is faulty in production (smoke check failed: health)",
                    sha.short()
                ),
                automatic: true,
                at: back,
            })
            .await?;
        self.storage
            .release_lock(
                &app(),
                &environment("production"),
                "alice",
                back + TimeDelta::hours(2),
            )
            .await?;
        Ok(())
    }

    async fn deploy(
        &self,
        release_id: i64,
        env: &str,
        state: DeploymentState,
        smoke: Vec<SmokeResult>,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Deployment, StorageError> {
        self.storage
            .insert_deployment(NewDeployment {
                release_id,
                environment: environment(env),
                kind: DeploymentKind::Deploy,
                state,
                previous_sha: None,
                deployer: None,
                deployer_ref: None,
                triggered_by: Some(by.to_owned()),
                smoke,
                detail: None,
                approved: true,
                at,
            })
            .await
    }

    async fn step(
        &self,
        id: i64,
        from: DeploymentState,
        to: DeploymentState,
        at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.storage
            .transition_deployment(id, DeploymentTransition::new(from, to, at))
            .await?;
        Ok(())
    }

    async fn end(&self, id: i64, to: ApprovalState, at: DateTime<Utc>) -> Result<(), StorageError> {
        let comment = match to {
            ApprovalState::Expired => Some("no decision within 24h".to_owned()),
            _ => None,
        };
        self.storage
            .transition_approval_request(id, ApprovalTransition { to, comment, at })
            .await?;
        Ok(())
    }
}

/// The folder the demo's database lives in; removed when the demo stops.
pub struct DemoDir(pub std::path::PathBuf);

impl DemoDir {
    pub fn create() -> anyhow::Result<Self> {
        let path =
            std::env::temp_dir().join(format!("greenlight-demo-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.0.join("demo.db").display())
    }
}

impl Drop for DemoDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_demo_history_has_releases_rollbacks_and_a_waiting_approval() {
        let dir = DemoDir::create().expect("a folder");
        let storage = Storage::connect(&dir.database_url())
            .await
            .expect("database");
        storage.migrate().await.expect("migrations");
        let now = Utc::now();
        seed(&storage, now).await.expect("seeded");
        let filter = greenlight_storage::StoryFilter {
            app: None,
            before_id: None,
            limit: 100,
        };
        let stories = storage.release_stories(&filter).await.expect("stories");
        assert!(stories.len() >= 60, "{} releases", stories.len());
        let rollbacks = stories
            .iter()
            .flat_map(|story| &story.deployments)
            .filter(|deployment| deployment.kind == DeploymentKind::Rollback)
            .count();
        assert!(rollbacks >= 1);
        let status = storage
            .environment_status(&app(), &environment("production"))
            .await
            .expect("status");
        assert!(status.pending_approval.is_some());
        assert!(status.current.is_some());
        storage.close().await;
    }
}
