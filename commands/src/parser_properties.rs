//! Property tests of the core's two parsers of outside input: slash-command text and image
//! references. Bounded (256 cases each, no failure files) so they stay a small part of
//! `cargo test`; the fuzz harness (`tests/src/bin/fuzz_parsers.rs`) runs millions off CI, and
//! whatever either finds becomes a plain unit test.

use proptest::prelude::*;
use proptest::sample::select;

use crate::chat::{self, Catalog, Command, FlagAction, COMMANDS};
use crate::{AppName, CommitSha, EnvironmentName, ImageRef, ImageRefError};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn catalog() -> Catalog {
    let app = |name: &str, environments: &[&str]| {
        (
            AppName::parse(name).expect("app name"),
            environments
                .iter()
                .map(|e| EnvironmentName::parse(e).expect("environment name"))
                .collect(),
        )
    };
    Catalog {
        apps: vec![
            app("shop", &["staging", "production"]),
            app("web", &["dev", "staging"]),
        ],
    }
}

/// Words of the grammar, near misses and troublemakers.
const WORDS: &[&str] = &[
    "help",
    "HELP",
    "to",
    "TO",
    "list",
    "on",
    "off",
    "ON",
    "rollout",
    "rolout",
    "shop",
    "shpo",
    "web",
    "staging",
    "stagin",
    "production",
    "prodution",
    "dev",
    "0123456",
    "0123456789abcdef",
    "0123456789abcdef0123456789abcdef01234567",
    "0123456789abcdef0123456789abcdef012345678",
    "abcdefg",
    "50",
    "0",
    "51",
    "100",
    "100%",
    "101",
    "-1",
    "4294967296",
    "checkout.v2",
    "new-ui",
    "Bad_Key",
    "lock",
    "unlock",
    "releases",
    "rollback",
    "flag",
    "x",
    "é",
    "🚀",
    "\u{0}",
    "`",
    "because",
    "deploys",
    "are",
    "frozen",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(WORDS).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
        1 => "[a-z0-9_.-]{1,70}",
        1 => "[0-9a-fA-F]{1,44}",
    ]
}

fn command_name() -> impl Strategy<Value = String> {
    let names: Vec<&'static str> = COMMANDS.iter().map(|spec| spec.name).collect();
    prop_oneof![
        4 => select(names.clone()).prop_map(|name| format!("/{name}")),
        1 => select(names).prop_map(str::to_owned),
        1 => "/[a-z]{0,10}",
        1 => "\\PC{0,16}",
    ]
}

/// What follows each "Did you mean `…`" in a message.
fn suggestions(message: &str) -> Vec<&str> {
    message
        .split("Did you mean `")
        .skip(1)
        .filter_map(|rest| rest.split('`').next())
        .collect()
}

/// Everything a suggestion may name: the table's commands, the catalog's apps and
/// environments, and the flag verbs.
fn suggestable(catalog: &Catalog) -> Vec<String> {
    let mut known: Vec<String> = COMMANDS
        .iter()
        .map(|spec| format!("/{}", spec.name))
        .collect();
    for (app, environments) in &catalog.apps {
        known.push(app.to_string());
        known.extend(environments.iter().map(ToString::to_string));
    }
    known.extend(["on", "off", "rollout"].map(str::to_owned));
    known
}

fn valid_key(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-'))
}

/// What a successful parse must satisfy, whatever the words were.
fn check_command(command: &Command, catalog: &Catalog) {
    let Some(app) = command.app() else {
        return;
    };
    let (_, environments) = catalog
        .apps
        .iter()
        .find(|(known, _)| known == app)
        .expect("the app is from the catalog");
    let environment = match command {
        Command::Rollback {
            environment, to, ..
        } => {
            if let Some(to) = to {
                assert!((7..=40).contains(&to.len()), "{to}");
                assert!(to.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            }
            Some(environment)
        }
        Command::Lock {
            environment,
            reason,
            ..
        } => {
            assert!(!reason.trim().is_empty());
            Some(environment)
        }
        Command::Unlock { environment, .. } => Some(environment),
        Command::Releases {
            environment, limit, ..
        } => {
            assert!((1..=50).contains(limit), "{limit}");
            environment.as_ref()
        }
        Command::Flag {
            environment,
            action,
            ..
        } => {
            match action {
                FlagAction::List => {}
                FlagAction::Show { key } | FlagAction::Set { key, .. } => {
                    assert!(valid_key(key), "{key}");
                }
                FlagAction::Rollout { key, percent } => {
                    assert!(valid_key(key), "{key}");
                    assert!(*percent <= 100);
                }
            }
            Some(environment)
        }
        Command::Help { .. } => None,
    };
    if let Some(environment) = environment {
        assert!(environments.contains(environment), "{environment}");
    }
}

/// A valid command of the grammar and the text that says it.
fn valid_command() -> impl Strategy<Value = (Command, String)> {
    let catalog = catalog();
    let app_env: Vec<(AppName, EnvironmentName)> = catalog
        .apps
        .iter()
        .flat_map(|(app, environments)| environments.iter().map(|e| (app.clone(), e.clone())))
        .collect();
    let reason = prop::collection::vec("[a-zA-Z0-9,.!?'-]{1,8}", 1..5);
    let key = "[a-z0-9_.-]{1,64}".prop_filter("not a flag verb", |key| {
        !["list", "on", "off", "rollout"].contains(&key.as_str())
    });
    (
        select(app_env),
        0..6u8,
        reason,
        key,
        "[0-9a-f]{7,40}",
        1..=50u32,
        0..=100u8,
        any::<bool>(),
    )
        .prop_map(
            |((app, environment), form, reason, key, sha, limit, percent, on)| {
                let reason = reason.join(" ");
                match form {
                    0 => (
                        Command::Rollback {
                            app: app.clone(),
                            environment: environment.clone(),
                            to: Some(sha.clone()),
                        },
                        format!("/rollback|{app} {environment} to {}", sha.to_uppercase()),
                    ),
                    1 => (
                        Command::Lock {
                            app: app.clone(),
                            environment: environment.clone(),
                            reason: reason.clone(),
                        },
                        format!("/lock|  {app}   {environment} {reason} "),
                    ),
                    2 => (
                        Command::Unlock {
                            app: app.clone(),
                            environment: environment.clone(),
                        },
                        format!("unlock|{app} {environment}"),
                    ),
                    3 => (
                        Command::Releases {
                            app: app.clone(),
                            environment: Some(environment.clone()),
                            limit,
                        },
                        format!("/releases|{app} {environment} {limit}"),
                    ),
                    4 => (
                        Command::Flag {
                            app: app.clone(),
                            environment: environment.clone(),
                            action: FlagAction::Set {
                                key: key.clone(),
                                on,
                                reason: Some(reason.clone()),
                            },
                        },
                        format!(
                            "/flag|{app} {environment} {key} {} {reason}",
                            if on { "ON" } else { "off" }
                        ),
                    ),
                    _ => (
                        Command::Flag {
                            app: app.clone(),
                            environment: environment.clone(),
                            action: FlagAction::Rollout {
                                key: key.clone(),
                                percent,
                            },
                        },
                        format!("/flag|{app} {environment} {key} rollout {percent}%"),
                    ),
                }
            },
        )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn command_parsing_never_panics_on_any_text(command in "\\PC{0,20}", text in "\\PC{0,200}") {
        let _ = chat::parse(&command, &text, &catalog());
        let _ = chat::parse(&command, &text, &Catalog::default());
    }

    #[test]
    fn grammar_words_parse_to_checked_commands_or_say_why(
        command in command_name(),
        words in prop::collection::vec(word(), 0..8),
        one_app in any::<bool>(),
    ) {
        let mut catalog = catalog();
        if one_app {
            catalog.apps.truncate(1);
        }
        let text = words.join(" ");
        match chat::parse(&command, &text, &catalog) {
            Ok(parsed) => check_command(&parsed, &catalog),
            Err(error) => {
                prop_assert!(!error.message.is_empty());
                prop_assert!(error.usage.starts_with('/'), "{}", error.usage);
                let known = suggestable(&catalog);
                for suggestion in suggestions(&error.message) {
                    prop_assert!(
                        known.iter().any(|name| name == suggestion),
                        "{suggestion:?} is not from the table or the catalog: {}",
                        error.message
                    );
                }
            }
        }
    }

    #[test]
    fn valid_commands_round_trip((expected, line) in valid_command()) {
        let (command, text) = line.split_once('|').expect("separator");
        prop_assert_eq!(chat::parse(command, text, &catalog()), Ok(expected));
    }

    #[test]
    fn discord_options_make_words_the_parser_takes_without_panicking(
        command in command_name(),
        options in prop::collection::vec(("[a-z]{1,12}", "\\PC{0,20}"), 0..6),
    ) {
        let name = command.trim_start_matches('/');
        let words = chat::words_from_options(name, &options);
        let _ = chat::parse(name, &words, &catalog());
    }
}

// ---- image references ----

const REPOSITORIES: &[&str] = &[
    "ghcr.io/acme/shop",
    "localhost:5000/shop",
    "registry.example.com:443/team/app",
    "shop",
];
const DIGEST: &str = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";

fn sha() -> impl Strategy<Value = CommitSha> {
    "[0-9a-f]{40}".prop_map(|sha| CommitSha::parse(&sha).expect("40 hex"))
}

/// Characters that end a hex run inside a tag.
fn separator() -> impl Strategy<Value = String> {
    "[g-zG-Z_.-]{1,4}"
}

/// The model of the SHA rule, written apart from the code: a tag (no digest, version tags not
/// allowed) is accepted iff it is a valid tag with a maximal run of hex digits, 7 to 40 long,
/// that starts the commit SHA (case aside).
fn model_accepts(tag: &str, sha: &str) -> bool {
    let bytes = tag.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    valid
        && tag
            .split(|c: char| !c.is_ascii_hexdigit())
            .any(|run| (7..=40).contains(&run.len()) && sha.starts_with(&run.to_lowercase()))
}

/// A tag around a piece of the SHA (or of another SHA, or a piece that is too short), with
/// random words and separators: the shapes CI tools produce.
fn tag_with_sha_piece(sha: &str) -> impl Strategy<Value = String> {
    let sha = sha.to_owned();
    (
        prop_oneof![Just(String::new()), "[a-zA-Z0-9_.-]{0,8}".prop_map(|s| s)],
        separator(),
        0..=40usize,
        any::<bool>(),
        any::<bool>(),
        separator(),
        "[a-zA-Z0-9_.-]{0,8}",
    )
        .prop_map(
            move |(before, sep1, len, upper, with_before, sep2, after)| {
                let piece = if upper {
                    sha[..len].to_uppercase()
                } else {
                    sha[..len].to_owned()
                };
                let mut tag = String::new();
                if with_before && !before.is_empty() {
                    tag.push_str(&before);
                    tag.push_str(&sep1);
                }
                tag.push_str(&piece);
                if !after.is_empty() {
                    tag.push_str(&sep2);
                    tag.push_str(&after);
                }
                tag
            },
        )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn image_parsing_never_panics_and_accepted_refs_round_trip(
        reference in "\\PC{0,80}",
        repository in prop_oneof![select(REPOSITORIES).prop_map(str::to_owned), "\\PC{0,30}"],
        sha in sha(),
        allow in any::<bool>(),
    ) {
        if let Ok(image) = ImageRef::parse(&reference, &repository, &sha, allow) {
            prop_assert_eq!(&image.repository, &repository);
            let again = ImageRef::parse(&image.to_string(), &repository, &sha, allow);
            prop_assert_eq!(again, Ok(image));
        }
    }

    #[test]
    fn a_tag_is_accepted_iff_it_carries_a_7_hex_prefix_of_the_sha(
        (sha, tag) in sha().prop_flat_map(|sha| {
            let tags = prop_oneof![
                3 => tag_with_sha_piece(sha.as_str()),
                1 => "[0-9a-fA-F_.gx-]{1,50}",
                1 => "\\PC{0,20}",
            ];
            (Just(sha), tags)
        }),
        repository in select(REPOSITORIES),
    ) {
        let reference = format!("{repository}:{tag}");
        let outcome = ImageRef::parse(&reference, repository, &sha, false);
        prop_assert_eq!(
            outcome.is_ok(),
            model_accepts(&tag, sha.as_str()),
            "{} gave {:?}",
            reference,
            outcome
        );
        if let Err(error) = outcome {
            let message = error.to_string();
            prop_assert!(
                message.contains(repository) || message.contains(sha.as_str()),
                "a refusal says what to send instead: {message}"
            );
        }
    }

    #[test]
    fn a_digest_pins_any_tag_that_names_no_other_commit(
        sha in sha(),
        tag in "[g-z_][g-z.-]{0,20}",
        repository in select(REPOSITORIES),
    ) {
        let reference = format!("{repository}:{tag}@{DIGEST}");
        let image = ImageRef::parse(&reference, repository, &sha, false);
        prop_assert!(image.is_ok(), "{reference}: {image:?}");
        let bare = ImageRef::parse(&format!("{repository}@{DIGEST}"), repository, &sha, false);
        prop_assert!(bare.is_ok());
        let wrong = ImageRef::parse(&format!("{repository}x:{}", sha.as_str()), repository, &sha, false);
        let is_wrong_repository = matches!(wrong, Err(ImageRefError::WrongRepository { .. }));
        prop_assert!(is_wrong_repository);
    }
}
