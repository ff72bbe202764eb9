//! The `http` deployer: a signed JSON POST to the configured deploy hook.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use url::Url;

use super::{retry_after, started_from, unreachable, DeployRequest, Started};
use crate::secret::Secret;

/// `sha256=<hex HMAC-SHA256 of body>`, the `X-Greenlight-Signature` a hook checks.
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub(super) async fn post(
    client: &reqwest::Client,
    url: &Url,
    secret: &Secret,
    request: &DeployRequest,
) -> Started {
    let body = match serde_json::to_vec(request) {
        Ok(body) => body,
        Err(error) => {
            return Started::Refused(format!("cannot encode the deploy request: {error}"))
        }
    };
    let sent = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", request.deployment_id.to_string())
        .header("X-Greenlight-Signature", signature(secret, &body))
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => return unreachable("the deploy hook", &error),
    };
    let status = response.status();
    let after = retry_after(&response);
    let text = response.text().await.unwrap_or_default();
    started_from(status, after, &text, "the deploy hook")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hex_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let secret = Secret::new("Jefe");
        assert_eq!(
            signature(&secret, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
