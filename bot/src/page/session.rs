//! Who may read the page (SPEC §14): a sign-in that checks a token once and hands out a session
//! cookie signed by the server.
//!
//! The cookie carries its own expiry and an HMAC-SHA256 of it. With `server.api_token` the key
//! is derived from the token, so every replica with the same configuration accepts the others'
//! cookies, and retiring a token signs out everyone it signed in. Without one, the key and the
//! sign-in token are random and live as long as the process (the link `serve` prints).

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use url::Url;

use crate::config::Config;
use crate::secret::{Secret, SecretList};

/// The session cookie's name.
pub const COOKIE: &str = "greenlight_session";
/// How long a sign-in lasts.
pub const SESSION_LIFETIME: TimeDelta = TimeDelta::hours(12);
/// Format marker inside the signed value, so a later format can refuse this one.
const VERSION: &str = "v1";

/// What a sign-in is checked against, and the keys that sign and check session cookies.
#[derive(Clone)]
pub struct PageAccess {
    tokens: Tokens,
    /// Signs new cookies; `keys` (this one first) check them.
    keys: Vec<[u8; 32]>,
    secure: bool,
    sign_in_link: Option<Url>,
}

#[derive(Clone)]
enum Tokens {
    /// `server.api_token`, any of its rotation list.
    Configured(SecretList),
    /// Generated at start: valid for this process only.
    OneTime(Secret),
}

impl PageAccess {
    /// Access as the configuration says; without an `api_token`, a random token and key.
    pub fn from_config(config: &Config) -> Self {
        let secure = config.server.public_url.scheme() == "https";
        match &config.server.api_token {
            Some(tokens) => Self {
                keys: tokens.iter().map(derived_key).collect(),
                tokens: Tokens::Configured(tokens.clone()),
                secure,
                sign_in_link: None,
            },
            None => {
                let token = uuid::Uuid::new_v4().simple().to_string();
                let mut link = config.server.public_url.join("sign-in").ok();
                if let Some(link) = &mut link {
                    link.query_pairs_mut().append_pair("token", &token);
                }
                Self {
                    keys: vec![random_key()],
                    tokens: Tokens::OneTime(Secret::new(token)),
                    secure,
                    sign_in_link: link,
                }
            }
        }
    }

    /// The link `serve` prints when no `api_token` is configured.
    pub fn sign_in_link(&self) -> Option<&Url> {
        self.sign_in_link.as_ref()
    }

    /// Whether the sign-in link's token is accepted in the URL (only the generated one is: a
    /// configured token never travels in a URL).
    pub fn accepts_link_tokens(&self) -> bool {
        matches!(self.tokens, Tokens::OneTime(_))
    }

    /// Whether `token` signs someone in (constant time).
    pub fn accepts(&self, token: &str) -> bool {
        let token = token.trim().as_bytes();
        match &self.tokens {
            Tokens::Configured(tokens) => tokens.matches(token),
            Tokens::OneTime(secret) => secret.matches(token),
        }
    }

    /// The `Set-Cookie` value of a session starting `now`.
    pub fn session_cookie(&self, now: DateTime<Utc>) -> String {
        let expires = (now + SESSION_LIFETIME).timestamp();
        let payload = format!("{VERSION}.{expires}");
        let signature = hex::encode(sign(&self.keys[0], &payload));
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{COOKIE}={payload}.{signature}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
            SESSION_LIFETIME.num_seconds()
        )
    }

    /// Whether a `Cookie` header carries a session this server signed that has not expired.
    pub fn has_session(&self, cookie_header: &str, now: DateTime<Utc>) -> bool {
        cookie_header
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == COOKIE)
            .any(|(_, value)| self.valid(value, now))
    }

    fn valid(&self, value: &str, now: DateTime<Utc>) -> bool {
        let Some((payload, signature)) = value.rsplit_once('.') else {
            return false;
        };
        let Ok(signature) = hex::decode(signature) else {
            return false;
        };
        let signed = self.keys.iter().any(|key| {
            let mut mac = mac(key);
            mac.update(payload.as_bytes());
            mac.verify_slice(&signature).is_ok()
        });
        let expires = payload
            .strip_prefix(VERSION)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|seconds| seconds.parse::<i64>().ok())
            .and_then(|seconds| DateTime::from_timestamp(seconds, 0));
        signed && expires.is_some_and(|expires| now < expires)
    }
}

fn derived_key(token: &Secret) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"greenlight page session key v1\0");
    hasher.update(token.expose().as_bytes());
    hasher.finalize().into()
}

fn random_key() -> [u8; 32] {
    let mut key = [0; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key
}

fn mac(key: &[u8; 32]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; 32 bytes cannot fail.
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length")
}

fn sign(key: &[u8; 32], payload: &str) -> Vec<u8> {
    let mut mac = mac(key);
    mac.update(payload.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(toml: &str) -> PageAccess {
        let config = Config::from_toml_str(toml, &|_| None).expect("valid config");
        PageAccess::from_config(&config)
    }

    fn cookie_value(set_cookie: &str) -> String {
        set_cookie.split(';').next().expect("a pair").to_owned()
    }

    #[test]
    fn a_cookie_is_accepted_until_it_expires_and_by_every_replica() {
        let now = Utc::now();
        let one = access("[server]\napi_token = \"t0ken\"");
        let other = access("[server]\napi_token = \"t0ken\"");
        let cookie = cookie_value(&one.session_cookie(now));
        assert!(other.has_session(&cookie, now));
        assert!(other.has_session(&cookie, now + TimeDelta::hours(11)));
        assert!(!other.has_session(&cookie, now + TimeDelta::hours(13)));
    }

    #[test]
    fn tampered_forged_and_rotated_out_cookies_are_refused() {
        let now = Utc::now();
        let access_ = access("[server]\napi_token = \"t0ken\"");
        let cookie = cookie_value(&access_.session_cookie(now));
        let later = (now + TimeDelta::days(30)).timestamp();
        let (_, signature) = cookie.rsplit_once('.').expect("signed");
        let tampered = format!("{COOKIE}=v1.{later}.{signature}");
        assert!(!access_.has_session(&tampered, now));
        assert!(!access_.has_session(&format!("{COOKIE}=v1.{later}.00"), now));
        assert!(!access_.has_session(&format!("{COOKIE}=v1.{later}"), now));
        let rotated = access("[server]\napi_token = \"n3w-token\"");
        assert!(!rotated.has_session(&cookie, now));
        let rotating = access("[server]\napi_token = [\"n3w-token\", \"t0ken\"]");
        assert!(rotating.has_session(&cookie, now));
    }

    #[test]
    fn without_an_api_token_a_random_link_signs_in_for_this_process_only() {
        let first = access("");
        let second = access("");
        let link = first.sign_in_link().expect("a link").clone();
        let token = link
            .query_pairs()
            .find(|(key, _)| key == "token")
            .expect("a token")
            .1
            .into_owned();
        assert!(link
            .as_str()
            .starts_with("http://localhost:8080/sign-in?token="));
        assert!(first.accepts(&token));
        assert!(!second.accepts(&token));
        let cookie = cookie_value(&first.session_cookie(Utc::now()));
        assert!(!second.has_session(&cookie, Utc::now()));
    }
}
