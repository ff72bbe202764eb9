//! Rule-by-rule tests of configuration checking: each case is a small file and the exact
//! problems it must produce (no fewer, and no confusing extra ones).

use std::collections::HashMap;
use std::time::Duration;

use greenlight_commands::{AppName, EnvironmentName, PersonName, Platform};

use super::*;

const PUBLIC_KEY: &str = "8e4ce25b4a1c3e1f1a7a8d3a32c1c0b0f7e6d5c4b3a29180716253443526170a";

/// Platforms, people and groups that the cases below refer to.
fn base() -> String {
    format!(
        r#"
[slack]
bot_token = "xoxb-1"
signing_secret = "slack-signing-value"

[discord]
application_id = "1100000000000000001"
public_key = "{PUBLIC_KEY}"
bot_token = "discord-token"

[people]
alice = {{ slack = "U012AB3CD", github = "alice" }}
bob = {{ slack = "U045EF6GH", github = "bob-gh" }}
carol = {{ discord = "123456789012345678", email = "carol@example.com" }}

[groups]
sre = ["alice", "bob"]
"#
    )
}

/// `base()` plus an app `shop` whose production environment gets `production` as extra lines.
fn with_production(production: &str) -> String {
    format!(
        r#"{}
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "ci"
channels = {{ slack = "C0DEPLOYS" }}

[apps.shop.environments.staging]

[apps.shop.environments.production]
after = "staging"
{production}
"#,
        base()
    )
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_toml_str(text, &no_env)
}

fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.problems().iter().map(ToString::to_string).collect(),
    }
}

fn valid(text: &str) -> Config {
    parse(text).unwrap_or_else(|errors| panic!("{errors}"))
}

#[test]
fn the_base_cases_are_valid() {
    let config = valid(&with_production(r#"reviewers = ["group:sre"]"#));
    let shop = &config.apps[0];
    let names: Vec<&str> = shop.environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["staging", "production"]);
    let gate = shop.environments[1].gate.as_ref().expect("gated");
    assert_eq!(gate.required_approvals, 1);
    assert!(gate.prevent_self_review);
    assert_eq!(gate.wait_timer, Duration::ZERO);
    assert_eq!(gate.approval_timeout, Duration::from_secs(24 * 3600));
    assert_eq!(gate.reminder_every, None);
    let production = &shop.environments[1];
    assert!(production.auto_rollback && production.lock_after_rollback);
    assert!(
        production.deploy.is_none()
            && production.smoke.is_empty()
            && production.flags_token.is_none()
    );
    assert!(shop.environments[0].gate.is_none());
    assert!(!shop.allow_version_tags);
}

#[test]
fn reviewer_and_approval_rules() {
    let p = "apps.shop.environments.production";
    for (production, expected) in [
        (
            r#"reviewers = ["group:sre2", "alice"]"#,
            vec![format!(r#"{p}.reviewers[0]: unknown group "sre2"; did you mean "sre"?"#)],
        ),
        (
            r#"reviewers = ["alcie"]"#,
            vec![format!(r#"{p}.reviewers[0]: unknown person "alcie"; did you mean "alice"?"#)],
        ),
        (
            r#"reviewers = ["sre"]"#,
            vec![format!(r#"{p}.reviewers[0]: unknown person "sre"; for the group write "group:sre""#)],
        ),
        (
            r#"reviewers = ["Alice"]"#,
            vec![format!(r#"{p}.reviewers[0]: person name must be 1-63 characters of lowercase letters, digits, '-' or '_', starting with a letter or digit; got "Alice""#)],
        ),
        (
            r#"reviewers = ["alice", "group:sre", "alice"]"#,
            vec![format!(r#"{p}.reviewers[2]: "alice" is listed twice"#)],
        ),
        (
            "reviewers = []",
            vec![format!("{p}.reviewers: must list at least one reviewer")],
        ),
        (
            "",
            vec![format!(r#"{p}.reviewers: missing; a gated environment (one with `after`) needs reviewers, e.g. ["group:sre"]"#)],
        ),
        (
            "reviewers = \"group:sre\"",
            vec![format!("{p}.reviewers: expected an array of people or group:NAME, found a string")],
        ),
        (
            "reviewers = [\"group:sre\", \"alice\"]\nrequired_approvals = 3",
            vec![format!("{p}.required_approvals: 3 approvals required but the reviewers are only 2 people (alice, bob)")],
        ),
        (
            "reviewers = [\"carol\"]\nrequired_approvals = 2",
            vec![format!("{p}.required_approvals: 2 approvals required but the reviewers are only 1 person (carol)")],
        ),
        (
            "reviewers = [\"group:sre\"]\nrequired_approvals = 0",
            vec![format!("{p}.required_approvals: must be at least 1")],
        ),
        (
            "reviewers = [\"group:sre\"]\nrequired_approvals = \"two\"",
            vec![format!("{p}.required_approvals: expected a whole number, found a string")],
        ),
        (
            "reviewers = [\"group:sre\"]\nwait_timer = \"2d\"\napproval_timeout = \"1d\"",
            vec![format!("{p}.wait_timer: must be shorter than approval_timeout (1day), or requests expire before approvals open")],
        ),
        (
            "reviewers = [\"group:sre\"]\napproval_timeout = \"0s\"\nreminder_every = \"0s\"",
            vec![
                format!("{p}.approval_timeout: must be longer than 0s"),
                format!("{p}.reminder_every: must be longer than 0s"),
            ],
        ),
        (
            "reviewers = [\"group:sre\"]\nprevent_self_review = \"no\"",
            vec![format!("{p}.prevent_self_review: expected true or false, found a string")],
        ),
    ] {
        assert_eq!(problems(&with_production(production)), expected, "{production}");
    }
}

#[test]
fn after_must_name_a_sibling_without_cycles() {
    let app = |staging: &str, production: &str| {
        format!(
            r#"{}
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "ci"
channels = {{ slack = "C0DEPLOYS" }}
[apps.shop.environments.staging]
{staging}
[apps.shop.environments.production]
{production}
"#,
            base()
        )
    };
    let gated = |after: &str| format!("after = \"{after}\"\nreviewers = [\"alice\"]");
    for (staging, production, expected) in [
        (
            String::new(),
            gated("stagin"),
            vec![r#"apps.shop.environments.production.after: unknown environment "stagin"; did you mean "staging"? (this app has: staging)"#.to_owned()],
        ),
        (
            String::new(),
            gated("production"),
            vec!["apps.shop.environments.production.after: an environment cannot come after itself".to_owned()],
        ),
        (
            gated("production"),
            gated("staging"),
            vec!["apps.shop.environments.staging.after: environments form a cycle: staging → production → staging; the first environment must have no `after`".to_owned()],
        ),
        (
            "reviewers = [\"alice\"]\nwait_timer = \"5m\"".to_owned(),
            gated("staging"),
            vec![
                r#"apps.shop.environments.staging.reviewers: only applies to a gated environment (one with `after`); add `after = "production"` to gate this one"#.to_owned(),
                r#"apps.shop.environments.staging.wait_timer: only applies to a gated environment (one with `after`); add `after = "production"` to gate this one"#.to_owned(),
            ],
        ),
    ] {
        assert_eq!(problems(&app(&staging, &production)), expected, "{staging} / {production}");
    }
}

#[test]
fn deployer_rules() {
    let p = "apps.shop.environments.production.deploy";
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            r#"{ kind = "ftp" }"#,
            vec![format!("{p}.kind: unknown deployer \"ftp\", expected one of command, http, github-workflow, github-protection-rule")],
        ),
        (
            r#"{ kind = "comand", run = ["x"] }"#,
            vec![format!("{p}.kind: unknown deployer \"comand\", expected one of command, http, github-workflow, github-protection-rule; did you mean \"command\"?")],
        ),
        (
            r#"{ run = ["x"] }"#,
            vec![format!("{p}.kind: missing; one of command, http, github-workflow, github-protection-rule")],
        ),
        (
            r#"{ kind = "command", run = [] }"#,
            vec![format!("{p}.run: must name the program to run")],
        ),
        (
            r#"{ kind = "command", run = "flyctl deploy" }"#,
            vec![format!("{p}.run: expected an array of arguments like [\"flyctl\", \"deploy\"]: there is no shell to split a string")],
        ),
        (
            r#"{ kind = "command", run = ["flyctl deploy", "{image}"] }"#,
            vec![format!("{p}.run[0]: the program name contains whitespace; give each argument separately, like [\"flyctl\", \"deploy\"]")],
        ),
        (
            r#"{ kind = "command", run = ["flyctl", "--image", "{imgae}"] }"#,
            vec![format!("{p}.run[2]: unknown placeholder {{imgae}}; did you mean \"image\"?; available: {{image}}, {{sha}}, {{app}}, {{environment}}, {{deployment_id}}")],
        ),
        (
            r#"{ kind = "command" }"#,
            vec![format!("{p}.run: missing; the program and its arguments, e.g. [\"flyctl\", \"deploy\", \"--image\", \"{{image}}\"]")],
        ),
        (
            r#"{ kind = "http", url = "https://deploy.example/hook" }"#,
            vec![format!("{p}.secret: missing; the secret that signs requests (X-Greenlight-Signature), e.g. \"${{SHOP_HOOK_SECRET}}\"")],
        ),
        (
            r#"{ kind = "http", url = "https://deploy.example/hook", secret = "s", run = ["x"], timeout = "forever" }"#,
            vec![
                format!("{p}.timeout: invalid duration \"forever\": expected a number and a unit, like \"30s\", \"5m\" or \"24h\""),
                format!("{p}.run: unknown key; expected one of kind, url, secret, timeout"),
            ],
        ),
        (
            r#"{ kind = "github-workflow", workflow = "deploy.yml", ref = "main" }"#,
            vec![
                format!("{p}: a github-workflow deploy needs the app's `repository` (owner/name)"),
                format!("{p}: a github-workflow deploy needs a [github] section"),
            ],
        ),
        (
            r#"{ kind = "github-workflow", workflow = ".github/workflows/deploy.yml" }"#,
            vec![
                format!("{p}.workflow: give the workflow's file name (like \"deploy.yml\"), not its path"),
                format!("{p}.ref: missing; the branch or tag to run it on, e.g. \"main\""),
            ],
        ),
    ];
    for (deploy, expected) in cases {
        let text = with_production(&format!("reviewers = [\"group:sre\"]\ndeploy = {deploy}"));
        assert_eq!(problems(&text), expected, "{deploy}");
    }
}

#[test]
fn github_deployers_need_github_credentials() {
    let app = |github: &str, deploy: &str| {
        format!(
            r#"{}
{github}
[apps.shop]
repository = "acme/shop"
image = "ghcr.io/acme/shop"
ci_token = "ci"
channels = {{ slack = "C0DEPLOYS" }}
[apps.shop.environments.staging]
[apps.shop.environments.production]
after = "staging"
reviewers = ["alice"]
deploy = {deploy}
"#,
            base()
        )
    };
    let webhook_only = "[github]\nwebhook_secret = \"w\"";
    let with_app = "[github]\nwebhook_secret = \"w\"\napp_id = 42\nprivate_key_file = \"key.pem\"";
    let p = "apps.shop.environments.production.deploy";
    for (github, deploy, expected) in [
        (
            webhook_only,
            r#"{ kind = "github-workflow", workflow = "deploy.yml", ref = "main" }"#,
            vec![format!("{p}: a github-workflow deploy needs github.token, or github.app_id and github.private_key_file")],
        ),
        (
            webhook_only,
            r#"{ kind = "github-protection-rule" }"#,
            vec![format!("{p}: a github-protection-rule deploy needs a GitHub App: github.app_id and github.private_key_file")],
        ),
        (with_app, r#"{ kind = "github-workflow", workflow = "deploy.yml", ref = "main" }"#, vec![]),
        (with_app, r#"{ kind = "github-protection-rule" }"#, vec![]),
        (
            "[github]\nwebhook_secret = \"w\"\ntoken = \"t\"",
            r#"{ kind = "github-workflow", workflow = "deploy.yml", ref = "release", timeout = "1h" }"#,
            vec![],
        ),
    ] {
        assert_eq!(problems(&app(github, deploy)), expected, "{github} / {deploy}");
    }

    let config = valid(&app(with_app, r#"{ kind = "github-protection-rule" }"#));
    let github = config.github.as_ref().expect("github");
    assert_eq!(
        github.app,
        Some(GithubApp {
            app_id: 42,
            private_key_file: "key.pem".into()
        })
    );
    assert_eq!(github.api_url.as_str(), "https://api.github.com/");
    let deploy = config.apps[0].environments[1]
        .deploy
        .as_ref()
        .expect("deploy");
    assert_eq!(
        (deploy.kind(), deploy.timeout()),
        ("github-protection-rule", Duration::from_secs(1800))
    );
}

#[test]
fn protection_rules_only_gate_gated_environments() {
    let text = format!(
        r#"{}
[github]
webhook_secret = "w"
app_id = 42
private_key_file = "key.pem"
[apps.shop]
repository = "acme/shop"
image = "ghcr.io/acme/shop"
ci_token = "ci"
[apps.shop.environments.production]
deploy = {{ kind = "github-protection-rule" }}
"#,
        base()
    );
    assert_eq!(
        problems(&text),
        ["apps.shop.environments.production.deploy.kind: github-protection-rule needs a gated environment (one with `after` and `reviewers`)"]
    );
}

#[test]
fn command_deploys_keep_their_arguments() {
    let text = with_production(
        r#"reviewers = ["alice"]
deploy = { kind = "command", run = ["flyctl", "deploy", "--image", "{image}", "-a", "shop", "--env={\"A\":1}"], timeout = "15m" }"#,
    );
    let config = valid(&text);
    match config.apps[0].environments[1].deploy.as_ref() {
        Some(Deployer::Command { run, timeout, .. }) => {
            assert_eq!(run[3], "{image}");
            assert_eq!(run.len(), 7);
            assert_eq!(*timeout, Duration::from_secs(900));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn smoke_check_rules() {
    let p = "apps.shop.environments.production.smoke";
    for (smoke, expected) in [
        (
            r#"[{ name = "health", url = "ftp://shop.example/health" }]"#,
            vec![format!(r#"{p}[0].url: invalid URL "ftp://shop.example/health": must start with http:// or https://"#)],
        ),
        (
            r#"[{ name = "a", url = "https://x.example" }, { name = "a", url = "https://y.example" }]"#,
            vec![format!(r#"{p}[1].name: "a" is the name of another smoke check here"#)],
        ),
        (
            r#"[{ url = "https://x.example", expect_status = 700, timeout = "0s", retries = 1000 }]"#,
            vec![
                format!(r#"{p}[0].name: missing; a short name shown on the card, e.g. "health""#),
                format!("{p}[0].expect_status: 700 is not an HTTP status (100-599)"),
                format!("{p}[0].timeout: must be longer than 0s"),
                format!("{p}[0].retries: must be at most 100"),
            ],
        ),
        (
            r#"[{ name = "a", url = "https://x.example", expect = 200 }]"#,
            vec![format!("{p}[0].expect: unknown key; expected one of name, url, expect_status, expect_json, timeout, retries, retry_delay")],
        ),
        (
            r#"[{ name = "a", url = "https://x.example", expect_json = { "a..b" = 1, at = 1979-05-27 } }]"#,
            vec![
                format!("{p}[0].expect_json.\"a..b\": a JSON path cannot have an empty segment"),
                format!("{p}[0].expect_json.at: JSON has no dates; write the expected value as a string"),
            ],
        ),
        (
            r#"{ name = "a", url = "https://x.example" }"#,
            vec![format!("{p}: expected an array of smoke checks, found a table")],
        ),
    ] {
        let text = with_production(&format!("reviewers = [\"alice\"]\nsmoke = {smoke}"));
        assert_eq!(problems(&text), expected, "{smoke}");
    }
    assert_eq!(
        problems(&with_production(
            "reviewers = [\"alice\"]\nsmoke_settle = \"30s\""
        )),
        ["apps.shop.environments.production.smoke_settle: has no effect without smoke checks"]
    );
}

#[test]
fn smoke_checks_have_defaults_and_flattened_json_paths() {
    let text = with_production(
        r#"reviewers = ["alice"]
[[apps.shop.environments.production.smoke]]
name = "status"
url = "https://shop.example/status"
expect_status = 200
expect_json = { "checks.database" = "ok", cache.hits = 3, up = true, tags = ["a", "b"] }

[[apps.shop.environments.production.smoke]]
name = "health"
url = "https://shop.example/health"
"#,
    );
    let config = valid(&text);
    let smoke = &config.apps[0].environments[1].smoke;
    assert_eq!(smoke[0].expect_status, ExpectStatus::Exactly(200));
    let expectations: Vec<(&str, serde_json::Value)> = smoke[0]
        .expect_json
        .iter()
        .map(|e| (e.path.as_str(), e.value.clone()))
        .collect();
    assert_eq!(
        expectations,
        [
            ("checks.database", serde_json::json!("ok")),
            ("cache.hits", serde_json::json!(3)),
            ("up", serde_json::json!(true)),
            ("tags", serde_json::json!(["a", "b"])),
        ]
    );
    assert_eq!(
        smoke[0].expect_json[0].segments().collect::<Vec<_>>(),
        ["checks", "database"]
    );
    let health = &smoke[1];
    assert_eq!(health.expect_status, ExpectStatus::AnySuccess);
    assert!(health.expect_json.is_empty());
    assert_eq!(
        (health.timeout, health.retries, health.retry_delay),
        (Duration::from_secs(5), 0, Duration::from_secs(1))
    );
}

#[test]
fn app_rules() {
    let app = |body: &str| {
        format!(
            "{}\n[apps.shop]\n{body}\n[apps.shop.environments.production]\n",
            base()
        )
    };
    for (body, expected) in [
        (
            "ci_token = \"ci\"",
            vec![r#"apps.shop.image: missing; the image repository releases come from, without a tag, e.g. "ghcr.io/acme/shop""#],
        ),
        (
            "image = \"ghcr.io/acme/shop\"",
            vec![r#"apps.shop.ci_token: missing; the bearer token CI sends to /api/v1/events, e.g. "${SHOP_CI_TOKEN}""#],
        ),
        (
            "image = \"ghcr.io/acme/shop:latest\"\nci_token = \"ci\"",
            vec![r#"apps.shop.image: invalid image "ghcr.io/acme/shop:latest": must not include a tag; each release brings its own tag or digest"#],
        ),
        (
            "image = \"ghcr.io/acme/shop\"\nci_token = \"ci\"\nrepository = \"shop\"",
            vec![r#"apps.shop.repository: invalid repository "shop": expected owner/name, like "acme/shop""#],
        ),
        (
            "image = \"ghcr.io/acme/shop\"\nci_token = \"ci\"\nchannels = { slack = \"#deploys\", discord = \"deploys\" }",
            vec![
                r##"apps.shop.channels.slack: "#deploys" is a channel name; use the channel id (like "C0123ABCD") shown at the bottom of the channel's details"##,
                r#"apps.shop.channels.discord: invalid Discord id "deploys": expected a snowflake (digits only, like "80351110224678912"); copy it with Developer Mode on"#,
            ],
        ),
        (
            "image = \"ghcr.io/acme/shop\"\nci_token = \"ci\"\noperators = [\"group:ops\"]\nallow_version_tags = 1",
            vec![
                r#"apps.shop.allow_version_tags: expected true or false, found an integer"#,
                r#"apps.shop.operators[0]: unknown group "ops""#,
            ],
        ),
        (
            "image = \"ghcr.io/acme/shop\"\nci_token = \"ci\"\nchanels = {}",
            vec![r#"apps.shop.chanels: unknown key; did you mean "channels"?"#],
        ),
    ] {
        assert_eq!(problems(&app(body)), expected, "{body}");
    }

    assert_eq!(
        problems(&format!("{}\n[apps.Shop]\nimage = \"shop\"\nci_token = \"ci\"\n[apps.Shop.environments.production]\n", base())),
        [r#"apps.Shop: app name must be 1-63 characters of lowercase letters, digits, '-' or '_', starting with a letter or digit; got "Shop""#]
    );
    assert_eq!(
        problems(&format!("{}\n[apps.shop]\nimage = \"shop\"\nci_token = \"ci\"\n", base())),
        ["apps.shop.environments: missing; define at least one, e.g. [apps.shop.environments.production]"]
    );
    assert_eq!(
        problems(&format!(
            "{}\n[apps.shop]\nimage = \"shop\"\nci_token = \"ci\"\n[apps.shop.environments]\n",
            base()
        )),
        ["apps.shop.environments: must define at least one environment"]
    );
}

#[test]
fn channels_need_their_platform_and_gates_need_a_channel() {
    let text = r#"
[people]
alice = { slack = "U012AB3CD" }
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "ci"
channels = { slack = "C0DEPLOYS", discord = "1100000000000000000" }
[apps.shop.environments.production]

[apps.web]
image = "ghcr.io/acme/web"
ci_token = "ci-web"
[apps.web.environments.staging]
[apps.web.environments.production]
after = "staging"
reviewers = ["alice"]
"#;
    assert_eq!(
        problems(text),
        [
            "apps.shop.channels.slack: needs a [slack] section: Slack is off without one",
            "apps.shop.channels.discord: needs a [discord] section: Discord is off without one",
            "apps.web.channels: missing; approval cards for gated environments need a Slack or Discord channel",
        ]
    );
}

#[test]
fn people_and_group_rules() {
    let people = |people: &str, groups: &str| format!("[people]\n{people}\n[groups]\n{groups}\n");
    for (people_toml, groups_toml, expected) in [
        (
            "alice = { slack = \"U012AB3CD\" }\nbob = { slack = \"U012AB3CD\" }",
            "",
            vec![r#"people.bob.slack: "U012AB3CD" is already alice's slack identity"#],
        ),
        (
            "alice = { github = \"Alice\" }\nbob = { github = \"alice\", email = \"A@x.example\" }\ncarol = { email = \"a@X.example\" }",
            "",
            vec![
                r#"people.bob.github: "alice" is already alice's github identity"#,
                r#"people.carol.email: "a@x.example" is already bob's email identity"#,
            ],
        ),
        (
            "alice = { discord = \"80351110224678912\" }\nbob = { discord = 80351110224678912 }",
            "",
            vec![r#"people.bob.discord: "80351110224678912" is already alice's discord identity"#],
        ),
        ("alice = {}", "", vec!["people.alice: has no identity: give at least one of slack, discord, github, email"]),
        (
            "alice = { slack = \"@alice\", discord = \"x\", github = \"-a\", email = \"alice\", phone = \"1\" }",
            "",
            vec![
                r#"people.alice.slack: "@alice" is a user name; use the member id (like "U012AB3CD") from the profile's "Copy member ID""#,
                r#"people.alice.discord: invalid Discord id "x": expected a snowflake (digits only, like "80351110224678912"); copy it with Developer Mode on"#,
                r#"people.alice.github: invalid GitHub login "-a": expected 1-39 letters, digits or '-', not starting with '-'"#,
                r#"people.alice.email: invalid e-mail address "alice": expected name@domain"#,
                r#"people.alice.phone: unknown key; expected one of slack, discord, github, email"#,
            ],
        ),
        (
            "\"Alice B\" = { slack = \"U012AB3CD\" }",
            "",
            vec![r#"people."Alice B": person name must be 1-63 characters of lowercase letters, digits, '-' or '_', starting with a letter or digit; got "Alice B""#],
        ),
        (
            "alice = { slack = \"U012AB3CD\" }\nbob = { slack = \"U045EF6GH\" }",
            "sre = [\"alice\", \"bobb\", \"group:ops\", \"alice\"]\nops = []\nSRE = [\"alice\"]",
            vec![
                r#"groups.sre[1]: unknown person "bobb"; did you mean "bob"?"#,
                "groups.sre[2]: groups cannot contain groups; list the people instead",
                "groups.ops: must list at least one person",
                r#"groups.SRE: group name must be 1-63 characters of lowercase letters, digits, '-' or '_', starting with a letter or digit; got "SRE""#,
            ],
        ),
        (
            "alice = { slack = \"U012AB3CD\" }",
            "sre = [\"alice\", \"alice\"]",
            vec![r#"groups.sre[1]: "alice" is listed twice"#],
        ),
    ] {
        assert_eq!(problems(&people(people_toml, groups_toml)), expected, "{people_toml} / {groups_toml}");
    }
}

#[test]
fn platform_section_rules() {
    for (text, expected) in [
        (
            "[slack]\nbot_token = \"xoxb-1\"",
            vec![r#"slack.signing_secret: missing; the Signing Secret from the app's Basic Information, e.g. "${SLACK_SIGNING_SECRET}""#],
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
fn tokens_must_differ() {
    let text = format!(
        r#"{}
[server]
api_token = "same"
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "shop-ci"
[apps.shop.environments.production]
flags_token = "same"
[apps.web]
image = "ghcr.io/acme/web"
ci_token = "shop-ci"
[apps.web.environments.production]
"#,
        base()
    );
    assert_eq!(
        problems(&text),
        [
            "apps.shop.environments.production.flags_token: is the same token as server.api_token; every token must be different, or one would grant the other's access",
            "apps.web.ci_token: is the same token as apps.shop.ci_token; every token must be different, or one would grant the other's access",
        ]
    );
}

#[test]
fn secrets_are_not_shown_in_problems() {
    let text = format!(
        "{}\n[apps.shop]\nimage = \"ghcr.io/acme/shop\"\nci_token = \" hunter2\\n\"\n[apps.shop.environments.production]\nflags_token = 123456789\n",
        base()
    );
    let report = check_config_report(&parse(&text));
    assert_eq!(
        report,
        "apps.shop.ci_token: starts or ends with whitespace (value not shown)\n\
         apps.shop.environments.production.flags_token: expected a string, found an integer\n\
         2 problems found\n"
    );
}

#[test]
fn variables_are_expanded_in_every_value_and_types_follow() {
    let env = |name: &str| {
        let value = match name {
            "LISTEN" => "0.0.0.0:9000",
            "APPROVALS" => "2",
            "SELF" => "false",
            "CHANNEL" => "1100000000000000000",
            "TOKEN" => "ci-token",
            _ => return None,
        };
        Some(value.to_owned())
    };
    let text = with_production(
        r#"reviewers = ["group:sre"]
required_approvals = "${APPROVALS}"
prevent_self_review = "${SELF}"
"#,
    )
    .replace("[slack]", "[server]\nlisten = \"${LISTEN}\"\n\n[slack]")
    .replace(
        "channels = { slack = \"C0DEPLOYS\" }",
        "channels = { discord = \"${CHANNEL}\" }",
    )
    .replace("ci_token = \"ci\"", "ci_token = \"${TOKEN}\"");
    let config = Config::from_toml_str(&text, &env).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:9000");
    let gate = config.apps[0].environments[1].gate.as_ref().expect("gated");
    assert_eq!(
        (gate.required_approvals, gate.prevent_self_review),
        (2, false)
    );
    assert_eq!(
        config.apps[0].channels.discord.map(Snowflake::get),
        Some(1100000000000000000)
    );
    assert_eq!(config.apps[0].ci_token.current().expose(), "ci-token");
}

#[test]
fn a_missing_variable_is_reported_once_without_follow_up_problems() {
    let text = with_production(
        r#"reviewers = ["${REVIEWER}", "alice"]
after = "${PREVIOUS}"
wait_timer = "${WAIT}"
deploy = { kind = "http", url = "${HOOK_URL}", secret = "${HOOK_SECRET}" }
smoke = [{ name = "a", url = "https://x.example", expect_json = { v = "${VERSION}" } }]
"#,
    )
    .replace("after = \"staging\"\n", "");
    let p = "apps.shop.environments.production";
    assert_eq!(
        problems(&text),
        [
            format!("{p}.reviewers[0]: environment variable REVIEWER is not set"),
            format!("{p}.after: environment variable PREVIOUS is not set"),
            format!("{p}.wait_timer: environment variable WAIT is not set"),
            format!("{p}.deploy.url: environment variable HOOK_URL is not set"),
            format!("{p}.deploy.secret: environment variable HOOK_SECRET is not set"),
            format!("{p}.smoke[0].expect_json.v: environment variable VERSION is not set"),
        ]
    );
}

#[test]
fn listen_can_be_overridden_from_the_environment() {
    let env = |name: &str| (name == LISTEN_VARIABLE).then(|| "0.0.0.0:8081".to_owned());
    let config = Config::from_toml_str("[server]\nlisten = \"127.0.0.1:1\"", &env).expect("valid");
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:8081");
    let defaults = Config::default_with_env(&env).expect("valid");
    assert_eq!(defaults.server.listen.to_string(), "0.0.0.0:8081");

    let bad = |name: &str| (name == LISTEN_VARIABLE).then(|| "nope".to_owned());
    let errors = Config::default_with_env(&bad).expect_err("bad override");
    assert_eq!(
        errors.problems()[0].to_string(),
        r#"server.listen: invalid socket address "nope": expected IP:PORT, like "127.0.0.1:8080" or "0.0.0.0:8080" (from GREENLIGHT_LISTEN)"#
    );
}

#[test]
fn database_url_can_be_overridden_from_the_environment() {
    let env = |name: &str| {
        (name == DATABASE_URL_VARIABLE).then(|| "sqlite:///data/greenlight.db".to_owned())
    };
    let config =
        Config::from_toml_str("[database]\nurl = \"sqlite://other.db\"", &env).expect("valid");
    assert_eq!(config.database.url.expose(), "sqlite:///data/greenlight.db");

    let bad = |name: &str| (name == DATABASE_URL_VARIABLE).then(|| "mysql://u:pw@h/db".to_owned());
    let errors = Config::default_with_env(&bad).expect_err("bad override");
    let report = errors.to_string();
    assert!(report.contains("database.url"), "{report}");
    assert!(report.contains("GREENLIGHT_DATABASE_URL"), "{report}");
    assert!(!report.contains("pw"), "password leaked: {report}");
}

#[test]
fn syntax_errors_give_line_and_column_but_not_the_line() {
    let text = "[slack]\nbot_token = \"xoxb-hunter2\nsigning_secret = \"s\"\n";
    let errors = parse(text).expect_err("not TOML");
    let problem = &errors.problems()[0];
    assert_eq!(problem.path, "");
    assert!(
        problem
            .message
            .starts_with("invalid TOML at line 2, column 26: "),
        "{problem}"
    );
    assert!(!problem.message.contains("hunter2"), "{problem}");

    let duplicate = parse("[server]\n[server]\n").expect_err("duplicate table");
    assert!(
        duplicate.problems()[0].message.contains("line 2, column 1"),
        "{duplicate}"
    );
}

#[test]
fn an_empty_file_is_the_defaults() {
    let config = valid("");
    assert_eq!(config.server.listen, ServerConfig::DEFAULT_LISTEN);
    assert!(config.apps.is_empty());
    assert_eq!(
        check_config_report(&Ok(config)),
        "configuration is valid: 0 apps; platforms: none; 0 people\n"
    );
}

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

#[test]
fn tokens_accept_rotation_lists_and_each_must_differ() {
    let text = format!(
        r#"{}
[server]
api_token = ["api-new", "api-old"]
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = ["ci-new", "ci-old"]
[apps.shop.environments.production]
flags_token = ["flags-new", "ci-old"]
"#,
        base()
    );
    assert_eq!(
        problems(&text),
        ["apps.shop.environments.production.flags_token[1]: is the same token as apps.shop.ci_token[1]; every token must be different, or one would grant the other's access"]
    );
    let config = valid(&text.replace(
        r#"["flags-new", "ci-old"]"#,
        r#"["flags-new", "flags-old"]"#,
    ));
    let shop = &config.apps[0];
    assert_eq!(shop.ci_token.len(), 2);
    assert!(config.app_for_ci_token(b"ci-old").is_some());
    assert!(config.app_for_ci_token(b"ci-new").is_some());
    assert!(config.app_for_ci_token(b"ci-older").is_none());
}

#[test]
fn command_deployers_pass_only_their_allow_list() {
    let text = with_production(
        r#"reviewers = ["alice"]
deploy = { kind = "command", run = ["flyctl", "deploy"], env = ["FLY_API_TOKEN", "FLY_ORG"] }"#,
    );
    let env = |name: &str| match name {
        "FLY_API_TOKEN" => Some("fo1_token".to_owned()),
        "FLY_ORG" => Some("acme".to_owned()),
        "PATH" => Some("/usr/bin".to_owned()),
        "SLACK_BOT_TOKEN" => Some("xoxb-must-not-pass".to_owned()),
        _ => None,
    };
    let config = Config::from_toml_str(&text, &env).unwrap_or_else(|errors| panic!("{errors}"));
    let Some(Deployer::Command { env: child, .. }) = &config.apps[0].environments[1].deploy else {
        panic!("a command deployer");
    };
    let names: Vec<&str> = child.values.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["PATH", "FLY_API_TOKEN", "FLY_ORG"]);
    let allowed: Vec<&str> = child.allowed_values().map(|value| value.expose()).collect();
    assert_eq!(allowed, ["fo1_token", "acme"]);

    // A variable the allow-list names must be there, or the deploy would run without it.
    assert_eq!(
        problems(&text),
        [
            "apps.shop.environments.production.deploy.env[0]: environment variable FLY_API_TOKEN is not set; the deploy command would run without it",
            "apps.shop.environments.production.deploy.env[1]: environment variable FLY_ORG is not set; the deploy command would run without it",
        ]
    );
    let bad = with_production(
        r#"reviewers = ["alice"]
deploy = { kind = "command", run = ["flyctl"], env = ["FLY_API_TOKEN", "fo1 secret value", "FLY_API_TOKEN"] }"#,
    );
    let report = problems(&bad);
    assert_eq!(
        report,
        ["apps.shop.environments.production.deploy.env[1]: must be the name of an environment variable, like \"FLY_API_TOKEN\" (the name, not \"${FLY_API_TOKEN}\")"]
    );
    assert!(!report.concat().contains("fo1 secret value"));
    let twice = with_production(
        r#"reviewers = ["alice"]
deploy = { kind = "command", run = ["flyctl"], env = ["A", "A"] }"#,
    );
    assert_eq!(
        problems(&twice),
        ["apps.shop.environments.production.deploy.env[1]: A is listed twice"]
    );
}

#[test]
fn values_from_the_environment_are_never_quoted_in_problems() {
    const LEAKED: &str = "xoxb-0123456789-leaked-secret";
    let text = format!(
        r#"{}
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "ci"
channels = {{ slack = "${{WRONG}}" }}
[apps.shop.environments.production]
reviewers = ["${{WRONG}}"]
"#,
        base()
    );
    let env = |name: &str| (name == "WRONG").then(|| LEAKED.to_owned());
    let errors = Config::from_toml_str(&text, &env).expect_err("two wrong values");
    let report = errors.to_string();
    assert!(!report.contains("leaked-secret"), "{report}");
    assert!(
        report.contains("apps.shop.channels.slack: invalid Slack channel id \"${WRONG}\""),
        "{report}"
    );
    assert!(
        report.contains("apps.shop.environments.production.reviewers[0]"),
        "{report}"
    );
}
