//! A deployment's state machine (SPEC §1 "Deployment", §8, §10): what a result does to one
//! deployment, as its next state and the follow-ups the engine performs in the same write.
//!
//! Every result comes through [`step`]: CI's `deployed` event, GitHub's `deployment_status`, a
//! deployer's own answer, the deploy timeout and a deploy command cut off by a restart (all
//! reports, the last two failures), and Greenlight's own smoke checks. So intake and the
//! verifier cannot apply different rules. Effects are plain data, in the order the engine
//! performs them; the bot's interpreter turns each into storage writes and outbox items.

use crate::{DeploymentKind, DeploymentState};

/// What the engine knows about a deployment and its environment: everything a step depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub deployment: Prior,
    /// `None` when the environment was removed from the configuration while the deployment was
    /// under way: the deployment still settles, but nothing follows in the environment.
    pub environment: Option<Environment>,
}

/// The deployment before the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prior {
    /// Greenlight has no record of it: CI or GitHub deployed on its own, and the report
    /// records a deploy.
    Unrecorded {
        /// The release went through the environment's gate, or the environment has none
        /// (SPEC §10).
        approved: bool,
    },
    Recorded {
        kind: DeploymentKind,
        state: DeploymentState,
        /// Greenlight's deployer runs it (its `deployer` is set), so a failure is Greenlight's
        /// to announce.
        by_greenlight: bool,
    },
}

/// The environment's rules that decide what follows a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Environment {
    /// An approval gate guards it: a faulty release there is rolled back or locked in.
    pub gated: bool,
    /// It has smoke checks of its own: a successful deploy is verified before it is healthy.
    pub own_smoke: bool,
}

/// Something that moves a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// How the deploy went, as CI, GitHub or the deployer says (or Greenlight, giving up on a
    /// deploy that timed out or was interrupted).
    Reported {
        status: ReportedStatus,
        smoke: ReportedSmoke,
    },
    /// Greenlight's own smoke checks finished for a verifying deployment.
    Verified { passed: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportedStatus {
    Success,
    Failure,
}

/// Smoke checks CI ran itself and sent along with its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportedSmoke {
    Passed,
    Failed,
    /// CI sent none.
    Absent,
}

/// A follow-up of a step, performed in the same write as the state change, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Say in the app's channels that the deployment reached a gated environment without
    /// approval, and put that in the release log (SPEC §10).
    FlagUnapproved,
    /// What ran in the environment before the report no longer runs: it becomes `superseded`
    /// (unless its deployer is still at work, which settles it).
    SupersedeRunning,
    /// Put the deployment's new state in the release log.
    LogChange,
    /// Open the approval requests of the gated environments that come after this one.
    OpenPromotion,
    /// Post the "not promotable" card where this environment gates another.
    PostNotPromotable,
    /// Reject the GitHub protection rules waiting on this release after this environment.
    RejectWaitingGates,
    /// Re-render the card of the approval that let this release into the environment.
    UpdateApprovalCard,
    /// The deployment this one replaced (its `previous_sha`) becomes `superseded`.
    SupersedePrevious,
    /// The deployment this rollback undid becomes `rolled_back`; its approval card shows it.
    MarkPreviousRolledBack,
    /// A faulty release in a gated environment: roll back to the last healthy release when
    /// `auto_rollback` allows and a deployer can, lock the environment, say what happened.
    RollBackFaultyRelease,
    /// Lock the environment in Greenlight's name.
    Lock(LockCause),
    /// A message in the app's channels.
    Announce(Announcement),
    /// The deployment waits for Greenlight's smoke checks: wake the verifier (after the write).
    WakeVerifier,
}

/// Why Greenlight locks an environment on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockCause {
    /// The rollback's release is faulty too.
    RollbackFaulty,
    /// The rollback's deploy failed.
    RollbackFailed,
}

/// The messages a step sends to the app's channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// The rollback is healthy: the environment runs the earlier release again.
    RollbackHealthy,
    /// The rollback is faulty too; Greenlight rolls back no further.
    RollbackFaulty,
    /// Greenlight's deployer failed to deploy; what ran before still runs.
    DeployFailed,
    /// Greenlight's deployer failed to roll back; the environment stays locked.
    RollbackFailed,
}

/// The next state and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub to: DeploymentState,
    pub effects: Vec<Effect>,
}

/// An event that cannot apply to the deployment: nothing changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("it already finished as {state}; a later result cannot change it")]
    Finished { state: DeploymentState },
    #[error("only a verifying deployment is verified, and this one is {state}")]
    NotVerifying { state: DeploymentState },
    #[error("there is no recorded deployment to verify")]
    NothingToVerify,
}

/// What `event` does to the deployment in `snapshot`.
pub fn step(snapshot: &Snapshot, event: &Event) -> Result<Step, Refusal> {
    check(snapshot.deployment, event)?;
    let own_smoke = snapshot.environment.is_some_and(|e| e.own_smoke);
    let to = next_state(event, own_smoke);
    let mut effects = Vec::new();
    let (kind, by_greenlight) = match snapshot.deployment {
        Prior::Unrecorded { approved } => {
            if !approved {
                effects.push(Effect::FlagUnapproved);
            }
            // A failed deploy left what ran before running. Otherwise what ran is replaced,
            // even by a redeploy of its own release: one deployment at a time runs.
            if to != DeploymentState::Failed {
                effects.push(Effect::SupersedeRunning);
            }
            (DeploymentKind::Deploy, false)
        }
        Prior::Recorded {
            kind,
            by_greenlight,
            ..
        } => (kind, by_greenlight),
    };
    effects.push(Effect::LogChange);
    effects.extend(promotion(to));
    if let Some(environment) = snapshot.environment {
        effects.extend(in_environment(kind, by_greenlight, environment, to));
    }
    if to == DeploymentState::Verifying {
        effects.push(Effect::WakeVerifier);
    }
    Ok(Step { to, effects })
}

fn check(prior: Prior, event: &Event) -> Result<(), Refusal> {
    match (prior, event) {
        (Prior::Recorded { state, .. }, _) if state.is_final() => Err(Refusal::Finished { state }),
        (Prior::Recorded { state, .. }, Event::Verified { .. })
            if state != DeploymentState::Verifying =>
        {
            Err(Refusal::NotVerifying { state })
        }
        (Prior::Unrecorded { .. }, Event::Verified { .. }) => Err(Refusal::NothingToVerify),
        _ => Ok(()),
    }
}

fn next_state(event: &Event, own_smoke: bool) -> DeploymentState {
    match event {
        Event::Reported {
            status: ReportedStatus::Failure,
            ..
        } => DeploymentState::Failed,
        Event::Reported {
            smoke: ReportedSmoke::Failed,
            ..
        } => DeploymentState::Faulty,
        // CI's passing checks do not replace the environment's own.
        Event::Reported { .. } if own_smoke => DeploymentState::Verifying,
        Event::Reported { .. } => DeploymentState::Healthy,
        Event::Verified { passed: true } => DeploymentState::Healthy,
        Event::Verified { passed: false } => DeploymentState::Faulty,
    }
}

/// What the release's way to the next environments learns.
fn promotion(to: DeploymentState) -> Vec<Effect> {
    match to {
        DeploymentState::Healthy => vec![Effect::OpenPromotion],
        DeploymentState::Faulty => vec![Effect::PostNotPromotable, Effect::RejectWaitingGates],
        DeploymentState::Failed => vec![Effect::RejectWaitingGates],
        _ => Vec::new(),
    }
}

/// What follows in the deployment's own environment: its card, what it replaces, and what
/// Greenlight does about a faulty or failed one.
fn in_environment(
    kind: DeploymentKind,
    by_greenlight: bool,
    environment: Environment,
    to: DeploymentState,
) -> Vec<Effect> {
    use DeploymentKind::{Deploy, Rollback};
    use DeploymentState::{Failed, Faulty, Healthy, Verifying};

    let mut effects = Vec::new();
    if kind == Deploy {
        effects.push(Effect::UpdateApprovalCard);
    }
    match (to, kind) {
        (Verifying | Healthy, Deploy) => effects.push(Effect::SupersedePrevious),
        (Healthy, Rollback) => effects.extend([
            Effect::MarkPreviousRolledBack,
            Effect::Announce(Announcement::RollbackHealthy),
        ]),
        (Faulty, Deploy) if environment.gated => effects.push(Effect::RollBackFaultyRelease),
        (Faulty, Rollback) => effects.extend([
            Effect::Lock(LockCause::RollbackFaulty),
            Effect::Announce(Announcement::RollbackFaulty),
        ]),
        // A deploy CI or GitHub ran is theirs to report; Greenlight speaks for its own.
        (Failed, Deploy) if by_greenlight => {
            effects.push(Effect::Announce(Announcement::DeployFailed));
        }
        (Failed, Rollback) if by_greenlight => effects.extend([
            Effect::Lock(LockCause::RollbackFailed),
            Effect::Announce(Announcement::RollbackFailed),
        ]),
        _ => {}
    }
    effects
}

#[cfg(test)]
mod tests;
