//! What the approval tests share on every platform: shop's production under the standard
//! policy, a release healthy in staging, and what the card for it must show.

use serde_json::{json, Value};

use crate::ci::{self, Fields};
use crate::config::shop_app;
use crate::shop::image;
use crate::TestApp;

/// shop's CI token.
pub const CI_TOKEN: &str = "shop-ci";

/// Production's policy: two of sre and carol, opening 5 minutes after staging is healthy,
/// expiring after an hour, with a reminder every 20 minutes.
pub const STANDARD_POLICY: &str = r#"
reviewers = ["group:sre", "carol"]
required_approvals = 2
wait_timer = "5m"
approval_timeout = "1h"
reminder_every = "20m"
"#;

/// `sre` (alice and bob, who must be among the people), and shop posting to `channels` with
/// staging and then production under `production`.
pub fn shop_config(channels: &str, production: &str) -> String {
    let keys =
        format!("repository = \"acme/shop\"\nci_token = \"{CI_TOKEN}\"\nchannels = {channels}");
    format!(
        "[groups]\nsre = [\"alice\", \"bob\"]\n\n{}",
        shop_app(&keys, "", production)
    )
}

/// CI's report that `sha` is healthy in staging, its `health` smoke check passed.
pub fn healthy_in_staging(sha: &str) -> Value {
    ci::deployed("staging", sha, "success").with(json!({"smoke": ci::smoke_passed()}))
}

/// CI reports the build of `sha` by `author` and then its healthy staging deploy; returns the
/// production approval request that opened.
pub async fn staging_healthy(app: &TestApp, sha: &str, author: &str) -> i64 {
    let message = "Fix checkout rounding\n\nDetails **here**";
    let build = ci::build(sha).with(json!({"author": author, "message": message}));
    ci::report(app, CI_TOKEN, build).await;
    ci::opened_request(&ci::report(app, CI_TOKEN, healthy_in_staging(sha)).await)
}

/// What the card for `sha` (built by alice, see [`staging_healthy`]) shows a reviewer on every
/// platform, whatever its markup.
pub fn card_texts(sha: &str) -> Vec<String> {
    vec![
        sha[..7].to_owned(),
        image(sha),
        "alice".to_owned(),
        "Fix checkout rounding".to_owned(),
        "health".to_owned(),
        "200 OK".to_owned(),
        "needs 2 of: sre, carol".to_owned(),
        "self-review blocked".to_owned(),
        "opens 12:05 UTC".to_owned(),
        format!("https://github.com/acme/shop/commit/{sha}"),
    ]
}
