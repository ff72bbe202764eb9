//! Tokens and secrets: each token different, rotation lists, and no value quoted in a problem.

use super::*;

#[test]
fn tokens_must_differ() {
    let text = format!(
        r#"{}
[server]
api_token = "same"
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "shop-ci"
[apps.shop.environments.production]
flags_token = "same"
[apps.web]
image = "ghcr.io/acme/web"
ci_token = "shop-ci"
[apps.web.environments.production]
"#,
        base()
    );
    assert_eq!(
        problems(&text),
        [
            "apps.shop.environments.production.flags_token: is the same token as server.api_token; every token must be different, or one would grant the other's access",
            "apps.web.ci_token: is the same token as apps.shop.ci_token; every token must be different, or one would grant the other's access",
        ]
    );
}

#[test]
fn secrets_are_not_shown_in_problems() {
    let text = format!(
        "{}\n[apps.shop]\nimage = \"ghcr.io/acme/shop\"\nci_token = \" hunter2\\n\"\n[apps.shop.environments.production]\nflags_token = 123456789\n",
        base()
    );
    let report = check_config_report(&parse(&text));
    assert_eq!(
        report,
        "apps.shop.ci_token: starts or ends with whitespace (value not shown)\n\
         apps.shop.environments.production.flags_token: expected a string, found an integer\n\
         2 problems found\n"
    );
}

#[test]
fn tokens_accept_rotation_lists_and_each_must_differ() {
    let text = format!(
        r#"{}
[server]
api_token = ["api-new", "api-old"]
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = ["ci-new", "ci-old"]
[apps.shop.environments.production]
flags_token = ["flags-new", "ci-old"]
"#,
        base()
    );
    assert_eq!(
        problems(&text),
        ["apps.shop.environments.production.flags_token[1]: is the same token as apps.shop.ci_token[1]; every token must be different, or one would grant the other's access"]
    );
    let config = valid(&text.replace(
        r#"["flags-new", "ci-old"]"#,
        r#"["flags-new", "flags-old"]"#,
    ));
    let shop = &config.apps[0];
    assert_eq!(shop.ci_token.len(), 2);
    assert!(config.app_for_ci_token(b"ci-old").is_some());
    assert!(config.app_for_ci_token(b"ci-new").is_some());
    assert!(config.app_for_ci_token(b"ci-older").is_none());
}

#[test]
fn values_from_the_environment_are_never_quoted_in_problems() {
    const LEAKED: &str = "xoxb-0123456789-leaked-secret";
    let text = format!(
        r#"{}
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "ci"
channels = {{ slack = "${{WRONG}}" }}
[apps.shop.environments.production]
reviewers = ["${{WRONG}}"]
"#,
        base()
    );
    let env = |name: &str| (name == "WRONG").then(|| LEAKED.to_owned());
    let errors = Config::from_toml_str(&text, &env).expect_err("two wrong values");
    let report = errors.to_string();
    assert!(!report.contains("leaked-secret"), "{report}");
    assert!(
        report.contains("apps.shop.channels.slack: invalid Slack channel id \"${WRONG}\""),
        "{report}"
    );
    assert!(
        report.contains("apps.shop.environments.production.reviewers[0]"),
        "{report}"
    );
}
