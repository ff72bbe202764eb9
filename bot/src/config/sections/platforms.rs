//! `[slack]`, `[discord]` and `[github]`: each platform's credentials and API base URL.

use toml::Value;

use super::base_url;
use crate::config::error::Problems;
use crate::config::path::KeyPath;
use crate::config::reader::{table, Fields, FromValue, Invalid};
use crate::config::types::{constant_url, DiscordConfig, GithubApp, GithubConfig, SlackConfig};
use crate::secret::{Secret, SecretList};

pub(super) fn slack(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
) -> Result<SlackConfig, Invalid> {
    let mut fields = Fields::new(table(value, at, problems)?, at, problems);
    let bot_token = fields.required::<Secret>(
        "bot_token",
        "the Bot User OAuth Token (xoxb-…), e.g. \"${SLACK_BOT_TOKEN}\"",
    );
    // Socket Mode needs no signing secret (the connection itself is authenticated); HTTP
    // requests are refused without one.
    let socket_mode = fields.has("app_token");
    let app_token = fields.optional_with("app_token", app_token);
    let signing_secret = if socket_mode {
        fields.optional::<SecretList>("signing_secret")
    } else {
        fields
            .required::<SecretList>(
                "signing_secret",
                "the Signing Secret from the app's Basic Information, e.g. \"${SLACK_SIGNING_SECRET}\" (or an app_token, \"xapp-…\", for Socket Mode)",
            )
            .map(Some)
    };
    let api_url = fields.optional_with("api_url", base_url);
    fields.finish();
    Ok(SlackConfig {
        bot_token: bot_token?,
        signing_secret: signing_secret?,
        app_token: app_token?,
        api_url: api_url?.unwrap_or_else(|| constant_url(SlackConfig::DEFAULT_API_URL)),
    })
}

/// `slack.app_token`: an app-level token, which is what `apps.connections.open` accepts.
fn app_token(value: &Value, at: &KeyPath, problems: &mut Problems) -> Result<Secret, Invalid> {
    let token = Secret::from_value(value, at, problems)?;
    let text = token.expose();
    if !text.starts_with("xapp-") {
        let kind = if text.starts_with("xoxb-") {
            "this is a bot token, which belongs in bot_token"
        } else {
            "value not shown"
        };
        problems.add(
            at,
            format!("must be an app-level token (xapp-…) with the connections:write scope, from the app's Basic Information ({kind})"),
        );
        return Err(Invalid);
    }
    Ok(token)
}

pub(super) fn discord(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
) -> Result<DiscordConfig, Invalid> {
    let mut fields = Fields::new(table(value, at, problems)?, at, problems);
    let application_id = fields.required(
        "application_id",
        "the Application ID from the Developer Portal, e.g. \"${DISCORD_APPLICATION_ID}\"",
    );
    // Over the Gateway (SPEC §12) interactions arrive on the bot's own connection, unsigned, so
    // the key that verifies `POST /discord/interactions` is needed only without it.
    let gateway = fields.or_default("gateway", false);
    let public_key = fields.optional("public_key");
    let public_key = match (gateway, public_key) {
        (Ok(false), Ok(None)) => {
            let at = fields.path("public_key");
            fields.problems().add(
                &at,
                "missing; the Public Key from the Developer Portal, e.g. \"${DISCORD_PUBLIC_KEY}\" \
                 (or set gateway = true to receive interactions over the Gateway instead)",
            );
            Err(Invalid)
        }
        (_, public_key) => public_key,
    };
    let bot_token = fields.required::<Secret>(
        "bot_token",
        "the bot's token, e.g. \"${DISCORD_BOT_TOKEN}\"",
    );
    let api_url = fields.optional_with("api_url", base_url);
    fields.finish();
    Ok(DiscordConfig {
        application_id: application_id?,
        public_key: public_key?,
        bot_token: bot_token?,
        api_url: api_url?.unwrap_or_else(|| constant_url(DiscordConfig::DEFAULT_API_URL)),
        gateway: gateway?,
    })
}

pub(super) fn github(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
) -> Result<GithubConfig, Invalid> {
    let mut fields = Fields::new(table(value, at, problems)?, at, problems);
    let webhook_secret = fields.required::<SecretList>(
        "webhook_secret",
        "the webhook's secret, e.g. \"${GITHUB_WEBHOOK_SECRET}\" (without [github], GitHub webhooks are off)",
    );
    let app_id = fields.optional_with("app_id", |value, at, problems| {
        let id = u64::from_value(value, at, problems)?;
        if id == 0 {
            problems.add(at, "must be the GitHub App's id (a positive number)");
            return Err(Invalid);
        }
        Ok(id)
    });
    let private_key_file = fields.optional("private_key_file");
    let token = fields.optional::<Secret>("token");
    let api_url = fields.optional_with("api_url", base_url);
    let app = match (app_id, private_key_file) {
        (Ok(Some(app_id)), Ok(Some(private_key_file))) => Ok(Some(GithubApp {
            app_id,
            private_key_file,
        })),
        (Ok(None), Ok(None)) => Ok(None),
        (Ok(Some(_)), Ok(None)) => {
            let at = fields.path("private_key_file");
            fields.problems().add(
                &at,
                "missing; a GitHub App needs both app_id and private_key_file",
            );
            Err(Invalid)
        }
        (Ok(None), Ok(Some(_))) => {
            let at = fields.path("app_id");
            fields.problems().add(
                &at,
                "missing; a GitHub App needs both app_id and private_key_file",
            );
            Err(Invalid)
        }
        _ => Err(Invalid),
    };
    fields.finish();
    Ok(GithubConfig {
        webhook_secret: webhook_secret?,
        app: app?,
        token: token?,
        api_url: api_url?.unwrap_or_else(|| constant_url(GithubConfig::DEFAULT_API_URL)),
    })
}
