//! Smoke checks: their rules and defaults.

use std::time::Duration;

use super::*;

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
