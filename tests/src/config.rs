//! Pieces of `greenlight.toml` that tests share, pointed at the fakes.

use crate::fakes::{DeployHook, FakeProduction, FakeSlack};

/// The Slack signing secret most tests configure and sign with.
pub const SLACK_SIGNING_SECRET: &str = "slack-signing-secret";
/// The Discord application the tests' interactions come from.
pub const DISCORD_APPLICATION_ID: &str = "1100000000000000001";
/// The bot token `FakeDiscord` accepts.
pub const DISCORD_BOT_TOKEN: &str = "discord-bot-token";

/// `[slack]` talking to `slack`, signing with [`SLACK_SIGNING_SECRET`].
pub fn slack_section(slack: &FakeSlack) -> String {
    slack_section_signed_with(slack, &format!("\"{SLACK_SIGNING_SECRET}\""))
}

/// `[slack]` talking to `slack`; `signing_secret` is the TOML value (a quoted string, a
/// `"${VAR}"`, or a rotation list).
pub fn slack_section_signed_with(slack: &FakeSlack, signing_secret: &str) -> String {
    format!(
        "[slack]\nbot_token = \"{}\"\nsigning_secret = {signing_secret}\napi_url = \"{}\"\n",
        slack.bot_token,
        slack.api_url()
    )
}

/// `[slack]` talking to `slack` over Socket Mode only: the fake's app token and no signing
/// secret, so Slack's HTTP routes refuse everything.
pub fn slack_socket_mode_section(slack: &FakeSlack) -> String {
    format!(
        "[slack]\nbot_token = \"{}\"\napp_token = \"{}\"\napi_url = \"{}\"\n",
        slack.bot_token,
        crate::fakes::slack_socket::APP_TOKEN,
        slack.api_url()
    )
}

/// `[discord]` for the tests' application, verifying with `public_key` (hex) and talking to
/// the REST API at `api_url`.
pub fn discord_section(public_key: &str, api_url: &str) -> String {
    format!(
        "[discord]\napplication_id = \"{DISCORD_APPLICATION_ID}\"\npublic_key = \"{public_key}\"\n\
         bot_token = \"{DISCORD_BOT_TOKEN}\"\napi_url = \"{api_url}\"\n"
    )
}

/// `[apps.shop]` with shop's image and `keys` (its CI token, channels, operators, …), its
/// staging with `staging`, and its production after staging with `production` (the policy,
/// the deployer). Each argument is TOML, one key per line.
pub fn shop_app(keys: &str, staging: &str, production: &str) -> String {
    format!(
        "[apps.shop]\nimage = \"ghcr.io/acme/shop\"\n{keys}\n\n\
         [apps.shop.environments.staging]\n{staging}\n\n\
         [apps.shop.environments.production]\nafter = \"staging\"\n{production}\n"
    )
}

/// An environment's `deploy = …` through `hook`, signed with the secret in `${HOOK_SECRET}`.
pub fn http_deploy(hook: &DeployHook) -> String {
    format!(
        r#"deploy = {{ kind = "http", url = "{}", secret = "${{HOOK_SECRET}}" }}"#,
        hook.url()
    )
}

/// An environment's smoke check of `production`'s health, 30 s after each deploy.
pub fn health_smoke(production: &FakeProduction) -> String {
    format!(
        "smoke = [ {{ name = \"health\", url = \"{}\" }} ]\nsmoke_settle = \"30s\"",
        production.health_url()
    )
}

/// `[discord]` for the tests' application receiving interactions over the Gateway (SPEC §12):
/// no `public_key`, talking to the REST API (and `GET /gateway`) at `api_url`.
pub fn discord_gateway_section(api_url: &str) -> String {
    format!(
        "[discord]\napplication_id = \"{DISCORD_APPLICATION_ID}\"\ngateway = true\n\
         bot_token = \"{DISCORD_BOT_TOKEN}\"\napi_url = \"{api_url}\"\n"
    )
}
