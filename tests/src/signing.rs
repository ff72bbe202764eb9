//! Signs requests exactly as the platforms do, so tests drive the real verification path.

use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Slack's `X-Slack-Signature` for `body` sent at `timestamp` (unix seconds).
pub fn slack_signature(signing_secret: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    format!(
        "v0={}",
        hmac_hex(
            signing_secret.as_bytes(),
            &[b"v0:", ts.as_bytes(), b":", body]
        )
    )
}

/// GitHub's `X-Hub-Signature-256` for `body`.
pub fn github_signature(webhook_secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(webhook_secret.as_bytes(), &[body]))
}

/// The `X-Greenlight-Signature` that Greenlight's HTTP deployer sends (same scheme as GitHub).
pub fn greenlight_signature(secret: &str, body: &[u8]) -> String {
    github_signature(secret, body)
}

/// Stands in for a Discord application: holds its key pair and signs interactions.
pub struct DiscordSigner {
    key: SigningKey,
}

impl DiscordSigner {
    /// A fixed key, so failures are reproducible.
    pub fn new() -> Self {
        Self::from_seed([7; 32])
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The hex public key to put in `discord.public_key`.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// `X-Signature-Ed25519` for `timestamp ‖ body`.
    pub fn sign(&self, timestamp: &str, body: &[u8]) -> String {
        let mut message = timestamp.as_bytes().to_vec();
        message.extend_from_slice(body);
        hex::encode(self.key.sign(&message).to_bytes())
    }
}

impl Default for DiscordSigner {
    fn default() -> Self {
        Self::new()
    }
}

/// A fresh `action_ts` for a Slack block action, as Slack gives every click its own: Greenlight
/// applies a click once per `action_ts` + user + value (SPEC §10), so two clicks need two.
pub fn slack_action_ts() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("1572000048.{:06}", NEXT.fetch_add(1, Ordering::SeqCst))
}

/// A fresh `trigger_id` for a Slack slash command: Slack gives every invocation its own, and
/// Greenlight runs a command once per trigger id (SPEC §10).
pub fn slack_trigger_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "398738663015.47445629121.{:032x}",
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A fresh Discord interaction id (a snowflake): Discord gives every interaction its own, and
/// Greenlight applies each at most once (SPEC §10).
pub fn discord_interaction_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("9{:017}", NEXT.fetch_add(1, Ordering::SeqCst))
}
