//! Lookups on a read configuration.

use std::collections::HashMap;

use greenlight_commands::{AppName, EnvironmentName, PersonName, Platform};

use super::*;

#[test]
fn lookups() {
    let config = valid(
        &with_production(r#"reviewers = ["group:sre", "carol"]"#).replace(
            "[apps.shop]",
            "[apps.shop]\nrepository = \"acme/shop\"\noperators = [\"carol\"]",
        ),
    );
    let shop = AppName::parse("shop").expect("name");
    let staging = EnvironmentName::parse("staging").expect("name");
    let production = EnvironmentName::parse("production").expect("name");
    let person = |name: &str| PersonName::parse(name).expect("name");

    assert_eq!(config.only_app().map(|app| app.name.as_str()), Some("shop"));
    assert!(config.app(&AppName::parse("web").expect("name")).is_none());
    assert_eq!(
        config
            .previous_environment(&shop, &production)
            .map(|e| e.name.as_str()),
        Some("staging")
    );
    assert!(config.previous_environment(&shop, &staging).is_none());
    let app = config.app(&shop).expect("shop");
    let next: Vec<&str> = app
        .environments_after(&staging)
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(next, ["production"]);

    assert_eq!(
        config.reviewers(&shop, &production),
        [person("alice"), person("bob"), person("carol")]
            .into_iter()
            .collect()
    );
    assert!(config.reviewers(&shop, &staging).is_empty());
    assert_eq!(
        config.operators(&shop),
        [person("carol")].into_iter().collect()
    );

    for (platform, id, expected) in [
        (Platform::Slack, "U045EF6GH", Some("bob")),
        (Platform::Slack, "U999", None),
        (Platform::Discord, "123456789012345678", Some("carol")),
        (Platform::Discord, "not-a-number", None),
        (Platform::Github, "BOB-GH", Some("bob")),
        (Platform::Cli, "alice", Some("alice")),
    ] {
        assert_eq!(
            config.person_on(platform, id).map(PersonName::as_str),
            expected,
            "{platform} {id}"
        );
    }
    for (author, expected) in [
        ("alice", Some("alice")),
        ("bob-gh", Some("bob")),
        ("Carol@Example.com", Some("carol")),
        ("Carol Danvers <carol@example.com>", Some("carol")),
        ("mallory", None),
        ("mallory@example.com", None),
    ] {
        assert_eq!(
            config.person_by_author(author).map(PersonName::as_str),
            expected,
            "{author}"
        );
    }

    assert_eq!(
        config.app_for_ci_token(b"ci").map(|app| app.name.as_str()),
        Some("shop")
    );
    assert!(config.app_for_ci_token(b"nope").is_none());
    assert_eq!(config.apps_for_repository("ACME/shop").count(), 1);
    assert_eq!(config.apps_for_repository("acme/web").count(), 0);
}

#[test]
fn flags_tokens_find_their_environment() {
    let config = valid(
        &with_production("reviewers = [\"alice\"]\nflags_token = \"prod-flags\"").replace(
            "[apps.shop.environments.staging]",
            "[apps.shop.environments.staging]\nflags_token = \"staging-flags\"",
        ),
    );
    let found = config
        .environment_for_flags_token(b"prod-flags")
        .map(|(app, environment)| (app.name.as_str(), environment.name.as_str()));
    assert_eq!(found, Some(("shop", "production")));
    assert!(config.environment_for_flags_token(b"ci").is_none());
    let mut secrets = HashMap::new();
    secrets.insert("debug", format!("{config:?}"));
    for secret in [
        "prod-flags",
        "staging-flags",
        "xoxb-1",
        "slack-signing-value",
        "discord-token",
        "\"ci\"",
    ] {
        assert!(
            !secrets["debug"].contains(secret),
            "{secret} in Debug output"
        );
    }
}
