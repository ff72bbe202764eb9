//! A fuzz harness on stable Rust for every parser of outside input: each target is the pure
//! function its route (or the config loader, or the core) runs, fed inputs made by mutating a
//! seed corpus (the shared fixtures and hand-made valid inputs) with byte flips, truncations,
//! splices, repeats and insertions of interesting bytes and tokens. Inputs whose outcome is new
//! (a new error field, a newly accepted shape) join the corpus, a cheap stand-in for coverage.
//!
//! Each target also checks the parser's contract (SPEC §5: a refusal is a 4xx with an error and
//! a detail naming the field; config problems carry a key path; suggestions come from the
//! table; an image tag is accepted iff it carries the SHA), so a broken contract is reported
//! like a panic. Run by `src/bin/fuzz_parsers.rs`, never by `cargo test` beyond a smoke run.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use greenlight::ci::CiEvent;
use greenlight::config::Config;
use greenlight::discord::interactions::parse_interaction as parse_discord;
use greenlight::discord::ButtonAction;
use greenlight::github::webhook::{parse_delivery, GithubDelivery};
use greenlight::http::ApiError;
use greenlight::slack::inbound::{parse_command, parse_interaction, SlackCommandRequest};
use greenlight_commands::chat::{self, Catalog, COMMANDS};
use greenlight_commands::{AppName, CommitSha, EnvironmentName, ImageRef};

/// One parser under test: its seeds and a run that panics when the contract is broken. The run
/// returns a short outcome signature; a new signature adds the input to the corpus.
pub struct Target {
    pub name: &'static str,
    pub seeds: Vec<Vec<u8>>,
    pub run: Run,
}

/// One execution: parse, check the contract (panicking if it is broken), name the outcome.
pub type Run = fn(&[u8]) -> String;

/// The names accepted by `--parser`.
pub const PARSERS: &[&str] = &[
    "ci_event",
    "github_webhook",
    "slack_interaction",
    "slack_command",
    "discord_interaction",
    "config",
    "slash_command",
    "image_ref",
];

/// Largest input the mutator builds (the routes accept 1 MB; bigger only slows the search).
const MAX_INPUT: usize = 64 * 1024;
/// Most inputs kept in a corpus.
const MAX_CORPUS: usize = 2048;
/// An execution slower than this is reported as a finding (pathological input).
const SLOW: Duration = Duration::from_millis(250);

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const DISCORD_PUBLIC_KEY: &str = "8e4ce25b4a1c3e1f1a7a8d3a32c1c0b0f7e6d5c4b3a29180716253443526170a";

/// xorshift64*: tiny, fast and reproducible from `--seed`.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// Bytes and tokens that parsers treat specially.
const TOKENS: &[&str] = &[
    // JSON
    "null",
    "true",
    "false",
    "-0",
    "1e999",
    "-1e999",
    "18446744073709551616",
    "-9223372036854775809",
    "9223372036854775807",
    "0.0000001",
    "\"\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\uDFFF\"",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "\"x\":",
    "[[[[[[[[",
    "]]]]]]]]",
    "{\"a\":{\"a\":{\"a\":",
    "\"type\"",
    "\"id\"",
    "\"event\"",
    "\"action\"",
    "\"payload\"",
    "\"sha\"",
    "\"smoke\"",
    "\"checks\"",
    "\"status\"",
    "\"custom_id\"",
    "\"components\"",
    // forms
    "&",
    "=",
    "%",
    "%ZZ",
    "%00",
    "%FF",
    "%C3%A9",
    "+",
    "payload=",
    "command=",
    "user_id=",
    "text=",
    "ssl_check=1",
    "&payload=%7B%7D",
    // TOML
    "[apps.x]",
    "[[apps]]",
    "\n",
    "#",
    "\"\"\"",
    "'''",
    "${",
    "$${",
    "${X}",
    "${UNSET}",
    " = ",
    "[people]",
    "after = ",
    "reviewers = [",
    "1979-05-27T07:32:00Z",
    "inf",
    "nan",
    "0x7f",
    // slash commands and images
    "help",
    "to",
    "list",
    "on",
    "off",
    "rollout",
    "100%",
    "shop",
    "web",
    "staging",
    "production",
    "prodution",
    "0123456",
    "@sha256:",
    "ghcr.io/acme/shop",
    "localhost:5000/",
    "v1.2.3",
    "latest",
    "sha-",
    SHA,
    "é",
    "🚀",
    "\u{202e}",
    " ",
    "\t",
    "\r\n",
];

const INTERESTING_BYTES: &[u8] = &[
    0, 0x7f, 0x80, 0xff, 0xc0, 0xe2, b'"', b'\\', b'{', b'}', b'[', b']', b':', b',', b'%', b'&',
    b'=', b'\n', b'$', b'/', b'@', b'.', b'-', b' ',
];

/// Applies 1-4 random mutations to `input`, with `corpus` as material for splices.
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(11) {
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                input[at] = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
            }
            2 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                input.drain(at..end);
            }
            3 => {
                let at = rng.below(len + 1);
                let count = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..count).map(|_| rng.next_u64() as u8).collect();
                input.splice(at..at, bytes);
            }
            4 | 5 => {
                let at = rng.below(len + 1);
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                input.splice(at..at, token.iter().copied());
            }
            6 if len > 0 => input.truncate(rng.below(len)),
            7 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                let keep = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(keep);
                input.extend_from_slice(&other[from..]);
            }
            8 if len > 0 => {
                // Repeat a slice: grows nesting and long runs.
                let at = rng.below(len);
                let end = (at + 1 + rng.below(32)).min(len);
                let piece = input[at..end].to_vec();
                for _ in 0..1 + rng.below(64) {
                    input.splice(at..at, piece.iter().copied());
                }
            }
            9 if len > 0 => {
                // Replace a digit run by an extreme number.
                let at = rng.below(len);
                if input[at].is_ascii_digit() {
                    let end = input[at..]
                        .iter()
                        .position(|b| !b.is_ascii_digit())
                        .map_or(len, |n| at + n);
                    let number = [
                        "0",
                        "-1",
                        "18446744073709551616",
                        "1e400",
                        "99999999999999999999",
                    ][rng.below(5)];
                    input.splice(at..end, number.bytes());
                }
            }
            _ => {
                // Deep nesting.
                let at = rng.below(len + 1);
                let depth = 1 + rng.below(4096);
                let open = if rng.below(2) == 0 { b'[' } else { b'{' };
                input.splice(at..at, std::iter::repeat_n(open, depth));
            }
        }
        input.truncate(MAX_INPUT);
    }
}

/// What one run found.
#[derive(Debug, Default)]
pub struct Report {
    pub execs: u64,
    pub elapsed: Duration,
    pub corpus: usize,
    pub outcomes: usize,
    /// Inputs that panicked or broke the contract, with the message.
    pub findings: Vec<(Vec<u8>, String)>,
    pub slowest: Duration,
    pub slowest_input: Vec<u8>,
}

impl Report {
    pub fn execs_per_second(&self) -> f64 {
        self.execs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `target` for `execs` executions (or until `budget` has passed), starting from `seed`.
/// Panics are caught; install a quiet panic hook first (`quiet_panics`) to keep the output
/// readable.
pub fn run(target: &Target, execs: u64, seed: u64, budget: Duration) -> Report {
    let mut rng = Rng::new(seed);
    let mut corpus = target.seeds.clone();
    let mut seen: HashSet<String> = HashSet::new();
    let mut report = Report::default();
    let started = Instant::now();
    let mut input = Vec::new();
    // The seeds themselves first, unmutated.
    let mut pending: Vec<Vec<u8>> = target.seeds.clone();
    while report.execs < execs {
        if report.execs % 1024 == 0 && started.elapsed() > budget {
            break;
        }
        input.clear();
        match pending.pop() {
            Some(seed) => input.extend_from_slice(&seed),
            None => {
                input.extend_from_slice(&corpus[rng.below(corpus.len())]);
                mutate(&mut rng, &mut input, &corpus);
            }
        }
        let begun = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| (target.run)(&input)));
        let took = begun.elapsed();
        report.execs += 1;
        if took > report.slowest {
            report.slowest = took;
            report.slowest_input = input.clone();
        }
        match outcome {
            Ok(signature) => {
                if seen.insert(signature) && corpus.len() < MAX_CORPUS {
                    corpus.push(input.clone());
                }
                if took > SLOW && report.findings.len() < 16 {
                    report
                        .findings
                        .push((input.clone(), format!("slow: {} ms", took.as_millis())));
                }
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "(a panic without a message)".to_owned());
                if report.findings.len() < 16 {
                    report.findings.push((input.clone(), message));
                }
            }
        }
    }
    report.elapsed = started.elapsed();
    report.corpus = corpus.len();
    report.outcomes = seen.len();
    report
}

/// Replaces the panic hook with one that prints nothing: panics are caught and reported.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

// ---- the targets ----

/// Every target, seeded from `fixtures` (the shared fixtures folder).
pub fn targets(fixtures: &Path) -> Vec<Target> {
    PARSERS
        .iter()
        .map(|name| target(name, fixtures).expect("a known parser"))
        .collect()
}

pub fn target(name: &str, fixtures: &Path) -> Option<Target> {
    let read = |relative: &str| {
        std::fs::read(fixtures.join(relative))
            .unwrap_or_else(|error| panic!("fixture {relative}: {error}"))
    };
    let (name, seeds, run): (&'static str, Vec<Vec<u8>>, Run) =
        match name {
            "ci_event" => ("ci_event", ci_seeds(), run_ci),
            "github_webhook" => ("github_webhook", github_seeds(&read), run_github),
            "slack_interaction" => (
                "slack_interaction",
                slack_interaction_seeds(&read),
                run_slack_interaction,
            ),
            "slack_command" => (
                "slack_command",
                vec![
                    read("slack/slash_command_weather.body"),
                    read("slack/signed_slash_command.body"),
                    b"command=%2Frollback&text=shop+production+to+0123456&user_id=U1&response_url=https%3A%2F%2Fhooks.slack.com%2Fx".to_vec(),
                    b"command=/flag&text=shop staging new-ui rollout 25%25&user_id=U1".to_vec(),
                    b"command=/lock&text=shop+production+freeze&user_id=U1".to_vec(),
                    b"ssl_check=1&token=x".to_vec(),
                ],
                run_slack_command,
            ),
            "discord_interaction" => (
                "discord_interaction",
                discord_seeds(&read),
                run_discord,
            ),
            "config" => ("config", config_seeds(), run_config),
            "slash_command" => (
                "slash_command",
                [
                    "/rollback|shop production to 0123456",
                    "/rollback|",
                    "/lock|shop staging deploys are frozen",
                    "/unlock|web dev",
                    "/releases|shop staging 20",
                    "/flag|shop production checkout.v2 on because",
                    "/flag|web staging new-ui rollout 50%",
                    "/flag|shop staging list",
                    "/rolback|help",
                ]
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect(),
                run_slash_command,
            ),
            "image_ref" => (
                "image_ref",
                [
                    format!("\u{0}ghcr.io/acme/shop:{SHA}"),
                    format!("\u{0}ghcr.io/acme/shop:sha-{}", &SHA[..7]),
                    format!("\u{1}localhost:5000/shop:main-{}-2026", &SHA[..12]),
                    "\u{0}ghcr.io/acme/shop@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945".to_owned(),
                    "\u{2}registry.example.com:443/team/app:v1.2.3-rc.1".to_owned(),
                    "\u{0}ghcr.io/acme/shop:latest".to_owned(),
                ]
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect(),
                run_image,
            ),
            _ => return None,
        };
    Some(Target { name, seeds, run })
}

/// SPEC §5: a refusal is a 4xx in `statuses`, with an error word and a detail.
fn check_refusal(error: &ApiError, statuses: &[u16]) {
    assert!(
        statuses.contains(&error.status.as_u16()),
        "refused with {} ({})",
        error.status,
        error.detail
    );
    assert!(!error.error.is_empty(), "an error without its word");
    assert!(!error.detail.trim().is_empty(), "an error without detail");
}

/// The field a detail like `smoke.checks[1].status: …` names.
fn named_field(detail: &str) -> Option<&str> {
    let (field, _) = detail.split_once(": ")?;
    let path_like = !field.is_empty()
        && field != "."
        && field
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'[' | b']' | b'/'));
    path_like.then_some(field)
}

/// The first words of a message with the values in it blanked: a new kind of message, not a
/// new value, is what makes an outcome new.
fn shape(message: &str) -> String {
    message
        .split_whitespace()
        .take(4)
        .map(|word| {
            if word.contains(['`', '"', '\'', '[']) || word.bytes().any(|b| b.is_ascii_digit()) {
                "_"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn refusal_signature(error: &ApiError) -> String {
    let field = named_field(&error.detail).unwrap_or("-");
    let field = if field.contains('[') { "[list]" } else { field };
    let rest = error
        .detail
        .split_once(": ")
        .map_or(error.detail.as_str(), |(_, rest)| rest);
    format!("{} {field} {}", error.status.as_u16(), shape(rest))
}

fn ci_seeds() -> Vec<Vec<u8>> {
    [
        format!(r#"{{"event":"build","app":"shop","sha":"{SHA}","image":"ghcr.io/acme/shop:{SHA}","ref":"refs/heads/main","author":"alice","message":"Fix checkout","committed_at":"2026-11-26T10:00:00Z","url":"https://ci.example/run/1"}}"#),
        format!(r#"{{"event":"deployed","app":"shop","environment":"staging","sha":"{SHA}","status":"success","smoke":{{"status":"passed","checks":[{{"name":"health","status":"passed","duration_ms":12,"detail":"200 OK"}}]}},"url":"https://ci.example/run/1"}}"#),
        format!(r#"{{"event":"deployed","app":"shop","environment":"production","sha":"{SHA}","status":"failure","deployment_id":"42","image":"ghcr.io/acme/shop:{SHA}","detail":"boom"}}"#),
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn run_ci(input: &[u8]) -> String {
    match greenlight::http::events::parse_event(input) {
        Ok(event) => {
            let _ = event.natural_key();
            match event {
                CiEvent::Build(build) => {
                    assert_eq!(build.sha.as_str().len(), 40);
                    format!("build {}", build.committed_at.is_some())
                }
                CiEvent::Deployed(deployed) => format!(
                    "deployed {} {}",
                    deployed.smoke.map_or(0, |smoke| smoke.checks.len().min(3)),
                    deployed.deployment_id.is_some()
                ),
            }
        }
        Err(error) => {
            check_refusal(&error, &[400, 422]);
            if error.status.as_u16() == 422 {
                assert!(
                    named_field(&error.detail).is_some(),
                    "a 422 without a field: {}",
                    error.detail
                );
            }
            refusal_signature(&error)
        }
    }
}

/// The first byte picks the event and the content type; the rest is the body.
const GITHUB_EVENTS: &[&str] = &[
    "ping",
    "deployment_status",
    "workflow_run",
    "deployment_protection_rule",
];

fn github_seeds(read: &dyn Fn(&str) -> Vec<u8>) -> Vec<Vec<u8>> {
    let with = |selector: u8, body: Vec<u8>| {
        let mut input = vec![selector];
        input.extend(body);
        input
    };
    let deployment: serde_json::Value =
        serde_json::from_slice(&read("github/deployment/0-created.json")).expect("JSON");
    let rule = serde_json::json!({
        "action": "requested", "environment": "production", "event": "push",
        "deployment_callback_url": "https://api.github.com/repos/Codertocat/Hello-World/actions/runs/1/deployment_protection_rule",
        "deployment": deployment["deployment"], "installation": {"id": 42},
        "repository": deployment["repository"], "sender": deployment["sender"],
    });
    let form = |json: &[u8]| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &String::from_utf8_lossy(json))
            .finish()
            .into_bytes()
    };
    let mut seeds = vec![
        with(0, read("github/ping/0-event.json")),
        with(1, read("github/deployment_status/0-created.json")),
        with(1, read("github/deployment_status/3-created.json")),
        with(2, read("github/workflow_run/0-completed.json")),
        with(2, read("github/workflow_run/3-requested.json")),
        with(3, rule.to_string().into_bytes()),
        with(4, form(&read("github/ping/1-event.json"))),
        with(5, form(&read("github/deployment_status/1-created.json"))),
    ];
    // Smaller seeds mutate faster; the fixtures are 5-20 KB.
    seeds.push(with(
        1,
        serde_json::json!({"deployment_status": {"state": "success", "environment": "staging"},
            "deployment": {"sha": SHA, "payload": "{\"image\":\"x\"}"},
            "repository": {"full_name": "acme/shop"}})
        .to_string()
        .into_bytes(),
    ));
    seeds
}

fn run_github(input: &[u8]) -> String {
    let Some((&selector, body)) = input.split_first() else {
        return "empty".to_owned();
    };
    let event = GITHUB_EVENTS[usize::from(selector) % GITHUB_EVENTS.len()];
    let content_type = match selector / 4 % 3 {
        0 => Some("application/json"),
        1 => Some("application/x-www-form-urlencoded; charset=utf-8"),
        _ => None,
    };
    match parse_delivery(event, content_type, body) {
        Ok(GithubDelivery::DeploymentStatus(status)) => {
            let _ = status.deployment.payload_str("image");
            let _ = status.deployment.payload_str("app");
            let _ = CommitSha::parse(status.deployment.sha.trim());
            "deployment_status".to_owned()
        }
        Ok(GithubDelivery::DeploymentProtectionRule(rule)) => {
            let _ = rule.deployment.payload_str("app");
            let _ = url::Url::parse(rule.deployment_callback_url.trim());
            "rule".to_owned()
        }
        Ok(GithubDelivery::WorkflowRun(run)) => {
            let _ = CommitSha::parse(run.workflow_run.head_sha.trim());
            "workflow_run".to_owned()
        }
        Ok(GithubDelivery::Ping(_)) => "ping".to_owned(),
        Ok(GithubDelivery::OtherAction(action)) => format!("ignored {event} action {action:?}"),
        Ok(GithubDelivery::Ignored) => format!("ignored {event}"),
        Err(error) => {
            check_refusal(&error, &[400]);
            format!("{event} {}", refusal_signature(&error))
        }
    }
}

fn slack_interaction_seeds(read: &dyn Fn(&str) -> Vec<u8>) -> Vec<Vec<u8>> {
    let form = |json: &[u8]| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &String::from_utf8_lossy(json))
            .finish()
            .into_bytes()
    };
    vec![
        form(&read("slack/block_actions_docs.json")),
        form(&read("slack/block_actions_bolt_python_test.json")),
        form(br#"{"type":"view_submission","user":{"id":"U1"},"view":{"callback_id":"greenlight_reject_reason","private_metadata":"7","state":{"values":{"reason":{"reason":{"value":"broken"}}}}}}"#),
        form(br#"{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"greenlight_approve","value":"7"}],"response_url":"https://hooks.slack.com/x"}"#),
        br#"{"type":"url_verification","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#.to_vec(),
    ]
}

fn run_slack_interaction(input: &[u8]) -> String {
    match parse_interaction(input) {
        Ok(_) => "ok".to_owned(),
        Err(error) => {
            check_refusal(&error, &[400]);
            assert!(
                error.detail.starts_with("payload: "),
                "a refusal that does not name payload: {}",
                error.detail
            );
            refusal_signature(&error)
        }
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

/// Parses like the route does after the form, and checks what every answer must satisfy.
fn parse_words(command: &str, text: &str, catalog: &Catalog) -> String {
    match chat::parse(command, text, catalog) {
        Ok(parsed) => {
            if let Some(app) = parsed.app() {
                assert!(
                    catalog.apps.iter().any(|(known, _)| known == app),
                    "an app not in the catalog: {app}"
                );
            }
            let _ = chat::help(None);
            format!("ok {:?}", std::mem::discriminant(&parsed))
        }
        Err(error) => {
            let text = error.to_string();
            let known: Vec<String> = COMMANDS
                .iter()
                .map(|spec| format!("/{}", spec.name))
                .chain(catalog.apps.iter().flat_map(|(app, environments)| {
                    std::iter::once(app.to_string())
                        .chain(environments.iter().map(|e| e.to_string()))
                }))
                .chain(["on", "off", "rollout"].map(str::to_owned))
                .collect();
            for suggestion in text.split("Did you mean `").skip(1) {
                let suggestion = suggestion.split('`').next().unwrap_or_default();
                assert!(
                    known.iter().any(|name| name == suggestion),
                    "suggested {suggestion:?}, which is not from the table or the catalog"
                );
            }
            let command = chat::spec(&error.command).map_or("?", |spec| spec.name);
            format!("err {command} {}", shape(&error.message))
        }
    }
}

fn run_slack_command(input: &[u8]) -> String {
    match parse_command(input) {
        Ok(SlackCommandRequest::SslCheck) => "ssl_check".to_owned(),
        Ok(SlackCommandRequest::Command(command)) => {
            assert!(!command.command.is_empty() && !command.user_id.is_empty());
            parse_words(&command.command, &command.text, &catalog())
        }
        Err(error) => {
            check_refusal(&error, &[400]);
            refusal_signature(&error)
        }
    }
}

fn discord_seeds(read: &dyn Fn(&str) -> Vec<u8>) -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = [
        "discord/component_interaction_button.json",
        "discord/component_interaction_select.json",
        "discord/message_command_interaction.json",
        "discord/slash_command_interaction.json",
        "discord/user_command_interaction.json",
    ]
    .iter()
    .map(|path| read(path))
    .collect();
    seeds.push(br#"{"id":"1","type":1}"#.to_vec());
    seeds.push(br#"{"id":"2","type":5,"token":"t","member":{"user":{"id":"42"}},"data":{"custom_id":"reject_reason:7","components":[{"type":1,"components":[{"type":4,"custom_id":"reason","value":"typo"}]}]}}"#.to_vec());
    seeds.push(br#"{"id":"3","type":2,"token":"t","user":{"id":"42"},"data":{"name":"rollback","options":[{"name":"app","type":3,"value":"shop"},{"name":"to","type":3,"value":"0123456"}]}}"#.to_vec());
    seeds
}

fn run_discord(input: &[u8]) -> String {
    // The custom ids a component may carry, read as the route reads them.
    if let Ok(text) = std::str::from_utf8(input) {
        if text.len() < 64 {
            if let Some(action) = ButtonAction::parse(text) {
                assert_eq!(ButtonAction::parse(&action.custom_id()), Some(action));
            }
        }
    }
    match parse_discord(input) {
        Ok(_) => "ok".to_owned(),
        Err(error) => {
            check_refusal(&error, &[400]);
            assert!(
                named_field(&error.detail).is_some() || error.detail.starts_with("the body "),
                "a refusal without a field: {}",
                error.detail
            );
            refusal_signature(&error)
        }
    }
}

fn config_seeds() -> Vec<Vec<u8>> {
    vec![
        include_bytes!("../../greenlight.example.toml").to_vec(),
        format!(
            r#"
[slack]
bot_token = "xoxb-1"
signing_secret = ["${{SECRET}}", "old"]
[discord]
application_id = "1100000000000000001"
public_key = "{DISCORD_PUBLIC_KEY}"
bot_token = "discord-token"
[people]
alice = {{ slack = "U012AB3CD", github = "alice" }}
[groups]
sre = ["alice"]
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "ci"
channels = {{ slack = "C0DEPLOYS" }}
[apps.shop.environments.staging]
[apps.shop.environments.production]
after = "staging"
reviewers = ["group:sre"]
deploy = {{ kind = "command", run = ["echo", "{{image}}"], timeout = "15m" }}
"#
        )
        .into_bytes(),
    ]
}

fn config_env(name: &str) -> Option<String> {
    match name {
        "DISCORD_PUBLIC_KEY" => Some(DISCORD_PUBLIC_KEY.to_owned()),
        "DISCORD_APPLICATION_ID" => Some("1100000000000000001".to_owned()),
        "UNSET" | "GREENLIGHT_LISTEN" | "GREENLIGHT_DATABASE_URL" => None,
        other => Some(format!("secret-{}", other.to_ascii_lowercase())),
    }
}

fn run_config(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    let result = Config::from_toml_str(&text, &config_env);
    let _ = greenlight::config::check_config_report(&result);
    match result {
        Ok(config) => format!("ok {} apps", config.apps.len().min(3)),
        Err(errors) => {
            assert!(!errors.problems().is_empty(), "an error without problems");
            let mut signature = String::new();
            for problem in &errors {
                assert!(
                    !problem.path.is_empty() || problem.message.starts_with("invalid TOML"),
                    "a problem without a key path: {problem}"
                );
                if signature.is_empty() {
                    signature = format!("{} {}", problem.path, shape(&problem.message));
                }
            }
            signature
        }
    }
}

/// `command|text`, as Slack sends them in two fields.
fn run_slash_command(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    let (command, words) = text.split_once('|').unwrap_or(("/releases", &text));
    let mut signature = parse_words(command, words, &catalog());
    let mut one = catalog();
    one.apps.truncate(1);
    signature.push_str(&parse_words(command, words, &one));
    // Discord's typed options take the same words.
    let name = command.trim().trim_start_matches('/');
    let options: Vec<(String, String)> = chat::spec(name)
        .map(|spec| {
            spec.options
                .iter()
                .zip(words.split_whitespace())
                .map(|(option, word)| (option.name.to_owned(), word.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let _ = chat::parse(name, &chat::words_from_options(name, &options), &catalog());
    signature
}

const REPOSITORIES: &[&str] = &[
    "ghcr.io/acme/shop",
    "localhost:5000/shop",
    "registry.example.com:443/team/app",
];

/// The first byte picks the repository (and whether version tags are allowed); the rest is the
/// reference.
fn run_image(input: &[u8]) -> String {
    let Some((&selector, reference)) = input.split_first() else {
        return "empty".to_owned();
    };
    let repository = REPOSITORIES[usize::from(selector) % REPOSITORIES.len()];
    let allow = selector & 0x80 != 0;
    let reference = String::from_utf8_lossy(reference);
    let sha = CommitSha::parse(SHA).expect("sha");
    let outcome = ImageRef::parse(&reference, repository, &sha, allow);
    if let Ok(image) = &outcome {
        let again = ImageRef::parse(&image.to_string(), repository, &sha, allow);
        assert_eq!(
            again.as_ref(),
            Ok(image),
            "an accepted reference does not round-trip"
        );
    }
    // The SHA rule, for plain `repository:tag` references.
    if let Some(tag) = reference
        .strip_prefix(repository)
        .and_then(|rest| rest.strip_prefix(':'))
    {
        if !allow && !tag.contains('@') && !reference.chars().any(char::is_whitespace) {
            assert_eq!(
                outcome.is_ok(),
                tag_carries_sha(tag),
                "tag {tag:?}: {outcome:?}"
            );
        }
    }
    match outcome {
        Ok(image) => format!("ok {} {}", image.tag.is_some(), image.digest.is_some()),
        Err(error) => {
            let text = error.to_string();
            assert!(
                text.contains(repository) || text.contains(SHA),
                "a refusal that says nothing to send instead: {text}"
            );
            format!("err {:?}", std::mem::discriminant(&error))
        }
    }
}

/// The model: a valid tag with a maximal hex run of 7-40 digits that starts the SHA.
fn tag_carries_sha(tag: &str) -> bool {
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
            .any(|run| (7..=40).contains(&run.len()) && SHA.starts_with(&run.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smoke run: every target starts from its seeds and survives a few hundred mutations.
    /// The real campaign is `fuzz_parsers` in release mode, off CI.
    #[test]
    fn every_parser_survives_a_short_fuzz_run() {
        for target in targets(&crate::fixtures::dir()) {
            let report = run(&target, 300, 1, Duration::from_secs(20));
            assert!(report.execs >= target.seeds.len() as u64);
            let findings: Vec<(String, &String)> = report
                .findings
                .iter()
                .map(|(input, message)| (String::from_utf8_lossy(input).into_owned(), message))
                .collect();
            assert!(findings.is_empty(), "{}: {findings:?}", target.name);
        }
    }

    #[test]
    fn the_image_model_agrees_with_the_examples() {
        assert!(tag_carries_sha(&SHA[..7]));
        assert!(tag_carries_sha(&format!("sha-{}", &SHA[..9])));
        assert!(!tag_carries_sha(&SHA[..6]));
        assert!(!tag_carries_sha("latest"));
        assert!(!tag_carries_sha(&format!("a{}", &SHA[..9])));
    }
}
