//! DORA metrics for people and tools (SPEC §14): which app, environment and window a caller
//! means, and the figures as JSON (`GET /api/v1/metrics/dora`, `greenlight dora --json`) or as
//! a table (`greenlight dora`). The storage computes them (`greenlight_storage::dora`).

use std::time::Duration;

use chrono::{DateTime, DurationRound, SecondsFormat, TimeDelta, Utc};
use greenlight_commands::{AppName, EnvironmentName};
use greenlight_storage::{DoraMetrics, DoraWindow, Durations};
use serde_json::{json, Value};

use crate::config::{AppConfig, Config};

pub const DEFAULT_DAYS: u32 = 30;
pub const MAX_DAYS: u32 = 365;

/// A question about one environment's last `days` days, checked against the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoraQuery {
    pub app: AppName,
    pub environment: EnvironmentName,
    pub days: u32,
}

/// Why a question cannot be answered, naming the field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidQuery {
    pub field: &'static str,
    pub reason: String,
}

impl InvalidQuery {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// `days` as sent (absent: [`DEFAULT_DAYS`]); a whole number from 1 to [`MAX_DAYS`].
pub fn parse_days(text: Option<&str>) -> Result<u32, InvalidQuery> {
    let Some(text) = text else {
        return Ok(DEFAULT_DAYS);
    };
    // Anything that is not a small whole number (negative, huge, "1.5") fails here or below.
    let days = text
        .trim()
        .parse::<u32>()
        .map_err(|_| days_out_of_range())?;
    checked_days(days)
}

fn checked_days(days: u32) -> Result<u32, InvalidQuery> {
    if (1..=MAX_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(days_out_of_range())
    }
}

fn days_out_of_range() -> InvalidQuery {
    InvalidQuery::new(
        "days",
        format!("must be a whole number of days from 1 to {MAX_DAYS}"),
    )
}

impl DoraQuery {
    /// The question for `app`'s `environment` (absent: the app's last gated environment, or
    /// its last environment when none is gated), over `days` days.
    pub fn resolve(
        config: &Config,
        app: Option<&str>,
        environment: Option<&str>,
        days: u32,
    ) -> Result<Self, InvalidQuery> {
        let app = app
            .map(str::trim)
            .filter(|app| !app.is_empty())
            .ok_or_else(|| InvalidQuery::new("app", "required: the app to measure"))?;
        let configured = AppName::parse(app)
            .ok()
            .and_then(|name| config.app(&name))
            .ok_or_else(|| InvalidQuery::new("app", format!("no app {app:?} is configured")))?;
        let environment = match environment.map(str::trim).filter(|env| !env.is_empty()) {
            None => default_environment(configured)?,
            Some(name) => EnvironmentName::parse(name)
                .ok()
                .filter(|name| configured.environment(name).is_some())
                .ok_or_else(|| {
                    InvalidQuery::new(
                        "environment",
                        format!(
                            "app {} has no environment {name:?} (it has {})",
                            configured.name,
                            environment_names(configured)
                        ),
                    )
                })?,
        };
        Ok(Self {
            app: configured.name.clone(),
            environment,
            days: checked_days(days)?,
        })
    }

    /// The last `days` days up to `now`, rounded up to the second: answers read cleanly and
    /// still count what finished a moment ago.
    pub fn window(&self, now: DateTime<Utc>) -> DoraWindow {
        let to = now.duration_round_up(TimeDelta::seconds(1)).unwrap_or(now);
        DoraWindow {
            app: self.app.clone(),
            environment: self.environment.clone(),
            from: to - TimeDelta::days(i64::from(self.days)),
            to,
        }
    }
}

/// Where a deploy ends up: the last gated environment in the file's order (production, for
/// `staging → production`), else the last environment.
fn default_environment(app: &AppConfig) -> Result<EnvironmentName, InvalidQuery> {
    let gated = app.environments.iter().rev().find(|env| env.is_gated());
    gated
        .or(app.environments.last())
        .map(|env| env.name.clone())
        .ok_or_else(|| InvalidQuery::new("environment", "required: the app has none configured"))
}

fn environment_names(app: &AppConfig) -> String {
    app.environments
        .iter()
        .map(|env| env.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The API's body: SPEC §14's shape, `null` where there are no samples.
pub fn to_json(query: &DoraQuery, window: &DoraWindow, metrics: &DoraMetrics) -> Value {
    let rate = (metrics.deployments > 0)
        .then(|| rounded(metrics.failed as f64 / metrics.deployments as f64));
    json!({
        "app": query.app,
        "environment": query.environment,
        "days": query.days,
        "from": timestamp(window.from),
        "to": timestamp(window.to),
        "deployment_frequency": {
            "deployments": metrics.deployments,
            "per_day": rounded(metrics.deployments as f64 / f64::from(query.days)),
        },
        "lead_time_seconds": {
            "median": metrics.lead_time.median_seconds,
            "p90": metrics.lead_time.p90_seconds,
            "samples": metrics.lead_time.samples,
        },
        "change_failure_rate": {
            "failed": metrics.failed,
            "deployments": metrics.deployments,
            "rate": rate,
        },
        "time_to_restore_seconds": {
            "median": metrics.time_to_restore.median_seconds,
            "samples": metrics.time_to_restore.samples,
        },
    })
}

/// `greenlight dora`'s table: one line per measure, durations as people read them.
pub fn to_table(query: &DoraQuery, window: &DoraWindow, metrics: &DoraMetrics) -> String {
    let minutes = |time: DateTime<Utc>| time.format("%Y-%m-%d %H:%M").to_string();
    let deployments = metrics.deployments;
    let failure_rate = if deployments == 0 {
        "no deployments".to_owned()
    } else {
        format!(
            "{} of {deployments} ({:.1}%)",
            metrics.failed,
            metrics.failed as f64 * 100.0 / deployments as f64
        )
    };
    let lines = [
        format!(
            "DORA metrics of {} {}, last {} days ({} to {} UTC)",
            query.app,
            query.environment,
            query.days,
            minutes(window.from),
            minutes(window.to)
        ),
        format!(
            "deployment frequency  {deployments} {}, {} per day",
            plural(deployments, "deployment"),
            rounded(deployments as f64 / f64::from(query.days))
        ),
        format!("lead time             {}", spread(&metrics.lead_time, true)),
        format!("change failure rate   {failure_rate}"),
        format!(
            "time to restore       {}",
            spread(&metrics.time_to_restore, false)
        ),
    ];
    lines.join("\n")
}

fn spread(durations: &Durations, with_p90: bool) -> String {
    let Some(median) = durations.median_seconds else {
        return "no samples".to_owned();
    };
    let samples = durations.samples;
    let p90 = durations
        .p90_seconds
        .filter(|_| with_p90)
        .map(|p90| format!(", p90 {}", readable(p90)))
        .unwrap_or_default();
    format!(
        "median {}{p90} ({samples} {})",
        readable(median),
        plural(samples, "sample")
    )
}

/// Seconds as "1h 30m 5s", to the second.
fn readable(seconds: f64) -> String {
    humantime::format_duration(Duration::from_secs(seconds.max(0.0).round() as u64)).to_string()
}

fn plural(count: i64, word: &str) -> String {
    if count == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

/// Rates and frequencies to four decimals: more is noise.
fn rounded(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests;
