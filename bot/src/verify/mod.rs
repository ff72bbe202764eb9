//! Inbound request authentication, exactly as each platform signs: Slack v0 HMAC with a replay
//! window, GitHub `X-Hub-Signature-256`, Discord Ed25519. Verification runs on the raw body,
//! before anything parses it, and compares in constant time.

pub mod discord;
pub mod github;
pub mod slack;

/// Why a request was not authenticated. Deliberately says nothing about the expected value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing signature header {0}")]
    MissingHeader(&'static str),
    #[error("malformed signature header {0}")]
    MalformedHeader(&'static str),
    #[error("request timestamp outside the allowed window")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
    #[error("no secret configured to verify with")]
    NoSecret,
}

/// HMAC-SHA256 of `parts` under `key`, compared in constant time against `expected`.
fn hmac_sha256_matches(key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return false;
    };
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(expected).is_ok()
}

/// True when any of the rotation list's keys produced `expected`. Every key is tried so the
/// time taken does not reveal which one matched.
fn any_key_matches<I, K>(keys: I, parts: &[&[u8]], expected: &[u8]) -> Result<(), VerifyError>
where
    I: IntoIterator<Item = K>,
    K: AsRef<[u8]>,
{
    let mut tried = false;
    let mut matched = false;
    for key in keys {
        let key = key.as_ref();
        if key.is_empty() {
            continue;
        }
        tried = true;
        matched |= hmac_sha256_matches(key, parts, expected);
    }
    match (tried, matched) {
        (false, _) => Err(VerifyError::NoSecret),
        (true, true) => Ok(()),
        (true, false) => Err(VerifyError::Mismatch),
    }
}
