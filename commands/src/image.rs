//! Immutable image references (SPEC §1): what may be deployed, and why anything else is refused.

use std::fmt;

use serde::Serialize;

use crate::CommitSha;

/// An image reference known to be immutable for one release: a digest, or a tag that carries the
/// release's commit SHA (or, when the app allows it, a version tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRef {
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Why a reference was refused. Each message says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    #[error("image reference {reference:?} is malformed: {reason}; send {repository}:<commit sha> or {repository}@sha256:<digest>")]
    Malformed {
        reference: String,
        repository: String,
        reason: &'static str,
    },
    #[error("image {reference:?} is not from this app's repository {expected:?}; push the image to {expected} or fix `image` in the app's config")]
    WrongRepository { reference: String, expected: String },
    #[error("image {reference:?} has no tag or digest, so it means whatever `latest` points to; send {repository}:{sha} or {repository}@sha256:<digest>")]
    NoTagOrDigest {
        reference: String,
        repository: String,
        sha: String,
    },
    #[error("tag {tag:?} is mutable (it moves to new builds), so a rollback could not bring back what ran; tag the image with the commit SHA ({repository}:{sha}) or pin its digest")]
    MutableTag {
        tag: String,
        repository: String,
        sha: String,
    },
    #[error("tag {tag:?} does not contain the commit SHA {short}; tag the image with the commit SHA ({repository}:{sha}) or pin its digest")]
    TagWithoutSha {
        tag: String,
        repository: String,
        sha: String,
        short: String,
    },
    #[error("tag {tag:?} names commit {found}, but this release is {sha}; send the image built from {sha}")]
    TagForOtherSha {
        tag: String,
        found: String,
        sha: String,
    },
    #[error("tag {tag:?} is a version tag, which this app does not accept; set `allow_version_tags = true` for the app or tag the image with the commit SHA ({repository}:{sha})")]
    VersionTagNotAllowed {
        tag: String,
        repository: String,
        sha: String,
    },
}

/// Tags that name a moving target, refused with a message that says so.
const MUTABLE_TAGS: &[&str] = &[
    "latest",
    "main",
    "master",
    "stable",
    "develop",
    "dev",
    "edge",
    "head",
    "nightly",
    "prod",
    "production",
    "staging",
    "release",
    "current",
    "trunk",
];

/// The shortest SHA prefix accepted in a tag, as `git` abbreviates.
const MIN_SHA_PREFIX: usize = 7;

impl ImageRef {
    /// Checks `reference` against the app's repository and the release's commit.
    pub fn parse(
        reference: &str,
        repository: &str,
        sha: &CommitSha,
        allow_version_tags: bool,
    ) -> Result<Self, ImageRefError> {
        let malformed = |reason| ImageRefError::Malformed {
            reference: reference.to_owned(),
            repository: repository.to_owned(),
            reason,
        };
        if reference.is_empty() || reference.len() > 512 {
            return Err(malformed("it must be 1-512 characters"));
        }
        if reference
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(malformed("it contains whitespace"));
        }
        let (name_and_tag, digest) = match reference.split_once('@') {
            Some((name, digest)) => (
                name,
                Some(parse_digest(digest).ok_or_else(|| {
                    malformed("the digest must be sha256: followed by 64 lowercase hex characters")
                })?),
            ),
            None => (reference, None),
        };
        // The tag separator is the last ':' after the last '/', so registry ports survive.
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_and_tag[..last_slash + i],
                Some(&name_and_tag[last_slash + i + 1..]),
            ),
            None => (name_and_tag, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(malformed(
                    "a tag is 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
                ));
            }
        }
        if name.is_empty() {
            return Err(malformed("the repository is missing"));
        }
        if !name.eq_ignore_ascii_case(repository) {
            return Err(ImageRefError::WrongRepository {
                reference: reference.to_owned(),
                expected: repository.to_owned(),
            });
        }
        let image = Self {
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        };
        match (&image.tag, &image.digest) {
            (None, None) => Err(ImageRefError::NoTagOrDigest {
                reference: reference.to_owned(),
                repository: repository.to_owned(),
                sha: sha.to_string(),
            }),
            // A digest pins the bytes; a tag beside it is informative but must not contradict.
            (Some(tag), Some(_)) => match check_tag(tag, repository, sha, allow_version_tags) {
                Err(error @ ImageRefError::TagForOtherSha { .. }) => Err(error),
                _ => Ok(image),
            },
            (None, Some(_)) => Ok(image),
            (Some(tag), None) => {
                check_tag(tag, repository, sha, allow_version_tags).map(|()| image)
            }
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn parse_digest(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then(|| digest.to_owned())
}

fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn check_tag(
    tag: &str,
    repository: &str,
    sha: &CommitSha,
    allow_version_tags: bool,
) -> Result<(), ImageRefError> {
    let full = sha.as_str();
    let mut other = None;
    for run in tag
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|run| run.len() >= MIN_SHA_PREFIX)
    {
        let run = run.to_ascii_lowercase();
        if run.len() <= full.len() && full.starts_with(&run) {
            return Ok(());
        }
        // Long hex runs are commit ids; shorter ones may be words or numbers like a date.
        if run.len() >= MIN_SHA_PREFIX && run.bytes().any(|b| b.is_ascii_alphabetic()) {
            other.get_or_insert(run);
        }
    }
    if let Some(found) = other {
        return Err(ImageRefError::TagForOtherSha {
            tag: tag.to_owned(),
            found,
            sha: full.to_owned(),
        });
    }
    if MUTABLE_TAGS.contains(&tag.to_ascii_lowercase().as_str()) {
        return Err(ImageRefError::MutableTag {
            tag: tag.to_owned(),
            repository: repository.to_owned(),
            sha: full.to_owned(),
        });
    }
    if is_version_tag(tag) {
        return if allow_version_tags {
            Ok(())
        } else {
            Err(ImageRefError::VersionTagNotAllowed {
                tag: tag.to_owned(),
                repository: repository.to_owned(),
                sha: full.to_owned(),
            })
        };
    }
    Err(ImageRefError::TagWithoutSha {
        tag: tag.to_owned(),
        repository: repository.to_owned(),
        sha: full.to_owned(),
        short: sha.short().to_owned(),
    })
}

/// `1.2.3` or `v1.2.3`, optionally with a `-pre.release` part (Docker tags cannot carry `+`).
fn is_version_tag(tag: &str) -> bool {
    let version = tag.strip_prefix('v').unwrap_or(tag);
    let (core, pre) = match version.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (version, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && pre.is_none_or(|pre| {
            !pre.is_empty()
                && pre
                    .split('.')
                    .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO: &str = "ghcr.io/acme/shop";
    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    const OTHER: &str = "fedcba9876543210fedcba9876543210fedcba98";
    const DIGEST: &str = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";

    fn check(reference: &str, allow_version_tags: bool) -> Result<ImageRef, ImageRefError> {
        let sha = CommitSha::parse(SHA).expect("valid sha");
        ImageRef::parse(reference, REPO, &sha, allow_version_tags)
    }

    #[test]
    fn accepted_references() {
        let cases = [
            format!("{REPO}:{SHA}"),
            format!("{REPO}:{}", &SHA[..7]),
            format!("{REPO}:{}", &SHA[..12]),
            format!("{REPO}:sha-{}", &SHA[..7]),
            format!("{REPO}:main-{}", &SHA[..10]),
            format!("{REPO}:{}-20261126", &SHA[..8]),
            format!("{REPO}@{DIGEST}"),
            format!("{REPO}:{SHA}@{DIGEST}"),
            format!("{REPO}:latest@{DIGEST}"),
            format!("GHCR.IO/acme/shop:{SHA}"),
        ];
        for reference in &cases {
            assert!(
                check(reference, false).is_ok(),
                "{reference} refused: {:?}",
                check(reference, false)
            );
        }
    }

    #[test]
    fn registry_ports_are_not_mistaken_for_tags() {
        let sha = CommitSha::parse(SHA).expect("valid sha");
        let image = ImageRef::parse(
            &format!("localhost:5000/shop:{SHA}"),
            "localhost:5000/shop",
            &sha,
            false,
        )
        .expect("accepted");
        assert_eq!(image.repository, "localhost:5000/shop");
        assert_eq!(image.tag.as_deref(), Some(SHA));
        let bare = ImageRef::parse("localhost:5000/shop", "localhost:5000/shop", &sha, false);
        assert!(matches!(bare, Err(ImageRefError::NoTagOrDigest { .. })));
    }

    #[test]
    fn refused_references_say_why() {
        type Check = fn(&ImageRefError) -> bool;
        let cases: Vec<(String, Check)> = vec![
            (format!("{REPO}:latest"), |e| {
                matches!(e, ImageRefError::MutableTag { .. })
            }),
            (format!("{REPO}:main"), |e| {
                matches!(e, ImageRefError::MutableTag { .. })
            }),
            (format!("{REPO}:stable"), |e| {
                matches!(e, ImageRefError::MutableTag { .. })
            }),
            (REPO.to_owned(), |e| {
                matches!(e, ImageRefError::NoTagOrDigest { .. })
            }),
            (format!("{REPO}:build-42"), |e| {
                matches!(e, ImageRefError::TagWithoutSha { .. })
            }),
            (format!("{REPO}:{}", &SHA[..6]), |e| {
                matches!(e, ImageRefError::TagWithoutSha { .. })
            }),
            (format!("{REPO}:{OTHER}"), |e| {
                matches!(e, ImageRefError::TagForOtherSha { .. })
            }),
            (format!("{REPO}:sha-{}", &OTHER[..7]), |e| {
                matches!(e, ImageRefError::TagForOtherSha { .. })
            }),
            (format!("{REPO}:{OTHER}@{DIGEST}"), |e| {
                matches!(e, ImageRefError::TagForOtherSha { .. })
            }),
            (format!("ghcr.io/acme/other:{SHA}"), |e| {
                matches!(e, ImageRefError::WrongRepository { .. })
            }),
            (format!("docker.io/acme/shop:{SHA}"), |e| {
                matches!(e, ImageRefError::WrongRepository { .. })
            }),
            (format!("{REPO}:v1.2.3"), |e| {
                matches!(e, ImageRefError::VersionTagNotAllowed { .. })
            }),
            (format!("{REPO}@sha256:abc"), |e| {
                matches!(e, ImageRefError::Malformed { .. })
            }),
            (format!("{REPO}@md5:{}", &DIGEST[7..]), |e| {
                matches!(e, ImageRefError::Malformed { .. })
            }),
            (format!("{REPO}:"), |e| {
                matches!(e, ImageRefError::Malformed { .. })
            }),
            (format!("{REPO}:-{SHA}"), |e| {
                matches!(e, ImageRefError::Malformed { .. })
            }),
            (format!("{REPO}:{SHA} "), |e| {
                matches!(e, ImageRefError::Malformed { .. })
            }),
            (String::new(), |e| {
                matches!(e, ImageRefError::Malformed { .. })
            }),
            (format!(":{SHA}"), |e| {
                matches!(e, ImageRefError::Malformed { .. })
            }),
        ];
        for (reference, expected) in &cases {
            match check(reference, false) {
                Ok(image) => panic!("{reference:?} accepted as {image}"),
                Err(error) => assert!(expected(&error), "{reference:?}: unexpected {error:?}"),
            }
        }
    }

    #[test]
    fn version_tags_only_when_the_app_allows_them() {
        for tag in ["v1.2.3", "1.2.3", "v2.0.0-rc.1"] {
            let reference = format!("{REPO}:{tag}");
            assert!(check(&reference, true).is_ok(), "{reference}");
            assert!(check(&reference, false).is_err(), "{reference}");
        }
        // Still not a version: a two-part number or a word.
        assert!(check(&format!("{REPO}:v1.2"), true).is_err());
    }

    #[test]
    fn refusals_explain_what_to_send_instead() {
        let message = check(&format!("{REPO}:latest"), false)
            .expect_err("refused")
            .to_string();
        assert!(message.contains(&format!("{REPO}:{SHA}")), "{message}");
        let message = check(&format!("{REPO}:v1.2.3"), false)
            .expect_err("refused")
            .to_string();
        assert!(message.contains("allow_version_tags"), "{message}");
    }

    #[test]
    fn display_round_trips() {
        let reference = format!("{REPO}:{SHA}@{DIGEST}");
        assert_eq!(check(&reference, false).expect("ok").to_string(), reference);
    }
}
