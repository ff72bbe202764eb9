//! One environment's flags at one version, with every answer that does not depend on the
//! caller prepared once: the JSON API body, each flag's OFREP item, the ETag. A request then
//! only picks prepared bytes, and evaluates the percentage rollouts for its targeting key.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::body::Bytes;
use axum::http::HeaderValue;
use greenlight_commands::{AppName, EnvironmentName};
use greenlight_storage::EnvironmentFlags;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::ofrep::{ErrorCode, FailureItem, SuccessItem};
use super::{evaluate, Evaluation, FlagSettings};

/// What one flag answers, prepared.
enum Answer {
    /// The same for everyone (on, off, switched off): the OFREP item.
    Fixed(Bytes),
    /// A percentage rollout: the item for a caller in it, for one out of it, and the
    /// `TARGETING_KEY_MISSING` failure for a caller without a targeting key.
    Split {
        on: Bytes,
        off: Bytes,
        missing: Bytes,
    },
}

struct Prepared {
    key: String,
    settings: FlagSettings,
    answer: Answer,
}

/// One flag's answer to one caller.
pub enum FlagAnswer {
    /// 200 with this body.
    Evaluated(Bytes),
    /// 400 with this body: a rollout needs a targeting key.
    TargetingKeyMissing(Bytes),
    /// No such flag in the environment.
    NotFound,
}

/// A bulk answer: its body and ETag.
pub struct BulkAnswer {
    pub body: Bytes,
    pub etag: HeaderValue,
}

/// An environment's flags at one version, ready to answer.
pub struct Snapshot {
    version: i64,
    /// The tag of this version, unquoted; the ETag of everything that does not depend on the
    /// caller.
    tag: String,
    etag: HeaderValue,
    /// `GET /api/v1/flags/{app}/{env}`'s body.
    listing: Bytes,
    /// In storage order (by key).
    flags: Vec<Prepared>,
    by_key: HashMap<String, usize>,
    /// The bulk answer for a caller without a targeting key; every caller's when no flag splits.
    anonymous: BulkAnswer,
    splits: usize,
}

#[derive(Serialize)]
struct Listing {
    flags: Map<String, Value>,
}

impl Snapshot {
    /// Prepares `stored` (the flags of `app`/`environment` at one version).
    pub fn prepare(
        app: &AppName,
        environment: &EnvironmentName,
        stored: EnvironmentFlags,
    ) -> Result<Self, serde_json::Error> {
        let listing = Listing {
            flags: stored
                .flags
                .iter()
                .map(|flag| {
                    let settings =
                        serde_json::json!({ "enabled": flag.enabled, "rollout": flag.rollout });
                    (flag.key.clone(), settings)
                })
                .collect(),
        };
        let listing = Bytes::from(serde_json::to_vec(&listing)?);
        let tag = version_tag(app, environment, stored.version, &listing);
        let flags = stored
            .flags
            .into_iter()
            .map(|flag| {
                let settings = FlagSettings::from(&flag);
                let answer = prepare_answer(&flag.key, settings)?;
                Ok(Prepared {
                    key: flag.key,
                    settings,
                    answer,
                })
            })
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        let by_key = flags
            .iter()
            .enumerate()
            .map(|(index, flag)| (flag.key.clone(), index))
            .collect();
        let splits = flags
            .iter()
            .filter(|flag| matches!(flag.answer, Answer::Split { .. }))
            .count();
        let anonymous_tag = if splits == 0 {
            tag.clone()
        } else {
            format!("{tag}-anonymous")
        };
        let anonymous = BulkAnswer {
            body: bulk_body(flags.iter().map(|flag| match &flag.answer {
                Answer::Fixed(item) | Answer::Split { missing: item, .. } => item,
            })),
            etag: quoted(&anonymous_tag),
        };
        Ok(Self {
            version: stored.version,
            etag: quoted(&tag),
            tag,
            listing,
            flags,
            by_key,
            anonymous,
            splits,
        })
    }

    /// The version of the environment's flags this was prepared from.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The ETag of the JSON API's listing: the same while the version stays.
    pub fn etag(&self) -> &HeaderValue {
        &self.etag
    }

    /// `{"flags": {"new_checkout": {"enabled": true, "rollout": 100}}}`, keys sorted.
    pub fn listing(&self) -> Bytes {
        self.listing.clone()
    }

    /// OFREP single-flag evaluation for a caller with `targeting_key`.
    pub fn evaluate_one(&self, key: &str, targeting_key: Option<&str>) -> FlagAnswer {
        let Some(flag) = self.by_key.get(key).map(|index| &self.flags[*index]) else {
            return FlagAnswer::NotFound;
        };
        match &flag.answer {
            Answer::Fixed(item) => FlagAnswer::Evaluated(item.clone()),
            Answer::Split { on, off, missing } => match split(flag, targeting_key) {
                Some(true) => FlagAnswer::Evaluated(on.clone()),
                Some(false) => FlagAnswer::Evaluated(off.clone()),
                None => FlagAnswer::TargetingKeyMissing(missing.clone()),
            },
        }
    }

    /// OFREP bulk evaluation: every flag by key. Its ETag is this version's, followed by the
    /// caller's rollout answers where a flag splits, so callers who get the same body get the
    /// same tag and a caller whose answers differ never gets a `304` for another's.
    pub fn evaluate_all(&self, targeting_key: Option<&str>) -> BulkAnswer {
        let targeting_key = targeting_key.filter(|key| !key.is_empty());
        let Some(targeting_key) = targeting_key.filter(|_| self.splits > 0) else {
            return BulkAnswer {
                body: self.anonymous.body.clone(),
                etag: self.anonymous.etag.clone(),
            };
        };
        let mut answers = Answers::default();
        let body = bulk_body(self.flags.iter().map(|flag| match &flag.answer {
            Answer::Fixed(item) => item,
            Answer::Split { on, off, missing } => match split(flag, Some(targeting_key)) {
                Some(true) => {
                    answers.push(true);
                    on
                }
                Some(false) => {
                    answers.push(false);
                    off
                }
                None => missing,
            },
        }));
        BulkAnswer {
            body,
            etag: quoted(&format!("{}-{}", self.tag, answers.finish())),
        }
    }
}

/// Whether the caller is in a split flag's rollout (`None`: it sent no targeting key). The
/// one evaluation rule, [`evaluate`], decides.
fn split(flag: &Prepared, targeting_key: Option<&str>) -> Option<bool> {
    evaluate(&flag.key, flag.settings, targeting_key)
        .ok()
        .map(|evaluation| evaluation.value)
}

fn prepare_answer(key: &str, settings: FlagSettings) -> Result<Answer, serde_json::Error> {
    match evaluate(key, settings, None) {
        Ok(evaluation) => Ok(Answer::Fixed(item(key, evaluation)?)),
        Err(error) => {
            let reason = super::Reason::Split;
            let failure = FailureItem::new(Some(key), ErrorCode::from(&error), error.to_string());
            Ok(Answer::Split {
                on: item(
                    key,
                    Evaluation {
                        value: true,
                        reason,
                    },
                )?,
                off: item(
                    key,
                    Evaluation {
                        value: false,
                        reason,
                    },
                )?,
                missing: Bytes::from(serde_json::to_vec(&failure)?),
            })
        }
    }
}

fn item(key: &str, evaluation: Evaluation) -> Result<Bytes, serde_json::Error> {
    serde_json::to_vec(&SuccessItem::new(key, evaluation)).map(Bytes::from)
}

/// `{"flags":[item,…]}` from items that are JSON already.
fn bulk_body<'a>(items: impl Iterator<Item = &'a Bytes>) -> Bytes {
    const OPEN: &[u8] = br#"{"flags":["#;
    const CLOSE: &[u8] = b"]}";
    let mut body = Vec::with_capacity(1024);
    body.extend_from_slice(OPEN);
    for (index, item) in items.enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.extend_from_slice(CLOSE);
    Bytes::from(body)
}

/// A caller's rollout answers, in flag order, as hex digits (four answers each).
#[derive(Default)]
struct Answers {
    digits: String,
    nibble: u8,
    bits: u8,
}

impl Answers {
    fn push(&mut self, on: bool) {
        self.nibble = (self.nibble << 1) | u8::from(on);
        self.bits += 1;
        if self.bits == 4 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        // A nibble always has a hex digit; writing to a String cannot fail.
        let _ = write!(self.digits, "{:x}", self.nibble);
        self.nibble = 0;
        self.bits = 0;
    }

    fn finish(mut self) -> String {
        if self.bits > 0 {
            // The count of trailing answers keeps "0" (one answer) apart from "00" (two).
            let bits = self.bits;
            self.flush();
            let _ = write!(self.digits, "{bits}");
        }
        self.digits
    }
}

/// The tag of one version of an environment's flags: 128 bits of SHA-256 over the app, the
/// environment, the version and the listing. The version makes a change a new tag; the
/// listing keeps a database started afresh (versions counting from 1 again) from reusing a
/// tag for other flags. Computed once per version, never per request.
fn version_tag(
    app: &AppName,
    environment: &EnvironmentName,
    version: i64,
    listing: &[u8],
) -> String {
    let digest = Sha256::new()
        .chain_update(app.as_str().as_bytes())
        .chain_update([0])
        .chain_update(environment.as_str().as_bytes())
        .chain_update([0])
        .chain_update(version.to_be_bytes())
        .chain_update(listing)
        .finalize();
    hex::encode(&digest[..16])
}

fn quoted(tag: &str) -> HeaderValue {
    // Hex digits, '-' and letters only: always a valid header value.
    HeaderValue::from_str(&format!("\"{tag}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use greenlight_storage::Flag;

    fn flag(key: &str, enabled: bool, rollout: u8) -> Flag {
        Flag {
            id: 1,
            app: AppName::parse("shop").expect("app"),
            environment: EnvironmentName::parse("staging").expect("environment"),
            key: key.to_owned(),
            enabled,
            rollout,
            updated_by: "alice".to_owned(),
            updated_at: Utc::now(),
            version: 0,
        }
    }

    fn snapshot(version: i64, flags: Vec<Flag>) -> Snapshot {
        Snapshot::prepare(
            &AppName::parse("shop").expect("app"),
            &EnvironmentName::parse("staging").expect("environment"),
            EnvironmentFlags { version, flags },
        )
        .expect("prepares")
    }

    fn json(bytes: &Bytes) -> Value {
        serde_json::from_slice(bytes).expect("JSON")
    }

    #[test]
    fn answers_keep_the_count_of_trailing_bits() {
        let digits = |answers: &[bool]| {
            let mut collected = Answers::default();
            for answer in answers {
                collected.push(*answer);
            }
            collected.finish()
        };
        assert_eq!(digits(&[]), "");
        assert_eq!(digits(&[false]), "01");
        assert_eq!(digits(&[false, false]), "02");
        assert_eq!(digits(&[true, false, true, true]), "b");
        assert_eq!(digits(&[true, false, true, true, true]), "b11");
    }

    #[test]
    fn the_same_version_and_flags_give_the_same_tag_and_a_new_version_another() {
        let flags = || vec![flag("a", true, 100), flag("b", false, 100)];
        let first = snapshot(3, flags());
        assert_eq!(first.etag(), snapshot(3, flags()).etag());
        assert_ne!(first.etag(), snapshot(4, flags()).etag());
        let etag = first.etag().to_str().expect("ascii");
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
            "a strong tag of 128 bits: {etag}"
        );
    }

    #[test]
    fn callers_with_the_same_rollout_answers_share_a_tag_and_others_do_not() {
        let split = snapshot(1, vec![flag("a", true, 100), flag("dark_mode", true, 50)]);
        let users = |want: bool| {
            (0..)
                .map(|i| format!("user-{i}"))
                .filter(move |user| super::super::in_rollout("dark_mode", user, 50) == want)
        };
        let mut inside = users(true);
        let (in_a, in_b) = (
            inside.next().expect("a user"),
            inside.next().expect("another"),
        );
        let out = users(false).next().expect("a user");
        let etag = |key: Option<&str>| split.evaluate_all(key).etag;
        assert_eq!(etag(Some(&in_a)), etag(Some(&in_b)));
        assert_ne!(etag(Some(&in_a)), etag(Some(&out)));
        assert_ne!(etag(None), etag(Some(&in_a)));
        assert_ne!(etag(None), etag(Some(&out)));
        assert_eq!(etag(Some("")), etag(None), "an empty key is no key");
        let body = json(&split.evaluate_all(Some(&out)).body);
        assert_eq!(body["flags"][1]["value"], false);
        assert_eq!(body["flags"][1]["reason"], "SPLIT");
    }

    #[test]
    fn a_flag_the_environment_lacks_is_not_found() {
        let empty = snapshot(0, Vec::new());
        assert!(matches!(
            empty.evaluate_one("a", None),
            FlagAnswer::NotFound
        ));
        assert_eq!(
            json(&empty.evaluate_all(None).body),
            serde_json::json!({"flags": []})
        );
        assert_eq!(json(&empty.listing()), serde_json::json!({"flags": {}}));
    }
}
