//! Text rules every chat platform shares: lengths in UTF-16 code units (never fewer than what
//! Slack or Discord counts), cutting with an ellipsis, joining lines within a limit, and the
//! card lines (smoke checks, decisions) written once over a platform's [`Markup`].

use chrono::{DateTime, Utc};
use greenlight_commands::{DecisionVerdict, DeploymentState, EnvironmentName};
use greenlight_storage::SmokeResult;

use crate::cards::smoke_text::{duration, passed, single_line};
use crate::cards::{Card, CardDecision, CardStatus, CommitList};

/// How one platform writes text: what its markup escapes, how it shows bold text and times.
pub trait Markup {
    /// Writes `c` as it must appear so that it shows literally. `at_line_start` is true for
    /// the first non-blank character of a line (where headings and quotes begin).
    fn push_escaped(out: &mut String, c: char, at_line_start: bool);
    /// `text` (already escaped) shown in bold.
    fn bold(text: &str) -> String;
    /// A time each reader sees in their own time zone.
    fn time(at: DateTime<Utc>) -> String;

    /// Escapes user text so it cannot format, link or mention.
    fn escape(text: &str) -> String {
        Self::escape_truncated(text, usize::MAX)
    }

    /// Escapes `text` and cuts it to `max` after escaping, never inside an escape.
    fn escape_truncated(text: &str, max: usize) -> String {
        let mut at_line_start = true;
        let pieces = text.chars().map(|c| {
            let mut piece = String::new();
            Self::push_escaped(&mut piece, c, at_line_start);
            at_line_start = c == '\n' || (at_line_start && (c == ' ' || c == '\t'));
            piece
        });
        cut(pieces, max)
    }
}

/// Length as chat platforms may count it: UTF-16 code units.
pub fn len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Plain text (no escaping) cut to `max`, ending in "…" when cut.
pub fn truncate(text: &str, max: usize) -> String {
    cut(text.chars().map(String::from), max)
}

/// Joins `pieces` (each one character as written) into at most `max` code units, never
/// splitting a piece; a cut text ends in "…" (one code unit) without trailing blanks.
fn cut(pieces: impl Iterator<Item = String>, max: usize) -> String {
    let pieces: Vec<String> = pieces.collect();
    let total: usize = pieces.iter().map(|piece| len(piece)).sum();
    if total <= max {
        return pieces.concat();
    }
    let budget = max.saturating_sub(1);
    let mut out = String::new();
    let mut used = 0;
    for piece in &pieces {
        let width = len(piece);
        if used + width > budget {
            break;
        }
        out.push_str(piece);
        used += width;
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    if max > 0 {
        out.push('…');
    }
    out
}

/// Joins `lines` with newlines into at most `max` characters; lines that do not fit are left
/// out and summarised by `more(left_out)` at the end.
pub fn join_within(lines: &[String], max: usize, more: impl Fn(usize) -> String) -> String {
    let all = lines.join("\n");
    if len(&all) <= max {
        return all;
    }
    let mut out = String::new();
    for (index, line) in lines.iter().enumerate() {
        let tail = more(lines.len() - index - 1);
        let with_line = len(&out) + usize::from(!out.is_empty()) + len(line);
        if with_line + 1 + len(&tail) > max {
            let tail = more(lines.len() - index);
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&tail);
            return truncate(&out, max);
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
    }
    out
}

/// How much of a commit line's author and title a card shows.
#[derive(Debug, Clone, Copy)]
pub struct CommitRoom {
    pub author: usize,
    pub title: usize,
}

/// One line per listed commit, `short-sha author: title` (escaped: authors and titles are
/// anyone's text), then "and N more", all within `max`; lines that do not fit are counted in
/// the "more".
pub fn commit_lines<M: Markup>(list: &CommitList, max: usize, room: CommitRoom) -> String {
    let mut lines: Vec<String> = list
        .commits
        .iter()
        .map(|commit| {
            let short: String = commit.sha.chars().take(7).collect();
            let title = M::escape_truncated(&single_line(&commit.title), room.title);
            let author = single_line(&commit.author);
            if author.is_empty() {
                format!("{} {title}", M::escape(&short))
            } else {
                format!(
                    "{} {}: {title}",
                    M::escape(&short),
                    M::escape_truncated(&author, room.author)
                )
            }
        })
        .collect();
    let hidden = list.more();
    let tail = u64::from(hidden > 0);
    if hidden > 0 {
        lines.push(format!("and {hidden} more"));
    }
    // `left` counts the lines left out, the "and N more" line among them.
    join_within(&lines, max, |left| {
        format!("and {} more", (left as u64).saturating_sub(tail) + hidden)
    })
}

/// "3 commits" / "1 commit".
pub fn commit_count(list: &CommitList) -> String {
    match list.total {
        1 => "1 commit".to_owned(),
        n => format!("{n} commits"),
    }
}

/// The emoji a card's title starts with.
pub fn status_emoji(card: &Card) -> &'static str {
    match &card.status {
        CardStatus::Waiting { .. } => "⏳",
        CardStatus::Approved { deployment } => match deployment {
            None => "👍",
            Some(DeploymentState::Healthy) => "✅",
            Some(DeploymentState::Faulty | DeploymentState::Failed) => "❌",
            Some(DeploymentState::RolledBack) => "↩️",
            Some(_) => "🚀",
        },
        CardStatus::Rejected { .. } => "⛔",
        CardStatus::Expired => "⌛",
        CardStatus::Superseded { .. } => "⏭️",
        CardStatus::Cancelled { .. } => "🚫",
        CardStatus::SmokeFailed => "❌",
    }
}

/// How much of each free-text part a card line shows.
#[derive(Debug, Clone, Copy)]
pub struct LineRoom {
    pub name: usize,
    pub detail: usize,
    pub comment: usize,
}

/// "Smoke checks in staging: 2 of 3 passed": where the checks ran, how many passed, of how many.
pub fn smoke_counts(card: &Card) -> Option<(&EnvironmentName, usize, usize)> {
    if card.smoke.is_empty() {
        return None;
    }
    let environment = card.from_environment.as_ref().unwrap_or(&card.environment);
    let failed = card.smoke.iter().filter(|check| !passed(check)).count();
    Some((environment, card.smoke.len() - failed, card.smoke.len()))
}

/// One line per smoke check within `max`, failures first when not all fit.
pub fn smoke_lines<M: Markup>(card: &Card, max: usize, room: LineRoom) -> String {
    let mut checks: Vec<&SmokeResult> = card.smoke.iter().collect();
    let lines = |checks: &[&SmokeResult]| -> Vec<String> {
        checks
            .iter()
            .map(|check| smoke_line::<M>(check, room))
            .collect()
    };
    if len(&lines(&checks).join("\n")) > max {
        // Not everything fits: the failures are what a reviewer must see.
        checks.sort_by_key(|check| passed(check));
    }
    join_within(&lines(&checks), max, |more| {
        format!("…and {more} more checks")
    })
}

fn smoke_line<M: Markup>(check: &SmokeResult, room: LineRoom) -> String {
    let mark = match check.status.as_str() {
        "passed" => "✅".to_owned(),
        "failed" => "❌".to_owned(),
        other => format!("⚠️ {}", M::escape_truncated(other, 20)),
    };
    let mut line = format!(
        "{mark} {}",
        M::bold(&M::escape_truncated(&check.name, room.name))
    );
    if let Some(ms) = check.duration_ms {
        line.push_str(&format!(" · {}", duration(ms)));
    }
    if let Some(detail) = check.detail.as_deref().filter(|d| !d.trim().is_empty()) {
        line.push_str(&format!(
            " · {}",
            M::escape_truncated(&single_line(detail), room.detail)
        ));
    }
    line
}

/// One line per decision, within `max`.
pub fn decision_lines<M: Markup>(
    decisions: &[CardDecision],
    max: usize,
    room: LineRoom,
) -> Option<String> {
    if decisions.is_empty() {
        return None;
    }
    let lines: Vec<String> = decisions
        .iter()
        .map(|decision| {
            let (mark, verb) = match decision.verdict {
                DecisionVerdict::Approve => ("✅", "approved"),
                DecisionVerdict::Reject => ("⛔", "rejected"),
            };
            let mut line = format!(
                "{mark} {} {verb} on {} · {}",
                M::bold(&M::escape(decision.person.as_str())),
                decision.platform.display_name(),
                M::time(decision.at)
            );
            if let Some(comment) = decision.comment.as_deref().filter(|c| !c.trim().is_empty()) {
                line.push_str(&format!(
                    ": “{}”",
                    M::escape_truncated(&single_line(comment), room.comment)
                ));
            }
            line
        })
        .collect();
    Some(join_within(&lines, max, |more| format!("…and {more} more")))
}
