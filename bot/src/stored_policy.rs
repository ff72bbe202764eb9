//! The review policy as stored with an approval request when it opened, read back: later
//! config changes do not move the goalposts of a request already waiting. The engine decides
//! with it; cards show it.
//!
//! A stored policy never changes, and with a 20,000-person group it is hundreds of KB of JSON.
//! Requests share their policies' texts (one group for many apps, one author for many
//! releases), so each distinct text is parsed once ([`ParsedTexts`]) and every reader of any
//! request with that text shares the result; [`PolicyCache`] adds the engine's look-up by
//! request id, which skips even reading the text.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex};

use greenlight_commands::{PersonName, Policy};
use greenlight_storage::{approvals, AnyConnection, ApprovalRequest, StorageError};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::Config;

/// The policy stored with one request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    pub policy: Policy,
    /// The release author as a `[people]` entry when the request opened.
    author_person: Option<PersonName>,
}

/// What a stored policy's text says; the times and the count come from the request's row.
#[derive(Debug, PartialEq, Eq)]
struct PolicyText {
    reviewers: Arc<BTreeSet<PersonName>>,
    reviewer_labels: Arc<[String]>,
    prevent_self_review: bool,
    reminder_every: Option<chrono::Duration>,
    author_person: Option<PersonName>,
}

impl StoredPolicy {
    /// Reads the policy of `request`; its text is parsed only if no request's equal text was.
    pub async fn load(
        conn: &mut AnyConnection,
        request: &ApprovalRequest,
    ) -> Result<Self, StorageError> {
        // The stored digest finds an equal text parsed before without reading this one.
        let known = request
            .policy_digest
            .as_deref()
            .and_then(|stored| PARSED.find(stored));
        if let Some(parsed) = known {
            return Ok(Self::with(request, &parsed));
        }
        let text = approvals::get_policy_text(conn, request.id).await?;
        let parsed = PARSED.parse(&text).map_err(|error| {
            StorageError::invalid(
                "policy",
                format!("stored policy of request {}: {error}", request.id),
            )
        })?;
        Ok(Self::with(request, &parsed))
    }

    /// The request's row gives the times and the count; the text the rest.
    fn with(request: &ApprovalRequest, text: &PolicyText) -> Self {
        Self {
            policy: Policy {
                reviewers: Arc::clone(&text.reviewers),
                reviewer_labels: Arc::clone(&text.reviewer_labels),
                required_approvals: request.required_approvals,
                prevent_self_review: text.prevent_self_review,
                opens_at: request.opens_at,
                expires_at: request.expires_at,
                reminder_every: text.reminder_every,
            },
            author_person: text.author_person.clone(),
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

impl PolicyText {
    fn read(json: &Value, sets: &mut ReviewerSets) -> Self {
        Self {
            reviewers: sets.get(&json["reviewer_people"]),
            reviewer_labels: strings(&json["reviewers"]).map(str::to_owned).collect(),
            prevent_self_review: json["prevent_self_review"].as_bool().unwrap_or(true),
            reminder_every: json["reminder_every_secs"]
                .as_i64()
                .filter(|secs| *secs > 0)
                .map(chrono::Duration::seconds),
            author_person: json["author_person"]
                .as_str()
                .and_then(|name| PersonName::parse(name).ok()),
        }
    }
}

fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

type Digest32 = [u8; 32];

fn digest(bytes: &[u8]) -> Digest32 {
    Sha256::digest(bytes).into()
}

/// Reviewer sets by the digest of their stored list: texts that differ only in their author
/// hold one set of 20,000 names, not one each.
#[derive(Debug, Default)]
struct ReviewerSets(HashMap<Digest32, Arc<BTreeSet<PersonName>>>);

impl ReviewerSets {
    fn get(&mut self, names: &Value) -> Arc<BTreeSet<PersonName>> {
        let key = digest(names.to_string().as_bytes());
        Arc::clone(self.0.entry(key).or_insert_with(|| {
            Arc::new(
                strings(names)
                    .filter_map(|name| PersonName::parse(name).ok())
                    .collect(),
            )
        }))
    }
}

/// Parsed policy texts by the digest of the text. Parsing is a pure function of the text, so
/// an entry never goes stale and one table serves the whole process.
#[derive(Debug, Default)]
struct ParsedTexts {
    entries: Mutex<ParsedEntries>,
}

#[derive(Debug, Default)]
struct ParsedEntries {
    texts: HashMap<Digest32, Arc<PolicyText>>,
    sets: ReviewerSets,
}

/// Distinct texts kept; far more than there are (group, author) pairs waiting at once. When
/// full the table starts over, which costs one parse per distinct text.
const PARSED_TEXTS: usize = 256;

static PARSED: LazyLock<ParsedTexts> = LazyLock::new(ParsedTexts::default);

impl ParsedTexts {
    /// The text whose digest is `stored` (hex, as [`approvals::policy_digest`] writes it), if
    /// it was parsed before.
    fn find(&self, stored: &str) -> Option<Arc<PolicyText>> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(stored, &mut key).ok()?;
        self.lock().texts.get(&key).cloned()
    }

    fn parse(&self, text: &str) -> Result<Arc<PolicyText>, serde_json::Error> {
        let key = digest(text.as_bytes());
        if let Some(found) = self.lock().texts.get(&key) {
            return Ok(Arc::clone(found));
        }
        // Parsed outside the lock: another reader may parse the same text meanwhile, and the
        // second result replaces an equal first.
        let json: Value = serde_json::from_str(text)?;
        let mut entries = self.lock();
        if entries.texts.len() >= PARSED_TEXTS {
            *entries = ParsedEntries::default();
        }
        let parsed = Arc::new(PolicyText::read(&json, &mut entries.sets));
        entries.texts.insert(key, Arc::clone(&parsed));
        Ok(parsed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ParsedEntries> {
        // A panic while holding the lock cannot leave the maps half-updated.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Parsed policies by request id, for the click path: a hit reads nothing at all. An entry
/// never goes stale (a request's policy is fixed when it opens, and requests are never
/// deleted), so the only bound needed is on size.
#[derive(Debug, Default)]
pub struct PolicyCache {
    by_request: Mutex<HashMap<i64, Arc<StoredPolicy>>>,
}

/// Requests whose policies are kept; far more than ever wait at once. When full the cache
/// starts over, which costs one read per waiting request (the parse is shared).
const CACHED_POLICIES: usize = 4096;

impl PolicyCache {
    /// The policy of `request`.
    pub async fn get(
        &self,
        conn: &mut AnyConnection,
        request: &ApprovalRequest,
    ) -> Result<Arc<StoredPolicy>, StorageError> {
        if let Some(found) = self.cached(request.id) {
            return Ok(found);
        }
        let parsed = Arc::new(StoredPolicy::load(conn, request).await?);
        let mut by_request = self.lock();
        if by_request.len() >= CACHED_POLICIES {
            by_request.clear();
        }
        by_request.insert(request.id, Arc::clone(&parsed));
        Ok(parsed)
    }

    /// The policy of request `id` if it was read before.
    pub fn cached(&self, id: i64) -> Option<Arc<StoredPolicy>> {
        self.lock().get(&id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<StoredPolicy>>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.by_request
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(reviewers: &[&str], author: &str) -> String {
        json!({"reviewers": ["group:sre"], "reviewer_people": reviewers,
            "prevent_self_review": true, "reminder_every_secs": 1200, "author_person": author})
        .to_string()
    }

    #[test]
    fn an_equal_text_is_parsed_once_and_texts_differing_in_their_author_share_the_reviewers() {
        let table = ParsedTexts::default();
        let first = table
            .parse(&text(&["alice", "bob"], "alice"))
            .expect("JSON");
        let again = table
            .parse(&text(&["alice", "bob"], "alice"))
            .expect("JSON");
        assert!(Arc::ptr_eq(&first, &again), "the same text is parsed once");
        let other_author = table.parse(&text(&["alice", "bob"], "bob")).expect("JSON");
        assert!(!Arc::ptr_eq(&first, &other_author));
        assert!(Arc::ptr_eq(&first.reviewers, &other_author.reviewers));
        assert_eq!(
            other_author.author_person.as_ref().map(|p| p.as_str()),
            Some("bob")
        );
        let other_group = table.parse(&text(&["carol"], "alice")).expect("JSON");
        assert!(!Arc::ptr_eq(&first.reviewers, &other_group.reviewers));
        assert_eq!(other_group.reviewers.len(), 1);
        assert_eq!(first.reviewers.len(), 2);
        assert_eq!(first.reminder_every, Some(chrono::Duration::minutes(20)));
        assert!(table.parse("{not json").is_err());
    }

    #[test]
    fn the_digest_stored_with_a_request_finds_its_text_parsed_for_another() {
        let table = ParsedTexts::default();
        let stored = text(&["alice", "bob"], "alice");
        assert!(table.find(&approvals::policy_digest(&stored)).is_none());
        let parsed = table.parse(&stored).expect("JSON");
        let found = table
            .find(&approvals::policy_digest(&stored))
            .expect("found by the stored digest");
        assert!(Arc::ptr_eq(&parsed, &found));
        let other = text(&["alice", "bob"], "bob");
        assert!(table.find(&approvals::policy_digest(&other)).is_none());
        assert!(table.find("not hex").is_none());
    }
}
