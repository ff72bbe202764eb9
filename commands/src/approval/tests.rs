//! Every rule of SPEC §2's approval policy, and every transition, as tables.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::policy::policy_line;
use crate::Platform;

const SHA: &str = "abcdef0123456789abcdef0123456789abcdef01";
const NEWER_SHA: &str = "1234567890abcdef1234567890abcdef12345678";

/// 2025-01-06 at `hh:mm[:ss]` UTC: the day the example request opened.
fn t(clock: &str) -> DateTime<Utc> {
    let clock = if clock.len() == 5 {
        format!("{clock}:00")
    } else {
        clock.to_owned()
    };
    DateTime::parse_from_rfc3339(&format!("2025-01-06T{clock}Z"))
        .expect("test time")
        .with_timezone(&Utc)
}

fn expires_at() -> DateTime<Utc> {
    t("12:30") + Duration::hours(24)
}

fn person(name: &str) -> PersonName {
    PersonName::parse(name).expect("test person")
}

fn people(names: &[&str]) -> BTreeSet<PersonName> {
    names.iter().map(|name| person(name)).collect()
}

/// The example of SPEC §3: production needs 2 of `group:sre` (alice, bob) and carol, opened at
/// 12:30 with a 5 minute wait timer and a 24 hour timeout; alice wrote the release.
fn request() -> RequestSnapshot {
    RequestSnapshot {
        app: AppName::parse("shop").expect("app"),
        environment: EnvironmentName::parse("production").expect("environment"),
        sha: CommitSha::parse(SHA).expect("sha"),
        state: ApprovalState::Waiting,
        policy: Policy {
            reviewers: people(&["alice", "bob", "carol"]).into(),
            reviewer_labels: vec!["group:sre".to_owned(), "carol".to_owned()].into(),
            required_approvals: 2,
            prevent_self_review: true,
            opens_at: t("12:35"),
            expires_at: expires_at(),
            reminder_every: Some(Duration::hours(2)),
        },
        author: Some(person("alice")),
        approvals: Approvals::default(),
        locked: None,
        github_gate: false,
    }
}

fn on(platform: Platform, name: &str) -> Actor {
    Actor {
        person: Some(person(name)),
        platform,
        platform_user_id: format!("{platform}-{name}"),
    }
}

fn slack(name: &str) -> Actor {
    on(Platform::Slack, name)
}

fn discord(name: &str) -> Actor {
    on(Platform::Discord, name)
}

fn unknown_slack_user() -> Actor {
    Actor {
        person: None,
        platform: Platform::Slack,
        platform_user_id: "U999ZZZ".to_owned(),
    }
}

fn reject(reason: &str) -> Verdict {
    Verdict::Reject {
        reason: reason.to_owned(),
    }
}

fn in_state(state: ApprovalState) -> RequestSnapshot {
    RequestSnapshot { state, ..request() }
}

fn with_approvals(names: &[&str]) -> RequestSnapshot {
    RequestSnapshot {
        approvals: Approvals::all(people(names)),
        ..request()
    }
}

fn requiring(required_approvals: u32) -> RequestSnapshot {
    let mut request = request();
    request.policy.required_approvals = required_approvals;
    request
}

fn self_review_allowed() -> RequestSnapshot {
    let mut request = request();
    request.policy.prevent_self_review = false;
    request
}

fn locked(request: RequestSnapshot) -> RequestSnapshot {
    RequestSnapshot {
        locked: Some("rollback of abcdef0 by greenlight".to_owned()),
        ..request
    }
}

fn gated(request: RequestSnapshot) -> RequestSnapshot {
    RequestSnapshot {
        github_gate: true,
        ..request
    }
}

fn final_states() -> impl Iterator<Item = ApprovalState> {
    ApprovalState::ALL
        .iter()
        .copied()
        .filter(|state| *state != ApprovalState::Waiting)
}

/// One decision attempt: by default on the example request, at 13:00 (after opens_at).
struct Click {
    request: RequestSnapshot,
    actor: Actor,
    verdict: Verdict,
    now: DateTime<Utc>,
}

fn approves(actor: Actor) -> Click {
    Click {
        request: request(),
        actor,
        verdict: Verdict::Approve,
        now: t("13:00"),
    }
}

fn rejects(actor: Actor, reason: &str) -> Click {
    Click {
        verdict: reject(reason),
        ..approves(actor)
    }
}

impl Click {
    fn on(self, request: RequestSnapshot) -> Self {
        Self { request, ..self }
    }

    fn at(self, now: DateTime<Utc>) -> Self {
        Self { now, ..self }
    }

    fn decide(&self) -> Result<Decision, Refusal> {
        decide(&self.request, &self.actor, &self.verdict, self.now)
    }

    /// `decide` then `transition`, as the engine runs them.
    fn transition(&self) -> Transition {
        transition(&self.request, &self.decide())
    }
}

#[test]
fn refusals_follow_the_policy_in_order() {
    let second = Duration::seconds(1);
    let (alice, bob, dave) = (|| slack("alice"), || slack("bob"), || slack("dave"));
    let mut cases = vec![
        (
            "unknown user approves",
            approves(unknown_slack_user()),
            "unknown_user",
        ),
        (
            "unknown user rejects",
            rejects(unknown_slack_user(), "no"),
            "unknown_user",
        ),
        ("non-reviewer approves", approves(dave()), "not_reviewer"),
        (
            "non-reviewer rejects",
            rejects(discord("dave"), "no"),
            "not_reviewer",
        ),
        (
            "author approves own release",
            approves(alice()),
            "self_review",
        ),
        (
            "author approves on discord",
            approves(discord("alice")),
            "self_review",
        ),
        (
            "approve before opens_at",
            approves(bob()).at(t("12:30")),
            "too_early",
        ),
        (
            "approve 1s before opens_at",
            approves(bob()).at(t("12:35") - second),
            "too_early",
        ),
        (
            "approve at expires_at",
            approves(bob()).at(expires_at()),
            "expired",
        ),
        (
            "reject at expires_at",
            rejects(bob(), "no").at(expires_at()),
            "expired",
        ),
        (
            "approve after expires_at",
            approves(bob()).at(expires_at() + second),
            "expired",
        ),
        (
            "reject without a reason",
            rejects(bob(), ""),
            "reason_required",
        ),
        (
            "reject with a blank reason",
            rejects(bob(), " \n\t"),
            "reason_required",
        ),
        // The order: the first reason that applies is the one people see.
        (
            "final beats expired",
            approves(bob())
                .on(in_state(ApprovalState::Approved))
                .at(expires_at()),
            "final",
        ),
        (
            "expired beats unknown user",
            approves(unknown_slack_user()).at(expires_at()),
            "expired",
        ),
        (
            "not a reviewer beats too early",
            approves(dave()).at(t("12:30")),
            "not_reviewer",
        ),
        (
            "self-review beats too early",
            approves(alice()).at(t("12:30")),
            "self_review",
        ),
        (
            "not a reviewer beats no reason",
            rejects(dave(), ""),
            "not_reviewer",
        ),
        (
            "self-review beats already counted",
            approves(alice()).on(with_approvals(&["alice"])),
            "self_review",
        ),
    ];
    for state in final_states() {
        cases.push((
            "final, approve",
            approves(bob()).on(in_state(state)),
            "final",
        ));
        cases.push((
            "final, reject",
            rejects(bob(), "no").on(in_state(state)),
            "final",
        ));
        cases.push((
            "final, unknown user",
            approves(unknown_slack_user()).on(in_state(state)),
            "final",
        ));
    }
    for (name, click, code) in cases {
        let state = click.request.state;
        let refusal = click
            .decide()
            .expect_err(&format!("{name} ({state}) was allowed"));
        assert_eq!(refusal.as_str(), code, "{name} ({state})");
    }
}

#[test]
fn allowed_decisions_count_distinct_people() {
    let second = Duration::seconds(1);
    let (alice, bob) = (|| slack("alice"), || slack("bob"));
    let counted = |approvals, remaining| Decision::Counted {
        approvals,
        remaining,
    };
    let approved = |names: &[&str]| Decision::Approved { by: people(names) };
    let rejected = |by: &str, reason: &str| Decision::Rejected {
        by: person(by),
        reason: reason.to_owned(),
    };
    let after_bob = || with_approvals(&["bob"]);
    let cases = vec![
        ("first of two approvals", approves(bob()), counted(1, 1)),
        (
            "approve exactly at opens_at",
            approves(bob()).at(t("12:35")),
            counted(1, 1),
        ),
        (
            "approve 1s before expiry",
            approves(bob()).at(expires_at() - second),
            counted(1, 1),
        ),
        (
            "required 1: one approves",
            approves(bob()).on(requiring(1)),
            approved(&["bob"]),
        ),
        (
            "required 2: second person approves",
            approves(discord("carol")).on(after_bob()),
            approved(&["bob", "carol"]),
        ),
        (
            "required 3: second person counts",
            approves(slack("carol")).on(RequestSnapshot {
                approvals: Approvals::all(people(&["bob"])),
                ..requiring(3)
            }),
            counted(2, 1),
        ),
        (
            "a tally without names counts on (the engine names them only when one completes)",
            approves(slack("carol")).on(RequestSnapshot {
                approvals: Approvals::counted(7, []),
                ..requiring(10)
            }),
            counted(8, 2),
        ),
        (
            "a tally naming the person deciding knows they approved",
            approves(bob()).on(RequestSnapshot {
                approvals: Approvals::counted(7, [person("bob")]),
                ..requiring(10)
            }),
            Decision::AlreadyCounted,
        ),
        (
            "same person, same platform",
            approves(bob()).on(after_bob()),
            Decision::AlreadyCounted,
        ),
        (
            "same person, other platform",
            approves(discord("bob")).on(after_bob()),
            Decision::AlreadyCounted,
        ),
        (
            "author approves when self-review is allowed",
            approves(alice()).on(self_review_allowed()),
            counted(1, 1),
        ),
        (
            "author rejects own release",
            rejects(alice(), "bug"),
            rejected("alice", "bug"),
        ),
        (
            "reject before the wait timer ends",
            rejects(bob(), "wrong build").at(t("12:30")),
            rejected("bob", "wrong build"),
        ),
        (
            "any reject rejects after an approval",
            rejects(discord("carol"), "breaks checkout").on(after_bob()),
            rejected("carol", "breaks checkout"),
        ),
        (
            "an approver may change their mind",
            rejects(bob(), "oops").on(after_bob()),
            rejected("bob", "oops"),
        ),
        (
            "the reason is trimmed",
            rejects(bob(), "  breaks checkout \n"),
            rejected("bob", "breaks checkout"),
        ),
        (
            "a lock does not stop approving",
            approves(bob()).on(locked(requiring(1))),
            approved(&["bob"]),
        ),
    ];
    for (name, click, expected) in cases {
        assert_eq!(click.decide(), Ok(expected), "{name}");
    }
}

fn change(to: ApprovalState, comment: Option<&str>) -> Option<StateChange> {
    Some(StateChange {
        to,
        comment: comment.map(str::to_owned),
    })
}

#[test]
fn approval_that_reaches_the_count_triggers_the_deploy() {
    let transition = approves(discord("carol"))
        .on(with_approvals(&["bob"]))
        .transition();
    assert_eq!(transition.change, change(ApprovalState::Approved, None));
    assert_eq!(
        transition.effects,
        [
            Effect::UpdateCard,
            Effect::Announce(
                "shop abcdef0 approved for production by bob, carol; deploying".to_owned()
            ),
            Effect::TriggerDeploy,
        ]
    );
}

#[test]
fn approval_answers_the_github_gate() {
    let transition = approves(slack("bob")).on(gated(requiring(1))).transition();
    assert_eq!(transition.change, change(ApprovalState::Approved, None));
    assert_eq!(
        transition.effects,
        [
            Effect::UpdateCard,
            Effect::Announce("shop abcdef0 approved for production by bob; deploying".to_owned()),
            Effect::TriggerDeploy,
            Effect::AnswerGithubGate {
                state: GateAnswer::Approved,
                comment: "approved in Greenlight by bob".to_owned(),
            },
        ]
    );
}

#[test]
fn lock_holds_the_deploy_and_the_github_gate_but_the_approval_counts() {
    let request = gated(locked(with_approvals(&["bob"])));
    let transition = approves(slack("carol")).on(request).transition();
    assert_eq!(transition.change, change(ApprovalState::Approved, None));
    insta::assert_debug_snapshot!(transition.effects, @r#"
    [
        UpdateCard,
        Announce(
            "shop abcdef0 approved for production by bob, carol; deploy held: production is locked (rollback of abcdef0 by greenlight)",
        ),
        HoldDeploy {
            lock_reason: "rollback of abcdef0 by greenlight",
        },
    ]
    "#);
}

#[test]
fn held_deploy_starts_once_the_lock_is_gone() {
    let approved = RequestSnapshot {
        state: ApprovalState::Approved,
        ..gated(with_approvals(&["bob", "carol"]))
    };
    assert_eq!(
        start_held_deploy(&approved),
        [
            Effect::TriggerDeploy,
            Effect::AnswerGithubGate {
                state: GateAnswer::Approved,
                comment: "approved in Greenlight by bob, carol".to_owned(),
            },
        ]
    );
    assert_eq!(start_held_deploy(&locked(approved)), []);
    for state in ApprovalState::ALL
        .iter()
        .copied()
        .filter(|state| *state != ApprovalState::Approved)
    {
        assert_eq!(start_held_deploy(&gated(in_state(state))), [], "{state}");
    }
}

#[test]
fn counted_approval_only_updates_the_card() {
    let transition = approves(slack("bob")).on(gated(request())).transition();
    assert_eq!(
        transition,
        Transition {
            change: None,
            effects: vec![Effect::UpdateCard]
        }
    );
}

#[test]
fn second_click_by_the_same_person_is_a_friendly_no_op() {
    let transition = approves(discord("bob"))
        .on(with_approvals(&["bob"]))
        .transition();
    assert_eq!(transition.change, None);
    insta::assert_debug_snapshot!(transition.effects, @r#"
    [
        Ephemeral(
            "you already approved this release; your approval counts once, whichever platform you use",
        ),
    ]
    "#);
}

#[test]
fn reject_closes_the_request_and_tells_github() {
    let transition = rejects(discord("carol"), "breaks checkout")
        .on(gated(with_approvals(&["bob"])))
        .transition();
    assert_eq!(
        transition.change,
        change(ApprovalState::Rejected, Some("breaks checkout"))
    );
    assert_eq!(
        transition.effects,
        [
            Effect::UpdateCard,
            Effect::Announce(
                "shop abcdef0 rejected for production by carol: breaks checkout".to_owned()
            ),
            Effect::AnswerGithubGate {
                state: GateAnswer::Rejected,
                comment: "rejected by carol: breaks checkout".to_owned(),
            },
        ]
    );
    let without_gate = rejects(slack("carol"), "breaks checkout").transition();
    assert!(
        !without_gate
            .effects
            .iter()
            .any(|effect| matches!(effect, Effect::AnswerGithubGate { .. })),
        "{without_gate:?}"
    );
}

#[test]
fn refused_attempt_changes_nothing_but_is_answered_and_audited() {
    let clicks = [
        approves(unknown_slack_user()),
        approves(slack("dave")),
        approves(slack("alice")),
        approves(slack("bob")).at(t("12:30")),
        rejects(slack("bob"), ""),
        // Already final: past the deadline, but there is nothing left to expire.
        approves(slack("bob"))
            .on(gated(in_state(ApprovalState::Expired)))
            .at(expires_at()),
    ];
    for click in clicks {
        let refusal = click.decide().expect_err("refused");
        assert_eq!(
            click.transition(),
            Transition {
                change: None,
                effects: vec![
                    Effect::Ephemeral(refusal.to_string()),
                    Effect::AuditRefusal(refusal)
                ],
            }
        );
    }
}

#[test]
fn click_after_the_deadline_expires_the_request_the_sweep_missed() {
    let transition = approves(slack("carol"))
        .on(gated(with_approvals(&["bob"])))
        .at(expires_at())
        .transition();
    assert_eq!(
        transition.change,
        change(ApprovalState::Expired, Some("expired"))
    );
    insta::assert_debug_snapshot!(transition.effects, @r#"
    [
        Ephemeral(
            "this request expired at 12:30 UTC; nothing changed",
        ),
        AuditRefusal(
            Expired {
                expires_at: 2025-01-07T12:30:00Z,
                at: 2025-01-07T12:30:00Z,
            },
        ),
        UpdateCard,
        AnswerGithubGate {
            state: Rejected,
            comment: "expired",
        },
    ]
    "#);
}

#[test]
fn tick_expires_exactly_at_expires_at() {
    let second = Duration::seconds(1);
    assert_eq!(tick(&gated(request()), expires_at() - second), None);
    let expired = tick(&request(), expires_at()).expect("expired");
    assert_eq!(
        expired,
        Transition {
            change: change(ApprovalState::Expired, Some("expired")),
            effects: vec![Effect::UpdateCard],
        }
    );
    let expired_gate = tick(&gated(request()), expires_at() + second).expect("expired");
    assert_eq!(
        expired_gate.effects,
        [
            Effect::UpdateCard,
            Effect::AnswerGithubGate {
                state: GateAnswer::Rejected,
                comment: "expired".to_owned(),
            },
        ]
    );
    for state in final_states() {
        assert_eq!(tick(&gated(in_state(state)), expires_at()), None, "{state}");
    }
}

#[test]
fn supersede_closes_a_waiting_request_only() {
    let newer = CommitSha::parse(NEWER_SHA).expect("sha");
    assert_eq!(
        supersede(&request(), &newer),
        Some(Transition {
            change: change(ApprovalState::Superseded, Some("superseded by 1234567")),
            effects: vec![Effect::UpdateCard],
        })
    );
    assert_eq!(
        supersede(&gated(with_approvals(&["bob"])), &newer).map(|transition| transition.effects),
        Some(vec![
            Effect::UpdateCard,
            Effect::AnswerGithubGate {
                state: GateAnswer::Rejected,
                comment: "superseded by 1234567".to_owned(),
            },
        ])
    );
    for state in final_states() {
        assert_eq!(supersede(&gated(in_state(state)), &newer), None, "{state}");
    }
}

#[test]
fn reminders_come_every_interval_while_waiting() {
    let opened = t("12:30");
    let no_reminders = {
        let mut request = request();
        request.policy.reminder_every = None;
        request
    };
    let zero_interval = {
        let mut request = request();
        request.policy.reminder_every = Some(Duration::zero());
        request
    };
    let cases = [
        (
            "before the interval",
            request(),
            opened,
            t("14:29:59"),
            false,
        ),
        ("at the interval", request(), opened, t("14:30"), true),
        (
            "long after the last reminder",
            request(),
            t("14:30"),
            t("20:00"),
            true,
        ),
        (
            "soon after the last reminder",
            request(),
            t("14:30"),
            t("15:00"),
            false,
        ),
        (
            "reminders not configured",
            no_reminders,
            opened,
            t("20:00"),
            false,
        ),
        ("zero interval", zero_interval, opened, t("20:00"), false),
        (
            "past expiry, not yet swept",
            request(),
            opened,
            expires_at(),
            false,
        ),
        (
            "approved",
            in_state(ApprovalState::Approved),
            opened,
            t("20:00"),
            false,
        ),
        (
            "superseded",
            in_state(ApprovalState::Superseded),
            opened,
            t("20:00"),
            false,
        ),
    ];
    for (name, request, last, now, due) in cases {
        assert_eq!(reminder_due(&request, last, now), due, "{name}");
    }
}

#[test]
fn refusal_messages_people_see() {
    let (bob, dave) = (|| slack("bob"), || slack("dave"));
    let clicks = [
        approves(bob()).on(in_state(ApprovalState::Approved)),
        approves(bob()).on(in_state(ApprovalState::Superseded)),
        approves(bob()).at(expires_at()),
        approves(unknown_slack_user()),
        approves(dave()),
        rejects(dave(), "no"),
        approves(slack("alice")),
        approves(bob()).at(t("12:31")),
        approves(bob()).at(t("12:34:30")),
        rejects(bob(), " "),
    ];
    let lines: Vec<String> = clicks
        .iter()
        .map(|click| {
            let refusal = click.decide().expect_err("refused");
            format!("{}: {refusal}", refusal.as_str())
        })
        .collect();
    insta::assert_snapshot!(lines.join("\n"), @r"
    final: already approved; nothing changed
    final: already superseded by a newer release; decide on that one instead
    expired: this request expired at 12:30 UTC; nothing changed
    unknown_user: your Slack account (U999ZZZ) is not linked to a person in greenlight.toml [people]; ask an admin to add it
    not_reviewer: you (dave) are not a reviewer here; only sre, carol can approve
    not_reviewer: you (dave) are not a reviewer here; only sre, carol can reject
    self_review: you (alice) wrote this release and self-review is blocked: someone else must approve it (you may still reject it)
    too_early: approvals open at 12:35 UTC (in 4m)
    too_early: approvals open at 12:35 UTC (in 30s)
    reason_required: a rejection needs a reason, so the author knows what to fix
    ");
}

#[test]
fn policy_line_shows_only_what_applies() {
    let policy = request().policy;
    let alice = person("alice");
    let dave = person("dave");
    let carol_alone = Policy {
        reviewers: people(&["carol"]).into(),
        reviewer_labels: vec!["carol".to_owned()].into(),
        required_approvals: 1,
        ..policy.clone()
    };
    let self_review_allowed = Policy {
        prevent_self_review: false,
        ..policy.clone()
    };
    let opens_tomorrow = Policy {
        opens_at: t("09:00") + Duration::days(1),
        ..policy.clone()
    };
    let lines = [
        policy_line(&policy, Some(&alice), t("12:31")),
        policy_line(&policy, Some(&alice), t("12:35")),
        policy_line(&policy, None, t("12:31")),
        policy_line(&policy, Some(&dave), t("13:00")),
        policy_line(&self_review_allowed, Some(&alice), t("13:00")),
        policy_line(&carol_alone, Some(&person("carol")), t("13:00")),
        policy_line(&opens_tomorrow, Some(&dave), t("13:00")),
    ];
    insta::assert_snapshot!(lines.join("\n"), @r"
    needs 2 of: sre, carol · self-review blocked · opens 12:35 UTC
    needs 2 of: sre, carol · self-review blocked
    needs 2 of: sre, carol · opens 12:35 UTC
    needs 2 of: sre, carol
    needs 2 of: sre, carol
    needs 1 of: carol · self-review blocked · cannot pass: only 0 eligible reviewers
    needs 2 of: sre, carol · opens Jan 7 09:00 UTC
    ");
}

#[test]
fn an_author_nobody_can_link_is_said_on_the_card() {
    let policy = request().policy;
    let alice = person("alice");
    let self_review_allowed = Policy {
        prevent_self_review: false,
        ..policy.clone()
    };
    let cases = [
        (&policy, Some("alice"), Some(&alice), None),
        (
            &policy,
            Some("mallory@example.com"),
            None,
            Some("author not linked: self-review can't be checked"),
        ),
        (
            &policy,
            None,
            None,
            Some("author unknown: self-review can't be checked"),
        ),
        (
            &policy,
            Some("  "),
            None,
            Some("author unknown: self-review can't be checked"),
        ),
        (
            &self_review_allowed,
            Some("mallory@example.com"),
            None,
            None,
        ),
    ];
    for (policy, reported, linked, expected) in cases {
        assert_eq!(
            crate::policy::self_review_caveat(policy, reported, linked),
            expected,
            "{reported:?}"
        );
    }
}

#[test]
fn reminder_says_what_is_still_needed() {
    insta::assert_snapshot!(
        reminder_text(&with_approvals(&["bob"]), t("14:30")),
        @"shop abcdef0 → production still waits for 1 more approval from sre, carol (1 of 2 so far); expires Jan 7 12:30 UTC (in 22h)"
    );
}

#[test]
fn every_approver_is_named_only_when_one_more_approval_completes_the_request() {
    let cases = [
        (0, 1, true),
        (0, 2, false),
        (1, 2, true),
        (5, 7, false),
        (6, 7, true),
        (9, 7, true),
    ];
    for (count, required, needed) in cases {
        assert_eq!(
            Approvals::names_needed(count, required),
            needed,
            "{count} of {required}"
        );
    }
}
