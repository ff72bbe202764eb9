//! `deploy` tables of every kind, and what a command deploy's child may see.

use std::time::Duration;

use super::*;

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
