//! Secrets that never show in logs or `Debug` output.
//!
//! Architecture invariant: a secret's text leaves this type only through [`Secret::expose`],
//! which callers use at the last moment (signing a request, building an auth header). Comparing
//! a candidate against a secret is always constant-time, so response times reveal nothing.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

const REDACTED: &str = "[redacted]";

/// A credential (token, signing secret, password). Prints as `[redacted]`; has no `PartialEq`
/// on purpose, so nobody compares it with `==` and leaks timing.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The secret's text, for signing or sending it. Never log the result.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether `candidate` equals this secret, in time that depends only on the lengths.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        self.expose().as_bytes().ct_eq(candidate).into()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// One or more secrets accepted at the same time, so a secret can be rotated without downtime:
/// add the new one, switch the sender over, remove the old one. Never empty; the first entry is
/// the current one.
#[derive(Clone)]
pub struct SecretList(Vec<Secret>);

impl SecretList {
    /// A list with a single secret.
    pub fn single(secret: Secret) -> Self {
        Self(vec![secret])
    }

    /// `None` when `secrets` is empty: a list must accept something.
    pub fn from_vec(secrets: Vec<Secret>) -> Option<Self> {
        if secrets.is_empty() {
            None
        } else {
            Some(Self(secrets))
        }
    }

    /// The first secret: the one to use when Greenlight itself has to sign something.
    pub fn current(&self) -> &Secret {
        // The constructors guarantee at least one entry.
        &self.0[0]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Secret> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false; present because clippy expects it next to `len`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `check` accepts any secret of the list. Every secret is tried, even after a
    /// match, so the time taken does not reveal which one (old or new) was used.
    pub fn any(&self, mut check: impl FnMut(&Secret) -> bool) -> bool {
        self.0
            .iter()
            .fold(false, |accepted, secret| check(secret) | accepted)
    }

    /// Whether `candidate` equals any secret of the list, in constant time.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        self.any(|secret| secret.matches(candidate))
    }
}

impl fmt::Debug for SecretList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

impl fmt::Display for SecretList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{:#?}", Some(&secret)), "Some(\n    [redacted],\n)");
        let list = SecretList::from_vec(vec![Secret::new("old-one"), Secret::new("new-one")])
            .expect("non-empty");
        let shown = format!("{list:?} {list}");
        assert!(
            !shown.contains("old-one") && !shown.contains("new-one"),
            "{shown}"
        );
        assert_eq!(format!("{list:?}"), "[[redacted], [redacted]]");
    }

    #[test]
    fn expose_gives_the_value_back() {
        assert_eq!(Secret::new("hunter2").expose(), "hunter2");
    }

    #[test]
    fn matches_compares_whole_values() {
        let secret = Secret::new("hunter2");
        for (candidate, expected) in [
            (&b"hunter2"[..], true),
            (b"hunter3", false),
            (b"hunter", false),
            (b"hunter22", false),
            (b"", false),
        ] {
            assert_eq!(secret.matches(candidate), expected, "{candidate:?}");
        }
    }

    #[test]
    fn a_list_accepts_every_rotated_secret_and_tries_them_all() {
        let list =
            SecretList::from_vec(vec![Secret::new("old"), Secret::new("new")]).expect("non-empty");
        assert!(list.matches(b"old"));
        assert!(list.matches(b"new"));
        assert!(!list.matches(b"other"));
        assert_eq!(list.current().expose(), "old");

        let mut tried = 0;
        assert!(list.any(|secret| {
            tried += 1;
            secret.expose() == "old"
        }));
        assert_eq!(
            tried, 2,
            "stopping at the first match would leak which secret matched"
        );
    }

    #[test]
    fn an_empty_list_is_refused() {
        assert!(SecretList::from_vec(Vec::new()).is_none());
        assert_eq!(SecretList::single(Secret::new("x")).len(), 1);
    }
}
