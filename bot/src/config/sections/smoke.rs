//! An environment's `smoke` checks: URL, expected status and JSON, timeout and retries.

use std::time::Duration;

use toml::{Table, Value};

use super::positive_duration;
use crate::config::error::Problems;
use crate::config::path::KeyPath;
use crate::config::reader::{read, table, Fields, FromValue, Invalid};
use crate::config::types::{ExpectStatus, JsonExpectation, SmokeCheck};

pub(super) fn smoke_check(
    value: &Value,
    at: &KeyPath,
    problems: &mut Problems,
) -> Result<SmokeCheck, Invalid> {
    let mut fields = Fields::new(table(value, at, problems)?, at, problems);
    let name = fields.required::<String>("name", "a short name shown on the card, e.g. \"health\"");
    let url = fields.required(
        "url",
        "the http(s) URL to check, e.g. \"https://shop.example/health\"",
    );
    let expect_status = fields.optional_with("expect_status", |value, at, problems| {
        let status = u32::from_value(value, at, problems)?;
        match u16::try_from(status) {
            Ok(status) if (100..=599).contains(&status) => Ok(ExpectStatus::Exactly(status)),
            _ => {
                problems.add(at, format!("{status} is not an HTTP status (100-599)"));
                Err(Invalid)
            }
        }
    });
    let expect_json = fields.optional_with("expect_json", |value, at, problems| {
        let mut expectations = Vec::new();
        flatten_expectations(
            table(value, at, problems)?,
            "",
            at,
            problems,
            &mut expectations,
        )?;
        Ok(expectations)
    });
    let timeout = fields.optional_with("timeout", positive_duration);
    let retries = fields.optional_with("retries", |value, at, problems| {
        let retries = u32::from_value(value, at, problems)?;
        if retries > 100 {
            problems.add(at, "must be at most 100");
            return Err(Invalid);
        }
        Ok(retries)
    });
    let retry_delay = fields.optional::<Duration>("retry_delay");
    fields.finish();
    Ok(SmokeCheck {
        name: name?,
        url: url?,
        expect_status: expect_status?.unwrap_or(ExpectStatus::AnySuccess),
        expect_json: expect_json?.unwrap_or_default(),
        timeout: timeout?.unwrap_or(SmokeCheck::DEFAULT_TIMEOUT),
        retries: retries?.unwrap_or(SmokeCheck::DEFAULT_RETRIES),
        retry_delay: retry_delay?.unwrap_or(SmokeCheck::DEFAULT_RETRY_DELAY),
    })
}

/// Turns `expect_json` into dotted paths: `{ "db.status" = "ok" }` and `{ db = { status =
/// "ok" } }` (what `db.status = "ok"` means in TOML) are the same expectation.
fn flatten_expectations(
    table: &Table,
    prefix: &str,
    at: &KeyPath,
    problems: &mut Problems,
    out: &mut Vec<JsonExpectation>,
) -> Result<(), Invalid> {
    let mut result = Ok(());
    for (key, value) in table {
        let at = at.key(key);
        if key.is_empty() || key.split('.').any(str::is_empty) {
            problems.add(&at, "a JSON path cannot have an empty segment");
            result = Err(Invalid);
            continue;
        }
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let converted = match value {
            Value::Table(nested) => {
                result = result.and(flatten_expectations(nested, &path, &at, problems, out));
                continue;
            }
            value if contains_poison(value, &at, problems) => Err(Invalid),
            Value::Datetime(_) => {
                problems.add(
                    &at,
                    "JSON has no dates; write the expected value as a string",
                );
                Err(Invalid)
            }
            value => read(value, &at, problems, |value, at, problems| {
                serde_json::to_value(value).map_err(|error| {
                    problems.add(at, format!("cannot be compared with JSON: {error}"));
                    Invalid
                })
            }),
        };
        match converted {
            Ok(value) => out.push(JsonExpectation { path, value }),
            Err(Invalid) => result = Err(Invalid),
        }
    }
    result
}

/// Whether a `${VAR}` somewhere inside `value` failed to expand.
fn contains_poison(value: &Value, at: &KeyPath, problems: &Problems) -> bool {
    problems.is_poisoned(at)
        || match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .any(|(index, item)| contains_poison(item, &at.index(index), problems)),
            Value::Table(table) => table
                .iter()
                .any(|(key, item)| contains_poison(item, &at.key(key), problems)),
            _ => false,
        }
}
