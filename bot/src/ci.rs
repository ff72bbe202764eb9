//! The CI event wire format (SPEC §5.1): JSON in, typed engine reports out, with an error that
//! names the field at fault.

use chrono::{DateTime, Utc};
use greenlight_commands::{AppName, CommitSha, EnvironmentName};
use greenlight_storage::SmokeResult;
use serde_json::{Map, Value};

use crate::engine::audit::CI;
use crate::engine::{BuildReport, CiSmoke, DeploymentReport, ReportedStatus};

/// A parsed CI event.
#[derive(Debug, Clone)]
pub enum CiEvent {
    Build(BuildReport),
    Deployed(DeploymentReport),
}

impl CiEvent {
    pub fn app(&self) -> &AppName {
        match self {
            Self::Build(build) => &build.app,
            Self::Deployed(deployed) => &deployed.app,
        }
    }

    /// The key that makes a repeat of this event harmless when CI sends no `Idempotency-Key`:
    /// Greenlight's deployment id and the status when present (so a rollback's completion is
    /// not taken for the first deploy of the same SHA), otherwise what the event is about.
    pub fn natural_key(&self) -> String {
        match self {
            Self::Build(build) => format!("ci:{}:{}:build", build.app, build.sha),
            Self::Deployed(deployed) => {
                let status = match deployed.status {
                    ReportedStatus::Success => "success",
                    ReportedStatus::Failure => "failure",
                };
                match deployed.deployment_id {
                    Some(id) => format!("ci:deployment:{id}:{status}"),
                    None => format!(
                        "ci:{}:{}:{}:deployed:{status}",
                        deployed.app, deployed.environment, deployed.sha
                    ),
                }
            }
        }
    }
}

/// What is wrong with an event. `field` is a JSON path like `smoke.checks[1].status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Why a body is not an event at all (400) or not a valid one (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body must be a JSON object")]
    NotObject,
    #[error(transparent)]
    Field(#[from] FieldError),
}

const MAX_TEXT: usize = 4096;

pub fn parse(body: &[u8]) -> Result<CiEvent, EventError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| EventError::NotJson(error.to_string()))?;
    let object = value.as_object().ok_or(EventError::NotObject)?;
    let fields = Fields { object, prefix: "" };
    let event = fields.required_str("event")?;
    match event {
        "build" => Ok(CiEvent::Build(build(&fields)?)),
        "deployed" => Ok(CiEvent::Deployed(deployed(&fields)?)),
        other => Err(fields
            .error(
                "event",
                format!("unknown event {other:?}; expected \"build\" or \"deployed\""),
            )
            .into()),
    }
}

fn build(fields: &Fields<'_>) -> Result<BuildReport, FieldError> {
    Ok(BuildReport {
        app: fields.app()?,
        sha: fields.sha()?,
        image: fields.required_str("image")?.to_owned(),
        git_ref: fields.optional_text("ref")?,
        author: fields.optional_text("author")?,
        message: fields.optional_text("message")?,
        committed_at: fields.optional_time("committed_at")?,
        ci_url: fields.optional_url("url")?,
    })
}

fn deployed(fields: &Fields<'_>) -> Result<DeploymentReport, FieldError> {
    let status = match fields.required_str("status")? {
        "success" => ReportedStatus::Success,
        "failure" => ReportedStatus::Failure,
        other => {
            return Err(fields.error(
                "status",
                format!("unknown status {other:?}; expected \"success\" or \"failure\""),
            ))
        }
    };
    Ok(DeploymentReport {
        app: fields.app()?,
        environment: {
            let name = fields.required_str("environment")?;
            EnvironmentName::parse(name).map_err(|e| fields.error("environment", e.to_string()))?
        },
        sha: fields.sha()?,
        status,
        image: fields.optional_text("image")?,
        smoke: fields.optional_smoke("smoke")?,
        deployment_id: fields.optional_id("deployment_id")?,
        url: fields.optional_url("url")?,
        detail: fields.optional_text("detail")?,
        actor: CI.to_owned(),
    })
}

/// Reads typed fields out of a JSON object, naming each one in its error.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    prefix: &'a str,
}

impl<'a> Fields<'a> {
    fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn error(&self, name: &str, message: impl Into<String>) -> FieldError {
        FieldError {
            field: self.path(name),
            message: message.into(),
        }
    }

    /// PostgreSQL's TEXT cannot hold NUL, so storing one would fail as a 500; it is refused
    /// here as the sender's mistake.
    fn nul(&self, name: &str) -> FieldError {
        self.error(name, "must not contain NUL characters (\\u0000)")
    }

    fn present(&self, name: &str) -> Option<&'a Value> {
        self.object.get(name).filter(|value| !value.is_null())
    }

    fn required_str(&self, name: &str) -> Result<&'a str, FieldError> {
        match self.present(name) {
            None => Err(self.error(name, "is required")),
            Some(Value::String(text)) if text.contains('\0') => Err(self.nul(name)),
            Some(Value::String(text)) if text.trim().is_empty() => {
                Err(self.error(name, "must not be empty"))
            }
            Some(Value::String(text)) => Ok(text.trim()),
            Some(_) => Err(self.error(name, "must be a string")),
        }
    }

    fn optional_text(&self, name: &str) -> Result<Option<String>, FieldError> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::String(text)) if text.contains('\0') => Err(self.nul(name)),
            Some(Value::String(text)) if text.len() > MAX_TEXT => Err(self.error(
                name,
                format!("is {} bytes; at most {MAX_TEXT} are accepted", text.len()),
            )),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.trim().to_owned())),
            Some(_) => Err(self.error(name, "must be a string")),
        }
    }

    fn app(&self) -> Result<AppName, FieldError> {
        AppName::parse(self.required_str("app")?).map_err(|e| self.error("app", e.to_string()))
    }

    fn sha(&self) -> Result<CommitSha, FieldError> {
        CommitSha::parse(self.required_str("sha")?).map_err(|_| {
            self.error(
                "sha",
                "must be the full 40-character commit SHA (in GitHub Actions: ${{ github.sha }})",
            )
        })
    }

    fn optional_time(&self, name: &str) -> Result<Option<DateTime<Utc>>, FieldError> {
        self.optional_text(name)?
            .map(|text| {
                DateTime::parse_from_rfc3339(&text)
                    .map(|time| time.with_timezone(&Utc))
                    .map_err(|_| {
                        self.error(
                            name,
                            format!("{text:?} is not an RFC 3339 time like 2026-11-26T10:00:00Z"),
                        )
                    })
            })
            .transpose()
    }

    fn optional_url(&self, name: &str) -> Result<Option<String>, FieldError> {
        self.optional_text(name)?
            .map(|text| match url::Url::parse(&text) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(text),
                _ => Err(self.error(name, format!("{text:?} is not an http(s) URL"))),
            })
            .transpose()
    }

    fn optional_id(&self, name: &str) -> Result<Option<i64>, FieldError> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Number(number)) => number
                .as_i64()
                .filter(|id| *id > 0)
                .map(Some)
                .ok_or_else(|| self.error(name, "must be a positive integer")),
            Some(Value::String(text)) => text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .map(Some)
                .ok_or_else(|| self.error(name, "must be a positive integer")),
            Some(_) => Err(self.error(name, "must be a positive integer")),
        }
    }

    fn optional_smoke(&self, name: &str) -> Result<Option<CiSmoke>, FieldError> {
        let Some(value) = self.present(name) else {
            return Ok(None);
        };
        let object = value
            .as_object()
            .ok_or_else(|| self.error(name, "must be an object like {\"status\": \"passed\"}"))?;
        let path = self.path(name);
        let smoke = Fields {
            object,
            prefix: &path,
        };
        let passed = match smoke.required_str("status")? {
            SmokeResult::PASSED => true,
            SmokeResult::FAILED => false,
            other => {
                return Err(smoke.error(
                    "status",
                    format!("unknown status {other:?}; expected \"passed\" or \"failed\""),
                ))
            }
        };
        let checks = match smoke.present("checks") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(index, item)| smoke_check(&smoke, index, item))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(smoke.error("checks", "must be an array")),
        };
        Ok(Some(CiSmoke { passed, checks }))
    }
}

fn smoke_check(parent: &Fields<'_>, index: usize, item: &Value) -> Result<SmokeResult, FieldError> {
    let path = format!("{}[{index}]", parent.path("checks"));
    let object = item.as_object().ok_or_else(|| FieldError {
        field: path.clone(),
        message: "must be an object with name and status".to_owned(),
    })?;
    let check = Fields {
        object,
        prefix: &path,
    };
    let status = check.required_str("status")?;
    if !matches!(
        status,
        SmokeResult::PASSED | SmokeResult::FAILED | "skipped"
    ) {
        return Err(check.error(
            "status",
            format!("unknown status {status:?}; expected \"passed\", \"failed\" or \"skipped\""),
        ));
    }
    let duration_ms = match check.present("duration_ms") {
        None => None,
        Some(value) => Some(
            value
                .as_u64()
                .ok_or_else(|| check.error("duration_ms", "must be a non-negative integer"))?,
        ),
    };
    Ok(SmokeResult {
        name: check.required_str("name")?.to_owned(),
        status: status.to_owned(),
        duration_ms,
        detail: check.optional_text("detail")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn field_error(body: Value) -> FieldError {
        match parse(body.to_string().as_bytes()) {
            Err(EventError::Field(error)) => error,
            other => panic!("expected a field error for {body}, got {other:?}"),
        }
    }

    #[test]
    fn spec_examples_parse() {
        let build = json!({"event":"build","app":"shop","sha":SHA,
            "image":format!("ghcr.io/acme/shop:{SHA}"),"ref":"refs/heads/main","author":"alice",
            "message":"Fix checkout","committed_at":"2026-11-26T10:00:00Z","url":"https://ci.example/run/1"});
        let CiEvent::Build(build) = parse(build.to_string().as_bytes()).expect("valid") else {
            panic!("not a build")
        };
        assert_eq!(build.author.as_deref(), Some("alice"));
        assert_eq!(
            build.committed_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-11-26T10:00:00+00:00")
        );

        let deployed = json!({"event":"deployed","app":"shop","environment":"staging","sha":SHA,
            "status":"success","smoke":{"status":"passed","checks":[{"name":"health","status":"passed",
            "duration_ms":12,"detail":"200 OK"}]},"url":"https://ci.example/run/1"});
        let CiEvent::Deployed(deployed) = parse(deployed.to_string().as_bytes()).expect("valid")
        else {
            panic!("not a deployment")
        };
        let smoke = deployed.smoke.expect("smoke");
        assert!(smoke.passed);
        assert_eq!(smoke.checks[0].duration_ms, Some(12));
    }

    #[test]
    fn every_bad_field_is_named() {
        let base = json!({"event":"deployed","app":"shop","environment":"staging","sha":SHA,"status":"success"});
        let cases: Vec<(Value, &str)> = vec![
            (json!({"app":"shop"}), "event"),
            (json!({"event":"launched"}), "event"),
            (
                json!({"event":"build","app":"shop","sha":"abc","image":"x"}),
                "sha",
            ),
            (
                json!({"event":"build","app":"Shop!","sha":SHA,"image":"x"}),
                "app",
            ),
            (json!({"event":"build","app":"shop","sha":SHA}), "image"),
            (
                json!({"event":"build","app":"shop","sha":SHA,"image":7}),
                "image",
            ),
            (
                json!({"event":"build","app":"shop","sha":SHA,"image":"x","committed_at":"yesterday"}),
                "committed_at",
            ),
            (
                json!({"event":"build","app":"shop","sha":SHA,"image":"x","url":"ftp://x"}),
                "url",
            ),
            (merge(&base, json!({"status":"ok"})), "status"),
            (merge(&base, json!({"environment":""})), "environment"),
            (merge(&base, json!({"smoke":"passed"})), "smoke"),
            (
                merge(&base, json!({"smoke":{"status":"green"}})),
                "smoke.status",
            ),
            (
                merge(&base, json!({"smoke":{"status":"passed","checks":{}}})),
                "smoke.checks",
            ),
            (
                merge(
                    &base,
                    json!({"smoke":{"status":"passed","checks":[{"name":"a","status":"passed"},{"name":"b","status":"maybe"}]}}),
                ),
                "smoke.checks[1].status",
            ),
            (
                merge(
                    &base,
                    json!({"smoke":{"status":"passed","checks":[{"name":"a","status":"passed","duration_ms":-1}]}}),
                ),
                "smoke.checks[0].duration_ms",
            ),
            (
                merge(&base, json!({"deployment_id":"twelve"})),
                "deployment_id",
            ),
            (merge(&base, json!({"deployment_id":0})), "deployment_id"),
        ];
        for (body, field) in cases {
            assert_eq!(field_error(body.clone()).field, field, "{body}");
        }
    }

    #[test]
    fn nul_characters_are_refused_naming_the_field() {
        // PostgreSQL refuses NUL in TEXT: stored, it was a 500 instead of a 422.
        let build = json!({"event":"build","app":"shop","sha":SHA,"image":"x","author":"a\u{0}b"});
        let error = field_error(build);
        assert_eq!(error.field, "author");
        assert!(error.message.contains("NUL"), "{}", error.message);
        let deployed = json!({"event":"deployed","app":"shop","environment":"staging","sha":SHA,
            "status":"success","smoke":{"status":"passed","checks":[{"name":"he\u{0}alth","status":"passed"}]}});
        assert_eq!(field_error(deployed).field, "smoke.checks[0].name");
    }

    #[test]
    fn deep_nesting_and_huge_numbers_are_quick_refusals() {
        let deep = format!("{{\"event\":{}", "[".repeat(100_000));
        assert!(matches!(
            parse(deep.as_bytes()),
            Err(EventError::NotJson(_))
        ));
        let id = json!({"event":"deployed","app":"shop","environment":"staging","sha":SHA,
            "status":"success","deployment_id":"99999999999999999999"});
        assert_eq!(field_error(id).field, "deployment_id");
        let huge = format!(
            r#"{{"event":"deployed","app":"shop","environment":"staging","sha":"{SHA}","status":"success","deployment_id":1e400}}"#
        );
        assert!(matches!(
            parse(huge.as_bytes()),
            Err(EventError::NotJson(_))
        ));
    }

    #[test]
    fn non_json_and_non_objects_are_not_events() {
        assert!(matches!(parse(b"{\"event\":"), Err(EventError::NotJson(_))));
        assert!(matches!(parse(b"not json"), Err(EventError::NotJson(_))));
        assert!(matches!(parse(b"[1,2]"), Err(EventError::NotObject)));
        assert!(matches!(parse(b""), Err(EventError::NotJson(_))));
    }

    #[test]
    fn natural_keys_tell_a_rollback_completion_from_the_first_deploy() {
        let first = merge(
            &json!({"event":"deployed","app":"shop","environment":"production","sha":SHA,"status":"success"}),
            json!({}),
        );
        let rollback = merge(&first, json!({"deployment_id": 42}));
        let a = parse(first.to_string().as_bytes())
            .expect("valid")
            .natural_key();
        let b = parse(rollback.to_string().as_bytes())
            .expect("valid")
            .natural_key();
        assert_ne!(a, b);
        let failed = merge(&rollback, json!({"status":"failure"}));
        assert_ne!(
            b,
            parse(failed.to_string().as_bytes())
                .expect("valid")
                .natural_key()
        );
    }

    fn merge(base: &Value, extra: Value) -> Value {
        let mut merged = base.clone();
        if let (Some(target), Some(source)) = (merged.as_object_mut(), extra.as_object()) {
            for (key, value) in source {
                target.insert(key.clone(), value.clone());
            }
        }
        merged
    }
}
