//! Which `response_url`s Greenlight follows (SPEC §10): Slack's own `hooks.slack.com`, or the
//! origin of the configured `api_url` (a fake Slack in tests). A `response_url` arrives inside a
//! request, so without this pin a signed-but-hostile payload could aim Greenlight's posts at any
//! host, inside the private network included.

use url::Url;

/// The host Slack gives every `response_url`.
pub const SLACK_HOOKS_HOST: &str = "hooks.slack.com";

/// Whether `response_url` may be posted to, given Slack's configured `api_url`.
pub fn allowed(response_url: &str, api_url: &Url) -> bool {
    let Ok(url) = Url::parse(response_url) else {
        return false;
    };
    let slack_hooks = url.scheme() == "https"
        && url.host_str() == Some(SLACK_HOOKS_HOST)
        && url.port().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    slack_hooks || url.origin() == api_url.origin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_slack_hooks_and_the_api_origin_are_followed() {
        let api = Url::parse("http://127.0.0.1:4567/api/").expect("url");
        let slack = Url::parse("https://slack.com/api").expect("url");
        for (url, expected) in [
            ("https://hooks.slack.com/actions/T1/2/abc", true),
            ("http://127.0.0.1:4567/response/1", true),
            ("http://hooks.slack.com/actions/T1/2/abc", false),
            ("https://hooks.slack.com:8443/actions", false),
            ("https://hooks.slack.com.evil.example/actions", false),
            ("https://evil@hooks.slack.com/actions", false),
            ("https://169.254.169.254/latest/meta-data", false),
            ("http://127.0.0.1:4568/response/1", false),
            ("http://localhost:4567/response/1", false),
            ("not a url", false),
            ("", false),
        ] {
            assert_eq!(allowed(url, &api), expected, "{url}");
        }
        assert!(allowed("https://hooks.slack.com/commands/T/1/x", &slack));
        assert!(!allowed("https://slack.com.evil.example/x", &slack));
    }
}
