//! Validated newtypes: once built, a value is known to be well formed ("parse, don't validate").

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid domain value. The message is meant for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("commit SHA must be 40 hexadecimal characters, got {0:?}")]
    CommitSha(String),
    #[error("{kind} name must be 1-63 characters of lowercase letters, digits, '-' or '_', starting with a letter or digit; got {value:?}")]
    Name { kind: &'static str, value: String },
}

/// A full 40-hex git commit id, stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommitSha(String);

impl CommitSha {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        if value.len() == 40 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(value.to_ascii_lowercase()))
        } else {
            Err(DomainError::CommitSha(value.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 7-character abbreviation people recognise from git and GitHub.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }
}

impl TryFrom<String> for CommitSha {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CommitSha> for String {
    fn from(sha: CommitSha) -> Self {
        sha.0
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn valid_name(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, DomainError> {
                if valid_name(value) {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(DomainError::Name { kind: $kind, value: value.to_owned() })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A configured deployable service, e.g. `shop`.
    AppName,
    "app"
);
name_type!(
    /// A stage of an app, e.g. `staging` or `production`.
    EnvironmentName,
    "environment"
);
name_type!(
    /// A key of the `[people]` table: the identity that approvals are counted by.
    PersonName,
    "person"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_sha_accepts_forty_hex_and_lowercases() {
        let sha = CommitSha::parse("ABCDEF0123456789abcdef0123456789ABCDEF01").expect("valid");
        assert_eq!(sha.as_str(), "abcdef0123456789abcdef0123456789abcdef01");
        assert_eq!(sha.short(), "abcdef0");
    }

    #[test]
    fn commit_sha_refuses_short_long_and_non_hex() {
        for bad in ["", "abc1234", &"a".repeat(41), &"g".repeat(40)] {
            assert!(CommitSha::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_are_lowercase_slugs() {
        assert!(AppName::parse("shop").is_ok());
        assert!(AppName::parse("shop-api_2").is_ok());
        for bad in ["", "Shop", "-shop", "shop app", &"a".repeat(64)] {
            assert!(AppName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
