//! The whole file: the base cases, an empty file, TOML syntax errors.

use std::time::Duration;

use super::*;

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
        duplicate.problems()[0].message.contains("line 2, column 2"),
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
