//! The review policy as stored with an approval request when it opened, read back: later
//! config changes do not move the goalposts of a request already waiting. The engine decides
//! with it; cards show it.
//!
//! A stored policy never changes, and with a 20,000-person group it is hundreds of KB of JSON,
//! so the click path reads it through [`PolicyCache`]: parsed once per request, not per click.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use greenlight_commands::{PersonName, Policy};
use greenlight_storage::{approvals, AnyConnection, ApprovalRequest, StorageError};
use serde_json::Value;

use crate::config::Config;

/// The policy stored with one request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    pub policy: Policy,
    /// The release author as a `[people]` entry when the request opened.
    author_person: Option<PersonName>,
}

impl StoredPolicy {
    /// Reads and parses the policy of `request`.
    pub async fn load(
        conn: &mut AnyConnection,
        request: &ApprovalRequest,
    ) -> Result<Self, StorageError> {
        let json = approvals::get_policy(conn, request.id).await?;
        Ok(Self::parse(request, &json))
    }

    /// `json` is what the request stored; the times and the count come from its row.
    pub fn parse(request: &ApprovalRequest, json: &Value) -> Self {
        let reviewers: BTreeSet<PersonName> = strings(&json["reviewer_people"])
            .filter_map(|name| PersonName::parse(name).ok())
            .collect();
        Self {
            policy: Policy {
                reviewers: reviewers.into(),
                reviewer_labels: strings(&json["reviewers"]).map(str::to_owned).collect(),
                required_approvals: request.required_approvals,
                prevent_self_review: json["prevent_self_review"].as_bool().unwrap_or(true),
                opens_at: request.opens_at,
                expires_at: request.expires_at,
                reminder_every: json["reminder_every_secs"]
                    .as_i64()
                    .filter(|secs| *secs > 0)
                    .map(chrono::Duration::seconds),
            },
            author_person: json["author_person"]
                .as_str()
                .and_then(|name| PersonName::parse(name).ok()),
        }
    }

    /// The release author as a `[people]` entry: as mapped when the request opened, else
    /// mapped now.
    pub fn author(&self, config: &Config, author: Option<&str>) -> Option<PersonName> {
        self.author_person
            .clone()
            .or_else(|| author.and_then(|author| config.person_by_author(author).cloned()))
    }
}

fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// Parsed policies by request id. An entry never goes stale (a request's policy is fixed when
/// it opens, and requests are never deleted), so the only bound needed is on size. Requests
/// usually share their reviewers (one group, many apps), so equal reviewer sets are kept once:
/// 1,000 waiting requests of a 20,000-person group hold one set, not 1,000.
#[derive(Debug, Default)]
pub struct PolicyCache {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_request: HashMap<i64, Arc<StoredPolicy>>,
    /// Reviewer sets by a hash of their names.
    reviewer_sets: HashMap<u64, Arc<BTreeSet<PersonName>>>,
}

impl Entries {
    /// `policy` with its reviewer set replaced by an equal one already kept, if any.
    fn shared(&mut self, mut policy: StoredPolicy) -> StoredPolicy {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        policy.policy.reviewers.hash(&mut hasher);
        let kept = self
            .reviewer_sets
            .entry(hasher.finish())
            .or_insert_with(|| Arc::clone(&policy.policy.reviewers));
        if **kept == *policy.policy.reviewers {
            policy.policy.reviewers = Arc::clone(kept);
        }
        policy
    }
}

/// Requests whose policies are kept; far more than ever wait at once. When full the cache
/// starts over, which costs one parse per waiting request.
const CACHED_POLICIES: usize = 4096;

impl PolicyCache {
    /// The policy of `request`, parsed once.
    pub async fn get(
        &self,
        conn: &mut AnyConnection,
        request: &ApprovalRequest,
    ) -> Result<Arc<StoredPolicy>, StorageError> {
        if let Some(found) = self.cached(request.id) {
            return Ok(found);
        }
        let parsed = StoredPolicy::load(conn, request).await?;
        let mut entries = self.lock();
        if entries.by_request.len() >= CACHED_POLICIES {
            *entries = Entries::default();
        }
        let parsed = Arc::new(entries.shared(parsed));
        entries.by_request.insert(request.id, Arc::clone(&parsed));
        Ok(parsed)
    }

    /// The policy of request `id` if it was parsed before.
    pub fn cached(&self, id: i64) -> Option<Arc<StoredPolicy>> {
        self.lock().by_request.get(&id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(reviewers: &[&str]) -> StoredPolicy {
        let reviewers: BTreeSet<PersonName> = reviewers
            .iter()
            .map(|name| PersonName::parse(name).expect("name"))
            .collect();
        let at = chrono::DateTime::UNIX_EPOCH;
        StoredPolicy {
            policy: Policy {
                reviewers: reviewers.into(),
                reviewer_labels: Vec::new().into(),
                required_approvals: 1,
                prevent_self_review: true,
                opens_at: at,
                expires_at: at,
                reminder_every: None,
            },
            author_person: None,
        }
    }

    #[test]
    fn requests_with_the_same_reviewers_share_one_set_and_others_keep_their_own() {
        let mut entries = Entries::default();
        let first = entries.shared(policy(&["alice", "bob"]));
        let same = entries.shared(policy(&["alice", "bob"]));
        let other = entries.shared(policy(&["carol"]));
        assert!(Arc::ptr_eq(&first.policy.reviewers, &same.policy.reviewers));
        assert!(!Arc::ptr_eq(
            &first.policy.reviewers,
            &other.policy.reviewers
        ));
        assert_eq!(other.policy.reviewers.len(), 1);
        assert_eq!(same.policy.reviewers.len(), 2);
    }
}
