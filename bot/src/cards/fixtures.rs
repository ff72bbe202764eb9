//! Cards for the renderers' tests: every platform renders the same ones.

use chrono::{DateTime, TimeZone, Utc};
use greenlight_commands::{
    AppName, CommitSha, DecisionVerdict, DeploymentState, EnvironmentName, PersonName, Platform,
};
use greenlight_storage::{CardCommit, SmokeResult};

use super::{Card, CardDecision, CardKey, CardLock, CardStatus, CommitList};

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
        commits: None,
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

/// What means something to one platform's markup (mentions, code, links), for [`huge_card`].
pub struct Hostile<'a> {
    pub subject: &'a str,
    pub body: &'a str,
    pub comment: &'a str,
    pub lock_reason: &'a str,
    pub image_tag: &'a str,
    pub diff_path_len: usize,
}

/// Everything at once, far beyond what fits, with `hostile` text from a platform's markup.
pub fn huge_card(status: CardStatus, hostile: &Hostile) -> Card {
    let long_name = "n".repeat(300);
    let emoji_name = "🚀👩‍👩‍👧‍👦".repeat(60);
    let message = format!(
        "{}\n\n{}",
        hostile.subject.repeat(20),
        hostile.body.repeat(250)
    );
    Card {
        key: CardKey::Approval(i64::MAX),
        app: AppName::parse(&"a".repeat(63)).expect("app"),
        environment: EnvironmentName::parse(&"e".repeat(63)).expect("env"),
        from_environment: Some(EnvironmentName::parse(&"s".repeat(63)).expect("env")),
        sha: CommitSha::parse("0123456789abcdef0123456789abcdef01234567").expect("sha"),
        commit_url: Some(format!("https://github.com/{}/commit/x", "o".repeat(3000))),
        diff_url: Some(format!(
            "https://github.com/{}/compare/a...b",
            "o".repeat(hostile.diff_path_len)
        )),
        commits: Some(CommitList {
            commits: (0..10)
                .map(|n| CardCommit {
                    sha: format!("{n:040x}"),
                    author: format!("{}{emoji_name}", hostile.subject),
                    title: format!("{}{emoji_name}{}", hostile.subject, hostile.body),
                })
                .collect(),
            total: 5000,
        }),
        image: format!("ghcr.io/{long_name}/{emoji_name}:{}", hostile.image_tag),
        author: Some(format!("{long_name} {emoji_name} <author@example.com>")),
        message: Some(message),
        smoke: (0..100)
            .map(|i| {
                check(
                    &format!("{long_name}-{i}"),
                    if i % 7 == 0 { "failed" } else { "passed" },
                    Some(i * 37),
                    Some(&"detail with <html> & 😀 ".repeat(40)),
                )
            })
            .collect(),
        policy_line: Some(format!(
            "needs 9 of: {}",
            vec![long_name.as_str(); 40].join(", ")
        )),
        decisions: (0..60)
            .map(|i| CardDecision {
                person: PersonName::parse(&format!("{}{i}", "p".repeat(60))).expect("person"),
                verdict: if i % 2 == 0 {
                    DecisionVerdict::Approve
                } else {
                    DecisionVerdict::Reject
                },
                platform: Platform::Discord,
                at: at(12, 0),
                comment: Some(hostile.comment.repeat(500)),
            })
            .collect(),
        status,
        lock: Some(CardLock {
            by: format!("{long_name}{emoji_name}"),
            reason: hostile.lock_reason.repeat(500),
        }),
    }
}

/// `card` turned into staging's "not promotable" card: one check passed, one failed, one
/// timed out.
pub fn smoke_failed_card(card: Card) -> Card {
    Card {
        key: CardKey::SmokeFailed(7),
        environment: EnvironmentName::parse("staging").expect("env"),
        from_environment: None,
        diff_url: None,
        policy_line: None,
        decisions: Vec::new(),
        smoke: vec![
            check("health", "passed", Some(40), None),
            check(
                "status",
                "failed",
                Some(5000),
                Some("expected database=ok, got \"down\""),
            ),
            check("search", "timeout", None, None),
        ],
        status: CardStatus::SmokeFailed,
        ..card
    }
}

/// `card` with carol's lock ("incident 12") and her rejection from Discord, saying `comment`.
pub fn locked_and_rejected(mut card: Card, comment: &str) -> Card {
    card.lock = Some(CardLock {
        by: "carol".to_owned(),
        reason: "incident 12".to_owned(),
    });
    card.decisions.push(CardDecision {
        person: PersonName::parse("carol").expect("person"),
        verdict: DecisionVerdict::Reject,
        platform: Platform::Discord,
        at: at(12, 41),
        comment: Some(comment.to_owned()),
    });
    card
}

/// A commit list of `total` commits showing the first ten (`author` and `title` for each).
pub fn commit_list(total: u64, author: &str, title: &str) -> CommitList {
    CommitList {
        commits: (0..total.min(10))
            .map(|n| CardCommit {
                sha: format!("{n:07x}{}", "f".repeat(33)),
                author: author.to_owned(),
                title: format!("{title} {n}"),
            })
            .collect(),
        total,
    }
}
