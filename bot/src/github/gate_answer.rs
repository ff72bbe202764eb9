//! Delivers `github.*` outbox items: the answer to a deployment protection rule (SPEC §5.2,
//! REFERENCE §3.3), POSTed to the gate's callback URL with an installation token.
//!
//! Payload formats:
//! - `github.answer_gate` `{"gate": 7}`: send the answer stored on gate 7
//!   (`{"environment_name", "state", "comment"}`).
//! - `github.gate_status` `{"gate": 7, "comment": "…"}`: a status report (the same callback
//!   without `state`) while gate 7 waits; skipped once the gate is answered.
//! - `github.card_commits` `{"request": 42}`: the commits between what runs in the request's
//!   environment and its release (`compare.rs`), stored with an edit of the card. A refusal
//!   (404, 422) ends the item (the card keeps its compare link); a rate limit waits for its
//!   reset through the outbox's retries.
//!
//! [`GithubEffect`] (the engine's) builds and reads these, so callers never write the JSON
//! by hand.

use futures::future::BoxFuture;
use greenlight_storage::{GithubGate, OutboxItem, Storage, StorageError};
use serde_json::{json, Value};

use super::client::{AppKey, GithubAppClient, GithubError, KeyError};
use super::compare;
use crate::config::Config;
use crate::engine::{Engine, GithubEffect};
use crate::outbox::{Deliverer, DeliveryError};

/// GitHub shows at most this much of a status report; longer comments are cut to fit.
const MAX_COMMENT: usize = 1024;

impl From<GithubError> for DeliveryError {
    fn from(error: GithubError) -> Self {
        match error {
            GithubError::Transient {
                reason,
                retry_after,
            } => DeliveryError::Retry {
                after: retry_after,
                reason,
            },
            // Only reaches here when the client could not recover from it itself.
            GithubError::Unauthorized { .. } => DeliveryError::retry(error.to_string()),
            GithubError::Refused { .. } | GithubError::Setup(_) | GithubError::Signing(_) => {
                DeliveryError::Permanent(error.to_string())
            }
        }
    }
}

/// The `github` deliverer of the outbox worker.
pub struct GithubDeliverer {
    client: GithubAppClient,
    storage: Storage,
    engine: Engine,
}

/// Why the `github` deliverer could not be built at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("github.private_key_file: {0}")]
    Key(#[from] KeyError),
    #[error("building the HTTP client for GitHub: {0}")]
    Http(#[from] reqwest::Error),
}

impl GithubDeliverer {
    pub fn new(client: GithubAppClient, engine: Engine) -> Self {
        Self {
            client,
            storage: engine.storage.clone(),
            engine,
        }
    }

    /// The deliverer `config` asks for: `None` without a GitHub App or `github.token` in
    /// `[github]`. Without an App, protection rules can be recorded but not answered, and the
    /// log says so once.
    pub fn from_config(config: &Config, engine: Engine) -> Result<Option<Self>, SetupError> {
        let Some(github) = &config.github else {
            return Ok(None);
        };
        let key = github.app.as_ref().map(AppKey::load).transpose()?;
        if key.is_none() {
            // Protection rules reach Greenlight only for gated environments of apps with a
            // repository; without those, the missing App is no loss worth shouting about.
            let gated_on_github: Vec<String> = config
                .apps
                .iter()
                .filter(|app| app.repository.is_some())
                .flat_map(|app| {
                    app.environments
                        .iter()
                        .filter(|environment| environment.is_gated())
                        .map(move |environment| format!("{}/{}", app.name, environment.name))
                })
                .collect();
            if !gated_on_github.is_empty() {
                tracing::error!(
                    environments = %gated_on_github.join(", "),
                    "[github] has no GitHub App (app_id and private_key_file): deployment protection rules for these environments will be recorded but never answered, and GitHub fails their jobs after 30 days"
                );
            }
            if github.token.is_none() {
                return Ok(None);
            }
        }
        let client = GithubAppClient::new(github, key, engine.clock.clone())?;
        Ok(Some(Self::new(client, engine)))
    }

    /// Does one effect. Safe to repeat: the answer sent is always the one stored on the gate.
    pub async fn deliver_effect(&self, effect: &GithubEffect) -> Result<(), DeliveryError> {
        match effect {
            GithubEffect::AnswerGate { gate } => {
                let gate = self.gate(*gate).await?;
                let Some(answer) = gate.answer else {
                    return Err(DeliveryError::Permanent(format!(
                        "github gate {} has no answer to send",
                        gate.id
                    )));
                };
                let body = json!({
                    "environment_name": gate.github_environment,
                    "state": answer.as_str(),
                    "comment": fit(gate.comment.as_deref().unwrap_or_default()),
                });
                self.post(&gate, &body).await?;
                tracing::info!(gate = gate.id, app = %gate.app, environment = %gate.environment, sha = %gate.sha, state = %answer, "answered GitHub deployment protection rule");
                Ok(())
            }
            GithubEffect::GateStatus { gate, comment } => {
                let gate = self.gate(*gate).await?;
                if gate.answer.is_some() {
                    // The answer says more than the report would, and GitHub may refuse a
                    // report on a rule it no longer waits for.
                    return Ok(());
                }
                let body = json!({
                    "environment_name": gate.github_environment,
                    "comment": fit(comment),
                });
                self.post(&gate, &body).await?;
                Ok(())
            }
            GithubEffect::CardCommits { request } => self.card_commits(*request).await,
        }
    }

    /// Fetches and stores the commit list of request `request`'s card, which is then edited.
    async fn card_commits(&self, request: i64) -> Result<(), DeliveryError> {
        let storage = |error: StorageError| match error {
            StorageError::NotFound { .. } => DeliveryError::Permanent(error.to_string()),
            other => DeliveryError::retry(format!("storage: {other}")),
        };
        let Some(target) = self
            .engine
            .card_compare_target(request)
            .await
            .map_err(storage)?
        else {
            // Production moved to this release (or nothing runs) since: nothing to list.
            return Ok(());
        };
        let comparison = compare::fetch(&self.client, &target)
            .await
            .map_err(|error| {
                if let GithubError::Refused { status, message } = &error {
                    tracing::warn!(request, status, %message, repository = %target.repository, base = %target.base, head = %target.head, "GitHub refused the compare of an approval card; the card keeps its compare link only");
                }
                DeliveryError::from(error)
            })?;
        let list = comparison.into_card_commits(request, &target.base, self.engine.clock.now());
        tracing::debug!(
            request,
            total = list.total_commits,
            "commits of an approval card"
        );
        self.engine.record_card_commits(list).await.map_err(storage)
    }

    async fn post(&self, gate: &GithubGate, body: &Value) -> Result<(), DeliveryError> {
        if !self.client.has_app() {
            return Err(DeliveryError::Permanent(format!(
                "github gate {}: answering a protection rule needs a GitHub App in [github] (app_id and private_key_file)",
                gate.id
            )));
        }
        let Some(installation) = gate.installation_id else {
            return Err(DeliveryError::Permanent(format!(
                "github gate {}: the protection rule came without an installation id, so no token can answer it (is the webhook the GitHub App's own?)",
                gate.id
            )));
        };
        self.client
            .post_as_installation(installation, &gate.callback_url, body)
            .await
            .map_err(|error| {
                if let GithubError::Refused { status, message } = &error {
                    tracing::error!(gate = gate.id, status, %message, callback = %gate.callback_url, "GitHub refused the protection rule callback");
                }
                DeliveryError::from(error)
            })
    }

    async fn gate(&self, id: i64) -> Result<GithubGate, DeliveryError> {
        self.storage
            .github_gate(id)
            .await
            .map_err(|error| match error {
                StorageError::NotFound { .. } => DeliveryError::Permanent(error.to_string()),
                other => DeliveryError::retry(format!("storage: {other}")),
            })
    }
}

impl Deliverer for GithubDeliverer {
    fn deliver<'a>(&'a self, item: &'a OutboxItem) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let effect =
                GithubEffect::parse(&item.kind, &item.payload).map_err(DeliveryError::Permanent)?;
            self.deliver_effect(&effect).await
        })
    }
}

/// `text` cut to GitHub's limit on a character boundary.
fn fit(text: &str) -> String {
    if text.chars().count() <= MAX_COMMENT {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_COMMENT - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    #[test]
    fn effects_round_trip_through_the_outbox_format() {
        for effect in [
            GithubEffect::AnswerGate { gate: 7 },
            GithubEffect::GateStatus {
                gate: 7,
                comment: "waiting for staging".to_owned(),
            },
            GithubEffect::CardCommits { request: 42 },
        ] {
            let item = effect.outbox_item(Utc::now());
            assert_eq!(
                GithubEffect::parse(&item.kind, &item.payload).as_ref(),
                Ok(&effect)
            );
        }
        let answer = GithubEffect::AnswerGate { gate: 7 }.outbox_item(Utc::now());
        assert_eq!(answer.kind, "github.answer_gate");
        assert_eq!(answer.idempotency_key, "github.answer_gate:7");
        assert_eq!(answer.payload, json!({"gate": 7}));
        assert!(GithubEffect::parse("github.answer_gate", &json!({"gate": "x"})).is_err());
        assert!(GithubEffect::parse("github.dispatch", &json!({})).is_err());
    }

    #[test]
    fn long_comments_are_cut_to_githubs_limit() {
        assert_eq!(fit("short"), "short");
        let long = "ü".repeat(2000);
        let cut = fit(&long);
        assert_eq!(cut.chars().count(), MAX_COMMENT);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn refusals_are_permanent_and_outages_retried() {
        assert!(matches!(
            DeliveryError::from(GithubError::Refused {
                status: 422,
                message: "No pending deployment".to_owned()
            }),
            DeliveryError::Permanent(message) if message.contains("422") && message.contains("No pending deployment")
        ));
        assert_eq!(
            DeliveryError::from(GithubError::Transient {
                reason: "GitHub answered 503".to_owned(),
                retry_after: Some(std::time::Duration::from_secs(5)),
            }),
            DeliveryError::Retry {
                after: Some(std::time::Duration::from_secs(5)),
                reason: "GitHub answered 503".to_owned()
            }
        );
    }
}
