//! Timers: approval requests and GitHub protection rules that expire, and reminders that fall
//! due. All are rows in the database with a due time, so a restart simply finds them again.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use greenlight_commands::{approval, RequestSnapshot};
use greenlight_storage::{approvals, AnyConnection, ApprovalRequest, StorageError};

use super::audit::GREENLIGHT;
use super::effects::{self, Context, ReplyTo};
use super::snapshot::load_snapshot;
use super::Engine;
use crate::background::StopSignal;
use crate::cards::CardKey;
use crate::config::Config;

/// How often timers are checked when nothing wakes them: reminders and expiry are minutes to
/// hours apart, so a few seconds late is fine.
const TICK: Duration = Duration::from_secs(5);
const BATCH: u32 = 50;

/// Delivery ids are kept this long for de-duplication; GitHub redeliveries are manual and
/// happen within days.
const KEEP_DELIVERIES: chrono::Duration = chrono::Duration::days(14);
const PRUNE_EVERY: chrono::Duration = chrono::Duration::hours(1);

pub async fn run_timers(engine: Engine, mut stop: StopSignal) {
    let mut last_prune: Option<DateTime<Utc>> = None;
    loop {
        if let Err(error) = engine.run_due_timers().await {
            tracing::error!(%error, "running approval timers failed");
        }
        let now = engine.clock.now();
        if last_prune.is_none_or(|last| now - last >= PRUNE_EVERY) {
            match engine
                .storage
                .prune_webhook_deliveries(now - KEEP_DELIVERIES)
                .await
            {
                Ok(pruned) if pruned > 0 => tracing::info!(pruned, "forgot old webhook deliveries"),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "pruning webhook deliveries failed"),
            }
            last_prune = Some(now);
        }
        tokio::select! {
            () = stop.stopped() => return,
            () = tokio::time::sleep(TICK) => {}
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimerPass {
    pub expired: u32,
    pub reminded: u32,
    /// GitHub protection rules answered `rejected` "expired".
    pub gates_expired: u32,
    /// Deployments failed because their deployer never reported completion in time.
    pub deploys_timed_out: u32,
    /// Command deploys failed as interrupted because the replica running them died.
    pub commands_interrupted: u32,
}

impl Engine {
    /// Expires and reminds whatever is due now. Tests call this after moving the clock.
    pub async fn run_due_timers(&self) -> Result<TimerPass, StorageError> {
        let now = self.clock.now();
        let mut pass = TimerPass::default();
        for request in self.storage.due_expirations(now, BATCH).await? {
            if self.expire(request.id, now).await? {
                pass.expired += 1;
            }
        }
        for request in self.storage.due_reminders(now, BATCH).await? {
            if self.remind(request.id, now).await? {
                pass.reminded += 1;
            }
        }
        pass.gates_expired = self.expire_github_gates(now, BATCH).await?;
        pass.deploys_timed_out = self.time_out_deploys(now).await?;
        pass.commands_interrupted = self.interrupt_orphaned_commands().await?;
        if pass != TimerPass::default() {
            self.outbox_wakeup.notify_one();
        }
        Ok(pass)
    }

    async fn expire(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StorageError> {
        self.on_waiting_request(id, move |conn, config, request, snapshot| {
            Box::pin(async move {
                let Some(transition) = approval::tick(&snapshot, now) else {
                    return Ok(false);
                };
                let request =
                    effects::apply_change(conn, request, transition.change.as_ref(), now).await?;
                let context = Context {
                    config: &config,
                    request: &request,
                    actor: GREENLIGHT,
                    reply_to: &ReplyTo::Nobody,
                    now,
                };
                effects::enqueue_effects(conn, &context, &transition.effects).await?;
                Ok(true)
            })
        })
        .await
    }

    async fn remind(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StorageError> {
        self.on_waiting_request(id, move |conn, config, request, snapshot| {
            Box::pin(async move {
                let text = approval::reminder_text(&snapshot, now);
                let next = snapshot
                    .policy
                    .reminder_every
                    .map(|every| now + every)
                    .filter(|next| *next < request.expires_at);
                approvals::set_next_reminder(conn, id, next, now).await?;
                let card = CardKey::Approval(id);
                effects::thread_reply(conn, &config, &request.app, card, &text, now).await?;
                Ok(true)
            })
        })
        .await
    }

    /// Runs `work` in one write on request `id` while it waits (locked, so deciders and other
    /// replicas take turns). `false` when there was nothing to do or the request was decided
    /// or expired by someone else in the meantime, which is no error.
    async fn on_waiting_request<F>(&self, id: i64, work: F) -> Result<bool, StorageError>
    where
        F: for<'c> FnOnce(
                &'c mut AnyConnection,
                Arc<Config>,
                ApprovalRequest,
                RequestSnapshot,
            ) -> BoxFuture<'c, Result<bool, StorageError>>
            + Send
            + 'static,
    {
        let config = self.config.clone();
        let outcome = self
            .storage
            .write(move |conn| {
                Box::pin(async move {
                    let request = approvals::lock_waiting_request(conn, id).await?;
                    let snapshot = load_snapshot(conn, &config, &request).await?;
                    work(conn, config, request, snapshot).await
                })
            })
            .await;
        match outcome {
            Err(error) if error.is_conflict() => Ok(false),
            other => other,
        }
    }
}
