//! Flag evaluation for applications: on, off, or a stable percentage rollout (SPEC §7).
//!
//! [`evaluate`] and the rollout bucket are pure: no IO, no clock. `cache.rs` holds each
//! environment's flags in memory ([`FlagStore`]), `snapshot.rs` prepares one version's answers
//! with [`evaluate`], `ofrep.rs` is OFREP's JSON for one flag. The HTTP routes
//! (`http/flags.rs`) answer from the store; `/flag` (the engine) changes flags and tells it.

mod cache;
pub mod ofrep;
mod rollout;
mod snapshot;

use std::fmt;

pub use cache::{FlagStore, LoadError, VERSION_CHECK_EVERY};
pub use rollout::{bucket, in_rollout, BUCKETS};
pub use snapshot::{BulkAnswer, FlagAnswer, Snapshot};

/// What evaluation needs to know about a flag: its switch and its rollout percentage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagSettings {
    pub enabled: bool,
    /// Percentage of targeting keys that get `true` while enabled; values above 100 count as 100.
    pub rollout: u8,
}

impl From<&greenlight_storage::Flag> for FlagSettings {
    fn from(flag: &greenlight_storage::Flag) -> Self {
        Self {
            enabled: flag.enabled,
            rollout: flag.rollout,
        }
    }
}

/// Why a caller got its value, in OpenFeature's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Everyone gets the same value (on at 100 %, off at 0 %).
    Static,
    /// The value depends on the targeting key's bucket.
    Split,
    /// The flag is switched off.
    Disabled,
}

impl Reason {
    /// The OpenFeature reason code (`STATIC`, `SPLIT`, `DISABLED`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "STATIC",
            Self::Split => "SPLIT",
            Self::Disabled => "DISABLED",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One caller's answer for one flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    pub value: bool,
    pub reason: Reason,
}

impl Evaluation {
    /// The variant name: `"on"` for `true`, `"off"` for `false`.
    pub fn variant(&self) -> &'static str {
        if self.value {
            "on"
        } else {
            "off"
        }
    }
}

/// Why a flag could not be evaluated for a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluationError {
    /// A partial rollout decides per targeting key, and the caller sent none.
    #[error(
        "this flag is rolled out to {rollout}% of targeting keys; send context.targetingKey to \
         evaluate it"
    )]
    TargetingKeyMissing { rollout: u8 },
}

/// What `targeting_key` gets for flag `key`. An empty targeting key counts as missing.
///
/// - switched off: `false`, [`Reason::Disabled`];
/// - on at 100 % (or more): `true`, at 0 %: `false`, both [`Reason::Static`] and needing no
///   targeting key;
/// - on at 1–99 %: `true` when the key's [`bucket`] is below the percentage, [`Reason::Split`].
pub fn evaluate(
    key: &str,
    settings: FlagSettings,
    targeting_key: Option<&str>,
) -> Result<Evaluation, EvaluationError> {
    if !settings.enabled {
        return Ok(Evaluation {
            value: false,
            reason: Reason::Disabled,
        });
    }
    match settings.rollout {
        0 => Ok(Evaluation {
            value: false,
            reason: Reason::Static,
        }),
        rollout if u32::from(rollout) >= BUCKETS => Ok(Evaluation {
            value: true,
            reason: Reason::Static,
        }),
        rollout => {
            let targeting_key = targeting_key
                .filter(|targeting_key| !targeting_key.is_empty())
                .ok_or(EvaluationError::TargetingKeyMissing { rollout })?;
            Ok(Evaluation {
                value: in_rollout(key, targeting_key, rollout),
                reason: Reason::Split,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(rollout: u8) -> FlagSettings {
        FlagSettings {
            enabled: true,
            rollout,
        }
    }

    #[test]
    fn a_switched_off_flag_is_false_for_everyone_whatever_its_rollout() {
        for rollout in [0, 25, 100] {
            let settings = FlagSettings {
                enabled: false,
                rollout,
            };
            for targeting_key in [None, Some(""), Some("user-1")] {
                let evaluation = evaluate("new_checkout", settings, targeting_key);
                assert_eq!(
                    evaluation,
                    Ok(Evaluation {
                        value: false,
                        reason: Reason::Disabled
                    })
                );
            }
        }
    }

    #[test]
    fn full_and_zero_rollouts_are_static_and_need_no_targeting_key() {
        let full = evaluate("new_checkout", on(100), None).expect("no key needed");
        assert_eq!(
            (full.value, full.reason, full.variant()),
            (true, Reason::Static, "on")
        );
        let zero = evaluate("new_checkout", on(0), None).expect("no key needed");
        assert_eq!(
            (zero.value, zero.reason, zero.variant()),
            (false, Reason::Static, "off")
        );
        // Storage never stores more than 100, but evaluation must not depend on that.
        let over = evaluate("new_checkout", on(250), None).expect("no key needed");
        assert_eq!((over.value, over.reason), (true, Reason::Static));
    }

    #[test]
    fn a_partial_rollout_needs_a_non_empty_targeting_key() {
        for targeting_key in [None, Some("")] {
            assert_eq!(
                evaluate("new_checkout", on(25), targeting_key),
                Err(EvaluationError::TargetingKeyMissing { rollout: 25 })
            );
        }
    }

    #[test]
    fn a_partial_rollout_splits_by_bucket() {
        let evaluations: Vec<Evaluation> = (0..200)
            .map(|i| {
                evaluate("new_checkout", on(50), Some(&format!("user-{i}"))).expect("has a key")
            })
            .collect();
        assert!(evaluations.iter().all(|e| e.reason == Reason::Split));
        assert!(evaluations.iter().any(|e| e.value && e.variant() == "on"));
        assert!(evaluations.iter().any(|e| !e.value && e.variant() == "off"));
        for (i, evaluation) in evaluations.iter().enumerate() {
            let expected = bucket("new_checkout", &format!("user-{i}")) < 50;
            assert_eq!(evaluation.value, expected);
        }
    }

    #[test]
    fn the_same_targeting_key_always_gets_the_same_answer() {
        for i in 0..1_000 {
            let targeting_key = format!("user-{i}");
            let first = evaluate("new_checkout", on(37), Some(&targeting_key));
            let again = evaluate("new_checkout", on(37), Some(&targeting_key));
            assert_eq!(first, again);
        }
    }

    #[test]
    fn reasons_use_openfeature_codes() {
        assert_eq!(Reason::Static.to_string(), "STATIC");
        assert_eq!(Reason::Split.to_string(), "SPLIT");
        assert_eq!(Reason::Disabled.to_string(), "DISABLED");
    }
}
