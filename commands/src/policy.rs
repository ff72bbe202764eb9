//! Who may approve or reject a release, and when: a gated environment's approval policy (SPEC §2).
//!
//! The policy is checked on every decision, from server state only (see `approval::decide`);
//! this module holds the policy itself, the person acting, the typed refusals people see, and
//! the one-line summary the approval card shows.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::{ApprovalState, DecisionVerdict, PersonName, Platform};

/// One approval request's policy, as it stood when the request opened. The reviewer lists are
/// shared: a group can have 20,000 people, and every decision works on a copy of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Everyone who may approve or reject, groups already expanded by the caller.
    pub reviewers: Arc<BTreeSet<PersonName>>,
    /// `reviewers` as configured (`group:sre`, `carol`), for messages and the card.
    pub reviewer_labels: Arc<[String]>,
    /// Distinct people needed; one person on several platforms counts once.
    pub required_approvals: u32,
    /// The release's author may not approve it (rejecting stays allowed).
    pub prevent_self_review: bool,
    /// Healthy in the previous environment + `wait_timer`: earlier approvals are refused.
    pub opens_at: DateTime<Utc>,
    /// Opened + `approval_timeout`: from then on the request is expired.
    pub expires_at: DateTime<Utc>,
    pub reminder_every: Option<Duration>,
}

impl Policy {
    /// The configured reviewers as people read them: `group:sre, carol` shows as `sre, carol`.
    pub fn reviewer_list(&self) -> String {
        self.reviewer_labels
            .iter()
            .map(|label| label.strip_prefix("group:").unwrap_or(label))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The reviewers whose approval can count for a release written by `author`.
    pub fn eligible_reviewers(&self, author: Option<&PersonName>) -> BTreeSet<&PersonName> {
        self.reviewers
            .iter()
            .filter(|reviewer| !(self.prevent_self_review && Some(*reviewer) == author))
            .collect()
    }
}

/// Whoever clicked or typed a decision, as identified by the platform they used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The `[people]` entry their platform account maps to; `None` for an unknown account.
    pub person: Option<PersonName>,
    pub platform: Platform,
    /// The platform's own id (Slack `U…`, Discord snowflake, GitHub login): what an admin adds
    /// to `[people]` when the account is unknown.
    pub platform_user_id: String,
}

/// Why a decision was refused. `Display` is the message shown to the person (ephemeral);
/// `as_str` is the stable code kept in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{}", final_message(.state))]
    Final { state: ApprovalState },
    #[error("this request expired at {}; nothing changed", clock_time(.expires_at, .at))]
    Expired {
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    #[error("your {} account ({platform_user_id}) is not linked to a person in greenlight.toml [people]; ask an admin to add it", .platform.display_name())]
    UnknownUser {
        platform: Platform,
        platform_user_id: String,
    },
    #[error("you ({person}) are not a reviewer here; only {reviewers} can {verdict}")]
    NotReviewer {
        person: PersonName,
        /// `Policy::reviewer_list`, so the message names who to ask.
        reviewers: String,
        verdict: DecisionVerdict,
    },
    #[error("you ({person}) wrote this release and self-review is blocked: someone else must approve it (you may still reject it)")]
    SelfReview { person: PersonName },
    #[error("approvals open at {} (in {})", clock_time(.opens_at, .at), time_until(*.at, *.opens_at))]
    TooEarly {
        opens_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    #[error("a rejection needs a reason, so the author knows what to fix")]
    ReasonRequired,
}

impl Refusal {
    /// The stable code stored with the refused decision (`refused_reason`) and in the audit log.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Final { .. } => "final",
            Self::Expired { .. } => "expired",
            Self::UnknownUser { .. } => "unknown_user",
            Self::NotReviewer { .. } => "not_reviewer",
            Self::SelfReview { .. } => "self_review",
            Self::TooEarly { .. } => "too_early",
            Self::ReasonRequired => "reason_required",
        }
    }
}

fn final_message(state: &ApprovalState) -> String {
    match state {
        ApprovalState::Superseded => {
            "already superseded by a newer release; decide on that one instead".to_owned()
        }
        state => format!("already {state}; nothing changed"),
    }
}

/// The card's policy summary, e.g. `needs 2 of: sre, carol · self-review blocked · opens 12:35
/// UTC`. Parts that change nothing for this release are left out.
pub fn policy_line(policy: &Policy, author: Option<&PersonName>, now: DateTime<Utc>) -> String {
    let mut parts = vec![format!(
        "needs {} of: {}",
        policy.required_approvals,
        policy.reviewer_list()
    )];
    if policy.prevent_self_review && author.is_some_and(|author| policy.reviewers.contains(author))
    {
        parts.push("self-review blocked".to_owned());
    }
    // Said up front because otherwise the request just waits until it expires.
    let eligible = policy.eligible_reviewers(author).len();
    if u32::try_from(eligible).unwrap_or(u32::MAX) < policy.required_approvals {
        let noun = if eligible == 1 {
            "reviewer"
        } else {
            "reviewers"
        };
        parts.push(format!("cannot pass: only {eligible} eligible {noun}"));
    }
    if now < policy.opens_at {
        parts.push(format!("opens {}", clock_time(&policy.opens_at, &now)));
    }
    parts.join(" · ")
}

/// What the card must admit when self-review is blocked but cannot be checked: the release's
/// author is not linked to anyone in `[people]` (or CI did not say who it was), so the author
/// could approve their own commit unnoticed. `None` when there is nothing to admit.
pub fn self_review_caveat(
    policy: &Policy,
    reported_author: Option<&str>,
    linked: Option<&PersonName>,
) -> Option<&'static str> {
    if !policy.prevent_self_review || linked.is_some() {
        return None;
    }
    Some(match reported_author {
        Some(author) if !author.trim().is_empty() => {
            "author not linked: self-review can't be checked"
        }
        _ => "author unknown: self-review can't be checked",
    })
}

/// `at` as a wall-clock time for people reading at `now`: `12:35 UTC` on the same day, else
/// `Jan 7 12:35 UTC`. Rounded up to the minute, so acting at the shown time always works.
pub(crate) fn clock_time(at: &DateTime<Utc>, now: &DateTime<Utc>) -> String {
    let at = ceil_to_minute(*at);
    if at.date_naive() == now.date_naive() {
        at.format("%H:%M UTC").to_string()
    } else {
        at.format("%b %-d %H:%M UTC").to_string()
    }
}

fn ceil_to_minute(at: DateTime<Utc>) -> DateTime<Utc> {
    let past_minute = Duration::seconds(at.timestamp().rem_euclid(60))
        + Duration::nanoseconds(i64::from(at.timestamp_subsec_nanos()));
    if past_minute.is_zero() {
        return at;
    }
    at.checked_add_signed(Duration::minutes(1) - past_minute)
        .unwrap_or(at)
}

/// How long from `from` until `to`, coarse and rounded up (`45s`, `4m`, `2h 5m`, `3d 4h`), so
/// "in 4m" never means "already open".
pub(crate) fn time_until(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let left = to.signed_duration_since(from);
    let mut seconds = left.num_seconds();
    if left > Duration::seconds(seconds) {
        seconds += 1;
    }
    if seconds <= 0 {
        return "0s".to_owned();
    }
    if seconds < 60 {
        return format!("{seconds}s");
    }
    let minutes = (seconds + 59) / 60;
    let (hours, minutes) = (minutes / 60, minutes % 60);
    let (days, hours) = (hours / 24, hours % 24);
    match (days, hours, minutes) {
        (0, 0, minutes) => format!("{minutes}m"),
        (0, hours, 0) => format!("{hours}h"),
        (0, hours, minutes) => format!("{hours}h {minutes}m"),
        // Minutes stop mattering once the wait is counted in days.
        (days, 0, _) => format!("{days}d"),
        (days, hours, _) => format!("{days}d {hours}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test time")
            .with_timezone(&Utc)
    }

    #[test]
    fn clock_time_rounds_up_and_adds_the_date_only_for_another_day() {
        let now = at("2025-01-06T12:30:00Z");
        let cases = [
            ("2025-01-06T12:35:00Z", "12:35 UTC"),
            ("2025-01-06T12:35:01Z", "12:36 UTC"),
            ("2025-01-06T23:59:30Z", "Jan 7 00:00 UTC"),
            ("2025-01-07T12:30:00Z", "Jan 7 12:30 UTC"),
        ];
        for (time, expected) in cases {
            assert_eq!(clock_time(&at(time), &now), expected, "{time}");
        }
    }

    #[test]
    fn time_until_is_coarse_and_rounds_up() {
        let now = at("2025-01-06T12:00:00Z");
        let cases = [
            ("2025-01-06T12:00:00Z", "0s"),
            ("2025-01-06T12:00:45Z", "45s"),
            ("2025-01-06T12:01:00Z", "1m"),
            ("2025-01-06T12:03:30Z", "4m"),
            ("2025-01-06T14:00:00Z", "2h"),
            ("2025-01-06T14:05:00Z", "2h 5m"),
            ("2025-01-07T12:00:00Z", "1d"),
            ("2025-01-09T16:10:00Z", "3d 4h"),
        ];
        for (time, expected) in cases {
            assert_eq!(time_until(now, at(time)), expected, "{time}");
        }
    }
}
