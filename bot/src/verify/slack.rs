//! Slack's v0 request signature: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`.

use super::{any_key_matches, VerifyError};

pub const SIGNATURE_HEADER: &str = "x-slack-signature";
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// Slack's documented replay window; applies to past and future timestamps alike.
pub const MAX_SKEW_SECONDS: u64 = 5 * 60;

/// Verifies a Slack request. `now_unix` is injected so the 2018 documentation vector can be
/// checked with the clock pinned.
pub fn verify<I, K>(
    signing_secrets: I,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), VerifyError>
where
    I: IntoIterator<Item = K>,
    K: AsRef<[u8]>,
{
    let (timestamp, expected) = check_headers(timestamp, signature, now_unix)?;
    any_key_matches(
        signing_secrets,
        &[b"v0:", timestamp.as_bytes(), b":", body],
        &expected,
    )
}

/// Everything that can be checked without the body: both headers present, the timestamp a
/// number inside the replay window, the signature `v0=` and 64 hex digits. Returns the
/// timestamp as sent (it is part of the signed text) and the digest.
pub fn check_headers<'a>(
    timestamp: Option<&'a str>,
    signature: Option<&str>,
    now_unix: i64,
) -> Result<(&'a str, [u8; 32]), VerifyError> {
    let timestamp = timestamp.ok_or(VerifyError::MissingHeader(TIMESTAMP_HEADER))?;
    let signature = signature.ok_or(VerifyError::MissingHeader(SIGNATURE_HEADER))?;
    let sent_at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::MalformedHeader(TIMESTAMP_HEADER))?;
    // abs_diff: a hostile timestamp near i64::MIN must not overflow the subtraction.
    if now_unix.abs_diff(sent_at) > MAX_SKEW_SECONDS {
        return Err(VerifyError::Stale);
    }
    let expected = signature
        .strip_prefix("v0=")
        .and_then(|hex_digest| hex::decode(hex_digest).ok())
        .and_then(|digest| digest.try_into().ok())
        .ok_or(VerifyError::MalformedHeader(SIGNATURE_HEADER))?;
    Ok((timestamp, expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's worked example ("Verifying requests from Slack").
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TIMESTAMP: &str = "1531420618";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

    fn check(secrets: &[&str], ts: &str, sig: &str, now: i64) -> Result<(), VerifyError> {
        verify(secrets, Some(ts), Some(sig), BODY.as_bytes(), now)
    }

    #[test]
    fn documentation_vector_verifies_with_the_clock_pinned() {
        assert_eq!(check(&[SECRET], TIMESTAMP, SIGNATURE, 1531420618), Ok(()));
    }

    #[test]
    fn documentation_vector_is_stale_today() {
        assert_eq!(
            check(&[SECRET], TIMESTAMP, SIGNATURE, 1_800_000_000),
            Err(VerifyError::Stale)
        );
    }

    #[test]
    fn future_timestamps_beyond_the_window_are_refused() {
        assert_eq!(
            check(&[SECRET], TIMESTAMP, SIGNATURE, 1531420618 - 301),
            Err(VerifyError::Stale)
        );
    }

    #[test]
    fn extreme_timestamps_are_stale_not_an_overflow() {
        for (timestamp, now) in [
            ("-9223372036854775808", i64::MAX),
            ("9223372036854775807", i64::MIN),
        ] {
            assert_eq!(
                check(&[SECRET], timestamp, SIGNATURE, now),
                Err(VerifyError::Stale)
            );
        }
    }

    #[test]
    fn any_secret_of_a_rotation_list_verifies() {
        assert_eq!(
            check(&["old-secret", SECRET], TIMESTAMP, SIGNATURE, 1531420618),
            Ok(())
        );
        assert_eq!(
            check(&["old-secret"], TIMESTAMP, SIGNATURE, 1531420618),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn tampered_body_and_missing_headers_are_refused() {
        let tampered = verify(
            [SECRET],
            Some(TIMESTAMP),
            Some(SIGNATURE),
            b"token=evil",
            1531420618,
        );
        assert_eq!(tampered, Err(VerifyError::Mismatch));
        assert_eq!(
            verify([SECRET], None, Some(SIGNATURE), BODY.as_bytes(), 0),
            Err(VerifyError::MissingHeader(TIMESTAMP_HEADER))
        );
        assert_eq!(
            verify(
                [SECRET],
                Some(TIMESTAMP),
                Some("a2114d57"),
                BODY.as_bytes(),
                1531420618
            ),
            Err(VerifyError::MalformedHeader(SIGNATURE_HEADER))
        );
        assert_eq!(
            verify(
                [""],
                Some(TIMESTAMP),
                Some(SIGNATURE),
                BODY.as_bytes(),
                1531420618
            ),
            Err(VerifyError::NoSecret)
        );
    }
}
