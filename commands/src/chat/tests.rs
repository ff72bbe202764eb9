use super::*;
use crate::{AppName, EnvironmentName};

fn catalog(apps: &[(&str, &[&str])]) -> Catalog {
    Catalog {
        apps: apps
            .iter()
            .map(|(app, environments)| {
                (
                    AppName::parse(app).expect("app"),
                    environments
                        .iter()
                        .map(|e| EnvironmentName::parse(e).expect("env"))
                        .collect(),
                )
            })
            .collect(),
    }
}

fn one_app() -> Catalog {
    catalog(&[("shop", &["staging", "production"])])
}

fn two_apps() -> Catalog {
    catalog(&[
        ("shop", &["staging", "production"]),
        ("web", &["staging", "production"]),
    ])
}

fn app(name: &str) -> AppName {
    AppName::parse(name).expect("app")
}

fn env(name: &str) -> EnvironmentName {
    EnvironmentName::parse(name).expect("env")
}

#[test]
fn commands_parse_as_documented() {
    let cases: Vec<(&str, &str, Catalog, Command)> = vec![
        (
            "/rollback",
            "",
            one_app(),
            Command::Rollback {
                app: app("shop"),
                environment: env("production"),
                to: None,
            },
        ),
        (
            "/rollback",
            "shop",
            two_apps(),
            Command::Rollback {
                app: app("shop"),
                environment: env("production"),
                to: None,
            },
        ),
        (
            "/rollback",
            "web staging",
            two_apps(),
            Command::Rollback {
                app: app("web"),
                environment: env("staging"),
                to: None,
            },
        ),
        (
            "/rollback",
            "shop production to ABCDEF1",
            two_apps(),
            Command::Rollback {
                app: app("shop"),
                environment: env("production"),
                to: Some("abcdef1".into()),
            },
        ),
        (
            "rollback",
            "to abcdef1234",
            one_app(),
            Command::Rollback {
                app: app("shop"),
                environment: env("production"),
                to: Some("abcdef1234".into()),
            },
        ),
        (
            "/lock",
            "production  database migration running",
            one_app(),
            Command::Lock {
                app: app("shop"),
                environment: env("production"),
                reason: "database migration running".into(),
            },
        ),
        (
            "/unlock",
            "web production",
            two_apps(),
            Command::Unlock {
                app: app("web"),
                environment: env("production"),
            },
        ),
        (
            "/releases",
            "",
            one_app(),
            Command::Releases {
                app: app("shop"),
                environment: None,
                limit: 10,
            },
        ),
        (
            "/releases",
            "shop production 5",
            two_apps(),
            Command::Releases {
                app: app("shop"),
                environment: Some(env("production")),
                limit: 5,
            },
        ),
        (
            "/releases",
            "3",
            one_app(),
            Command::Releases {
                app: app("shop"),
                environment: None,
                limit: 3,
            },
        ),
        (
            "/flag",
            "production list",
            one_app(),
            Command::Flag {
                app: app("shop"),
                environment: env("production"),
                action: FlagAction::List,
            },
        ),
        (
            "/flag",
            "shop staging new_checkout",
            two_apps(),
            Command::Flag {
                app: app("shop"),
                environment: env("staging"),
                action: FlagAction::Show {
                    key: "new_checkout".into(),
                },
            },
        ),
        (
            "/flag",
            "production new_checkout off broke payments",
            one_app(),
            Command::Flag {
                app: app("shop"),
                environment: env("production"),
                action: FlagAction::Set {
                    key: "new_checkout".into(),
                    on: false,
                    reason: Some("broke payments".into()),
                },
            },
        ),
        (
            "/flag",
            "production new_checkout ON",
            one_app(),
            Command::Flag {
                app: app("shop"),
                environment: env("production"),
                action: FlagAction::Set {
                    key: "new_checkout".into(),
                    on: true,
                    reason: None,
                },
            },
        ),
        (
            "/flag",
            "production new_checkout rollout 25%",
            one_app(),
            Command::Flag {
                app: app("shop"),
                environment: env("production"),
                action: FlagAction::Rollout {
                    key: "new_checkout".into(),
                    percent: 25,
                },
            },
        ),
        (
            "/flag",
            "help",
            two_apps(),
            Command::Help {
                command: Some("flag"),
            },
        ),
    ];
    for (name, text, catalog, expected) in cases {
        assert_eq!(parse(name, text, &catalog), Ok(expected), "{name} {text}");
    }
}

#[test]
fn mistakes_get_a_helpful_error() {
    let cases: Vec<(&str, &str, Catalog, &str)> = vec![
        ("/rolback", "", one_app(), "Did you mean `/rollback`?"),
        (
            "/rollback",
            "shp",
            two_apps(),
            "Unknown app `shp`. Did you mean `shop`?",
        ),
        ("/rollback", "", two_apps(), "Which app? One of: shop, web."),
        (
            "/rollback",
            "shop prodution",
            two_apps(),
            "Did you mean `production`?",
        ),
        (
            "/rollback",
            "shop production to xyz",
            two_apps(),
            "is not a commit SHA",
        ),
        (
            "/rollback",
            "shop production to",
            two_apps(),
            "`to` needs a commit SHA",
        ),
        (
            "/rollback",
            "shop production now please",
            two_apps(),
            "I don't understand `now`",
        ),
        ("/lock", "production", one_app(), "needs a reason"),
        (
            "/lock",
            "",
            one_app(),
            "Which environment of shop? One of: staging, production.",
        ),
        ("/unlock", "qa", one_app(), "shop has no environment `qa`"),
        (
            "/releases",
            "shop 500",
            two_apps(),
            "not a number from 1 to 50",
        ),
        (
            "/flag",
            "production",
            one_app(),
            "Say `list`, or name a flag",
        ),
        (
            "/flag",
            "production New-Checkout on",
            one_app(),
            "is not a flag name",
        ),
        (
            "/flag",
            "production new_checkout onn",
            one_app(),
            "Did you mean `on`?",
        ),
        (
            "/flag",
            "production new_checkout rollout 150",
            one_app(),
            "percentage from 0 to 100",
        ),
    ];
    for (name, text, catalog, needle) in cases {
        let error = parse(name, text, &catalog).expect_err(text);
        let message = error.to_string();
        assert!(
            message.contains(needle),
            "{name} {text}: {message:?} lacks {needle:?}"
        );
        assert!(message.contains("Usage: `/"), "{message}");
    }
}

#[test]
fn roles_follow_what_the_command_changes() {
    let catalog = one_app();
    let role = |name, text| parse(name, text, &catalog).expect("parses").role();
    assert_eq!(role("/rollback", ""), Role::Operator);
    assert_eq!(role("/lock", "production why"), Role::Operator);
    assert_eq!(role("/unlock", "production"), Role::Operator);
    assert_eq!(role("/releases", ""), Role::Anyone);
    assert_eq!(role("/flag", "production list"), Role::Anyone);
    assert_eq!(role("/flag", "production k"), Role::Anyone);
    assert_eq!(role("/flag", "production k on"), Role::Operator);
    assert_eq!(role("/flag", "production k rollout 5"), Role::Operator);
}

#[test]
fn help_comes_from_the_table() {
    let all = help(None);
    for spec in COMMANDS {
        assert!(all.contains(&spec.usage()), "{all}");
    }
    insta::assert_snapshot!(help(Some("lock")), @r"
    `/lock [app] <environment> <reason>` — stop new deploys to an environment until /unlock
    Approvals still count while locked; the deploy waits for /unlock. Locking a locked environment tells who holds the lock and changes nothing.
    • `app`: the app, as named in greenlight.toml (optional with a single app)
    • `environment`: the environment, e.g. production
    • `reason`: why, shown to everyone who tries to deploy
    Who: operators of the app.
    ");
}

#[test]
fn typed_options_read_like_typed_text() {
    let options = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        words_from_options("rollback", &options(&[("to", "abcdef1"), ("app", "shop")])),
        "shop to abcdef1"
    );
    assert_eq!(
        words_from_options(
            "lock",
            &options(&[("reason", "db migration"), ("environment", "production")])
        ),
        "production db migration"
    );
    let words = words_from_options(
        "flag",
        &options(&[("environment", "production"), ("action", "k on")]),
    );
    assert_eq!(
        parse("flag", &words, &one_app()),
        Ok(Command::Flag {
            app: app("shop"),
            environment: env("production"),
            action: FlagAction::Set {
                key: "k".into(),
                on: true,
                reason: None
            }
        })
    );
}
