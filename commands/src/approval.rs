//! The approval request's state machine (SPEC §1, §2): decisions, expiry and supersession as pure
//! functions of the stored request and the time, each returning the next state and its effects.
//!
//! A decision takes two steps so the engine can store both halves in one transaction:
//! `decide` applies the policy (the one place permission is checked) and `transition` turns its
//! answer into a state change plus effects. Effects are plain data; the bot turns them into
//! outbox items.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::policy::{clock_time, time_until, Actor, Policy, Refusal};
use crate::{
    AppName, ApprovalState, CommitSha, DecisionVerdict, EnvironmentName, GateAnswer, PersonName,
};

/// What the engine loaded about one approval request: everything a decision depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSnapshot {
    pub app: AppName,
    pub environment: EnvironmentName,
    pub sha: CommitSha,
    pub state: ApprovalState,
    pub policy: Policy,
    /// The release's author mapped through `[people]`; `None` when no entry matches.
    pub author: Option<PersonName>,
    /// The approvals counted so far.
    pub approvals: Approvals,
    /// The environment's lock reason. A lock does not stop approving; it holds the deploy.
    pub locked: Option<String>,
    /// A GitHub deployment protection rule waits for our answer on this request.
    pub github_gate: bool,
}

/// The approvals counted so far on a request, as much of them as a step needs. A click must
/// not cost more as approvals pile up (a 20,000-person group), so the engine reads every name
/// only for the steps that show them ([`Approvals::names_needed`]); otherwise it reads the
/// count and whether the person deciding is among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approvals {
    /// Distinct people whose approval counted, whatever platform they used.
    pub count: u32,
    /// Who they are: all of them when `complete`; otherwise at least the person deciding, if
    /// they approved before.
    pub named: BTreeSet<PersonName>,
    /// `named` is every approver.
    pub complete: bool,
}

impl Default for Approvals {
    /// Nobody approved yet (which names everyone).
    fn default() -> Self {
        Self::all(BTreeSet::new())
    }
}

impl Approvals {
    /// Every approver, named.
    pub fn all(people: BTreeSet<PersonName>) -> Self {
        Self {
            count: u32::try_from(people.len()).unwrap_or(u32::MAX),
            named: people,
            complete: true,
        }
    }

    /// `count` approvers, of whom only `known` (the person deciding, if they approved) are
    /// named.
    pub fn counted(count: u32, known: impl IntoIterator<Item = PersonName>) -> Self {
        Self {
            count,
            named: known.into_iter().collect(),
            complete: false,
        }
    }

    /// Whether a decision on a request with `count` of `required` approvals needs every name:
    /// one more approval completes it, and the announcement names who approved.
    pub fn names_needed(count: u32, required: u32) -> bool {
        count.saturating_add(1) >= required
    }
}

/// What a reviewer asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject { reason: String },
}

impl Verdict {
    /// The word stored with the decision, counted or refused.
    pub fn word(&self) -> DecisionVerdict {
        match self {
            Self::Approve => DecisionVerdict::Approve,
            Self::Reject { .. } => DecisionVerdict::Reject,
        }
    }
}

/// What an allowed decision did to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The person had already approved (maybe on another platform); nothing changes.
    AlreadyCounted,
    /// The approval counted; `remaining` more distinct people are needed.
    Counted { approvals: u32, remaining: u32 },
    /// The approval reached `required_approvals`; `by` is everyone whose approval counted.
    Approved { by: BTreeSet<PersonName> },
    /// One reject is enough; `reason` is trimmed and never empty.
    Rejected { by: PersonName, reason: String },
}

/// Something to do outside the process because of a transition; the bot makes each an outbox
/// item (or, for `Ephemeral`, the interaction's immediate reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Re-render the approval card on every platform from the stored state.
    UpdateCard,
    /// A message in the app's channels.
    Announce(String),
    /// Start the deploy of the approved release.
    TriggerDeploy,
    /// Approved, but the environment is locked: the deploy waits for `/unlock`.
    HoldDeploy { lock_reason: String },
    /// Answer the GitHub deployment protection rule waiting on this request.
    AnswerGithubGate { state: GateAnswer, comment: String },
    /// A reply only the person who acted sees.
    Ephemeral(String),
    /// Record the refused attempt (decision row with `refused_reason`, audit log).
    AuditRefusal(Refusal),
}

/// A new state for the request and the outcome comment stored with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub to: ApprovalState,
    /// The reject reason, `expired`, `superseded by abc1234`; `None` for an approval, whose
    /// decisions already say who approved.
    pub comment: Option<String>,
}

/// What to store and what to send after one event on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// `None` when the request stays as it is (a counted approval, a refusal).
    pub change: Option<StateChange>,
    pub effects: Vec<Effect>,
}

/// Applies the policy to one decision. Checks run in a fixed order so the first reason that
/// applies is the one the person sees: final, expired, unknown user, not a reviewer, then
/// self-review and too early (approve only) or a missing reason (reject only).
pub fn decide(
    request: &RequestSnapshot,
    actor: &Actor,
    verdict: &Verdict,
    now: DateTime<Utc>,
) -> Result<Decision, Refusal> {
    let policy = &request.policy;
    if request.state.is_final() {
        return Err(Refusal::Final {
            state: request.state,
        });
    }
    // The expiry sweep may not have run yet; the clock decides, not the stored state.
    if now >= policy.expires_at {
        return Err(Refusal::Expired {
            expires_at: policy.expires_at,
            at: now,
        });
    }
    let Some(person) = &actor.person else {
        return Err(Refusal::UnknownUser {
            platform: actor.platform,
            platform_user_id: actor.platform_user_id.clone(),
        });
    };
    if !policy.reviewers.contains(person) {
        return Err(Refusal::NotReviewer {
            person: person.clone(),
            reviewers: policy.reviewer_list(),
            verdict: verdict.word(),
        });
    }
    match verdict {
        Verdict::Approve => {
            // Only approving can ship unreviewed code, so only approving is blocked; an author
            // who spots a problem in their own release should be able to stop it (GitHub's
            // prevent-self-review also only blocks approval).
            if policy.prevent_self_review && request.author.as_ref() == Some(person) {
                return Err(Refusal::SelfReview {
                    person: person.clone(),
                });
            }
            // The wait timer delays shipping, not stopping: rejects are allowed before it.
            if now < policy.opens_at {
                return Err(Refusal::TooEarly {
                    opens_at: policy.opens_at,
                    at: now,
                });
            }
            let counted = &request.approvals;
            if counted.named.contains(person) {
                return Ok(Decision::AlreadyCounted);
            }
            let approvals = counted.count.saturating_add(1);
            if approvals >= policy.required_approvals {
                debug_assert!(counted.complete, "the engine names every approver here");
                let mut by = counted.named.clone();
                by.insert(person.clone());
                Ok(Decision::Approved { by })
            } else {
                Ok(Decision::Counted {
                    approvals,
                    remaining: policy.required_approvals - approvals,
                })
            }
        }
        Verdict::Reject { reason } => {
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(Refusal::ReasonRequired);
            }
            Ok(Decision::Rejected {
                by: person.clone(),
                reason: reason.to_owned(),
            })
        }
    }
}

/// Said to someone who approves twice: reassuring, since a second tap on a phone is common.
const ALREADY_COUNTED: &str =
    "you already approved this release; your approval counts once, whichever platform you use";

/// Turns `decide`'s answer for `request` into the state change and effects to store.
pub fn transition(request: &RequestSnapshot, decided: &Result<Decision, Refusal>) -> Transition {
    match decided {
        Ok(Decision::AlreadyCounted) => Transition {
            change: None,
            effects: vec![Effect::Ephemeral(ALREADY_COUNTED.to_owned())],
        },
        Ok(Decision::Counted { .. }) => Transition {
            change: None,
            effects: vec![Effect::UpdateCard],
        },
        Ok(Decision::Approved { by }) => approved(request, by),
        Ok(Decision::Rejected { by, reason }) => rejected(request, by, reason),
        Err(refusal) => {
            let mut effects = vec![
                Effect::Ephemeral(refusal.to_string()),
                Effect::AuditRefusal(refusal.clone()),
            ];
            // The click found the request past its time before the sweep did: expire it now
            // rather than leave a card with live buttons that can only refuse.
            let expiry = matches!(refusal, Refusal::Expired { .. })
                .then(|| expire(request))
                .flatten();
            let change = expiry.and_then(|expiry| {
                effects.extend(expiry.effects);
                expiry.change
            });
            Transition { change, effects }
        }
    }
}

fn approved(request: &RequestSnapshot, by: &BTreeSet<PersonName>) -> Transition {
    let names = join(by);
    let mut effects = vec![Effect::UpdateCard];
    match &request.locked {
        // The GitHub gate stays unanswered too: answering `approved` lets GitHub run the job,
        // which is a deploy into a locked environment.
        Some(lock_reason) => {
            effects.push(Effect::Announce(format!(
                "{} approved for {} by {names}; deploy held: {} is locked ({lock_reason})",
                release(request),
                request.environment,
                request.environment,
            )));
            effects.push(Effect::HoldDeploy {
                lock_reason: lock_reason.clone(),
            });
        }
        None => {
            effects.push(Effect::Announce(format!(
                "{} approved for {} by {names}; deploying",
                release(request),
                request.environment,
            )));
            effects.extend(deploy_effects(request, &names));
        }
    }
    Transition {
        change: Some(StateChange {
            to: ApprovalState::Approved,
            comment: None,
        }),
        effects,
    }
}

fn rejected(request: &RequestSnapshot, by: &PersonName, reason: &str) -> Transition {
    let mut effects = vec![
        Effect::UpdateCard,
        Effect::Announce(format!(
            "{} rejected for {} by {by}: {reason}",
            release(request),
            request.environment,
        )),
    ];
    if request.github_gate {
        effects.push(Effect::AnswerGithubGate {
            state: GateAnswer::Rejected,
            comment: format!("rejected by {by}: {reason}"),
        });
    }
    Transition {
        change: Some(StateChange {
            to: ApprovalState::Rejected,
            comment: Some(reason.to_owned()),
        }),
        effects,
    }
}

/// The deploy of an approved request, for when its hold ends (`/unlock`): the same effects an
/// unlocked approval has. Empty unless the request is approved and no longer locked.
pub fn start_held_deploy(request: &RequestSnapshot) -> Vec<Effect> {
    if request.state != ApprovalState::Approved || request.locked.is_some() {
        return Vec::new();
    }
    deploy_effects(request, &join(&request.approvals.named))
}

fn deploy_effects(request: &RequestSnapshot, approvers: &str) -> Vec<Effect> {
    let mut effects = vec![Effect::TriggerDeploy];
    if request.github_gate {
        effects.push(Effect::AnswerGithubGate {
            state: GateAnswer::Approved,
            comment: format!("approved in Greenlight by {approvers}"),
        });
    }
    effects
}

/// The time-driven step: a waiting request expires at `expires_at` (not "rejected": nobody
/// decided), though GitHub can only be told `rejected`.
pub fn tick(request: &RequestSnapshot, now: DateTime<Utc>) -> Option<Transition> {
    if now < request.policy.expires_at {
        return None;
    }
    expire(request)
}

fn expire(request: &RequestSnapshot) -> Option<Transition> {
    if request.state != ApprovalState::Waiting {
        return None;
    }
    Some(closed_without_decision(
        request,
        ApprovalState::Expired,
        "expired".to_owned(),
    ))
}

/// A newer release for the same environment replaces a waiting request. `None` when the
/// request is already final: its outcome stands.
pub fn supersede(request: &RequestSnapshot, by: &CommitSha) -> Option<Transition> {
    if request.state != ApprovalState::Waiting {
        return None;
    }
    Some(closed_without_decision(
        request,
        ApprovalState::Superseded,
        format!("superseded by {}", by.short()),
    ))
}

fn closed_without_decision(
    request: &RequestSnapshot,
    to: ApprovalState,
    comment: String,
) -> Transition {
    let mut effects = vec![Effect::UpdateCard];
    // Left unanswered, GitHub's job would wait 30 days before failing on its own.
    if request.github_gate {
        effects.push(Effect::AnswerGithubGate {
            state: GateAnswer::Rejected,
            comment: comment.clone(),
        });
    }
    Transition {
        change: Some(StateChange {
            to,
            comment: Some(comment),
        }),
        effects,
    }
}

/// Whether a reminder is due in the card's thread: the request is still open, reminders are
/// configured, and `reminder_every` has passed since `last` (the last reminder, or the time
/// the request opened).
pub fn reminder_due(request: &RequestSnapshot, last: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    let policy = &request.policy;
    request.state == ApprovalState::Waiting
        && now < policy.expires_at
        && policy.reminder_every.is_some_and(|every| {
            every > chrono::Duration::zero()
                && last.checked_add_signed(every).is_some_and(|due| now >= due)
        })
}

/// The reminder posted in the card's thread while the request waits.
pub fn reminder_text(request: &RequestSnapshot, now: DateTime<Utc>) -> String {
    let policy = &request.policy;
    let approvals = request.approvals.count;
    let remaining = policy.required_approvals.saturating_sub(approvals);
    let noun = if remaining == 1 {
        "approval"
    } else {
        "approvals"
    };
    format!(
        "{} → {} still waits for {remaining} more {noun} from {} ({approvals} of {} so far); expires {} (in {})",
        release(request),
        request.environment,
        policy.reviewer_list(),
        policy.required_approvals,
        clock_time(&policy.expires_at, &now),
        time_until(now, policy.expires_at),
    )
}

fn release(request: &RequestSnapshot) -> String {
    format!("{} {}", request.app, request.sha.short())
}

fn join(people: &BTreeSet<PersonName>) -> String {
    people
        .iter()
        .map(PersonName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
