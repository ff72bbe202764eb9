//! Verification: deployments in `verifying` get Greenlight's own smoke checks once
//! `smoke_settle` has passed, and become `healthy` (promoting them) or `faulty`.
//!
//! The database is the queue: a restart finds the deployments still verifying and checks them,
//! and two replicas checking the same one settle it once (the transition is conditional).

use std::time::Duration;

use chrono::{DateTime, Utc};
use greenlight_commands::deployment::Event;
use greenlight_commands::DeploymentState;
use greenlight_storage::{releases, Deployment, SmokeResult};

use super::audit::GREENLIGHT;
use super::deployment::{advance, Change, Target};
use super::faulty::describe_check;
use super::Engine;
use crate::background::StopSignal;
use crate::clock::span;

/// The longest the verifier sleeps without looking, in case a wake-up was missed.
const MAX_IDLE: Duration = Duration::from_secs(30);

/// Runs until the app stops.
pub async fn run_verifier(engine: Engine, mut stop: StopSignal) {
    loop {
        let next_due = match engine.run_due_verifications().await {
            Ok(next_due) => next_due,
            Err(error) => {
                tracing::error!(%error, "verifying deployments failed; retrying shortly");
                Some(engine.clock.now() + chrono::Duration::seconds(5))
            }
        };
        let idle = next_due
            .and_then(|at| (at - engine.clock.now()).to_std().ok())
            .unwrap_or(MAX_IDLE)
            .min(MAX_IDLE);
        tokio::select! {
            () = stop.stopped() => return,
            () = engine.verifier_wakeup.notified() => {}
            () = tokio::time::sleep(idle) => {}
        }
    }
}

impl Engine {
    /// Checks every deployment whose settle time has passed. Returns when the next one is due.
    /// Tests call this directly to drive verification step by step.
    pub async fn run_due_verifications(
        &self,
    ) -> Result<Option<DateTime<Utc>>, greenlight_storage::StorageError> {
        let now = self.clock.now();
        let mut due = Vec::new();
        let mut next_due: Option<DateTime<Utc>> = None;
        for deployment in self.storage.unfinished_deployments().await? {
            if deployment.state != DeploymentState::Verifying {
                continue;
            }
            let settle = self
                .config
                .environment(&deployment.app, &deployment.environment)
                .map(|environment| environment.smoke_settle)
                .unwrap_or_default();
            let due_at = deployment.updated_at + span(settle);
            if due_at <= now {
                due.push(deployment);
            } else {
                next_due = Some(next_due.map_or(due_at, |next| next.min(due_at)));
            }
        }
        futures::future::join_all(due.into_iter().map(|d| self.verify(d))).await;
        Ok(next_due)
    }

    async fn verify(&self, deployment: Deployment) {
        let checks = self
            .config
            .environment(&deployment.app, &deployment.environment)
            .map(|environment| environment.smoke.clone())
            .unwrap_or_default();
        let report = self.smoke.run(&checks).await;
        let id = deployment.id;
        if let Err(error) = self.settle(deployment, report.results, report.passed).await {
            tracing::error!(%error, deployment = id, "recording smoke results failed");
        }
    }

    async fn settle(
        &self,
        deployment: Deployment,
        own_results: Vec<SmokeResult>,
        passed: bool,
    ) -> Result<(), greenlight_storage::StorageError> {
        let now = self.clock.now();
        let config = self.config.clone();
        let failed: Vec<String> = own_results
            .iter()
            .filter(|result| !result.passed())
            .map(describe_check)
            .collect();
        let detail = (!failed.is_empty()).then(|| format!("smoke failed: {}", failed.join(", ")));
        // CI's own results stay on the deployment, followed by Greenlight's.
        let mut smoke = deployment.smoke.clone();
        smoke.extend(own_results);
        let id = deployment.id;
        let outcome = self
            .storage
            .write(move |conn| {
                Box::pin(async move {
                    let release = releases::get_release(conn, deployment.release_id).await?;
                    let change = Change {
                        config: &config,
                        release: &release,
                        event: Event::Verified { passed },
                        smoke,
                        detail,
                        actor: GREENLIGHT,
                        now,
                    };
                    advance(conn, Target::Recorded(deployment), &change).await
                })
            })
            .await;
        self.outbox_wakeup.notify_one();
        match outcome {
            Ok(Ok(applied)) => {
                if applied.wake_verifier {
                    self.verifier_wakeup.notify_one();
                }
                Ok(())
            }
            Ok(Err(refusal)) => {
                tracing::info!(deployment = id, %refusal, "smoke results not recorded");
                Ok(())
            }
            // Superseded, or settled by another replica, while the checks ran.
            Err(error) if error.is_conflict() => Ok(()),
            Err(error) => Err(error),
        }
    }
}
