//! `[apps.NAME]`: required keys, value formats and channels.

use super::*;

#[test]
fn app_rules() {
    let app = |body: &str| {
        format!(
            "{}\n[apps.shop]\n{body}\n[apps.shop.environments.production]\n",
            base()
        )
    };
    for (body, expected) in [
        (
            "ci_token = \"ci\"",
            vec![r#"apps.shop.image: missing; the image repository releases come from, without a tag, e.g. "ghcr.io/acme/shop""#],
        ),
        (
            "image = \"ghcr.io/acme/shop\"",
            vec![r#"apps.shop.ci_token: missing; the bearer token CI sends to /api/v1/events, e.g. "${SHOP_CI_TOKEN}""#],
        ),
        (
            "image = \"ghcr.io/acme/shop:latest\"\nci_token = \"ci\"",
            vec![r#"apps.shop.image: invalid image "ghcr.io/acme/shop:latest": must not include a tag; each release brings its own tag or digest"#],
        ),
        (
            "image = \"ghcr.io/acme/shop\"\nci_token = \"ci\"\nrepository = \"shop\"",
            vec![r#"apps.shop.repository: invalid repository "shop": expected owner/name, like "acme/shop""#],
        ),
        (
            "image = \"ghcr.io/acme/shop\"\nci_token = \"ci\"\nchannels = { slack = \"#deploys\", discord = \"deploys\" }",
            vec![
                r##"apps.shop.channels.slack: "#deploys" is a channel name; use the channel id (like "C0123ABCD") shown at the bottom of the channel's details"##,
                r#"apps.shop.channels.discord: invalid Discord id "deploys": expected a snowflake (digits only, like "80351110224678912"); copy it with Developer Mode on"#,
            ],
        ),
        (
            "image = \"ghcr.io/acme/shop\"\nci_token = \"ci\"\noperators = [\"group:ops\"]\nallow_version_tags = 1",
            vec![
                r#"apps.shop.allow_version_tags: expected true or false, found an integer"#,
                r#"apps.shop.operators[0]: unknown group "ops""#,
            ],
        ),
        (
            "image = \"ghcr.io/acme/shop\"\nci_token = \"ci\"\nchanels = {}",
            vec![r#"apps.shop.chanels: unknown key; did you mean "channels"?"#],
        ),
    ] {
        assert_eq!(problems(&app(body)), expected, "{body}");
    }

    assert_eq!(
        problems(&format!("{}\n[apps.Shop]\nimage = \"shop\"\nci_token = \"ci\"\n[apps.Shop.environments.production]\n", base())),
        [r#"apps.Shop: app name must be 1-63 characters of lowercase letters, digits, '-' or '_', starting with a letter or digit; got "Shop""#]
    );
    assert_eq!(
        problems(&format!("{}\n[apps.shop]\nimage = \"shop\"\nci_token = \"ci\"\n", base())),
        ["apps.shop.environments: missing; define at least one, e.g. [apps.shop.environments.production]"]
    );
    assert_eq!(
        problems(&format!(
            "{}\n[apps.shop]\nimage = \"shop\"\nci_token = \"ci\"\n[apps.shop.environments]\n",
            base()
        )),
        ["apps.shop.environments: must define at least one environment"]
    );
}

#[test]
fn channels_need_their_platform_and_gates_need_a_channel() {
    let text = r#"
[people]
alice = { slack = "U012AB3CD" }
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "ci"
channels = { slack = "C0DEPLOYS", discord = "1100000000000000000" }
[apps.shop.environments.production]

[apps.web]
image = "ghcr.io/acme/web"
ci_token = "ci-web"
[apps.web.environments.staging]
[apps.web.environments.production]
after = "staging"
reviewers = ["alice"]
"#;
    assert_eq!(
        problems(text),
        [
            "apps.shop.channels.slack: needs a [slack] section: Slack is off without one",
            "apps.shop.channels.discord: needs a [discord] section: Discord is off without one",
            "apps.web.channels: missing; approval cards for gated environments need a Slack or Discord channel",
        ]
    );
}
