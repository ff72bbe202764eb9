//! The commits an approval card lists (SPEC §14, "Card context"): GitHub's compare API
//! `GET /repos/{owner}/{repo}/compare/{base}...{head}`, read into the few lines a card shows.
//! Delivered as the `github.card_commits` outbox item; the engine stores the list and edits
//! the card.

use chrono::{DateTime, Utc};
use greenlight_storage::{CardCommit, CardCommits};
use serde::Deserialize;

use super::client::{GithubAppClient, GithubError};
use crate::engine::CompareTarget;

/// The most commit lines a card shows; the rest are "and N more".
pub const CARD_COMMITS: usize = 10;
/// Longest author and title kept (characters); cards cut them further to their room.
const MAX_AUTHOR: usize = 100;
const MAX_TITLE: usize = 300;

/// The parts of GitHub's "comparison" object Greenlight reads.
#[derive(Debug, Deserialize)]
pub struct Comparison {
    pub total_commits: u64,
    #[serde(default)]
    pub commits: Vec<ComparedCommit>,
}

#[derive(Debug, Deserialize)]
pub struct ComparedCommit {
    pub sha: String,
    pub commit: CommitDetails,
    /// The GitHub user the commit is linked to; null when its email matches no account.
    pub author: Option<GithubUser>,
}

#[derive(Debug, Deserialize)]
pub struct CommitDetails {
    #[serde(default)]
    pub message: String,
    pub author: Option<GitAuthor>,
}

#[derive(Debug, Deserialize)]
pub struct GitAuthor {
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct GithubUser {
    pub login: Option<String>,
}

impl Comparison {
    /// The first [`CARD_COMMITS`] commits as card lines, oldest first as GitHub lists them,
    /// with GitHub's total.
    pub fn into_card_commits(
        self,
        request_id: i64,
        base_sha: &str,
        fetched_at: DateTime<Utc>,
    ) -> CardCommits {
        let listed = self.commits.len() as u64;
        let commits = self
            .commits
            .into_iter()
            .take(CARD_COMMITS)
            .map(|commit| {
                let login = commit
                    .author
                    .and_then(|user| user.login)
                    .filter(|login| !login.trim().is_empty());
                let name = commit.commit.author.and_then(|author| author.name);
                let author = login.or(name).unwrap_or_default();
                let title = commit
                    .commit
                    .message
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                CardCommit {
                    sha: commit.sha,
                    author: cut(author.trim(), MAX_AUTHOR),
                    title: cut(&title, MAX_TITLE),
                }
            })
            .collect();
        CardCommits {
            request_id,
            base_sha: base_sha.to_owned(),
            // Never fewer than were listed, whatever the total said.
            total_commits: self.total_commits.max(listed),
            commits,
            fetched_at,
        }
    }
}

/// Asks GitHub for the comparison of `target` (only the first page of [`CARD_COMMITS`]
/// commits; `total_commits` counts them all).
pub async fn fetch(
    client: &GithubAppClient,
    target: &CompareTarget,
) -> Result<Comparison, GithubError> {
    let owner = target.repository.owner();
    let name = target.repository.name();
    let range = format!("{}...{}", target.base, target.head);
    let mut url = client.api(&["repos", owner, name, "compare", &range])?;
    url.query_pairs_mut()
        .append_pair("per_page", &CARD_COMMITS.to_string())
        .append_pair("page", "1");
    client.get_for_repository(owner, name, url).await
}

fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn commit(sha: &str, login: Option<&str>, name: &str, message: &str) -> serde_json::Value {
        json!({
            "sha": sha,
            "commit": {"author": {"name": name, "email": "x@example.com", "date": "2026-01-01T00:00:00Z"}, "message": message},
            "author": login.map(|login| json!({"login": login, "id": 1})),
        })
    }

    #[test]
    fn lines_take_the_login_else_the_name_and_the_first_line() {
        let comparison: Comparison = serde_json::from_value(json!({
            "status": "ahead",
            "ahead_by": 12,
            "total_commits": 12,
            "commits": (0..12).map(|n| commit(
                &format!("{n:040x}"),
                (n % 2 == 0).then_some("octocat"),
                "Mona Lisa",
                "Fix the thing\n\nLonger body",
            )).collect::<Vec<_>>(),
            "files": [],
        }))
        .expect("GitHub's shape");
        let list = comparison.into_card_commits(7, "base", Utc::now());
        assert_eq!(list.total_commits, 12);
        assert_eq!(list.commits.len(), CARD_COMMITS);
        assert_eq!(list.commits[0].author, "octocat");
        assert_eq!(list.commits[1].author, "Mona Lisa");
        assert_eq!(list.commits[0].title, "Fix the thing");
        assert_eq!(list.base_sha, "base");
    }
}
