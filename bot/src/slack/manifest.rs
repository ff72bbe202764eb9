//! `greenlight slack manifest`: the Slack app manifest for this configuration, so creating the
//! Slack app is one paste (slash commands, interactivity URL and scopes all from one place).
//! With Socket Mode (`slack.app_token`) it turns Socket Mode on and names no request URL:
//! Slack then sends everything over the WebSocket Greenlight opens.

use greenlight_commands::chat::COMMANDS;
use serde_json::{json, Value};
use url::Url;

/// Bot scopes Greenlight needs: posting and editing cards and ephemeral replies
/// (`chat:write`) and slash commands (`commands`). Invite the bot to the deploy channels.
pub const BOT_SCOPES: &[&str] = &["chat:write", "commands"];

/// How Slack reaches Greenlight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// Slack calls `/slack/*` under this public URL.
    RequestUrls(&'a Url),
    /// Slack sends over Socket Mode; no URL is needed.
    SocketMode,
}

pub fn manifest(delivery: Delivery<'_>) -> Value {
    let base = match delivery {
        Delivery::RequestUrls(public_url) => Some(public_url.as_str().trim_end_matches('/')),
        Delivery::SocketMode => None,
    };
    let commands: Vec<Value> = COMMANDS
        .iter()
        .map(|spec| {
            let usage = spec.usage();
            let hint = usage
                .split_once(' ')
                .map(|(_, rest)| rest.to_owned())
                .unwrap_or_default();
            let mut command = json!({
                "command": format!("/{}", spec.name),
                "description": spec.summary,
                "usage_hint": hint,
                "should_escape": false,
            });
            if let Some(base) = base {
                command["url"] = json!(format!("{base}/slack/commands"));
            }
            command
        })
        .collect();
    let mut interactivity = json!({ "is_enabled": true });
    if let Some(base) = base {
        interactivity["request_url"] = json!(format!("{base}/slack/interactions"));
    }
    json!({
        "_metadata": { "major_version": 1, "minor_version": 1 },
        "display_information": {
            "name": "Greenlight",
            "description": "Production deploys approved in Slack",
            "background_color": "#1d7a3a",
        },
        "features": {
            "bot_user": { "display_name": "Greenlight", "always_online": true },
            "slash_commands": commands,
        },
        "oauth_config": { "scopes": { "bot": BOT_SCOPES } },
        "settings": {
            "interactivity": interactivity,
            "org_deploy_enabled": false,
            "socket_mode_enabled": base.is_none(),
            "token_rotation_enabled": false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_and_url_comes_from_the_config_and_the_table() {
        let url = Url::parse("https://greenlight.example.com/").expect("url");
        let manifest = manifest(Delivery::RequestUrls(&url));
        let commands = manifest["features"]["slash_commands"]
            .as_array()
            .expect("commands");
        assert_eq!(commands.len(), COMMANDS.len());
        for command in commands {
            assert_eq!(
                command["url"],
                "https://greenlight.example.com/slack/commands"
            );
            let name = command["command"].as_str().expect("name");
            assert!(name.starts_with('/') && name.len() <= 32, "{name}");
            assert!(command["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty() && d.len() <= 2000));
            assert!(command["usage_hint"]
                .as_str()
                .is_some_and(|h| h.len() <= 1000));
        }
        assert_eq!(
            manifest["settings"]["interactivity"]["request_url"],
            "https://greenlight.example.com/slack/interactions"
        );
        assert_eq!(
            manifest["oauth_config"]["scopes"]["bot"],
            json!(["chat:write", "commands"])
        );
        assert!(manifest["display_information"]["name"]
            .as_str()
            .is_some_and(|n| n.len() <= 35));
        assert_eq!(manifest["settings"]["socket_mode_enabled"], false);
    }

    #[test]
    fn socket_mode_names_no_url() {
        let manifest = manifest(Delivery::SocketMode);
        assert_eq!(manifest["settings"]["socket_mode_enabled"], true);
        assert_eq!(
            manifest["settings"]["interactivity"],
            json!({ "is_enabled": true })
        );
        let commands = manifest["features"]["slash_commands"]
            .as_array()
            .expect("commands");
        assert_eq!(commands.len(), COMMANDS.len());
        assert!(commands.iter().all(|command| command.get("url").is_none()));
        assert!(!manifest.to_string().contains("http"), "{manifest}");
    }
}
