//! The deployment machine as two tables, checked against every combination of prior state,
//! kind, runner, environment and event: the first says where a deployment goes, the second
//! what follows it there.

use super::*;
use DeploymentState::{
    Deploying, Failed, Faulty, Healthy, Pending, RolledBack, Superseded, Verifying,
};
use Effect::{
    FlagUnapproved, LogChange, MarkPreviousRolledBack, OpenPromotion, PostNotPromotable,
    RejectWaitingGates, RollBackFaultyRelease, SupersedePrevious, SupersedeRunning,
    UpdateApprovalCard, WakeVerifier,
};

const fn reported(status: ReportedStatus, smoke: ReportedSmoke) -> Event {
    Event::Reported { status, smoke }
}

const fn verified(passed: bool) -> Event {
    Event::Verified { passed }
}

const SUCCESS: ReportedStatus = ReportedStatus::Success;
const FAILURE: ReportedStatus = ReportedStatus::Failure;

/// A successful deploy whose CI checks (if any) passed.
const SUCCEEDED: &[Event] = &[
    reported(SUCCESS, ReportedSmoke::Absent),
    reported(SUCCESS, ReportedSmoke::Passed),
];
const CI_SMOKE_FAILED: &[Event] = &[reported(SUCCESS, ReportedSmoke::Failed)];
/// The deploy itself failed, whatever CI says of its checks.
const DEPLOY_FAILED: &[Event] = &[
    reported(FAILURE, ReportedSmoke::Absent),
    reported(FAILURE, ReportedSmoke::Passed),
    reported(FAILURE, ReportedSmoke::Failed),
];
const VERIFIED: &[Event] = &[verified(true), verified(false)];
const EVERY_EVENT: &[Event] = &[
    reported(SUCCESS, ReportedSmoke::Absent),
    reported(SUCCESS, ReportedSmoke::Passed),
    reported(SUCCESS, ReportedSmoke::Failed),
    reported(FAILURE, ReportedSmoke::Absent),
    reported(FAILURE, ReportedSmoke::Passed),
    reported(FAILURE, ReportedSmoke::Failed),
    verified(true),
    verified(false),
];

/// The state before the event; `None` when Greenlight has no record of the deployment.
const NOT_FINISHED: &[Option<DeploymentState>] =
    &[None, Some(Pending), Some(Deploying), Some(Verifying)];
const YES_OR_NO: &[bool] = &[false, true];

/// One row of the first table: for these states, events and "the environment has smoke
/// checks of its own" (an environment that is no longer configured has none), the outcome.
struct StateRow {
    before: &'static [Option<DeploymentState>],
    events: &'static [Event],
    own_smoke: &'static [bool],
    gives: Result<DeploymentState, Refusal>,
}

const fn row(
    before: &'static [Option<DeploymentState>],
    events: &'static [Event],
    own_smoke: &'static [bool],
    gives: Result<DeploymentState, Refusal>,
) -> StateRow {
    StateRow {
        before,
        events,
        own_smoke,
        gives,
    }
}

const fn finished(state: DeploymentState) -> Result<DeploymentState, Refusal> {
    Err(Refusal::Finished { state })
}

/// Where a deployment goes. Its kind, its runner, the gate and the approval play no part.
#[rustfmt::skip]
const STATES: &[StateRow] = &[
    // before        event            own smoke  gives
    row(NOT_FINISHED, SUCCEEDED,       &[false],  Ok(Healthy)),
    // CI's passing checks do not stand in for the environment's own.
    row(NOT_FINISHED, SUCCEEDED,       &[true],   Ok(Verifying)),
    row(NOT_FINISHED, CI_SMOKE_FAILED, YES_OR_NO, Ok(Faulty)),
    row(NOT_FINISHED, DEPLOY_FAILED,   YES_OR_NO, Ok(Failed)),
    row(&[Some(Verifying)], &[verified(true)],  YES_OR_NO, Ok(Healthy)),
    row(&[Some(Verifying)], &[verified(false)], YES_OR_NO, Ok(Faulty)),
    // Refused: the verifier only settles what verifies.
    row(&[None],            VERIFIED, YES_OR_NO, Err(Refusal::NothingToVerify)),
    row(&[Some(Pending)],   VERIFIED, YES_OR_NO, Err(Refusal::NotVerifying { state: Pending })),
    row(&[Some(Deploying)], VERIFIED, YES_OR_NO, Err(Refusal::NotVerifying { state: Deploying })),
    // Refused: a final state is final, whatever arrives late.
    row(&[Some(Healthy)],    EVERY_EVENT, YES_OR_NO, finished(Healthy)),
    row(&[Some(Faulty)],     EVERY_EVENT, YES_OR_NO, finished(Faulty)),
    row(&[Some(Failed)],     EVERY_EVENT, YES_OR_NO, finished(Failed)),
    row(&[Some(RolledBack)], EVERY_EVENT, YES_OR_NO, finished(RolledBack)),
    row(&[Some(Superseded)], EVERY_EVENT, YES_OR_NO, finished(Superseded)),
];

/// Whose deployment it is, as far as its follow-ups care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// Reported by CI or GitHub without a record in Greenlight.
    New {
        approved: bool,
    },
    Deploy {
        by_greenlight: bool,
    },
    Rollback {
        by_greenlight: bool,
    },
}

const NEW_APPROVED: &[Who] = &[Who::New { approved: true }];
const NEW_UNAPPROVED: &[Who] = &[Who::New { approved: false }];
const DEPLOYS: &[Who] = &[
    Who::Deploy {
        by_greenlight: true,
    },
    Who::Deploy {
        by_greenlight: false,
    },
];
const GREENLIGHT_DEPLOY: &[Who] = &[Who::Deploy {
    by_greenlight: true,
}];
const OTHER_DEPLOY: &[Who] = &[Who::Deploy {
    by_greenlight: false,
}];
const ROLLBACKS: &[Who] = &[
    Who::Rollback {
        by_greenlight: true,
    },
    Who::Rollback {
        by_greenlight: false,
    },
];
const GREENLIGHT_ROLLBACK: &[Who] = &[Who::Rollback {
    by_greenlight: true,
}];
const OTHER_ROLLBACK: &[Who] = &[Who::Rollback {
    by_greenlight: false,
}];

/// The environment, as far as the follow-ups care (its own smoke checks only decide the state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Unconfigured,
    Ungated,
    Gated,
}

const CONFIGURED: &[Where] = &[Where::Ungated, Where::Gated];
const UNCONFIGURED: &[Where] = &[Where::Unconfigured];
const GATED: &[Where] = &[Where::Gated];
const UNGATED: &[Where] = &[Where::Ungated];

/// One row of the second table: for these deployments reaching `to` in these environments,
/// the effects in order.
struct EffectRow {
    who: &'static [Who],
    to: DeploymentState,
    r#where: &'static [Where],
    effects: &'static [Effect],
}

const fn then(
    who: &'static [Who],
    to: DeploymentState,
    r#where: &'static [Where],
    effects: &'static [Effect],
) -> EffectRow {
    EffectRow {
        who,
        to,
        r#where,
        effects,
    }
}

const ROLLBACK_HEALTHY: Effect = Effect::Announce(Announcement::RollbackHealthy);
const ROLLBACK_FAULTY: [Effect; 2] = [
    Effect::Lock(LockCause::RollbackFaulty),
    Effect::Announce(Announcement::RollbackFaulty),
];
const ROLLBACK_FAILED: [Effect; 2] = [
    Effect::Lock(LockCause::RollbackFailed),
    Effect::Announce(Announcement::RollbackFailed),
];
const DEPLOY_FAILED_NOTICE: Effect = Effect::Announce(Announcement::DeployFailed);

/// What follows a deployment reaching its next state. (A deployment cannot reach `verifying`
/// in an environment that is no longer configured: it has no smoke checks to wait for.)
#[rustfmt::skip]
const EFFECTS: &[EffectRow] = &[
    // CI or GitHub deployed on its own, through the gate (or where there is none).
    then(NEW_APPROVED, Verifying, CONFIGURED, &[
        SupersedeRunning, LogChange, UpdateApprovalCard, SupersedePrevious, WakeVerifier,
    ]),
    then(NEW_APPROVED, Healthy, CONFIGURED, &[
        SupersedeRunning, LogChange, OpenPromotion, UpdateApprovalCard, SupersedePrevious,
    ]),
    then(NEW_APPROVED, Healthy, UNCONFIGURED, &[SupersedeRunning, LogChange, OpenPromotion]),
    then(NEW_APPROVED, Faulty, GATED, &[
        SupersedeRunning, LogChange, PostNotPromotable, RejectWaitingGates, UpdateApprovalCard,
        RollBackFaultyRelease,
    ]),
    then(NEW_APPROVED, Faulty, UNGATED, &[
        SupersedeRunning, LogChange, PostNotPromotable, RejectWaitingGates, UpdateApprovalCard,
    ]),
    then(NEW_APPROVED, Faulty, UNCONFIGURED, &[
        SupersedeRunning, LogChange, PostNotPromotable, RejectWaitingGates,
    ]),
    // A failed deploy leaves what ran before running: nothing is superseded.
    then(NEW_APPROVED, Failed, CONFIGURED, &[
        LogChange, RejectWaitingGates, UpdateApprovalCard,
    ]),
    then(NEW_APPROVED, Failed, UNCONFIGURED, &[LogChange, RejectWaitingGates]),
    // The same around the gate (SPEC §10): flagged first.
    then(NEW_UNAPPROVED, Verifying, CONFIGURED, &[
        FlagUnapproved, SupersedeRunning, LogChange, UpdateApprovalCard, SupersedePrevious,
        WakeVerifier,
    ]),
    then(NEW_UNAPPROVED, Healthy, CONFIGURED, &[
        FlagUnapproved, SupersedeRunning, LogChange, OpenPromotion, UpdateApprovalCard,
        SupersedePrevious,
    ]),
    then(NEW_UNAPPROVED, Healthy, UNCONFIGURED, &[
        FlagUnapproved, SupersedeRunning, LogChange, OpenPromotion,
    ]),
    then(NEW_UNAPPROVED, Faulty, GATED, &[
        FlagUnapproved, SupersedeRunning, LogChange, PostNotPromotable, RejectWaitingGates,
        UpdateApprovalCard, RollBackFaultyRelease,
    ]),
    then(NEW_UNAPPROVED, Faulty, UNGATED, &[
        FlagUnapproved, SupersedeRunning, LogChange, PostNotPromotable, RejectWaitingGates,
        UpdateApprovalCard,
    ]),
    then(NEW_UNAPPROVED, Faulty, UNCONFIGURED, &[
        FlagUnapproved, SupersedeRunning, LogChange, PostNotPromotable, RejectWaitingGates,
    ]),
    then(NEW_UNAPPROVED, Failed, CONFIGURED, &[
        FlagUnapproved, LogChange, RejectWaitingGates, UpdateApprovalCard,
    ]),
    then(NEW_UNAPPROVED, Failed, UNCONFIGURED, &[
        FlagUnapproved, LogChange, RejectWaitingGates,
    ]),
    // A recorded deploy: Greenlight's own, or one CI reported earlier.
    then(DEPLOYS, Verifying, CONFIGURED, &[
        LogChange, UpdateApprovalCard, SupersedePrevious, WakeVerifier,
    ]),
    then(DEPLOYS, Healthy, CONFIGURED, &[
        LogChange, OpenPromotion, UpdateApprovalCard, SupersedePrevious,
    ]),
    then(DEPLOYS, Healthy, UNCONFIGURED, &[LogChange, OpenPromotion]),
    then(DEPLOYS, Faulty, GATED, &[
        LogChange, PostNotPromotable, RejectWaitingGates, UpdateApprovalCard,
        RollBackFaultyRelease,
    ]),
    then(DEPLOYS, Faulty, UNGATED, &[
        LogChange, PostNotPromotable, RejectWaitingGates, UpdateApprovalCard,
    ]),
    then(DEPLOYS, Faulty, UNCONFIGURED, &[LogChange, PostNotPromotable, RejectWaitingGates]),
    then(GREENLIGHT_DEPLOY, Failed, CONFIGURED, &[
        LogChange, RejectWaitingGates, UpdateApprovalCard, DEPLOY_FAILED_NOTICE,
    ]),
    then(OTHER_DEPLOY, Failed, CONFIGURED, &[
        LogChange, RejectWaitingGates, UpdateApprovalCard,
    ]),
    then(DEPLOYS, Failed, UNCONFIGURED, &[LogChange, RejectWaitingGates]),
    // A rollback has no approval card of its own and replaces nothing until it is healthy.
    then(ROLLBACKS, Verifying, CONFIGURED, &[LogChange, WakeVerifier]),
    then(ROLLBACKS, Healthy, CONFIGURED, &[
        LogChange, OpenPromotion, MarkPreviousRolledBack, ROLLBACK_HEALTHY,
    ]),
    then(ROLLBACKS, Healthy, UNCONFIGURED, &[LogChange, OpenPromotion]),
    // A faulty rollback locks the environment, gated or not: nothing is left to roll back to.
    then(ROLLBACKS, Faulty, CONFIGURED, &[
        LogChange, PostNotPromotable, RejectWaitingGates, ROLLBACK_FAULTY[0], ROLLBACK_FAULTY[1],
    ]),
    then(ROLLBACKS, Faulty, UNCONFIGURED, &[LogChange, PostNotPromotable, RejectWaitingGates]),
    then(GREENLIGHT_ROLLBACK, Failed, CONFIGURED, &[
        LogChange, RejectWaitingGates, ROLLBACK_FAILED[0], ROLLBACK_FAILED[1],
    ]),
    then(OTHER_ROLLBACK, Failed, CONFIGURED, &[LogChange, RejectWaitingGates]),
    then(ROLLBACKS, Failed, UNCONFIGURED, &[LogChange, RejectWaitingGates]),
];

/// Every snapshot the engine can build.
fn snapshots() -> Vec<Snapshot> {
    let mut priors = vec![
        Prior::Unrecorded { approved: true },
        Prior::Unrecorded { approved: false },
    ];
    for kind in DeploymentKind::ALL {
        for state in DeploymentState::ALL {
            for by_greenlight in [true, false] {
                priors.push(Prior::Recorded {
                    kind: *kind,
                    state: *state,
                    by_greenlight,
                });
            }
        }
    }
    let mut environments = vec![None];
    for gated in [true, false] {
        for own_smoke in [true, false] {
            environments.push(Some(Environment { gated, own_smoke }));
        }
    }
    priors
        .iter()
        .flat_map(|prior| {
            environments.iter().map(|environment| Snapshot {
                deployment: *prior,
                environment: *environment,
            })
        })
        .collect()
}

fn state_before(snapshot: &Snapshot) -> Option<DeploymentState> {
    match snapshot.deployment {
        Prior::Unrecorded { .. } => None,
        Prior::Recorded { state, .. } => Some(state),
    }
}

fn who(snapshot: &Snapshot) -> Who {
    match snapshot.deployment {
        Prior::Unrecorded { approved } => Who::New { approved },
        Prior::Recorded {
            kind: DeploymentKind::Deploy,
            by_greenlight,
            ..
        } => Who::Deploy { by_greenlight },
        Prior::Recorded {
            kind: DeploymentKind::Rollback,
            by_greenlight,
            ..
        } => Who::Rollback { by_greenlight },
    }
}

fn r#where(snapshot: &Snapshot) -> Where {
    match snapshot.environment {
        None => Where::Unconfigured,
        Some(Environment { gated: false, .. }) => Where::Ungated,
        Some(Environment { gated: true, .. }) => Where::Gated,
    }
}

fn state_rows(snapshot: &Snapshot, event: &Event) -> Vec<usize> {
    let own_smoke = snapshot.environment.is_some_and(|e| e.own_smoke);
    STATES
        .iter()
        .enumerate()
        .filter(|(_, row)| {
            row.before.contains(&state_before(snapshot))
                && row.events.contains(event)
                && row.own_smoke.contains(&own_smoke)
        })
        .map(|(index, _)| index)
        .collect()
}

fn effect_rows(snapshot: &Snapshot, to: DeploymentState) -> Vec<usize> {
    EFFECTS
        .iter()
        .enumerate()
        .filter(|(_, row)| {
            row.who.contains(&who(snapshot))
                && row.to == to
                && row.r#where.contains(&r#where(snapshot))
        })
        .map(|(index, _)| index)
        .collect()
}

#[test]
fn every_combination_follows_exactly_one_row_of_each_table() {
    let mut used_states = vec![false; STATES.len()];
    let mut used_effects = vec![false; EFFECTS.len()];
    let mut combinations = 0;
    for snapshot in snapshots() {
        for event in EVERY_EVENT {
            combinations += 1;
            let case = format!("{snapshot:?} + {event:?}");
            let [state_row] = state_rows(&snapshot, event)[..] else {
                panic!("{case}: not exactly one state row");
            };
            used_states[state_row] = true;
            let stepped = step(&snapshot, event);
            let expected = match STATES[state_row].gives {
                Err(refusal) => Err(refusal),
                Ok(to) => {
                    let [effect_row] = effect_rows(&snapshot, to)[..] else {
                        panic!("{case} → {to}: not exactly one effect row");
                    };
                    used_effects[effect_row] = true;
                    Ok(Step {
                        to,
                        effects: EFFECTS[effect_row].effects.to_vec(),
                    })
                }
            };
            assert_eq!(stepped, expected, "{case}");
        }
    }
    assert_eq!(combinations, 34 * 5 * 8);
    let unused: Vec<usize> = (0..STATES.len()).filter(|i| !used_states[*i]).collect();
    assert!(unused.is_empty(), "state rows never used: {unused:?}");
    let unused: Vec<usize> = (0..EFFECTS.len()).filter(|i| !used_effects[*i]).collect();
    assert!(unused.is_empty(), "effect rows never used: {unused:?}");
}

fn recorded(kind: DeploymentKind, state: DeploymentState) -> Snapshot {
    Snapshot {
        deployment: Prior::Recorded {
            kind,
            state,
            by_greenlight: true,
        },
        environment: Some(Environment {
            gated: true,
            own_smoke: true,
        }),
    }
}

#[test]
fn illegal_events_are_refused_with_a_reason() {
    let deploy = DeploymentKind::Deploy;
    let cases = [
        (
            recorded(deploy, Healthy),
            reported(SUCCESS, ReportedSmoke::Absent),
            "it already finished as healthy; a later result cannot change it",
        ),
        (
            recorded(DeploymentKind::Rollback, Failed),
            verified(true),
            "it already finished as failed; a later result cannot change it",
        ),
        (
            recorded(deploy, Superseded),
            reported(FAILURE, ReportedSmoke::Absent),
            "it already finished as superseded; a later result cannot change it",
        ),
        (
            recorded(deploy, Deploying),
            verified(false),
            "only a verifying deployment is verified, and this one is deploying",
        ),
        (
            Snapshot {
                deployment: Prior::Unrecorded { approved: true },
                environment: None,
            },
            verified(true),
            "there is no recorded deployment to verify",
        ),
    ];
    for (snapshot, event, reason) in cases {
        let refusal = step(&snapshot, &event).expect_err("refused");
        assert_eq!(refusal.to_string(), reason, "{snapshot:?} + {event:?}");
    }
}
