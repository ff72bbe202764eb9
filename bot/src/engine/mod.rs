//! The engine: turns what CI, GitHub and people report into state changes, each one storage
//! write with its audit entries (and, later, its outbox items).
//!
//! Architecture invariant: handlers never write state themselves; they call the engine, which
//! checks the request against configuration once and applies it in one transaction.

pub mod audit;
mod batch_queue;
mod card_commits;
mod commands;
mod decision_batch;
mod decisions;
mod deployment;
mod deploys;
mod effects;
mod faulty;
mod gates;
mod github_effect;
mod github_intake;
mod intake;
mod locks;
mod promotion;
mod rollback;
mod snapshot;
mod targets;
mod timers;
mod verifier;

use std::sync::Arc;

use greenlight_storage::Storage;
use tokio::sync::Notify;

use crate::background::Background;
use crate::clock::Clock;
use crate::config::Config;
use crate::flags::FlagStore;
use crate::replica::Replica;
use crate::smoke::SmokeRunner;
use crate::stored_policy::PolicyCache;

pub use card_commits::CompareTarget;
pub use commands::{CommandRefusal, CommandReply};
pub use decisions::{ChatActor, DecisionReply, InboundDelivery};
pub use deploys::{DeployResult, INTERRUPTED, TRIGGER_KIND};
pub use effects::ReplyTo;
pub use gates::GateOutcome;
pub use github_effect::GithubEffect;
pub use github_intake::{CompletedWorkflowRun, GateRequest, RecordedGate};
pub use intake::{
    BuildReport, CiSmoke, Dedup, DeploymentReport, IntakeError, IntakeReply, ReportedStatus,
};
pub use locks::{HeldDeploy, LockRefusal, UnlockOutcome};
pub use rollback::{RollbackPlan, RollbackRefusal};
pub use timers::{run_timers, TimerPass};
pub use verifier::run_verifier;

/// Cheap to clone (one reference count), as every click and command does.
#[derive(Clone)]
pub struct Engine(Arc<EngineParts>);

impl std::ops::Deref for Engine {
    type Target = EngineParts;

    fn deref(&self) -> &EngineParts {
        &self.0
    }
}

pub struct EngineParts {
    pub(crate) config: Arc<Config>,
    pub(crate) storage: Storage,
    pub(crate) clock: Clock,
    /// Poked when a deployment starts verifying, so the verifier need not poll.
    pub(crate) verifier_wakeup: Arc<Notify>,
    /// The outbox worker's wake-up: poked after a write that queued effects.
    pub(crate) outbox_wakeup: Arc<Notify>,
    pub(crate) smoke: SmokeRunner,
    /// Review policies parsed once per request, for the click path.
    pub(crate) policies: Arc<PolicyCache>,
    /// Reviewers' clicks waiting to be decided together.
    decision_queue: Arc<decision_batch::DecisionQueue>,
    /// Completed workflow runs waiting to be stored together.
    workflow_runs: Arc<github_intake::WorkflowRunQueue>,
    /// The flags applications read from memory: told of every flag change once it committed.
    pub(crate) flags: FlagStore,
    /// This process among the replicas: command deploys it starts are recorded as its own.
    pub(crate) replica: Replica,
    /// Where the engine's own tasks run (the writers of decision batches), tracked for
    /// shutdown.
    pub(crate) background: Background,
}

/// Where the engine's work goes on after it returns: the outbox worker it wakes once effects
/// are queued, and the background where it starts tasks of its own (tracked for shutdown).
pub struct Followers {
    pub outbox_wakeup: Arc<Notify>,
    pub background: Background,
}

impl Engine {
    pub fn new(
        config: Arc<Config>,
        storage: Storage,
        clock: Clock,
        smoke: SmokeRunner,
        flags: FlagStore,
        replica: Replica,
        followers: Followers,
    ) -> Self {
        let backend = storage.backend();
        Self(Arc::new(EngineParts {
            background: followers.background,
            replica,
            config,
            storage,
            clock,
            verifier_wakeup: Arc::new(Notify::new()),
            outbox_wakeup: followers.outbox_wakeup,
            smoke,
            policies: Arc::default(),
            decision_queue: Arc::new(decision_batch::decision_queue(backend)),
            workflow_runs: Arc::new(github_intake::workflow_run_queue(backend)),
            flags,
        }))
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}
