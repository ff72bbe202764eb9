//! The commit list of an approval card (SPEC §14, "Card context"): asked for in the write that
//! opens the request (a `github.card_commits` outbox item, so the card is posted at once and
//! never waits for GitHub), and stored with an edit of the card when the `github` deliverer
//! brings it. Without GitHub access, or with nothing running in the environment yet, nothing
//! is asked and the card keeps its compare link only.

use chrono::{DateTime, Utc};
use greenlight_storage::{
    approvals, deployments, outbox, releases, AnyConnection, ApprovalRequest, CardCommits, Release,
    StorageError,
};

use super::effects;
use super::{Engine, GithubEffect};
use crate::cards::CardKey;
use crate::config::{Config, RepositoryName};

/// What one compare call asks GitHub: `base...head` in `repository`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareTarget {
    pub repository: RepositoryName,
    pub base: String,
    pub head: String,
}

/// The compare the card of `request` would show: its app's repository, from what runs in the
/// environment now to the release; `None` when there is no base or nothing to compare.
async fn compare_target(
    conn: &mut AnyConnection,
    config: &Config,
    request: &ApprovalRequest,
    release: &Release,
) -> Result<Option<CompareTarget>, StorageError> {
    let Some(repository) = config
        .app(&request.app)
        .and_then(|app| app.repository.clone())
    else {
        return Ok(None);
    };
    let running = deployments::current_deployment(conn, &request.app, &request.environment).await?;
    Ok(running
        .filter(|running| running.sha != release.sha)
        .map(|running| CompareTarget {
            repository,
            base: running.sha.to_string(),
            head: release.sha.to_string(),
        }))
}

/// Whether `[github]` gives Greenlight a way to call GitHub's API (a token or an App).
fn can_read_github(config: &Config) -> bool {
    config
        .github
        .as_ref()
        .is_some_and(|github| github.token.is_some() || github.app.is_some())
}

/// Queues the fetch of the commit list of the card of `request`, in the write that opens it.
pub(super) async fn ask_for_commits(
    conn: &mut AnyConnection,
    config: &Config,
    request: &ApprovalRequest,
    release: &Release,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if !can_read_github(config) {
        return Ok(());
    }
    if compare_target(conn, config, request, release)
        .await?
        .is_none()
    {
        return Ok(());
    }
    outbox::enqueue_outbox(
        conn,
        &GithubEffect::CardCommits {
            request: request.id,
        }
        .outbox_item(now),
    )
    .await?;
    Ok(())
}

impl Engine {
    /// What to compare for the card of request `request_id`, as it stands now; `None` when
    /// nothing is (any more) to compare.
    pub async fn card_compare_target(
        &self,
        request_id: i64,
    ) -> Result<Option<CompareTarget>, StorageError> {
        let mut conn = self.storage.reader().await?;
        let request = approvals::get_approval_request(&mut conn, request_id).await?;
        let release = releases::get_release(&mut conn, request.release_id).await?;
        compare_target(&mut conn, &self.config, &request, &release).await
    }

    /// Stores the commit list of a card and edits the card everywhere it was posted, in one
    /// write (edits coalesce with any other waiting edit of the card).
    pub async fn record_card_commits(&self, commits: CardCommits) -> Result<(), StorageError> {
        let config = self.config.clone();
        let now = self.clock.now();
        self.storage
            .write(move |conn| {
                Box::pin(async move {
                    let request = approvals::get_approval_request(conn, commits.request_id).await?;
                    greenlight_storage::commits::record_card_commits(conn, &commits).await?;
                    effects::update_card_at(
                        conn,
                        &config,
                        &request.app,
                        CardKey::Approval(request.id),
                        now,
                        None,
                    )
                    .await
                })
            })
            .await?;
        self.outbox_wakeup.notify_one();
        Ok(())
    }
}
