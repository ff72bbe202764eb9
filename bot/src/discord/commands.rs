//! Discord slash commands: their registration, derived from the command table, and turning an
//! invoked command's typed options into the same words Slack sends, so both platforms share one
//! grammar, one authorization and one executor.

use greenlight_commands::chat::{OptionKind, COMMANDS};
use serde_json::{json, Value};

use crate::config::Config;

/// Discord's limits for application commands (REFERENCE §2.5).
const MAX_CHOICES: usize = 25;
const MAX_DESCRIPTION: usize = 100;

/// The full command list for a bulk overwrite (`PUT …/commands`): one CHAT_INPUT command per
/// table entry; apps and environments as choices from the configuration when they fit.
pub fn registration(config: &Config) -> Value {
    let apps: Vec<&str> = config.apps.iter().map(|app| app.name.as_str()).collect();
    let mut environments: Vec<&str> = config
        .apps
        .iter()
        .flat_map(|app| app.environments.iter().map(|e| e.name.as_str()))
        .collect();
    environments.sort_unstable();
    environments.dedup();
    let commands: Vec<Value> = COMMANDS
        .iter()
        .map(|spec| {
            let mut options: Vec<Value> = spec
                .options
                .iter()
                .map(|option| {
                    let mut value = json!({
                        "name": option.name,
                        "description": short(option.description),
                        "required": option.required,
                        "type": 3,
                    });
                    match option.kind {
                        OptionKind::App => add_choices(&mut value, &apps),
                        OptionKind::Environment => add_choices(&mut value, &environments),
                        OptionKind::Choice(words) => add_choices(&mut value, words),
                        OptionKind::Integer { min, max } => {
                            value["type"] = json!(4);
                            value["min_value"] = json!(min);
                            value["max_value"] = json!(max);
                        }
                        OptionKind::Sha => {
                            value["min_length"] = json!(7);
                            value["max_length"] = json!(40);
                        }
                        OptionKind::Text => {}
                    }
                    value
                })
                .collect();
            // Discord requires required options before optional ones; the words are rebuilt
            // in the table's order whatever order the options arrive in.
            options.sort_by_key(|option| !option["required"].as_bool().unwrap_or(false));
            json!({
                "name": spec.name,
                "type": 1,
                "description": short(spec.summary),
                "options": options,
            })
        })
        .collect();
    Value::Array(commands)
}

fn add_choices(option: &mut Value, names: &[&str]) {
    if !names.is_empty() && names.len() <= MAX_CHOICES {
        option["choices"] = names
            .iter()
            .map(|name| json!({ "name": name, "value": name }))
            .collect();
    }
}

fn short(text: &str) -> String {
    if text.chars().count() <= MAX_DESCRIPTION {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(MAX_DESCRIPTION - 1).collect();
        format!("{cut}…")
    }
}

/// An invoked command's options as `(name, value)` text pairs (numbers become their digits).
pub fn option_pairs(options: &[Value]) -> Vec<(String, String)> {
    options
        .iter()
        .filter_map(|option| {
            let name = option["name"].as_str()?.to_owned();
            let value = match &option["value"] {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                _ => return None,
            };
            Some((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_toml_str(
            r#"
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "a"
[apps.shop.environments.staging]
[apps.shop.environments.production]
[apps.web]
image = "ghcr.io/acme/web"
ci_token = "b"
[apps.web.environments.production]
"#,
            &|_| None,
        )
        .expect("valid config")
    }

    #[test]
    fn every_command_is_registered_within_discords_rules() {
        let commands = registration(&config());
        let commands = commands.as_array().expect("list");
        assert_eq!(commands.len(), COMMANDS.len());
        for command in commands {
            let name = command["name"].as_str().expect("name");
            assert!(
                (1..=32).contains(&name.len())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c == '-'),
                "{name}"
            );
            let description = command["description"].as_str().expect("description");
            assert!((1..=100).contains(&description.chars().count()), "{name}");
            let options = command["options"].as_array().expect("options");
            assert!(options.len() <= 25);
            let mut seen_optional = false;
            for option in options {
                let required = option["required"].as_bool().expect("required");
                assert!(
                    !(required && seen_optional),
                    "{name}: required after optional"
                );
                seen_optional |= !required;
                let text = option["description"].as_str().expect("description");
                assert!((1..=100).contains(&text.chars().count()), "{name}: {text}");
                let option_name = option["name"].as_str().expect("name");
                assert!(
                    option_name.chars().all(|c| c.is_ascii_lowercase()),
                    "{option_name}"
                );
            }
        }
        let rollback = &commands[0];
        let app = rollback["options"]
            .as_array()
            .and_then(|options| options.iter().find(|o| o["name"] == "app"))
            .expect("app option");
        assert_eq!(
            app["choices"],
            json!([{"name": "shop", "value": "shop"}, {"name": "web", "value": "web"}])
        );
    }

    #[test]
    fn option_values_become_text() {
        let pairs = option_pairs(&[
            json!({"name": "app", "type": 3, "value": "shop"}),
            json!({"name": "limit", "type": 4, "value": 5}),
            json!({"name": "broken"}),
        ]);
        assert_eq!(
            pairs,
            vec![("app".into(), "shop".into()), ("limit".into(), "5".into())]
        );
    }
}
