//! `greenlight.toml` as operators write it: the shipped example, a thoroughly broken file, and
//! loading from disk.

use std::collections::HashMap;
use std::time::Duration;

use greenlight::config::{check_config_report, Config, ConfigErrors, Deployer, ExpectStatus};

const EXAMPLE: &str = include_str!("../../greenlight.example.toml");
const PUBLIC_KEY: &str = "8e4ce25b4a1c3e1f1a7a8d3a32c1c0b0f7e6d5c4b3a29180716253443526170a";

/// Every variable the example refers to, with the path of the key that uses it.
const EXAMPLE_VARIABLES: [(&str, &str); 13] = [
    ("GREENLIGHT_API_TOKEN", "server.api_token"),
    ("SLACK_BOT_TOKEN", "slack.bot_token"),
    ("SLACK_SIGNING_SECRET", "slack.signing_secret"),
    ("DISCORD_APPLICATION_ID", "discord.application_id"),
    ("DISCORD_PUBLIC_KEY", "discord.public_key"),
    ("DISCORD_BOT_TOKEN", "discord.bot_token"),
    ("GITHUB_WEBHOOK_SECRET", "github.webhook_secret"),
    ("GITHUB_APP_KEY_FILE", "github.private_key_file"),
    ("GITHUB_TOKEN", "github.token"),
    ("SHOP_CI_TOKEN", "apps.shop.ci_token"),
    (
        "SHOP_STAGING_FLAGS_TOKEN",
        "apps.shop.environments.staging.flags_token",
    ),
    (
        "SHOP_HOOK_SECRET",
        "apps.shop.environments.production.deploy.secret",
    ),
    (
        "SHOP_PROD_FLAGS_TOKEN",
        "apps.shop.environments.production.flags_token",
    ),
];

/// Plausible values; every secret is distinctive so a leak would be found by searching for it.
fn example_env() -> HashMap<&'static str, String> {
    [
        ("GREENLIGHT_API_TOKEN", "secret-api-token-1"),
        ("SLACK_BOT_TOKEN", "xoxb-secret-bot-token"),
        ("SLACK_SIGNING_SECRET", "secret-slack-signing"),
        ("DISCORD_APPLICATION_ID", "1100000000000000001"),
        ("DISCORD_PUBLIC_KEY", PUBLIC_KEY),
        ("DISCORD_BOT_TOKEN", "secret-discord-bot-token"),
        ("GITHUB_WEBHOOK_SECRET", "secret-github-webhook"),
        ("GITHUB_APP_KEY_FILE", "/run/secrets/github-app.pem"),
        ("GITHUB_TOKEN", "ghp_secretgithubtoken"),
        ("SHOP_CI_TOKEN", "secret-shop-ci"),
        ("SHOP_STAGING_FLAGS_TOKEN", "secret-staging-flags"),
        ("SHOP_HOOK_SECRET", "secret-hook"),
        ("SHOP_PROD_FLAGS_TOKEN", "secret-prod-flags"),
    ]
    .into_iter()
    .map(|(name, value)| (name, value.to_owned()))
    .collect()
}

const SECRETS: [&str; 10] = [
    "secret-api-token-1",
    "xoxb-secret-bot-token",
    "secret-slack-signing",
    "secret-discord-bot-token",
    "secret-github-webhook",
    "ghp_secretgithubtoken",
    "secret-shop-ci",
    "secret-staging-flags",
    "secret-hook",
    "secret-prod-flags",
];

fn parse_with(text: &str, vars: &HashMap<&'static str, String>) -> Result<Config, ConfigErrors> {
    Config::from_toml_str(text, &|name| vars.get(name).cloned())
}

fn lines(result: &Result<Config, ConfigErrors>) -> Vec<String> {
    match result {
        Ok(_) => Vec::new(),
        Err(errors) => errors.problems().iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_example_is_accepted_when_its_variables_are_set() {
    let config = parse_with(EXAMPLE, &example_env()).unwrap_or_else(|errors| panic!("{errors}"));

    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.server.public_url.as_str(), "http://localhost:8080/");
    assert!(config
        .server
        .api_token
        .as_ref()
        .is_some_and(|token| token.matches(b"secret-api-token-1")));
    assert_eq!(config.database.url.expose(), "sqlite://greenlight.db");

    let slack = config.slack.as_ref().expect("slack on");
    assert_eq!(slack.bot_token.expose(), "xoxb-secret-bot-token");
    assert!(slack
        .signing_secret
        .as_ref()
        .is_some_and(|secrets| secrets.matches(b"secret-slack-signing")));
    assert_eq!(slack.api_url.as_str(), "https://slack.com/api");

    let discord = config.discord.as_ref().expect("discord on");
    assert_eq!(discord.application_id.get(), 1100000000000000001);
    assert_eq!(
        hex::encode(discord.public_key.as_ref().expect("public_key").as_bytes()),
        PUBLIC_KEY
    );
    assert_eq!(discord.api_url.as_str(), "https://discord.com/");

    let github = config.github.as_ref().expect("github on");
    let app = github.app.as_ref().expect("GitHub App");
    assert_eq!(app.app_id, 123456);
    assert_eq!(
        app.private_key_file.to_str(),
        Some("/run/secrets/github-app.pem")
    );
    assert!(github.token.is_some() && github.webhook_secret.matches(b"secret-github-webhook"));

    let people: Vec<&str> = config.people.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(people, ["alice", "bob", "carol"]);
    assert_eq!(
        config.people[1].github.as_ref().map(|g| g.as_str()),
        Some("bob-gh")
    );
    assert_eq!(config.groups[0].name.as_str(), "sre");

    let shop = &config.apps[0];
    assert_eq!(shop.name.as_str(), "shop");
    assert_eq!(
        shop.repository.as_ref().map(ToString::to_string).as_deref(),
        Some("acme/shop")
    );
    assert_eq!(shop.image.as_str(), "ghcr.io/acme/shop");
    assert_eq!(
        shop.channels.slack.as_ref().map(|c| c.as_str()),
        Some("C0DEPLOYS")
    );
    assert_eq!(
        shop.channels.discord.map(|c| c.get()),
        Some(1100000000000000000)
    );
    assert_eq!(
        shop.operators
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["group:sre"]
    );
    let environments: Vec<&str> = shop.environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        environments,
        ["staging", "production"],
        "the file's order is kept"
    );

    let staging = &shop.environments[0];
    assert!(staging.gate.is_none() && staging.deploy.is_none());
    assert_eq!(staging.smoke.len(), 2);
    let status = &staging.smoke[1];
    assert_eq!(status.name, "status");
    assert_eq!(status.expect_status, ExpectStatus::AnySuccess);
    let expected: Vec<(&str, serde_json::Value)> = status
        .expect_json
        .iter()
        .map(|e| (e.path.as_str(), e.value.clone()))
        .collect();
    assert_eq!(
        expected,
        [("database", "ok".into()), ("cache", "ok".into())]
    );
    assert_eq!(
        (status.timeout, status.retries, status.retry_delay),
        (Duration::from_secs(5), 2, Duration::from_secs(2))
    );
    let health = &staging.smoke[0];
    assert_eq!(
        (health.timeout, health.retries, health.retry_delay),
        (Duration::from_secs(5), 0, Duration::from_secs(1)),
        "defaults"
    );

    let production = &shop.environments[1];
    let gate = production.gate.as_ref().expect("gated");
    assert_eq!(gate.after.as_str(), "staging");
    assert_eq!(
        gate.reviewers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["group:sre", "carol"]
    );
    assert_eq!(gate.required_approvals, 2);
    assert!(gate.prevent_self_review);
    assert_eq!(gate.wait_timer, Duration::from_secs(300));
    assert_eq!(gate.approval_timeout, Duration::from_secs(24 * 3600));
    assert_eq!(gate.reminder_every, Some(Duration::from_secs(2 * 3600)));
    match production.deploy.as_ref() {
        Some(Deployer::Http {
            url,
            secret,
            timeout,
        }) => {
            assert_eq!(url.as_str(), "https://deploy.example/hooks/shop");
            assert_eq!(secret.expose(), "secret-hook");
            assert_eq!(*timeout, Duration::from_secs(30 * 60));
        }
        other => panic!("expected an http deploy, got {other:?}"),
    }
    assert_eq!(production.smoke_settle, Duration::from_secs(30));
    assert!(production.auto_rollback && production.lock_after_rollback);
    assert!(production
        .flags_token
        .as_ref()
        .is_some_and(|t| t.matches(b"secret-prod-flags")));

    assert_eq!(
        check_config_report(&Ok(config)),
        "configuration is valid: 1 app: shop (staging, production); platforms: slack, discord, github; 3 people\n"
    );
}

#[test]
fn the_example_names_every_missing_variable_and_where_it_is_used() {
    let result = parse_with(EXAMPLE, &HashMap::new());
    let expected: Vec<String> = EXAMPLE_VARIABLES
        .iter()
        .map(|(variable, path)| format!("{path}: environment variable {variable} is not set"))
        .collect();
    assert_eq!(
        lines(&result),
        expected,
        "exactly one problem per variable, nothing else"
    );
}

#[test]
fn each_variable_of_the_example_is_needed() {
    for (variable, path) in EXAMPLE_VARIABLES {
        let mut vars = example_env();
        vars.remove(variable);
        assert_eq!(
            lines(&parse_with(EXAMPLE, &vars)),
            [format!(
                "{path}: environment variable {variable} is not set"
            )],
            "{variable}"
        );
    }
}

const BROKEN: &str = r#"
[server]
listen = "nope"
public_urll = "http://localhost:8080"

[slack]
bot_token = "${SLACK_BOT_TOKEN}"
signing_secret = "signing"

[people]
alice = { slack = "U012AB3CD" }
bob = { slack = "U012AB3CD" }

[groups]
sre = ["alice", "bobb"]

[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "ci"
channels = { slack = "C0DEPLOYS" }

[apps.shop.environments.staging]
smoke = [{ name = "health", url = "ftp://staging.shop.example/health" }]

[apps.shop.environments.production]
after = "staging"
reviewers = ["group:sre2", "alice"]
reviewrs = ["bob"]
wait_timer = "soon"
deploy = { kind = "ftp" }
"#;

#[test]
fn a_broken_config_reports_every_problem_at_once() {
    let report = check_config_report(&parse_with(BROKEN, &HashMap::new()));
    let expected = r#"slack.bot_token: environment variable SLACK_BOT_TOKEN is not set
server.listen: invalid socket address "nope": expected IP:PORT, like "127.0.0.1:8080" or "0.0.0.0:8080"
server.public_urll: unknown key; did you mean "public_url"?
groups.sre[1]: unknown person "bobb"; did you mean "bob"?
apps.shop.environments.staging.smoke[0].url: invalid URL "ftp://staging.shop.example/health": must start with http:// or https://
apps.shop.environments.production.reviewers[0]: unknown group "sre2"; did you mean "sre"?
apps.shop.environments.production.wait_timer: invalid duration "soon": expected a number and a unit, like "30s", "5m" or "24h"
apps.shop.environments.production.deploy.kind: unknown deployer "ftp", expected one of command, http, github-workflow, github-protection-rule
apps.shop.environments.production.reviewrs: unknown key; did you mean "reviewers"?
people.bob.slack: "U012AB3CD" is already alice's slack identity
10 problems found
"#;
    assert_eq!(report, expected);
}

#[test]
fn secrets_never_appear_in_errors_or_debug_output() {
    let vars = example_env();
    let config = parse_with(EXAMPLE, &vars).unwrap_or_else(|errors| panic!("{errors}"));
    let debug = format!("{config:?} {config:#?}");
    for secret in SECRETS {
        assert!(!debug.contains(secret), "{secret} shows in Debug output");
    }

    // Secrets next to broken values, malformed secrets, and secrets reused where they grant
    // access are reported without their values.
    let broken = EXAMPLE
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"nope\"")
        .replace(
            "bot_token = \"${SLACK_BOT_TOKEN}\"",
            "bot_token = \"${SLACK_BOT_TOKEN}\\n\"",
        )
        .replace("token = \"${GITHUB_TOKEN}\"", "token = 1234567")
        .replace(
            "ci_token = \"${SHOP_CI_TOKEN}\"",
            "ci_token = \"${SHOP_STAGING_FLAGS_TOKEN}\"",
        );
    let result = parse_with(&broken, &vars);
    let errors = result.as_ref().expect_err("broken");
    let shown = format!("{} {errors} {errors:?}", check_config_report(&result));
    for secret in SECRETS {
        assert!(!shown.contains(secret), "{secret} shows in: {shown}");
    }
    assert!(
        shown.contains("slack.bot_token: starts or ends with whitespace (value not shown)"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "apps.shop.environments.staging.flags_token: is the same token as apps.shop.ci_token"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("github.token: expected a string, found an integer"),
        "{shown}"
    );
}

#[test]
fn load_reads_the_file_and_checks_the_private_key_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("greenlight.toml");
    std::fs::write(&path, EXAMPLE).expect("write config");
    let key = dir.path().join("github-app.pem");
    let mut vars = example_env();
    vars.insert("GITHUB_APP_KEY_FILE", key.display().to_string());
    let env = |name: &str| vars.get(name).cloned();

    let errors = Config::load(&path, &env).expect_err("no key file yet");
    assert_eq!(
        errors.problems()[0].to_string(),
        format!("github.private_key_file: file {} not found", key.display())
    );
    assert!(!errors.is_file_missing());

    std::fs::write(&key, "-----BEGIN RSA PRIVATE KEY-----\n").expect("write key");
    let config = Config::load(&path, &env).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.apps.len(), 1);
}

#[test]
fn load_says_when_the_file_is_missing() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("greenlight.toml");
    let result = Config::load(&path, &|_| None);
    let errors = result.as_ref().expect_err("missing");
    assert!(errors.is_file_missing());
    assert_eq!(
        check_config_report(&result),
        format!(
            "configuration file {} not found\n1 problem found\n",
            path.display()
        )
    );
}
