//! Cards for the renderers' tests: every platform renders the same ones.

use chrono::{DateTime, TimeZone, Utc};
use greenlight_commands::{
    AppName, CommitSha, DecisionVerdict, DeploymentState, EnvironmentName, PersonName, Platform,
};
use greenlight_storage::SmokeResult;

use super::{Card, CardDecision, CardKey, CardStatus};

pub fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, hour, minute, 0)
        .single()
        .expect("time")
}

pub fn check(name: &str, status: &str, ms: Option<u64>, detail: Option<&str>) -> SmokeResult {
    SmokeResult {
        name: name.to_owned(),
        status: status.to_owned(),
        duration_ms: ms,
        detail: detail.map(str::to_owned),
    }
}

/// A waiting card with one approval so far, as reviewers see it in the morning; its commit
/// message ends in `body`.
pub fn waiting_card(body: &str) -> Card {
    Card {
        key: CardKey::Approval(42),
        app: AppName::parse("shop").expect("app"),
        environment: EnvironmentName::parse("production").expect("env"),
        from_environment: Some(EnvironmentName::parse("staging").expect("env")),
        sha: CommitSha::parse("0123456789abcdef0123456789abcdef01234567").expect("sha"),
        commit_url: Some(
            "https://github.com/acme/shop/commit/0123456789abcdef0123456789abcdef01234567"
                .to_owned(),
        ),
        diff_url: Some("https://github.com/acme/shop/compare/aaa...0123456".to_owned()),
        image: "ghcr.io/acme/shop:0123456".to_owned(),
        author: Some("alice".to_owned()),
        message: Some(format!("Checkout: retry card payments\n\n{body}")),
        smoke: vec![
            check("health", "passed", Some(42), None),
            check(
                "status",
                "passed",
                Some(1530),
                Some("database ok, cache ok"),
            ),
        ],
        policy_line: Some(
            "needs 2 of: sre, carol · self-review blocked · opens 12:35 UTC".to_owned(),
        ),
        decisions: vec![CardDecision {
            person: PersonName::parse("bob").expect("person"),
            verdict: DecisionVerdict::Approve,
            platform: Platform::Slack,
            at: at(12, 40),
            comment: None,
        }],
        status: CardStatus::Waiting { request_id: 42 },
        lock: None,
    }
}

/// Every status a card can show; the rejection's comment is `rejected_because`.
pub fn every_status(rejected_because: &str) -> Vec<CardStatus> {
    let mut statuses = vec![
        CardStatus::Waiting { request_id: 42 },
        CardStatus::Approved { deployment: None },
        CardStatus::Rejected {
            comment: Some(rejected_because.to_owned()),
        },
        CardStatus::Rejected { comment: None },
        CardStatus::Expired,
        CardStatus::Superseded {
            comment: Some("superseded by 89abcde".to_owned()),
        },
        CardStatus::Cancelled { comment: None },
        CardStatus::SmokeFailed,
    ];
    for state in DeploymentState::ALL {
        statuses.push(CardStatus::Approved {
            deployment: Some(*state),
        });
    }
    statuses
}
