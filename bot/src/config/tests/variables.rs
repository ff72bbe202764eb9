//! `${VAR}` expansion and the environment's overrides.

use super::*;

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
