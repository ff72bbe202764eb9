//! DORA metrics (SPEC §14) on hand-built histories: each case is a release log and the figures
//! worked out by hand from the definitions.

use std::collections::HashMap;

use greenlight_commands::{DeploymentKind, DeploymentState};
use greenlight_storage::{
    Deployment, DeploymentTransition, DoraMetrics, DoraWindow, NewDeployment, Release, Storage,
};

use crate::support::{app, at, each_backend, env, new_release, sha};

const MIN: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
/// Where every window ends, in seconds from `support::at(0)`; event times count back from it.
const END: i64 = 30 * DAY;

use DeploymentState::{Failed, Faulty, Healthy, RolledBack, Superseded};

/// One thing that happened, at seconds relative to the window's end (negative: before it).
#[derive(Debug, Clone, Copy)]
enum Event {
    /// Release `n` of `app` built at `built`, its commit made at `committed` (if CI said).
    Build {
        app: &'static str,
        n: u32,
        built: i64,
        committed: Option<i64>,
    },
    /// Release `n` deployed to `env`: verifying a minute before `at`, then `state` at `at`.
    Deploy {
        n: u32,
        env: &'static str,
        state: DeploymentState,
        at: i64,
    },
    /// CI reported release `n` in `env` straight as `state` at `at` (no verifying step).
    Reported {
        n: u32,
        env: &'static str,
        state: DeploymentState,
        at: i64,
    },
    /// A rollback in production to release `to`, away from release `from`, healthy at `at`;
    /// `from`'s deployment becomes rolled_back then, as the engine does.
    RollBack { to: u32, from: u32, at: i64 },
    /// A rollback in production to release `to`, away from release `from`, started at `at`
    /// and still deploying; `from`'s deployment is superseded by it.
    RollbackStarted { to: u32, from: u32, at: i64 },
    /// Release `n`'s latest deployment in production moves on to `state` at `at`.
    Becomes {
        n: u32,
        state: DeploymentState,
        at: i64,
    },
}

use Event::{Becomes, Build, Deploy, RollBack, RollbackStarted};

fn build(n: u32, built: i64, committed: Option<i64>) -> Event {
    Build {
        app: "shop",
        n,
        built,
        committed,
    }
}

fn prod(n: u32, state: DeploymentState, at: i64) -> Event {
    Deploy {
        n,
        env: "production",
        state,
        at,
    }
}

/// What the metrics should be: deployments, failed, lead time (samples, median, p90) and time
/// to restore (samples, median), in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Expected {
    deployments: i64,
    failed: i64,
    lead: (i64, Option<f64>, Option<f64>),
    restore: (i64, Option<f64>),
}

const NOTHING: Expected = Expected {
    deployments: 0,
    failed: 0,
    lead: (0, None, None),
    restore: (0, None),
};

struct Case {
    name: &'static str,
    days: i64,
    history: Vec<Event>,
    expected: Expected,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "an empty window gives nulls, not errors",
            days: 30,
            history: vec![],
            expected: NOTHING,
        },
        Case {
            // Lead times 1 h, 2 h, 4 h: median 2 h; p90 at rank 1.8 = 2 h + 0.8 × 2 h.
            name: "lead time runs from the commit to healthy",
            days: 1,
            history: vec![
                build(1, -10 * HOUR + 10 * MIN, Some(-10 * HOUR)),
                prod(1, Healthy, -9 * HOUR),
                build(2, -8 * HOUR + 10 * MIN, Some(-8 * HOUR)),
                prod(2, Healthy, -6 * HOUR),
                build(3, -5 * HOUR + 10 * MIN, Some(-5 * HOUR)),
                prod(3, Healthy, -HOUR),
            ],
            expected: Expected {
                deployments: 3,
                failed: 0,
                lead: (3, Some(7200.0), Some(12_960.0)),
                restore: (0, None),
            },
        },
        Case {
            // 30 min from the build (no commit time); 2 h from the commit: median 75 min;
            // p90 at rank 0.9 = 1800 + 0.9 × 5400.
            name: "lead time falls back to the build time without committed_at",
            days: 1,
            history: vec![
                build(1, -5 * HOUR, None),
                prod(1, Healthy, -5 * HOUR + 30 * MIN),
                build(2, -3 * HOUR + 30 * MIN, Some(-4 * HOUR)),
                prod(2, Healthy, -2 * HOUR),
            ],
            expected: Expected {
                deployments: 2,
                failed: 0,
                lead: (2, Some(4500.0), Some(6660.0)),
                restore: (0, None),
            },
        },
        Case {
            // The rollback is neither a deployment nor a lead-time sample: it restores 15 min
            // after the fault.
            name: "a faulty deployment restored by a rollback",
            days: 1,
            history: vec![
                build(1, -6 * HOUR, Some(-6 * HOUR)),
                prod(1, Healthy, -5 * HOUR),
                build(2, -4 * HOUR, Some(-4 * HOUR)),
                prod(2, Faulty, -3 * HOUR),
                RollBack {
                    to: 1,
                    from: 2,
                    at: -3 * HOUR + 15 * MIN,
                },
            ],
            expected: Expected {
                deployments: 2,
                failed: 1,
                lead: (1, Some(3600.0), Some(3600.0)),
                restore: (1, Some(900.0)),
            },
        },
        Case {
            // CI reported the fault itself; the next deploy is healthy 40 min later and
            // supersedes it, which keeps it a failure.
            name: "a faulty deployment restored by the next healthy deploy",
            days: 1,
            history: vec![
                build(1, -6 * HOUR, Some(-6 * HOUR)),
                Event::Reported {
                    n: 1,
                    env: "production",
                    state: Faulty,
                    at: -5 * HOUR,
                },
                build(2, -5 * HOUR + 10 * MIN, Some(-5 * HOUR + 10 * MIN)),
                prod(2, Healthy, -5 * HOUR + 40 * MIN),
                Becomes {
                    n: 1,
                    state: Superseded,
                    at: -5 * HOUR + 40 * MIN,
                },
            ],
            expected: Expected {
                deployments: 2,
                failed: 1,
                lead: (1, Some(1800.0), Some(1800.0)),
                restore: (1, Some(2400.0)),
            },
        },
        Case {
            // Two faults restored by one healthy deploy: 3 h and 1 h; median 2 h.
            name: "consecutive faults are both restored by the first healthy deploy after them",
            days: 1,
            history: vec![
                build(1, -10 * HOUR, None),
                prod(1, Faulty, -9 * HOUR),
                build(2, -8 * HOUR, None),
                prod(2, Faulty, -7 * HOUR),
                Becomes {
                    n: 1,
                    state: Superseded,
                    at: -7 * HOUR,
                },
                build(3, -6 * HOUR - 30 * MIN, None),
                prod(3, Healthy, -6 * HOUR),
                Becomes {
                    n: 2,
                    state: Superseded,
                    at: -6 * HOUR,
                },
            ],
            expected: Expected {
                deployments: 3,
                failed: 2,
                lead: (1, Some(1800.0), Some(1800.0)),
                restore: (2, Some(7200.0)),
            },
        },
        Case {
            // An operator rolled back a healthy release: a failed change, but nothing turned
            // faulty, so nothing to restore.
            name: "a healthy deployment rolled back counts as failed",
            days: 1,
            history: vec![
                build(1, -6 * HOUR, Some(-6 * HOUR)),
                prod(1, Healthy, -5 * HOUR),
                build(2, -4 * HOUR, Some(-4 * HOUR)),
                prod(2, Healthy, -3 * HOUR),
                RollBack {
                    to: 1,
                    from: 2,
                    at: -2 * HOUR,
                },
            ],
            expected: Expected {
                deployments: 2,
                failed: 1,
                lead: (2, Some(3600.0), Some(3600.0)),
                restore: (0, None),
            },
        },
        Case {
            // 2 is superseded by a deploy (no failure); 3 by a rollback (a failure).
            name: "superseded by a rollback counts as failed, by a deploy does not",
            days: 1,
            history: vec![
                build(1, -9 * HOUR, Some(-9 * HOUR)),
                prod(1, Healthy, -8 * HOUR),
                build(2, -7 * HOUR, Some(-7 * HOUR)),
                prod(2, Healthy, -6 * HOUR),
                build(3, -5 * HOUR, Some(-5 * HOUR)),
                prod(3, Healthy, -4 * HOUR),
                Becomes {
                    n: 2,
                    state: Superseded,
                    at: -4 * HOUR,
                },
                RollbackStarted {
                    to: 1,
                    from: 3,
                    at: -3 * HOUR,
                },
            ],
            expected: Expected {
                deployments: 3,
                failed: 1,
                lead: (3, Some(3600.0), Some(3600.0)),
                restore: (0, None),
            },
        },
        Case {
            // 2 ran twice; the rollback undid its second deployment only.
            name: "a rollback fails only the deployment it replaced",
            days: 1,
            history: vec![
                build(1, -9 * HOUR, Some(-9 * HOUR)),
                prod(1, Healthy, -8 * HOUR),
                build(2, -7 * HOUR, Some(-7 * HOUR)),
                prod(2, Healthy, -6 * HOUR),
                build(3, -5 * HOUR, Some(-5 * HOUR)),
                prod(3, Healthy, -4 * HOUR),
                Becomes {
                    n: 2,
                    state: Superseded,
                    at: -4 * HOUR,
                },
                prod(2, Healthy, -3 * HOUR),
                Becomes {
                    n: 3,
                    state: Superseded,
                    at: -3 * HOUR,
                },
                RollbackStarted {
                    to: 1,
                    from: 2,
                    at: -2 * HOUR,
                },
            ],
            // Lead times 1 h, 1 h, 1 h and 4 h (2 again, from its commit): p90 at rank 2.7.
            expected: Expected {
                deployments: 4,
                failed: 1,
                lead: (4, Some(3600.0), Some(11_160.0)),
                restore: (0, None),
            },
        },
        Case {
            // Only release 3 counts: 1 finished before the day, 5 after it; failed deploys,
            // staging and another app's production are not production deployments of shop.
            // 4 turned faulty inside but was restored only after the window: no sample yet.
            name: "deployments outside the window, environment or app are ignored",
            days: 1,
            history: vec![
                build(1, -3 * DAY, None),
                prod(1, Faulty, -DAY - MIN),
                build(2, -5 * HOUR, None),
                prod(2, Failed, -4 * HOUR),
                Deploy {
                    n: 2,
                    env: "staging",
                    state: Healthy,
                    at: -4 * HOUR - 30 * MIN,
                },
                build(3, -3 * HOUR, None),
                prod(3, Healthy, -2 * HOUR),
                build(4, -90 * MIN, None),
                prod(4, Faulty, -HOUR),
                build(5, -30 * MIN, None),
                prod(5, Healthy, HOUR),
                Build {
                    app: "web",
                    n: 6,
                    built: -3 * HOUR,
                    committed: None,
                },
                prod(6, Faulty, -2 * HOUR),
            ],
            expected: Expected {
                deployments: 2,
                failed: 1,
                lead: (1, Some(3600.0), Some(3600.0)),
                restore: (0, None),
            },
        },
        Case {
            // Ten deploys with lead times 1..=10 min: median 5.5 min, p90 at rank 8.1 =
            // 9 min + 0.1 min; one per day over ten days.
            name: "median and p90 interpolate between neighbouring samples",
            days: 10,
            history: (1..=10)
                .flat_map(|n: u32| {
                    let done = -i64::from(n) * DAY + HOUR;
                    [
                        build(n, done - i64::from(n) * MIN, None),
                        prod(n, Healthy, done),
                    ]
                })
                .collect(),
            expected: Expected {
                deployments: 10,
                failed: 0,
                lead: (10, Some(330.0), Some(546.0)),
                restore: (0, None),
            },
        },
    ]
}

#[tokio::test]
async fn dora_metrics_follow_the_definitions() {
    each_backend(|storage| async move {
        for (number, case) in cases().into_iter().enumerate() {
            // Each case on apps of its own, so the histories do not meet.
            let history = History::replay(&storage, number, &case.history).await;
            let window = DoraWindow {
                app: app(&history.app("shop")),
                environment: env("production"),
                from: at(END - case.days * DAY),
                to: at(END),
            };
            let metrics = storage.dora_metrics(&window).await.expect("dora metrics");
            assert_eq!(observed(&metrics), case.expected, "{}", case.name);
        }
    })
    .await;
}

/// The timeline page's charts read the same deploys the DORA measures count.
#[tokio::test]
async fn the_charts_deploys_are_those_dora_counts() {
    each_backend(|storage| async move {
        for (number, case) in cases().into_iter().enumerate() {
            let history = History::replay(&storage, number, &case.history).await;
            let window = DoraWindow {
                app: app(&history.app("shop")),
                environment: env("production"),
                from: at(END - case.days * DAY),
                to: at(END),
            };
            let metrics = storage.dora_metrics(&window).await.expect("dora metrics");
            let deploys = storage.finished_deploys(&window).await.expect("deploys");
            assert_eq!(deploys.len() as i64, metrics.deployments, "{}", case.name);
            let leads = deploys.iter().filter(|d| d.lead_time_ms.is_some()).count();
            assert_eq!(leads as i64, metrics.lead_time.samples, "{}", case.name);
            let unhealthy = deploys
                .iter()
                .filter(|d| d.outcome != greenlight_storage::DeployOutcome::Healthy)
                .count();
            assert!(unhealthy as i64 <= metrics.failed, "{}", case.name);
            assert!(
                deploys
                    .windows(2)
                    .all(|w| w[0].finished_at <= w[1].finished_at),
                "{}: oldest first",
                case.name
            );
        }
    })
    .await;
}

/// The figures the API shows.
fn observed(metrics: &DoraMetrics) -> Expected {
    let (lead, restore) = (metrics.lead_time, metrics.time_to_restore);
    Expected {
        deployments: metrics.deployments,
        failed: metrics.failed,
        lead: (lead.samples, lead.median_seconds, lead.p90_seconds),
        restore: (restore.samples, restore.median_seconds),
    }
}

/// A case's history written through the storage API, as the engine writes it.
struct History<'a> {
    storage: &'a Storage,
    /// Prefix of the case's app names.
    prefix: String,
    releases: HashMap<u32, Release>,
    /// The latest deployment of each release in production.
    production: HashMap<u32, Deployment>,
}

impl<'a> History<'a> {
    async fn replay(storage: &'a Storage, case: usize, events: &[Event]) -> History<'a> {
        let mut history = History {
            storage,
            prefix: format!("case{case}"),
            releases: HashMap::new(),
            production: HashMap::new(),
        };
        for event in events {
            history.apply(*event).await;
        }
        history
    }

    fn app(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    async fn apply(&mut self, event: Event) {
        match event {
            Build {
                app,
                n,
                built,
                committed,
            } => {
                let mut new = new_release(&self.app(app), n, at(END + built));
                new.committed_at = committed.map(|c| at(END + c));
                let release = self.storage.insert_release(new).await.expect("release");
                self.releases.insert(n, release.into_inner());
            }
            Deploy { n, env, state, at } => {
                let verifying = self
                    .insert(
                        n,
                        env,
                        DeploymentKind::Deploy,
                        None,
                        Self::VERIFYING,
                        at - MIN,
                    )
                    .await;
                let done = self.step(&verifying, state, at).await;
                self.record(n, env, done);
            }
            Event::Reported { n, env, state, at } => {
                let done = self
                    .insert(n, env, DeploymentKind::Deploy, None, state, at)
                    .await;
                self.record(n, env, done);
            }
            RollBack { to, from, at } => {
                let rollback = self.start_rollback(to, from, at - 5 * MIN).await;
                self.step(&rollback, Healthy, at).await;
                let undone = self.production[&from].clone();
                let undone = self.step(&undone, RolledBack, at).await;
                self.production.insert(from, undone);
            }
            RollbackStarted { to, from, at } => {
                self.start_rollback(to, from, at).await;
                let replaced = self.production[&from].clone();
                let replaced = self.step(&replaced, Superseded, at).await;
                self.production.insert(from, replaced);
            }
            Becomes { n, state, at } => {
                let deployment = self.production[&n].clone();
                let moved = self.step(&deployment, state, at).await;
                self.production.insert(n, moved);
            }
        }
    }

    const VERIFYING: DeploymentState = DeploymentState::Verifying;

    fn record(&mut self, n: u32, env: &str, deployment: Deployment) {
        if env == "production" {
            self.production.insert(n, deployment);
        }
    }

    async fn start_rollback(&mut self, to: u32, from: u32, at: i64) -> Deployment {
        self.insert(
            to,
            "production",
            DeploymentKind::Rollback,
            Some(from),
            DeploymentState::Deploying,
            at,
        )
        .await
    }

    async fn insert(
        &self,
        n: u32,
        environment: &str,
        kind: DeploymentKind,
        replacing: Option<u32>,
        state: DeploymentState,
        seconds: i64,
    ) -> Deployment {
        self.storage
            .insert_deployment(NewDeployment {
                release_id: self.releases[&n].id,
                environment: env(environment),
                kind,
                state,
                previous_sha: replacing.map(sha),
                deployer: Some("http".to_owned()),
                deployer_ref: None,
                triggered_by: Some("alice".to_owned()),
                smoke: Vec::new(),
                detail: None,
                approved: true,
                at: at(END + seconds),
            })
            .await
            .expect("insert deployment")
    }

    async fn step(&self, deployment: &Deployment, to: DeploymentState, seconds: i64) -> Deployment {
        let change = DeploymentTransition::new(deployment.state, to, at(END + seconds));
        self.storage
            .transition_deployment(deployment.id, change)
            .await
            .unwrap_or_else(|e| panic!("{} -> {to}: {e}", deployment.state))
    }
}

/// Migration 0008 finds the faults that later states hide (rolled back, superseded) in the
/// release log. Written against SQLite's dialect of it; the PostgreSQL one differs only in
/// how it reads the JSON detail.
#[tokio::test]
async fn migration_0008_recovers_faults_from_the_release_log_on_sqlite() {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Connection};

    let dir = tempfile::tempdir().expect("dir");
    let url = crate::support::sqlite_url(&dir);
    // The schema as it was before 0008.
    let before = tempfile::tempdir().expect("dir");
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/sqlite");
    for entry in std::fs::read_dir(&source).expect("migrations") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("a name");
        if name < "0008" {
            std::fs::copy(&path, before.path().join(name)).expect("copy");
        }
    }
    let options: SqliteConnectOptions = url.parse().expect("a SQLite URL");
    let mut conn = options
        .create_if_missing(true)
        .connect()
        .await
        .expect("open");
    sqlx::migrate::Migrator::new(before.path())
        .await
        .expect("migrations")
        .run(&mut conn)
        .await
        .expect("migrate to 0007");
    let shop_sha = sha(1);
    let history = format!(
        "INSERT INTO releases (id, app, sha, image, created_at) VALUES (1, 'shop', '{shop_sha}', 'i', 0);
         INSERT INTO deployments (id, release_id, app, environment, kind, state, created_at,
             updated_at, healthy_at, finished_at) VALUES
           (1, 1, 'shop', 'production', 'deploy', 'faulty', 0, 1000, NULL, 1000),
           (2, 1, 'shop', 'production', 'deploy', 'rolled_back', 0, 2500, NULL, 2000),
           (3, 1, 'shop', 'production', 'deploy', 'superseded', 0, 3000, NULL, 3000),
           (4, 1, 'shop', 'production', 'deploy', 'superseded', 0, 4500, 4000, 4000);
         INSERT INTO audit_log (occurred_at, actor, app, environment, sha, kind, detail) VALUES
           (2000, 'greenlight', 'shop', 'production', '{shop_sha}', 'deployment_faulty',
            '{{\"deployment_id\":2,\"kind\":\"deploy\"}}'),
           (2500, 'greenlight', 'shop', 'production', '{shop_sha}', 'deployment_rolled_back',
            '{{\"deployment_id\":2}}'),
           (2900, 'greenlight', 'web', 'production', '{shop_sha}', 'deployment_faulty',
            '{{\"deployment_id\":3}}');"
    );
    sqlx::raw_sql(&history)
        .execute(&mut conn)
        .await
        .expect("history");
    conn.close().await.expect("close");

    let storage = Storage::connect(&url).await.expect("open");
    storage.migrate().await.expect("migrate to 0008");
    let faulty_at: Vec<Option<i64>> =
        sqlx::query_scalar("SELECT faulty_at FROM deployments ORDER BY id")
            .fetch_all(&mut *storage.reader().await.expect("reader"))
            .await
            .expect("read");
    // 3 was superseded while verifying (the faulty entry naming it is another app's).
    assert_eq!(faulty_at, vec![Some(1000), Some(2000), None, None]);
    storage.close().await;
}
