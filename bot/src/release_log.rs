//! Renders the release log for people (`greenlight releases`) and tools (`--json`, the API).

use greenlight_storage::ReleaseSummary;
use serde_json::{json, Value};

/// The `GET /api/v1/releases` body: `{"releases": [...]}`, newest first.
pub fn to_json(releases: &[ReleaseSummary]) -> Value {
    json!({ "releases": releases })
}

/// One line per release: time, app, short SHA, where it stands per environment, author, message.
pub fn to_table(releases: &[ReleaseSummary]) -> String {
    if releases.is_empty() {
        return "no releases recorded yet".to_owned();
    }
    let rows: Vec<[String; 6]> = releases
        .iter()
        .map(|summary| {
            let release = &summary.release;
            let environments = summary
                .environments
                .iter()
                .map(|(name, outcome)| {
                    let unapproved = if outcome.approved { "" } else { "(unapproved)" };
                    format!("{name}:{}{unapproved}", outcome.state.as_str())
                })
                .collect::<Vec<_>>()
                .join(" ");
            [
                release.created_at.format("%Y-%m-%d %H:%M").to_string(),
                release.app.to_string(),
                release.sha.short().to_owned(),
                if environments.is_empty() {
                    "-".to_owned()
                } else {
                    environments
                },
                release.author.clone().unwrap_or_else(|| "-".to_owned()),
                first_line(release.message.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    let header = [
        "CREATED (UTC)",
        "APP",
        "SHA",
        "ENVIRONMENTS",
        "AUTHOR",
        "MESSAGE",
    ]
    .map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    std::iter::once(&header)
        .chain(rows.iter())
        .map(|row| {
            row.iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Commit subjects only: the table stays one line per release.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or("");
    const MAX: usize = 72;
    if line.chars().count() > MAX {
        format!("{}…", line.chars().take(MAX - 1).collect::<String>())
    } else {
        line.to_owned()
    }
}
