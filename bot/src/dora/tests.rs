use chrono::TimeZone;

use super::*;

const CONFIG: &str = r#"
[slack]
bot_token = "xoxb-unused"
signing_secret = "unused"

[people]
alice = { slack = "U012AB3CD" }

[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "shop-ci"
channels = { slack = "C0DEPLOYS" }
[apps.shop.environments.staging]
[apps.shop.environments.production]
after = "staging"
reviewers = ["alice"]
[apps.shop.environments.sandbox]

[apps.web]
image = "ghcr.io/acme/web"
ci_token = "web-ci"
[apps.web.environments.staging]
[apps.web.environments.live]
"#;

fn config() -> Config {
    Config::from_toml_str(CONFIG, &|_| None).expect("valid config")
}

fn resolve(app: Option<&str>, environment: Option<&str>) -> Result<DoraQuery, InvalidQuery> {
    DoraQuery::resolve(&config(), app, environment, DEFAULT_DAYS)
}

#[test]
fn days_default_to_30_and_stay_within_a_year() {
    assert_eq!(parse_days(None), Ok(30));
    assert_eq!(parse_days(Some("1")), Ok(1));
    assert_eq!(parse_days(Some("365")), Ok(365));
    for bad in ["0", "366", "-1", "99999999999999999999", "1.5", "", "seven"] {
        let refused = parse_days(Some(bad)).expect_err(bad);
        assert_eq!(refused.field, "days", "{bad}");
        assert!(refused.to_string().contains("1 to 365"), "{refused}");
    }
}

#[test]
fn environment_defaults_to_the_last_gated_one_else_the_last() {
    let shop = resolve(Some("shop"), None).expect("shop");
    assert_eq!(shop.environment.as_str(), "production");
    let web = resolve(Some("web"), None).expect("web");
    assert_eq!(web.environment.as_str(), "live");
    let staging = resolve(Some("shop"), Some("staging")).expect("staging");
    assert_eq!(staging.environment.as_str(), "staging");
}

#[test]
fn unknown_or_missing_names_are_refused_naming_the_field() {
    let cases = [
        (None, None, "app"),
        (Some(" "), None, "app"),
        (Some("nope"), None, "app"),
        (Some("Shop!"), None, "app"),
        (Some("shop"), Some("prod"), "environment"),
        (Some("shop"), Some("../etc"), "environment"),
    ];
    for (app, environment, field) in cases {
        let refused = resolve(app, environment).expect_err("refused");
        assert_eq!(refused.field, field, "{app:?} {environment:?}: {refused}");
    }
    let refused = resolve(Some("shop"), Some("prod")).expect_err("refused");
    assert!(
        refused.reason.contains("staging, production, sandbox"),
        "{refused}"
    );
}

fn window(days: u32) -> (DoraQuery, DoraWindow) {
    let query = DoraQuery::resolve(&config(), Some("shop"), None, days).expect("query");
    let now = Utc
        .with_ymd_and_hms(2026, 12, 3, 11, 59, 59)
        .single()
        .expect("a time")
        + TimeDelta::milliseconds(250);
    let window = query.window(now);
    (query, window)
}

#[test]
fn empty_windows_answer_nulls() {
    let (query, window) = window(30);
    let metrics = DoraMetrics {
        deployments: 0,
        failed: 0,
        lead_time: Durations::default(),
        time_to_restore: Durations::default(),
    };
    assert_eq!(
        to_json(&query, &window, &metrics),
        json!({
            "app": "shop", "environment": "production", "days": 30,
            "from": "2026-11-03T12:00:00Z", "to": "2026-12-03T12:00:00Z",
            "deployment_frequency": {"deployments": 0, "per_day": 0.0},
            "lead_time_seconds": {"median": null, "p90": null, "samples": 0},
            "change_failure_rate": {"failed": 0, "deployments": 0, "rate": null},
            "time_to_restore_seconds": {"median": null, "samples": 0},
        })
    );
    assert!(to_table(&query, &window, &metrics).contains("no samples"));
}

fn busy() -> DoraMetrics {
    DoraMetrics {
        deployments: 3,
        failed: 1,
        lead_time: Durations {
            samples: 2,
            median_seconds: Some(5400.0),
            p90_seconds: Some(9000.5),
        },
        time_to_restore: Durations {
            samples: 1,
            median_seconds: Some(900.0),
            p90_seconds: Some(900.0),
        },
    }
}

#[test]
fn rates_and_frequencies_are_divided_for_the_caller() {
    let (query, window) = window(7);
    let body = to_json(&query, &window, &busy());
    assert_eq!(body["deployment_frequency"]["per_day"], json!(0.4286));
    assert_eq!(body["change_failure_rate"]["rate"], json!(0.3333));
    assert_eq!(body["lead_time_seconds"]["p90"], json!(9000.5));
    assert_eq!(body["time_to_restore_seconds"]["median"], json!(900.0));
}

#[test]
fn the_table_reads_like_a_sentence_per_measure() {
    let (query, window) = window(7);
    assert_eq!(
        to_table(&query, &window, &busy()),
        "DORA metrics of shop production, last 7 days (2026-11-26 12:00 to 2026-12-03 12:00 UTC)\n\
         deployment frequency  3 deployments, 0.4286 per day\n\
         lead time             median 1h 30m, p90 2h 30m 1s (2 samples)\n\
         change failure rate   1 of 3 (33.3%)\n\
         time to restore       median 15m (1 sample)"
    );
}
