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
/// it opens, and requests are never deleted), so the only bound needed is on size.
#[derive(Debug, Default)]
pub struct PolicyCache {
    entries: Mutex<HashMap<i64, Arc<StoredPolicy>>>,
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
        let parsed = Arc::new(StoredPolicy::load(conn, request).await?);
        let mut entries = self.lock();
        if entries.len() >= CACHED_POLICIES {
            entries.clear();
        }
        entries.insert(request.id, Arc::clone(&parsed));
        Ok(parsed)
    }

    /// The policy of request `id` if it was parsed before.
    pub fn cached(&self, id: i64) -> Option<Arc<StoredPolicy>> {
        self.lock().get(&id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<StoredPolicy>>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
