//! GitHub's webhook signature: `X-Hub-Signature-256: sha256=` + hex HMAC-SHA256 of the body.

use super::{any_key_matches, VerifyError};

pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

pub fn verify<I, K>(
    webhook_secrets: I,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), VerifyError>
where
    I: IntoIterator<Item = K>,
    K: AsRef<[u8]>,
{
    let expected = parse_signature(signature)?;
    any_key_matches(webhook_secrets, &[body], &expected)
}

/// The digest of a well-formed header (`sha256=` and 64 hex digits). Needs no body, so the
/// route refuses a missing or malformed header before reading one.
pub fn parse_signature(signature: Option<&str>) -> Result<[u8; 32], VerifyError> {
    let signature = signature.ok_or(VerifyError::MissingHeader(SIGNATURE_HEADER))?;
    signature
        .strip_prefix("sha256=")
        .and_then(|hex_digest| hex::decode(hex_digest).ok())
        .and_then(|digest| digest.try_into().ok())
        .ok_or(VerifyError::MalformedHeader(SIGNATURE_HEADER))
}

#[cfg(test)]
mod tests {
    use super::*;

    // GitHub docs, "Validating webhook deliveries".
    const SECRET: &str = "It's a Secret to Everybody";
    const SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn documentation_vector_verifies() {
        assert_eq!(verify([SECRET], Some(SIGNATURE), b"Hello, World!"), Ok(()));
    }

    #[test]
    fn wrong_secret_body_or_format_is_refused() {
        assert_eq!(
            verify(["another"], Some(SIGNATURE), b"Hello, World!"),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify([SECRET], Some(SIGNATURE), b"Hello, World?"),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify([SECRET], Some(&SIGNATURE[7..]), b"Hello, World!"),
            Err(VerifyError::MalformedHeader(SIGNATURE_HEADER))
        );
        assert_eq!(
            verify([SECRET], None, b"Hello, World!"),
            Err(VerifyError::MissingHeader(SIGNATURE_HEADER))
        );
    }

    #[test]
    fn only_sha256_and_64_hex_digits_is_well_formed() {
        assert!(parse_signature(Some(SIGNATURE)).is_ok());
        for malformed in ["sha256=", "sha256=abcd", "sha1=757107ea", "sha256=zz"] {
            assert_eq!(
                parse_signature(Some(malformed)),
                Err(VerifyError::MalformedHeader(SIGNATURE_HEADER)),
                "{malformed}"
            );
        }
        assert_eq!(
            parse_signature(Some(&format!("{SIGNATURE}00"))),
            Err(VerifyError::MalformedHeader(SIGNATURE_HEADER))
        );
    }

    #[test]
    fn rotation_list_accepts_the_new_and_the_old_secret() {
        assert_eq!(
            verify(["new-secret", SECRET], Some(SIGNATURE), b"Hello, World!"),
            Ok(())
        );
    }
}
