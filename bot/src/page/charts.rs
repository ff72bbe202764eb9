//! The page's two inline SVG charts over the last days of one environment: deployments per day
//! (stacked healthy / faulty / rolled back) and lead time per deploy. Each has a title, an
//! `aria-label` and a text summary beside it, so the numbers never depend on seeing the drawing.

use chrono::{DateTime, TimeDelta, Utc};
use greenlight_storage::{DeployOutcome, FinishedDeploy};
use maud::{html, Markup};

use super::model::{duration, spread, Charts};

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 160.0;
const BOTTOM: f64 = 20.0;

/// The colour of each outcome: dark enough on white for text-level contrast.
fn colour(outcome: DeployOutcome) -> &'static str {
    match outcome {
        DeployOutcome::Healthy => "#1a7f37",
        DeployOutcome::Faulty => "#9a6700",
        DeployOutcome::RolledBack => "#cf222e",
    }
}

fn label(outcome: DeployOutcome) -> &'static str {
    match outcome {
        DeployOutcome::Healthy => "healthy",
        DeployOutcome::Faulty => "faulty",
        DeployOutcome::RolledBack => "rolled back",
    }
}

const OUTCOMES: [DeployOutcome; 3] = [
    DeployOutcome::Healthy,
    DeployOutcome::Faulty,
    DeployOutcome::RolledBack,
];

/// Both charts of one app, with their summaries.
pub fn charts(charts: &Charts) -> Markup {
    let days = charts.query.days;
    let environment = charts.query.environment.as_str();
    let metrics = &charts.metrics;
    let counts = OUTCOMES.map(|outcome| {
        charts
            .deploys
            .iter()
            .filter(|deploy| deploy.outcome == outcome)
            .count()
    });
    let rate = if metrics.deployments > 0 {
        format!(
            "{:.0}%",
            metrics.failed as f64 * 100.0 / metrics.deployments as f64
        )
    } else {
        "no deployments".to_owned()
    };
    html! {
        div class="charts" {
            figure {
                (per_day(&charts.deploys, charts.from, days, environment))
                figcaption {
                    "Deployments to " (environment) " per day, last " (days) " days: "
                    (charts.deploys.len()) " in all — "
                    @for (outcome, count) in OUTCOMES.iter().zip(counts) {
                        span class={"key " (label(*outcome).replace(' ', "-"))} { (count) " " (label(*outcome)) }
                        " "
                    }
                    br;
                    "Change failure rate " (rate) "; time to restore "
                    (spread(&metrics.time_to_restore)) "."
                }
            }
            figure {
                (lead_times(&charts.deploys, environment))
                figcaption {
                    "Lead time per deploy to " (environment) " (commit to healthy): "
                    (spread(&metrics.lead_time)) "."
                }
            }
        }
    }
}

fn per_day(
    deploys: &[FinishedDeploy],
    from: DateTime<Utc>,
    days: u32,
    environment: &str,
) -> Markup {
    let days = days.max(1) as usize;
    let mut stacks = vec![[0_u32; 3]; days];
    for deploy in deploys {
        let day = ((deploy.finished_at - from).num_seconds() / 86_400).clamp(0, days as i64 - 1);
        let slot = OUTCOMES
            .iter()
            .position(|outcome| *outcome == deploy.outcome)
            .unwrap_or(0);
        stacks[day as usize][slot] += 1;
    }
    let highest = stacks
        .iter()
        .map(|stack| stack.iter().sum::<u32>())
        .max()
        .unwrap_or(0)
        .max(1);
    let column = WIDTH / days as f64;
    let unit = (HEIGHT - BOTTOM) / f64::from(highest);
    let title =
        format!("Deployments to {environment} per day, stacked healthy, faulty, rolled back");
    html! {
        svg viewBox={"0 0 " (WIDTH) " " (HEIGHT)} role="img" aria-label=(title) {
            title { (title) }
            text x="2" y="12" class="axis" { (highest) " per day" }
            line x1="0" y1=(HEIGHT - BOTTOM) x2=(WIDTH) y2=(HEIGHT - BOTTOM) class="base" {}
            @for (index, stack) in stacks.iter().enumerate() {
                @let x = index as f64 * column + 1.0;
                @for (slot, count, top, height) in segments(stack, unit) {
                    rect x=(format!("{x:.1}")) y=(format!("{top:.1}")) width=(format!("{:.1}", column - 2.0))
                        height=(format!("{height:.1}")) fill=(colour(OUTCOMES[slot])) {
                        title { (day_label(from, index)) ": " (count) " " (label(OUTCOMES[slot])) }
                    }
                }
            }
            text x="2" y=(HEIGHT - 4.0) class="axis" { (day_label(from, 0)) }
            text x=(WIDTH - 2.0) y=(HEIGHT - 4.0) class="axis" text-anchor="end" { (day_label(from, days - 1)) }
        }
    }
}

/// A day's stack bottom up: (outcome slot, count, top, height) of each non-empty segment.
fn segments(stack: &[u32; 3], unit: f64) -> Vec<(usize, u32, f64, f64)> {
    let mut top = HEIGHT - BOTTOM;
    let mut found = Vec::new();
    for (slot, count) in stack.iter().enumerate().filter(|(_, count)| **count > 0) {
        let height = f64::from(*count) * unit;
        top -= height;
        found.push((slot, *count, top, height));
    }
    found
}

/// The day a column ends on: the last column is today.
fn day_label(from: DateTime<Utc>, index: usize) -> String {
    (from + TimeDelta::days(index as i64 + 1))
        .format("%b %-d")
        .to_string()
}

fn lead_times(deploys: &[FinishedDeploy], environment: &str) -> Markup {
    let healthy: Vec<(&FinishedDeploy, i64)> = deploys
        .iter()
        .filter_map(|deploy| deploy.lead_time_ms.map(|ms| (deploy, ms.max(0))))
        .collect();
    let longest = healthy.iter().map(|(_, ms)| *ms).max().unwrap_or(0).max(1);
    let column = WIDTH / healthy.len().max(1) as f64;
    let unit = (HEIGHT - BOTTOM) / longest as f64;
    let title = format!("Lead time per deploy to {environment}, oldest first");
    html! {
        svg viewBox={"0 0 " (WIDTH) " " (HEIGHT)} role="img" aria-label=(title) {
            title { (title) }
            text x="2" y="12" class="axis" { "up to " (duration(longest as f64 / 1000.0)) }
            line x1="0" y1=(HEIGHT - BOTTOM) x2=(WIDTH) y2=(HEIGHT - BOTTOM) class="base" {}
            @for (index, (deploy, ms)) in healthy.iter().enumerate() {
                @let height = (*ms as f64 * unit).max(1.0);
                rect x=(format!("{:.1}", index as f64 * column + 1.0)) y=(format!("{:.1}", HEIGHT - BOTTOM - height))
                    width=(format!("{:.1}", (column - 2.0).max(1.0))) height=(format!("{height:.1}")) fill="#0969da" {
                    title { (deploy.short_sha) ": " (duration(*ms as f64 / 1000.0)) }
                }
            }
            @if healthy.is_empty() {
                text x=(WIDTH / 2.0) y=(HEIGHT / 2.0) text-anchor="middle" class="axis" { "no healthy deploys yet" }
            }
        }
    }
}
