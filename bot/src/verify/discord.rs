//! Discord's interaction signature: Ed25519 over `timestamp ‖ body` with the application's
//! public key. Discord probes endpoints with bad signatures on purpose; they must get 401.

use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use super::VerifyError;

pub const SIGNATURE_HEADER: &str = "x-signature-ed25519";
pub const TIMESTAMP_HEADER: &str = "x-signature-timestamp";
/// Interactions signed longer ago than this (or this far in the future) are refused, so a
/// captured request cannot be replayed later (SPEC §10). Discord delivers within seconds.
pub const MAX_AGE_SECONDS: u64 = 5 * 60;

/// Checks `signature` over `timestamp ‖ body`, and that `timestamp` (unix seconds) is within
/// [`MAX_AGE_SECONDS`] of `now_unix`.
pub fn verify(
    public_key: &VerifyingKey,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), VerifyError> {
    verify_signature(public_key, signature, timestamp, body)?;
    // Checked after the signature, so a forged timestamp learns nothing about the key.
    let signed_at: i64 = timestamp
        .unwrap_or_default()
        .trim()
        .parse()
        .map_err(|_| VerifyError::MalformedHeader(TIMESTAMP_HEADER))?;
    if now_unix.abs_diff(signed_at) > MAX_AGE_SECONDS {
        return Err(VerifyError::Stale);
    }
    Ok(())
}

/// The Ed25519 check alone: `signature` over `timestamp ‖ body`.
pub fn verify_signature(
    public_key: &VerifyingKey,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
) -> Result<(), VerifyError> {
    let (bytes, timestamp) = check_headers(signature, timestamp)?;
    let signature = Signature::from_bytes(&bytes);
    let mut message = Vec::with_capacity(timestamp.len() + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.extend_from_slice(body);
    public_key
        .verify(&message, &signature)
        .map_err(|_| VerifyError::Mismatch)
}

/// What can be checked without the body: the signature is 128 hex digits (64 bytes) and the
/// timestamp is there. Returns the signature's bytes and the timestamp.
pub fn check_headers<'a>(
    signature: Option<&str>,
    timestamp: Option<&'a str>,
) -> Result<([u8; 64], &'a str), VerifyError> {
    let signature = signature.ok_or(VerifyError::MissingHeader(SIGNATURE_HEADER))?;
    let timestamp = timestamp.ok_or(VerifyError::MissingHeader(TIMESTAMP_HEADER))?;
    let bytes: [u8; 64] = hex::decode(signature)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(VerifyError::MalformedHeader(SIGNATURE_HEADER))?;
    Ok((bytes, timestamp))
}

/// Parses the 64-hex public key shown in Discord's developer portal.
pub fn parse_public_key(hex_key: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim()).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8032 §7.1 TEST 1: empty message. Discord signs timestamp‖body, so an empty timestamp
    // and empty body reproduce it.
    const PUBLIC_KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const SIGNATURE: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    #[test]
    fn rfc8032_vector_verifies() {
        let key = parse_public_key(PUBLIC_KEY).expect("valid key");
        assert_eq!(
            verify_signature(&key, Some(SIGNATURE), Some(""), b""),
            Ok(())
        );
    }

    #[test]
    fn any_change_to_timestamp_or_body_is_refused() {
        let key = parse_public_key(PUBLIC_KEY).expect("valid key");
        assert_eq!(
            verify_signature(&key, Some(SIGNATURE), Some("1"), b""),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_signature(&key, Some(SIGNATURE), Some(""), b"{}"),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_signature(&key, Some("00"), Some(""), b""),
            Err(VerifyError::MalformedHeader(SIGNATURE_HEADER))
        );
        assert_eq!(
            verify_signature(&key, None, Some(""), b""),
            Err(VerifyError::MissingHeader(SIGNATURE_HEADER))
        );
    }

    #[test]
    fn interactions_older_or_newer_than_five_minutes_are_stale() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let public = key.verifying_key();
        let signed = |timestamp: &str| {
            use ed25519_dalek::Signer;
            let message = [timestamp.as_bytes(), b"{}"].concat();
            hex::encode(key.sign(&message).to_bytes())
        };
        let now = 1_700_000_000;
        for (timestamp, expected) in [
            ("1700000000", Ok(())),
            ("1699999700", Ok(())),
            ("1699999699", Err(VerifyError::Stale)),
            ("1700000301", Err(VerifyError::Stale)),
            ("-9223372036854775808", Err(VerifyError::Stale)),
            ("soon", Err(VerifyError::MalformedHeader(TIMESTAMP_HEADER))),
        ] {
            let signature = signed(timestamp);
            assert_eq!(
                verify(&public, Some(&signature), Some(timestamp), b"{}", now),
                expected,
                "{timestamp}"
            );
        }
    }

    #[test]
    fn malformed_public_keys_are_rejected() {
        assert!(parse_public_key("abc").is_none());
        assert!(parse_public_key(&"zz".repeat(32)).is_none());
    }
}
