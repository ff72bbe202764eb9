//! Property tests of every parser of outside input in the bot: CI events, GitHub deliveries,
//! Slack interactions and commands, Discord interactions and `greenlight.toml`. Each parser is
//! driven through the pure function its route calls, with (a) arbitrary bytes and (b) real
//! payloads from `shared/fixtures` (or hand-made valid ones) with one field mutated. Bounded
//! (256 cases each, no failure files) so they stay a small part of `cargo test`; the fuzz
//! harness (`tests/src/bin/fuzz_parsers.rs`) runs millions off CI, and whatever either finds
//! becomes a plain unit test.

use std::path::PathBuf;

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};

use crate::ci::CiEvent;
use crate::config::Config;
use crate::discord::interactions::parse_interaction as parse_discord;
use crate::github::webhook::{parse_delivery, GithubDelivery};
use crate::http::ApiError;
use crate::slack::inbound::{parse_command, parse_interaction, SlackCommandRequest};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn fixture(relative: &str) -> Vec<u8> {
    let dir = std::env::var("GREENLIGHT_FIXTURES").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"),
        PathBuf::from,
    );
    let path = dir.join(relative);
    std::fs::read(&path).unwrap_or_else(|error| panic!("fixture {}: {error}", path.display()))
}

fn fixture_json(relative: &str) -> Value {
    serde_json::from_slice(&fixture(relative)).expect("fixture is JSON")
}

/// A refusal as SPEC §5 wants it: a 4xx with an error word and a detail.
fn check_refusal(error: &ApiError, statuses: &[u16]) -> Result<(), TestCaseError> {
    prop_assert!(
        statuses.contains(&error.status.as_u16()),
        "status {} for {:?}",
        error.status,
        error.detail
    );
    prop_assert!(!error.error.is_empty());
    prop_assert!(!error.detail.trim().is_empty());
    Ok(())
}

/// The field a detail like `smoke.checks[1].status: …` names, if it names one.
fn named_field(detail: &str) -> Option<&str> {
    let (field, _) = detail.split_once(": ")?;
    let looks_like_a_path = !field.is_empty()
        && field != "."
        && field
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'[' | b']' | b'/'));
    looks_like_a_path.then_some(field)
}

// ---- JSON mutation: one value of a valid payload replaced or removed ----

/// Values that break typed fields: wrong types, edges of numbers, empty and odd strings,
/// nesting.
fn troublemaker() -> impl Strategy<Value = Value> {
    let deep = (0..60).fold(json!(1), |inner, _| json!([inner]));
    prop_oneof![
        select(vec![
            Value::Null,
            json!(true),
            json!(0),
            json!(-1),
            json!(1.5),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(1e300),
            json!(""),
            json!("   "),
            json!("\u{0}"),
            json!("é🚀\u{202e}"),
            json!("x".repeat(5000)),
            json!("0123456789abcdef0123456789abcdef01234567"),
            json!("2026-11-26T10:00:00Z"),
            json!("https://ci.example/run/1"),
            json!([]),
            json!({}),
            json!([null]),
            json!({"status": "passed"}),
            deep,
        ]),
        "\\PC{0,30}".prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Replace(Value),
    Remove,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![4 => troublemaker().prop_map(Edit::Replace), 1 => Just(Edit::Remove)]
}

/// Walks `choices` down `value` and applies `edit` there; returns the path it edited, as
/// serde_path_to_error spells paths (`a.b[2].c`).
fn mutate(value: &mut Value, choices: &[usize], edit: Edit) -> String {
    let mut path = String::new();
    let mut node = value;
    for (depth, choice) in choices.iter().enumerate() {
        let last = depth + 1 == choices.len();
        let (segment, child_is_leaf) = match &*node {
            Value::Object(map) if !map.is_empty() => {
                let key = map
                    .keys()
                    .nth(choice % map.len())
                    .cloned()
                    .unwrap_or_default();
                let leaf = !matches!(map.get(&key), Some(Value::Object(_) | Value::Array(_)));
                (Segment::Key(key), leaf)
            }
            Value::Array(items) if !items.is_empty() => {
                let index = choice % items.len();
                let leaf = !matches!(items[index], Value::Object(_) | Value::Array(_));
                (Segment::Index(index), leaf)
            }
            _ => break,
        };
        if last || child_is_leaf {
            apply(node, &segment, edit, &mut path);
            return path;
        }
        path.push_str(&segment.display(path.is_empty()));
        node = match segment {
            Segment::Key(key) => &mut node[key.as_str()],
            Segment::Index(index) => &mut node[index],
        };
    }
    if let Edit::Replace(replacement) = edit {
        *node = replacement;
    }
    path
}

enum Segment {
    Key(String),
    Index(usize),
}

impl Segment {
    fn display(&self, first: bool) -> String {
        match self {
            Self::Key(key) if first => key.clone(),
            Self::Key(key) => format!(".{key}"),
            Self::Index(index) => format!("[{index}]"),
        }
    }
}

fn apply(node: &mut Value, segment: &Segment, edit: Edit, path: &mut String) {
    path.push_str(&segment.display(path.is_empty()));
    match (node, segment, edit) {
        (Value::Object(map), Segment::Key(key), Edit::Remove) => {
            map.remove(key);
        }
        (Value::Array(items), Segment::Index(index), Edit::Remove) => {
            items.remove(*index);
        }
        (Value::Object(map), Segment::Key(key), Edit::Replace(value)) => {
            map.insert(key.clone(), value);
        }
        (Value::Array(items), Segment::Index(index), Edit::Replace(value)) => {
            items[*index] = value;
        }
        _ => {}
    }
}

fn choices() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..64usize, 1..6)
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        "\\PC{0,200}".prop_map(String::into_bytes),
        // JSON-ish text: brackets, quotes and keys the parsers look for.
        prop::collection::vec(
            select(vec![
                "{",
                "}",
                "[",
                "]",
                "\"",
                ":",
                ",",
                "\"type\"",
                "\"event\"",
                "\"payload\"",
                "\"id\"",
                "1",
                "-0",
                "1e999",
                "null",
                "true",
                "\"build\"",
                "\\u0000",
                "\\ud800",
                "payload=",
                "&",
                "%7B",
                "%",
                "=",
            ]),
            0..40,
        )
        .prop_map(|parts| parts.concat().into_bytes()),
    ]
}

// ---- CI events ----

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn build_event() -> impl Strategy<Value = Value> {
    (
        "[a-z0-9][a-z0-9_-]{0,20}",
        "[0-9a-fA-F]{40}",
        "[a-z0-9./:-]{1,40}",
        prop::option::of("\\PC{0,40}"),
        prop::option::of("\\PC{0,40}"),
        prop::option::of((0i64..4_000_000_000).prop_map(|secs| {
            chrono::DateTime::from_timestamp(secs, 0)
                .map(|time| time.to_rfc3339())
                .unwrap_or_default()
        })),
        prop::option::of("https?://[a-z]{1,10}\\.example/[a-z0-9/]{0,20}"),
    )
        .prop_map(|(app, sha, image, author, message, committed_at, url)| {
            json!({"event": "build", "app": app, "sha": sha, "image": image,
                "ref": "refs/heads/main", "author": author, "message": message,
                "committed_at": committed_at, "url": url})
        })
}

fn deployed_event() -> impl Strategy<Value = Value> {
    (
        "[a-z0-9][a-z0-9_-]{0,20}",
        select(vec!["success", "failure"]),
        select(vec!["passed", "failed"]),
        prop::collection::vec(
            (
                "[a-z]{1,10}",
                select(vec!["passed", "failed", "skipped"]),
                prop::option::of(any::<u32>()),
            ),
            0..4,
        ),
        prop::option::of(1..i64::MAX),
    )
        .prop_map(|(environment, status, smoke, checks, id)| {
            let checks: Vec<Value> = checks
                .into_iter()
                .map(
                    |(name, status, ms)| json!({"name": name, "status": status, "duration_ms": ms}),
                )
                .collect();
            json!({"event": "deployed", "app": "shop", "environment": environment, "sha": SHA,
                "status": status, "smoke": {"status": smoke, "checks": checks},
                "deployment_id": id, "url": "https://ci.example/run/1"})
        })
}

fn check_ci_refusal(error: &ApiError) -> Result<(), TestCaseError> {
    check_refusal(error, &[400, 422])?;
    if error.status.as_u16() == 422 {
        prop_assert!(
            named_field(&error.detail).is_some(),
            "a 422 names its field: {}",
            error.detail
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ci_events_never_panic_and_refuse_with_400_or_422(body in bytes()) {
        if let Err(error) = crate::http::events::parse_event(&body) {
            check_ci_refusal(&error)?;
        }
    }

    #[test]
    fn valid_build_events_round_trip(event in build_event()) {
        let parsed = crate::http::events::parse_event(event.to_string().as_bytes());
        let Ok(CiEvent::Build(build)) = parsed else {
            return Err(TestCaseError::fail(format!("{event} gave {parsed:?}")));
        };
        prop_assert_eq!(build.app.as_str(), event["app"].as_str().unwrap_or_default());
        prop_assert_eq!(
            build.sha.as_str(),
            event["sha"].as_str().unwrap_or_default().to_ascii_lowercase()
        );
        prop_assert_eq!(build.image.as_str(), event["image"].as_str().unwrap_or_default());
        let trimmed = |name: &str| {
            event[name].as_str().map(str::trim).filter(|text| !text.is_empty()).map(str::to_owned)
        };
        prop_assert_eq!(build.author, trimmed("author"));
        prop_assert_eq!(build.message, trimmed("message"));
        prop_assert_eq!(build.ci_url, trimmed("url"));
        prop_assert_eq!(
            build.committed_at.map(|time| time.to_rfc3339()),
            trimmed("committed_at")
        );
    }

    #[test]
    fn a_mutated_ci_event_is_accepted_or_names_the_field(
        event in prop_oneof![build_event(), deployed_event()],
        choices in choices(),
        edit in edit(),
    ) {
        let mut event = event;
        let path = mutate(&mut event, &choices, edit);
        match crate::http::events::parse_event(event.to_string().as_bytes()) {
            Ok(_) => {}
            Err(error) => {
                check_ci_refusal(&error)?;
                prop_assert_eq!(error.status.as_u16(), 422, "{}", error.detail);
                let field = named_field(&error.detail).unwrap_or_default();
                let top = |path: &str| path.split(['.', '[']).next().unwrap_or_default().to_owned();
                // The mutated field, or a required one the mutation removed from its object.
                prop_assert!(
                    top(field) == top(&path) || field.starts_with(&path) || path.is_empty(),
                    "edited {path}, refused for {}", error.detail
                );
            }
        }
    }
}

// ---- GitHub deliveries ----

const GITHUB_EVENTS: &[&str] = &[
    "ping",
    "deployment_status",
    "workflow_run",
    "deployment_protection_rule",
    "push",
];

const GITHUB_FIXTURES: &[(&str, &str)] = &[
    ("ping", "github/ping/0-event.json"),
    ("ping", "github/ping/1-event.json"),
    (
        "deployment_status",
        "github/deployment_status/0-created.json",
    ),
    (
        "deployment_status",
        "github/deployment_status/2-created.json",
    ),
    ("workflow_run", "github/workflow_run/0-completed.json"),
    ("workflow_run", "github/workflow_run/2-completed.json"),
    ("workflow_run", "github/workflow_run/3-requested.json"),
    (
        "deployment_protection_rule",
        "github/deployment/0-created.json",
    ),
];

/// `deployment_protection_rule` has no public example; built from its schema with a real
/// `deployment`, as the fixtures' README suggests.
fn protection_rule(deployment_fixture: &Value) -> Value {
    json!({
        "action": "requested",
        "environment": "production",
        "event": "push",
        "deployment_callback_url": "https://api.github.com/repos/Codertocat/Hello-World/actions/runs/1/deployment_protection_rule",
        "deployment": deployment_fixture["deployment"],
        "installation": {"id": 42},
        "repository": deployment_fixture["repository"],
        "sender": deployment_fixture["sender"],
    })
}

fn github_seed(index: usize) -> (&'static str, Value) {
    let (event, path) = GITHUB_FIXTURES[index % GITHUB_FIXTURES.len()];
    let value = fixture_json(path);
    if event == "deployment_protection_rule" {
        (event, protection_rule(&value))
    } else {
        (event, value)
    }
}

fn form_encoded(json: &str) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", json)
        .finish()
        .into_bytes()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn github_deliveries_never_panic_and_refuse_with_400(
        event in select(GITHUB_EVENTS),
        form in any::<bool>(),
        body in bytes(),
    ) {
        let content_type = form.then_some("application/x-www-form-urlencoded");
        if let Err(error) = parse_delivery(event, content_type, &body) {
            check_refusal(&error, &[400])?;
        }
    }

    #[test]
    fn a_mutated_github_fixture_is_read_or_names_the_field(
        seed in 0..GITHUB_FIXTURES.len(),
        choices in choices(),
        edit in edit(),
        form in any::<bool>(),
    ) {
        let (event, mut value) = github_seed(seed);
        let json_body = value.to_string();
        prop_assert!(parse_delivery(event, None, json_body.as_bytes()).is_ok(), "seed {seed} reads");
        let path = mutate(&mut value, &choices, edit);
        let text = value.to_string();
        let (content_type, body) = if form {
            (Some("application/x-www-form-urlencoded; charset=utf-8"), form_encoded(&text))
        } else {
            (Some("application/json"), text.clone().into_bytes())
        };
        let outcome = parse_delivery(event, content_type, &body);
        // The form encoding changes nothing about what the payload means.
        let plain = parse_delivery(event, None, text.as_bytes());
        prop_assert_eq!(outcome.as_ref().err(), plain.as_ref().err());
        match outcome {
            Ok(GithubDelivery::DeploymentStatus(status)) => {
                let _ = status.deployment.payload_str("image");
                let _ = status.deployment.payload_str("app");
            }
            Ok(GithubDelivery::DeploymentProtectionRule(rule)) => {
                let _ = rule.deployment.payload_str("app");
            }
            Ok(_) => {}
            Err(error) => {
                check_refusal(&error, &[400])?;
                let field = named_field(&error.detail);
                prop_assert!(field.is_some(), "edited {path}, refused without a field: {}", error.detail);
                let top = |path: &str| path.split(['.', '[']).next().unwrap_or_default().to_owned();
                prop_assert_eq!(top(field.unwrap_or_default()), top(&path), "{}", error.detail);
            }
        }
    }
}

// ---- Slack ----

fn block_actions_seed(index: usize) -> Value {
    let name = [
        "slack/block_actions_docs.json",
        "slack/block_actions_bolt_python_test.json",
    ][index % 2];
    fixture_json(name)
}

fn view_submission_seed() -> Value {
    json!({"type": "view_submission", "user": {"id": "U0ALICE"}, "view": {
        "callback_id": "greenlight_reject_reason", "private_metadata": "7",
        "state": {"values": {"reason": {"reason": {"type": "plain_text_input", "value": "broken"}}}}}})
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn slack_interactions_never_panic_and_refuse_with_400(body in bytes()) {
        if let Err(error) = parse_interaction(&body) {
            check_refusal(&error, &[400])?;
            prop_assert!(error.detail.starts_with("payload: "), "{}", error.detail);
        }
    }

    #[test]
    fn a_mutated_slack_interaction_is_read_or_refused_naming_payload(
        seed in 0..3usize,
        choices in choices(),
        edit in edit(),
    ) {
        let mut value = if seed == 2 { view_submission_seed() } else { block_actions_seed(seed) };
        prop_assert!(parse_interaction(&form_encoded(&value.to_string())).is_ok());
        mutate(&mut value, &choices, edit);
        if let Err(error) = parse_interaction(&form_encoded(&value.to_string())) {
            check_refusal(&error, &[400])?;
            prop_assert!(error.detail.starts_with("payload: "), "{}", error.detail);
        }
    }

    #[test]
    fn slack_command_forms_round_trip_or_name_the_missing_fields(
        fields in prop::collection::vec(
            (select(vec!["command", "text", "user_id", "response_url", "ssl_check", "token", "payload"]),
             prop_oneof![Just(String::new()), Just("1".to_owned()), "\\PC{0,30}"]),
            0..6,
        ),
    ) {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &fields {
            form.append_pair(name, value);
        }
        let body = form.finish();
        // The last value of a repeated field wins, as in the HashMap the route reads.
        let last = |name: &str| {
            fields.iter().rev().find(|(field, _)| *field == name).map(|(_, value)| value.clone())
        };
        match parse_command(body.as_bytes()) {
            Ok(SlackCommandRequest::SslCheck) => {
                let ssl_check = last("ssl_check");
                prop_assert_eq!(ssl_check.as_deref(), Some("1"));
            }
            Ok(SlackCommandRequest::Command(command)) => {
                prop_assert_eq!(Some(command.command), last("command"));
                prop_assert_eq!(Some(command.user_id), last("user_id"));
                prop_assert_eq!(command.text, last("text").unwrap_or_default());
                prop_assert_eq!(command.response_url, last("response_url"));
            }
            Err(error) => {
                check_refusal(&error, &[400])?;
                prop_assert!(error.detail.contains("command and user_id"));
                prop_assert!(
                    last("command").unwrap_or_default().is_empty()
                        || last("user_id").unwrap_or_default().is_empty()
                );
            }
        }
    }

    #[test]
    fn slack_command_bodies_never_panic(body in bytes()) {
        if let Err(error) = parse_command(&body) {
            check_refusal(&error, &[400])?;
        }
    }
}

// ---- Discord ----

const DISCORD_FIXTURES: &[&str] = &[
    "discord/component_interaction_button.json",
    "discord/component_interaction_select.json",
    "discord/message_command_interaction.json",
    "discord/slash_command_interaction.json",
    "discord/user_command_interaction.json",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn discord_interactions_never_panic_and_refuse_naming_a_field(body in bytes()) {
        if let Err(error) = parse_discord(&body) {
            check_refusal(&error, &[400])?;
        }
    }

    #[test]
    fn a_mutated_discord_fixture_is_read_or_names_the_field(
        seed in 0..DISCORD_FIXTURES.len(),
        choices in choices(),
        edit in edit(),
    ) {
        let mut value = fixture_json(DISCORD_FIXTURES[seed]);
        prop_assert!(parse_discord(value.to_string().as_bytes()).is_ok(), "seed {seed} reads");
        let path = mutate(&mut value, &choices, edit);
        if let Err(error) = parse_discord(value.to_string().as_bytes()) {
            check_refusal(&error, &[400])?;
            let field = named_field(&error.detail);
            prop_assert!(field.is_some(), "edited {path}, refused without a field: {}", error.detail);
        }
    }
}

// ---- greenlight.toml ----

const EXAMPLE: &str = include_str!("../../greenlight.example.toml");

fn example_env(name: &str) -> Option<String> {
    Some(match name {
        "DISCORD_PUBLIC_KEY" => {
            "8e4ce25b4a1c3e1f1a7a8d3a32c1c0b0f7e6d5c4b3a29180716253443526170a".to_owned()
        }
        "DISCORD_APPLICATION_ID" => "1100000000000000001".to_owned(),
        "UNSET" | "GREENLIGHT_LISTEN" | "GREENLIGHT_DATABASE_URL" => return None,
        other => format!("value-of-{}", other.to_ascii_lowercase()),
    })
}

/// The example's variables that hold secrets.
const SECRET_VARIABLES: &[&str] = &[
    "GREENLIGHT_API_TOKEN",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "DISCORD_BOT_TOKEN",
    "GITHUB_WEBHOOK_SECRET",
    "GITHUB_TOKEN",
    "SHOP_CI_TOKEN",
    "SHOP_STAGING_FLAGS_TOKEN",
    "SHOP_HOOK_SECRET",
    "SHOP_PROD_FLAGS_TOKEN",
];

/// TOML values that break typed keys.
const TOML_VALUES: &[&str] = &[
    "\"\"",
    "-1",
    "0",
    "9223372036854775807",
    "9223372036854775808",
    "1e999",
    "nan",
    "inf",
    "[]",
    "{}",
    "[[[[[[1]]]]]]",
    "true",
    "\"x\"",
    "\"🚀\"",
    "1979-05-27T07:32:00Z",
    "\"${UNSET}\"",
    "\"${\"",
    "\"$${X}\"",
    "\"${not a name}\"",
    "\"group:nobody\"",
    "\"0s\"",
    "\"99999999999999h\"",
    "\"-5m\"",
    "\"1 year\"",
    "\"http://\"",
    "\"postgres://\"",
    "\"sqlite://\"",
    "\"U0\"",
    "[\"alice\", \"alice\"]",
    "{ kind = \"nope\" }",
    "{ kind = \"command\", run = [] }",
    "\"staging\"",
    "\"production\"",
];

#[derive(Debug, Clone)]
enum Line {
    Delete,
    Duplicate,
    ReplaceValue(String),
    Insert(String),
}

fn line_edit() -> impl Strategy<Value = Line> {
    let value = prop_oneof![
        4 => select(TOML_VALUES).prop_map(str::to_owned),
        1 => "\\PC{0,20}".prop_map(|text| format!("{text:?}")),
        1 => "\\PC{0,20}",
    ];
    let key = select(vec![
        "after",
        "reviewers",
        "image",
        "ci_token",
        "url",
        "listen",
        "smoke",
        "deploy",
        "required_approvals",
        "operators",
        "channels",
        "webhook_secret",
        "unknown_key",
        "[apps.x]",
        "[apps.shop.environments.qa]",
        "[[apps]]",
        "[people]",
    ]);
    prop_oneof![
        1 => Just(Line::Delete),
        1 => Just(Line::Duplicate),
        4 => value.clone().prop_map(Line::ReplaceValue),
        2 => (key, value).prop_map(|(key, value)| {
            if key.starts_with('[') { Line::Insert(key.to_owned()) } else { Line::Insert(format!("{key} = {value}")) }
        }),
    ]
}

fn edit_toml(text: &str, edits: &[(usize, Line)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for (at, edit) in edits {
        if lines.is_empty() {
            break;
        }
        let at = at % lines.len();
        match edit {
            Line::Delete => {
                lines.remove(at);
            }
            Line::Duplicate => {
                let line = lines[at].clone();
                lines.insert(at, line);
            }
            Line::ReplaceValue(value) => {
                if let Some((key, _)) = lines[at].split_once('=') {
                    lines[at] = format!("{key}= {value}");
                }
            }
            Line::Insert(line) => lines.insert(at, line.clone()),
        }
    }
    lines.join("\n")
}

fn check_config(text: &str) -> Result<(), TestCaseError> {
    let result = Config::from_toml_str(text, &example_env);
    if let Err(errors) = &result {
        prop_assert!(!errors.problems().is_empty());
        for problem in errors {
            prop_assert!(
                !problem.path.is_empty() || problem.message.starts_with("invalid TOML"),
                "a problem without a key path: {problem:?}"
            );
            prop_assert!(!problem.message.is_empty());
            // No secret from the environment reaches a message.
            for secret in SECRET_VARIABLES {
                let value = format!("value-of-{}", secret.to_ascii_lowercase());
                prop_assert!(!problem.message.contains(&value), "{problem:?}");
            }
        }
    }
    let _ = crate::config::check_config_report(&result);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_is_a_config_or_problems_with_key_paths(text in "\\PC{0,300}") {
        check_config(&text)?;
    }

    #[test]
    fn an_edited_example_config_is_valid_or_every_problem_has_a_key_path(
        edits in prop::collection::vec((any::<usize>(), line_edit()), 1..4),
    ) {
        let example = Config::from_toml_str(EXAMPLE, &example_env);
        prop_assert!(example.is_ok(), "the example is valid: {:?}", example.err());
        check_config(&edit_toml(EXAMPLE, &edits))?;
    }
}
