//! The harness signs exactly as the platforms do: proven against the vendors' own vectors in
//! `../shared/fixtures`, and accepted by Greenlight's verifiers.

use greenlight::verify::{self, VerifyError};
use greenlight_tests::fixtures;
use greenlight_tests::signing::{github_signature, slack_signature, DiscordSigner};

#[test]
fn slack_signature_matches_slacks_documented_vector() {
    let vector = fixtures::read_json("slack/signing_vector.json");
    let body = fixtures::read(&format!(
        "slack/{}",
        vector["body_file"].as_str().expect("body_file")
    ));
    let secret = vector["signing_secret"].as_str().expect("secret");
    let timestamp: i64 = vector["x_slack_request_timestamp"]
        .as_str()
        .expect("timestamp")
        .parse()
        .expect("numeric timestamp");
    let expected = vector["x_slack_signature"].as_str().expect("signature");

    assert_eq!(slack_signature(secret, timestamp, &body), expected);

    // Greenlight accepts it with the clock pinned to the vector's time, and refuses it as stale
    // with today's clock.
    let ts = timestamp.to_string();
    assert_eq!(
        verify::slack::verify([secret], Some(&ts), Some(expected), &body, timestamp),
        Ok(())
    );
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        verify::slack::verify([secret], Some(&ts), Some(expected), &body, now),
        Err(VerifyError::Stale)
    );
}

#[test]
fn github_signature_matches_githubs_documented_vector() {
    let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(
        github_signature("It's a Secret to Everybody", b"Hello, World!"),
        expected
    );
    assert_eq!(
        verify::github::verify(
            ["It's a Secret to Everybody"],
            Some(expected),
            b"Hello, World!"
        ),
        Ok(())
    );
}

#[test]
fn discord_verification_accepts_the_rfc8032_vector() {
    let key = verify::discord::parse_public_key(
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    )
    .expect("valid key");
    let signature = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
    assert_eq!(
        verify::discord::verify_signature(&key, Some(signature), Some(""), b""),
        Ok(())
    );
}

#[test]
fn discord_signer_produces_what_greenlight_verifies() {
    let signer = DiscordSigner::new();
    let key = verify::discord::parse_public_key(&signer.public_key_hex()).expect("valid key");
    let body = fixtures::read("discord/slash_command_interaction.json");
    let signature = signer.sign("1700000000", &body);
    assert_eq!(
        verify::discord::verify(
            &key,
            Some(&signature),
            Some("1700000000"),
            &body,
            1_700_000_000
        ),
        Ok(())
    );
    // Another application's key does not verify it.
    let other = DiscordSigner::from_seed([9; 32]);
    let other_key = verify::discord::parse_public_key(&other.public_key_hex()).expect("valid");
    assert_eq!(
        verify::discord::verify(
            &other_key,
            Some(&signature),
            Some("1700000000"),
            &body,
            1_700_000_000
        ),
        Err(VerifyError::Mismatch)
    );
}

#[test]
fn slack_signatures_made_now_verify_and_other_secrets_do_not() {
    let body = fixtures::read("slack/slash_command_weather.body");
    let now = chrono::Utc::now().timestamp();
    let signature = slack_signature("current-secret", now, &body);
    let ts = now.to_string();
    assert_eq!(
        verify::slack::verify(
            ["previous-secret", "current-secret"],
            Some(&ts),
            Some(&signature),
            &body,
            now
        ),
        Ok(())
    );
    assert_eq!(
        verify::slack::verify(["previous-secret"], Some(&ts), Some(&signature), &body, now),
        Err(VerifyError::Mismatch)
    );
}
