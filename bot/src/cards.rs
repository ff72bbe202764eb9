//! The card: what Greenlight shows in a channel about one approval request (or one release
//! whose staging smoke failed), as a platform-neutral model. Slack and Discord render it.
//!
//! Cards are rebuilt from the database whenever they are posted or edited, so a delayed edit
//! always shows the latest state and several quick changes collapse into one edit.

use chrono::{DateTime, Utc};
use greenlight_commands::{
    policy, AppName, ApprovalState, CommitSha, DecisionVerdict, DeploymentState, EnvironmentName,
    PersonName, Platform,
};
use greenlight_storage::{
    approvals, commits, decisions, deployments, locks, releases, AnyConnection, CardCommit,
    SmokeResult, StorageError,
};

use crate::config::Config;
use crate::stored_policy::StoredPolicy;

/// Which card: the key under which its messages are stored (`chat_messages.card_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardKey {
    /// The approval card of request `id`.
    Approval(i64),
    /// The "staging smoke failed" card of deployment `id` (no buttons).
    SmokeFailed(i64),
}

impl CardKey {
    pub fn as_string(self) -> String {
        match self {
            Self::Approval(id) => format!("approval:{id}"),
            Self::SmokeFailed(id) => format!("smoke:{id}"),
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        let (kind, id) = text.split_once(':')?;
        let id = id.parse().ok()?;
        match kind {
            "approval" => Some(Self::Approval(id)),
            "smoke" => Some(Self::SmokeFailed(id)),
            _ => None,
        }
    }
}

/// Everything a card shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub key: CardKey,
    pub app: AppName,
    /// Where the release asks to go (production); for a smoke card, where smoke failed.
    pub environment: EnvironmentName,
    /// Where it proved itself (staging), whose smoke results are shown.
    pub from_environment: Option<EnvironmentName>,
    pub sha: CommitSha,
    pub commit_url: Option<String>,
    /// Compare view from what runs in `environment` now to this release.
    pub diff_url: Option<String>,
    /// The commits of that compare, once GitHub listed them (needs `[github]` access).
    pub commits: Option<CommitList>,
    pub image: String,
    pub author: Option<String>,
    pub message: Option<String>,
    pub smoke: Vec<SmokeResult>,
    /// "needs 2 of: sre, carol · self-review blocked · opens 12:35 UTC".
    pub policy_line: Option<String>,
    pub decisions: Vec<CardDecision>,
    pub status: CardStatus,
    pub lock: Option<CardLock>,
}

/// The commits between what runs in the environment and the release, as GitHub's compare API
/// listed them: the first few, and how many there are in all.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitList {
    /// Oldest first, as GitHub lists them.
    pub commits: Vec<CardCommit>,
    pub total: u64,
}

impl CommitList {
    /// How many commits the list does not show.
    pub fn more(&self) -> u64 {
        self.total.saturating_sub(self.commits.len() as u64)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CardDecision {
    pub person: PersonName,
    pub verdict: DecisionVerdict,
    pub platform: Platform,
    pub at: DateTime<Utc>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CardLock {
    pub by: String,
    pub reason: String,
}

/// Where the card stands. Only `Waiting` has live buttons.
#[derive(Debug, Clone, PartialEq)]
pub enum CardStatus {
    Waiting {
        request_id: i64,
    },
    /// Approved; `deployment` is the deploy's state once it was triggered.
    Approved {
        deployment: Option<DeploymentState>,
    },
    Rejected {
        comment: Option<String>,
    },
    Expired,
    Superseded {
        comment: Option<String>,
    },
    Cancelled {
        comment: Option<String>,
    },
    /// The release failed its smoke checks in `environment` and is not promotable.
    SmokeFailed,
}

impl Card {
    /// Live Approve / Reject buttons for this request, if any.
    pub fn buttons_for(&self) -> Option<i64> {
        match self.status {
            CardStatus::Waiting { request_id } => Some(request_id),
            _ => None,
        }
    }

    /// The reason or note that came with a final state, labelled, when there is one to show.
    pub fn status_comment(&self) -> Option<(&'static str, &str)> {
        let (label, comment) = match &self.status {
            CardStatus::Rejected { comment } => ("Reason", comment.as_deref()?),
            CardStatus::Superseded { comment } | CardStatus::Cancelled { comment } => {
                ("Note", comment.as_deref()?)
            }
            CardStatus::SmokeFailed => (
                "Not promotable",
                "fix the failing checks and ship a new build",
            ),
            _ => return None,
        };
        let comment = comment.trim();
        (!comment.is_empty()).then_some((label, comment))
    }

    /// One line saying where the request stands, for the card and notifications.
    pub fn headline(&self) -> String {
        let target = format!("{} → {}", self.app, self.environment);
        match &self.status {
            CardStatus::Waiting { .. } => format!("{target}: waiting for approval"),
            CardStatus::Approved { deployment } => match deployment {
                None => format!("{target}: approved — waiting for deploy"),
                Some(DeploymentState::Healthy) => format!("{target}: deployed and healthy"),
                Some(DeploymentState::Faulty) => format!("{target}: deployed but faulty"),
                Some(DeploymentState::Failed) => format!("{target}: approved — deploy failed"),
                Some(DeploymentState::RolledBack) => format!("{target}: deployed, rolled back"),
                Some(state) => format!("{target}: approved — deploy {state}"),
            },
            CardStatus::Rejected { .. } => format!("{target}: rejected"),
            CardStatus::Expired => format!("{target}: expired without enough approvals"),
            CardStatus::Superseded { .. } => format!("{target}: superseded by a newer release"),
            CardStatus::Cancelled { .. } => format!("{target}: cancelled"),
            CardStatus::SmokeFailed => format!(
                "{} → {}: smoke checks failed — not promotable",
                self.app, self.environment
            ),
        }
    }
}

/// Builds the card as it stands at `now`.
pub async fn load_card(
    conn: &mut AnyConnection,
    config: &Config,
    key: CardKey,
    now: DateTime<Utc>,
) -> Result<Card, StorageError> {
    match key {
        CardKey::Approval(id) => load_approval_card(conn, config, id, now).await,
        CardKey::SmokeFailed(id) => load_smoke_card(conn, id).await,
    }
}

async fn load_approval_card(
    conn: &mut AnyConnection,
    config: &Config,
    request_id: i64,
    now: DateTime<Utc>,
) -> Result<Card, StorageError> {
    let request = approvals::get_approval_request(conn, request_id).await?;
    let release = releases::get_release(conn, request.release_id).await?;
    let app = config.app(&request.app);
    let from_environment = app
        .and_then(|app| app.environment(&request.environment))
        .and_then(|environment| environment.after().cloned());
    let smoke = match &from_environment {
        Some(from) => deployments::latest_deployment(conn, release.id, from)
            .await?
            .map(|deployment| deployment.smoke)
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let running = deployments::current_deployment(conn, &request.app, &request.environment).await?;
    let diff_url = match (app.and_then(|app| app.repository.as_ref()), &running) {
        (Some(repository), Some(running)) if running.sha != release.sha => Some(format!(
            "https://github.com/{repository}/compare/{}...{}",
            running.sha, release.sha
        )),
        _ => None,
    };
    // A list fetched against another base (production moved since) would list the wrong
    // commits; the card then shows the link only.
    let commits = match (&diff_url, &running) {
        (Some(_), Some(running)) => commits::card_commits(conn, request_id)
            .await?
            .filter(|list| list.base_sha == running.sha.as_str())
            .map(|list| CommitList {
                commits: list.commits,
                total: list.total_commits,
            }),
        _ => None,
    };
    let decisions = decisions::list_decisions(conn, request_id)
        .await?
        .into_iter()
        .filter(|decision| decision.refused_reason.is_none())
        .filter_map(|decision| {
            Some(CardDecision {
                person: decision.person?,
                verdict: decision.verdict,
                platform: decision.platform,
                at: decision.decided_at,
                comment: decision.comment,
            })
        })
        .collect();
    let status = match request.state {
        ApprovalState::Waiting => CardStatus::Waiting { request_id },
        ApprovalState::Approved => {
            let deployment = deployments::latest_deployment(conn, release.id, &request.environment)
                .await?
                .filter(|deployment| deployment.created_at >= request.created_at)
                .map(|deployment| deployment.state);
            CardStatus::Approved { deployment }
        }
        ApprovalState::Rejected => CardStatus::Rejected {
            comment: request.outcome_comment.clone(),
        },
        ApprovalState::Expired => CardStatus::Expired,
        ApprovalState::Superseded => CardStatus::Superseded {
            comment: request.outcome_comment.clone(),
        },
        ApprovalState::Cancelled => CardStatus::Cancelled {
            comment: request.outcome_comment.clone(),
        },
    };
    let lock = locks::active_lock(conn, &request.app, &request.environment)
        .await?
        .map(|lock| CardLock {
            by: lock.locked_by,
            reason: lock.reason,
        });
    let stored = StoredPolicy::load(conn, &request).await?;
    let author = stored.author(config, release.author.as_deref());
    let policy_line = (request.state == ApprovalState::Waiting).then(|| {
        let policy = &stored.policy;
        let line = policy::policy_line(policy, author.as_ref(), now);
        match policy::self_review_caveat(policy, release.author.as_deref(), author.as_ref()) {
            Some(caveat) => format!("{line} · {caveat}"),
            None => line,
        }
    });
    Ok(Card {
        key: CardKey::Approval(request_id),
        app: request.app,
        environment: request.environment,
        from_environment,
        sha: release.sha,
        commit_url: release.commit_url,
        diff_url,
        commits,
        image: release.image,
        author: release.author,
        message: release.message,
        smoke,
        policy_line,
        decisions,
        status,
        lock,
    })
}

async fn load_smoke_card(
    conn: &mut AnyConnection,
    deployment_id: i64,
) -> Result<Card, StorageError> {
    let deployment = deployments::get_deployment(conn, deployment_id).await?;
    let release = releases::get_release(conn, deployment.release_id).await?;
    Ok(Card {
        key: CardKey::SmokeFailed(deployment_id),
        app: deployment.app,
        environment: deployment.environment,
        from_environment: None,
        sha: release.sha,
        commit_url: release.commit_url,
        diff_url: None,
        commits: None,
        image: release.image,
        author: release.author,
        message: release.message,
        smoke: deployment.smoke,
        policy_line: None,
        decisions: Vec::new(),
        status: CardStatus::SmokeFailed,
        lock: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_keys_round_trip() {
        for key in [CardKey::Approval(42), CardKey::SmokeFailed(7)] {
            assert_eq!(CardKey::parse(&key.as_string()), Some(key));
        }
        assert_eq!(CardKey::parse("approval:x"), None);
        assert_eq!(CardKey::parse("other:1"), None);
    }
}

/// Helpers both platforms' renderers use for a smoke check's line.
pub mod smoke_text {
    use greenlight_storage::SmokeResult;

    pub fn passed(check: &SmokeResult) -> bool {
        check.passed()
    }

    /// "12 ms" or "5.0 s".
    pub fn duration(ms: u64) -> String {
        if ms < 1000 {
            format!("{ms} ms")
        } else {
            format!("{:.1} s", ms as f64 / 1000.0)
        }
    }

    /// Details from CI or a response can span lines; a card line cannot.
    pub fn single_line(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
pub(crate) mod fixtures;
