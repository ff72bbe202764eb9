//! Bearer tokens: CI's `ci_token` per app and the read APIs' `api_token`.

use axum::http::{header, HeaderMap};

use super::ApiError;
use crate::secret::SecretList;

/// The token of an `Authorization: Bearer …` header, if there is one.
pub fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at(value.iter().position(|b| *b == b' ')?);
    let token = token.trim_ascii();
    (scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty()).then_some(token)
}

/// Checks the read APIs' token. Unset in the configuration means the APIs are off.
pub fn require_api_token(
    headers: &HeaderMap,
    configured: Option<&SecretList>,
) -> Result<(), ApiError> {
    let Some(expected) = configured else {
        return Err(ApiError::unauthorized(
            "the read API is disabled: set server.api_token in greenlight.toml and send it as \
             Authorization: Bearer <token>",
        ));
    };
    match bearer(headers) {
        Some(token) if expected.matches(token) => Ok(()),
        Some(_) => Err(ApiError::unauthorized("the bearer token is not accepted")),
        None => Err(ApiError::unauthorized(
            "send the api_token as Authorization: Bearer <token>",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().expect("header"));
        headers
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively_and_trimmed() {
        assert_eq!(bearer(&headers("Bearer abc")), Some(&b"abc"[..]));
        assert_eq!(bearer(&headers("bearer  abc ")), Some(&b"abc"[..]));
        assert_eq!(bearer(&headers("Basic abc")), None);
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&headers("Bearerabc")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn api_token_unset_wrong_and_right() {
        let secret = SecretList::single(Secret::new("s3cret".to_owned()));
        assert!(require_api_token(&headers("Bearer s3cret"), None).is_err());
        assert!(require_api_token(&headers("Bearer nope"), Some(&secret)).is_err());
        assert!(require_api_token(&HeaderMap::new(), Some(&secret)).is_err());
        assert!(require_api_token(&headers("Bearer s3cret"), Some(&secret)).is_ok());
    }

    #[test]
    fn any_token_of_a_rotation_list_is_accepted() {
        let rotation = SecretList::from_vec(vec![
            Secret::new("new-token".to_owned()),
            Secret::new("old-token".to_owned()),
        ])
        .expect("two tokens");
        for token in ["new-token", "old-token"] {
            let headers = headers(&format!("Bearer {token}"));
            assert!(require_api_token(&headers, Some(&rotation)).is_ok());
        }
        assert!(require_api_token(&headers("Bearer older-token"), Some(&rotation)).is_err());
    }
}
