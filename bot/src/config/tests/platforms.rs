//! `[slack]`, `[discord]` and `[github]`.

use super::*;

#[test]
fn platform_section_rules() {
    for (text, expected) in [
        (
            "[slack]\nbot_token = \"xoxb-1\"",
            vec![r#"slack.signing_secret: missing; the Signing Secret from the app's Basic Information, e.g. "${SLACK_SIGNING_SECRET}" (or an app_token, "xapp-…", for Socket Mode)"#],
        ),
        (
            "[slack]\nbot_token = \"xoxb-1\"\napp_token = \"xoxb-2\"",
            vec!["slack.app_token: must be an app-level token (xapp-…) with the connections:write scope, from the app's Basic Information (this is a bot token, which belongs in bot_token)"],
        ),
        (
            "[slack]\nbot_token = \"xoxb-1\"\napp_token = \"hunter2\"\nsigning_secret = []",
            vec![
                "slack.app_token: must be an app-level token (xapp-…) with the connections:write scope, from the app's Basic Information (value not shown)",
                "slack.signing_secret: must list at least one secret",
            ],
        ),
        (
            "[slack]\nbot_token = \"xoxb-1\"\nsigning_secret = []\napi_url = \"https://slack.example/api?x=1\"",
            vec![
                "slack.signing_secret: must list at least one secret",
                "slack.api_url: must not have a query (?…) or fragment (#…)",
            ],
        ),
        (
            "[discord]\napplication_id = \"0\"\npublic_key = \"abc\"\nbot_token = \"t\"",
            vec![
                r#"discord.application_id: invalid Discord id "0": expected a snowflake (digits only, like "80351110224678912"); copy it with Developer Mode on"#,
                "discord.public_key: invalid Discord public key: expected 64 hexadecimal digits (32 bytes) from the Developer Portal, got 3 characters",
            ],
        ),
        (
            "[github]\nwebhook_secret = \"w\"\napp_id = 42",
            vec!["github.private_key_file: missing; a GitHub App needs both app_id and private_key_file"],
        ),
        (
            "[github]\nwebhook_secret = [\"old\", \"new\"]\nprivate_key_file = \"key.pem\"",
            vec!["github.app_id: missing; a GitHub App needs both app_id and private_key_file"],
        ),
        (
            "[github]\ntoken = \"t\"",
            vec![r#"github.webhook_secret: missing; the webhook's secret, e.g. "${GITHUB_WEBHOOK_SECRET}" (without [github], GitHub webhooks are off)"#],
        ),
        (
            "[server]\nlisten = \"8080\"\npublic_url = \"localhost:8080\"\napi_token = \"\"",
            vec![
                r#"server.listen: invalid socket address "8080": expected IP:PORT, like "127.0.0.1:8080" or "0.0.0.0:8080""#,
                r#"server.public_url: invalid URL "localhost:8080": must start with http:// or https://"#,
                "server.api_token: must not be empty",
            ],
        ),
        (
            "[database]\nurl = \"mysql://root:hunter2@db/greenlight\"",
            vec![r#"database.url: unsupported database "mysql": expected sqlite://PATH or postgres://USER@HOST/DATABASE"#],
        ),
        (
            "[sever]\nlisten = \"0.0.0.0:80\"\n[app.shop]",
            vec![
                r#"sever: unknown key; did you mean "server"?"#,
                r#"app: unknown key; did you mean "apps"?"#,
            ],
        ),
        ("server = 5", vec!["server: expected a table, found an integer"]),
    ] {
        assert_eq!(problems(text), expected, "{text}");
    }
}

#[test]
fn socket_mode_needs_an_app_token_and_no_signing_secret() {
    let config = valid("[slack]\nbot_token = \"xoxb-1\"\napp_token = \"xapp-1-A0-1-abc\"\n");
    let slack = config.slack.expect("[slack]");
    assert!(slack.signing_secret.is_none());
    assert_eq!(
        slack.app_token.as_ref().map(|token| token.expose()),
        Some("xapp-1-A0-1-abc")
    );
    // Both at once: Socket Mode and the HTTP routes side by side (a team moving over).
    let both =
        valid("[slack]\nbot_token = \"xoxb-1\"\napp_token = \"xapp-1\"\nsigning_secret = \"s\"\n");
    let slack = both.slack.expect("[slack]");
    assert!(slack.signing_secret.is_some() && slack.app_token.is_some());
}

/// `[discord] gateway = true` receives interactions over the Gateway, so the key that verifies
/// the HTTP endpoint is optional there and required everywhere else.
#[test]
fn discord_public_key_is_needed_only_without_the_gateway() {
    let section = |extra: &str| {
        format!("[discord]\napplication_id = \"1100000000000000001\"\nbot_token = \"t\"\n{extra}")
    };
    let config = valid(&section("gateway = true"));
    let discord = config.discord.expect("[discord]");
    assert!(discord.gateway);
    assert!(discord.public_key.is_none());
    let config = valid(&section(&format!("public_key = \"{PUBLIC_KEY}\"")));
    let discord = config.discord.expect("[discord]");
    assert!(!discord.gateway, "off unless asked for");
    assert!(discord.public_key.is_some());
    for (extra, expected) in [
        (
            "",
            r#"discord.public_key: missing; the Public Key from the Developer Portal, e.g. "${DISCORD_PUBLIC_KEY}" (or set gateway = true to receive interactions over the Gateway instead)"#,
        ),
        (
            "gateway = false",
            r#"discord.public_key: missing; the Public Key from the Developer Portal, e.g. "${DISCORD_PUBLIC_KEY}" (or set gateway = true to receive interactions over the Gateway instead)"#,
        ),
        ("gateway = \"yes\"", "discord.gateway: expected true or false, found a string"),
        (
            "gateway = true\npublic_key = \"abc\"",
            "discord.public_key: invalid Discord public key: expected 64 hexadecimal digits (32 bytes) from the Developer Portal, got 3 characters",
        ),
    ] {
        assert_eq!(problems(&section(extra)), [expected], "{extra}");
    }
}
