//! What each GitHub event means for Greenlight: a deployment result for the engine, a finished
//! workflow run for the release log, a protection-rule gate that joins its approval request
//! (or is answered at once), or a reason to ignore it. Every delivery that is handled is
//! remembered by its `X-GitHub-Delivery`, in the same write as its effects, so a redelivery
//! changes nothing.

use chrono::{DateTime, Utc};
use greenlight_commands::CommitSha;
use greenlight_storage::StorageError;
use serde_json::{json, Value};

use super::payloads::{
    non_empty, DeploymentProtectionRuleEvent, DeploymentStatusEvent, PayloadError, PingEvent, User,
    WorkflowRunEvent,
};
use super::webhook::GithubDelivery;
use super::DELIVERY_SOURCE;
use crate::config::{AppConfig, EnvironmentConfig, GithubConfig};
use crate::engine::audit::WorkflowRun;
use crate::engine::{
    CompletedWorkflowRun, Dedup, DeploymentReport, GateRequest, InboundDelivery, IntakeError,
    RecordedGate, ReportedStatus,
};
use crate::http::ApiError;
use crate::http::AppState;

/// The events Greenlight acts on; every other event is acknowledged and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KnownEvent {
    Ping,
    DeploymentStatus,
    WorkflowRun,
    DeploymentProtectionRule,
}

impl KnownEvent {
    pub(super) fn from_header(name: &str) -> Option<Self> {
        match name {
            "ping" => Some(Self::Ping),
            "deployment_status" => Some(Self::DeploymentStatus),
            "workflow_run" => Some(Self::WorkflowRun),
            "deployment_protection_rule" => Some(Self::DeploymentProtectionRule),
            _ => None,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::DeploymentStatus => "deployment_status",
            Self::WorkflowRun => "workflow_run",
            Self::DeploymentProtectionRule => "deployment_protection_rule",
        }
    }
}

/// What became of a delivery; each answers 200.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Handled {
    Pong {
        zen: Option<String>,
        hook_id: Option<i64>,
        /// A redelivered ping still pongs, and says it was seen before.
        duplicate: bool,
    },
    /// Nothing to do, and why (shown in GitHub's delivery log).
    Ignored(String),
    /// This delivery id was handled before.
    Duplicate,
    /// What was recorded, for the delivery log.
    Recorded(Value),
}

/// Longest deployment status description kept in the release log.
const MAX_DETAIL: usize = 1024;

/// One delivery of a known event, already authenticated and read as its typed payload.
pub(super) async fn handle(
    state: &AppState,
    github: &GithubConfig,
    event: KnownEvent,
    delivery: &str,
    parsed: GithubDelivery,
) -> Result<Handled, ApiError> {
    match parsed {
        GithubDelivery::Ping(ping) => pong(state, delivery, ping).await,
        GithubDelivery::DeploymentStatus(status) => {
            deployment_status(state, delivery, *status).await
        }
        GithubDelivery::WorkflowRun(run) => workflow_run(state, delivery, *run).await,
        GithubDelivery::DeploymentProtectionRule(rule) => {
            protection_rule(state, github, delivery, *rule).await
        }
        GithubDelivery::OtherAction(action) => {
            let action = action.map_or_else(|| "(none)".to_owned(), |action| format!("{action:?}"));
            let reason = match event {
                KnownEvent::WorkflowRun => {
                    format!("workflow_run action {action} is not recorded; only completed runs are")
                }
                KnownEvent::DeploymentProtectionRule => format!(
                    "deployment_protection_rule action {action} is not used; only requested is"
                ),
                KnownEvent::Ping | KnownEvent::DeploymentStatus => {
                    format!("{} action {action} is not used", event.as_str())
                }
            };
            ignore(state, delivery, reason).await
        }
        GithubDelivery::Ignored => {
            let reason = format!("event {:?} is not used by Greenlight", event.as_str());
            ignore(state, delivery, reason).await
        }
    }
}

/// Acknowledges a delivery that changes nothing, remembering its id so a redelivery is
/// recognised as one.
pub(super) async fn ignore(
    state: &AppState,
    delivery: &str,
    reason: String,
) -> Result<Handled, ApiError> {
    Ok(if remember(state, delivery).await? {
        Handled::Ignored(reason)
    } else {
        Handled::Duplicate
    })
}

/// Records the delivery id on its own; `false` when it was seen before.
async fn remember(state: &AppState, delivery: &str) -> Result<bool, ApiError> {
    state
        .engine
        .first_delivery(&github_delivery(delivery))
        .await
        .map_err(storage_failure)
}

fn github_delivery(delivery: &str) -> InboundDelivery {
    InboundDelivery {
        source: DELIVERY_SOURCE,
        id: delivery.to_owned(),
    }
}

async fn pong(state: &AppState, delivery: &str, ping: PingEvent) -> Result<Handled, ApiError> {
    // A ping answers with its zen however often it comes; its id is still remembered, like
    // every other delivery's.
    let first = remember(state, delivery).await?;
    Ok(Handled::Pong {
        zen: ping.zen,
        hook_id: ping.hook_id,
        duplicate: !first,
    })
}

/// `deployment_status`: a finished deployment is the same as CI's `deployed` event.
async fn deployment_status(
    state: &AppState,
    delivery: &str,
    event: DeploymentStatusEvent,
) -> Result<Handled, ApiError> {
    let status_word = event.deployment_status.state.trim().to_ascii_lowercase();
    let Some(github_environment) = non_empty(event.deployment_status.environment.as_deref())
        .or_else(|| non_empty(event.deployment.environment.as_deref()))
    else {
        return Err(bad_payload(PayloadError::Field {
            field: "deployment_status.environment".to_owned(),
            message: "is required (or deployment.environment)".to_owned(),
        }));
    };
    let payload_app = event.deployment.payload_str("app");
    let targets = match find_targets(
        &state.config.apps,
        &event.repository.full_name,
        github_environment,
        payload_app.as_deref(),
    ) {
        Ok(targets) => targets,
        Err(reason) => return ignore(state, delivery, reason).await,
    };
    let status = match status_word.as_str() {
        "success" => ReportedStatus::Success,
        "failure" | "error" => ReportedStatus::Failure,
        other => {
            let reason = format!(
                "deployment status {other:?} is not a result; only success, failure and error are recorded"
            );
            return ignore(state, delivery, reason).await;
        }
    };
    let sha = commit_sha(&event.deployment.sha, "deployment.sha")?;
    let image = event.deployment.payload_str("image");
    let actor = actor(&[
        event.deployment_status.creator.as_ref(),
        event.sender.as_ref(),
    ]);
    let url = non_empty(event.deployment_status.target_url.as_deref())
        .or_else(|| non_empty(event.deployment_status.log_url.as_deref()))
        .map(str::to_owned);
    let detail = Some(truncate(
        &match non_empty(event.deployment_status.description.as_deref()) {
            Some(description) => format!("GitHub deployment {status_word}: {description}"),
            None => format!("GitHub deployment {status_word}"),
        },
        MAX_DETAIL,
    ));

    let several = targets.len() > 1;
    let mut recorded = Vec::new();
    for (app, environment) in targets {
        let report = DeploymentReport {
            app: app.name.clone(),
            environment: environment.name.clone(),
            sha: sha.clone(),
            status,
            image: Some(
                image
                    .clone()
                    .unwrap_or_else(|| format!("{}:{sha}", app.image.as_str())),
            ),
            smoke: None,
            deployment_id: None,
            url: url.clone(),
            detail: detail.clone(),
            actor: actor.clone(),
        };
        // One delivery may concern several apps of a monorepo; each is its own write, so each
        // remembers the delivery under its own key and a redelivery retries only what failed.
        let id = if several {
            format!("{delivery}/{}", app.name)
        } else {
            delivery.to_owned()
        };
        let reply = state
            .engine
            .record_deployment(
                report,
                Dedup::Delivery {
                    source: DELIVERY_SOURCE,
                    id,
                },
            )
            .await
            .map_err(refusal)?;
        if !reply.duplicate {
            let mut body = reply.body;
            if let Some(object) = body.as_object_mut() {
                object.insert("app".to_owned(), json!(app.name));
                object.insert("environment".to_owned(), json!(environment.name));
            }
            recorded.push(body);
        }
    }
    Ok(if recorded.is_empty() {
        Handled::Duplicate
    } else {
        Handled::Recorded(json!({ "deployments": recorded }))
    })
}

/// `workflow_run` `completed`: the build's outcome goes to the release log of every app built
/// from the repository, for lead time (commit → run → deploy).
async fn workflow_run(
    state: &AppState,
    delivery: &str,
    event: WorkflowRunEvent,
) -> Result<Handled, ApiError> {
    let apps: Vec<&AppConfig> = state
        .config
        .apps_for_repository(&event.repository.full_name)
        .collect();
    if apps.is_empty() {
        return ignore(
            state,
            delivery,
            unknown_repository(&event.repository.full_name),
        )
        .await;
    }
    let run = &event.workflow_run;
    let sha = commit_sha(&run.head_sha, "workflow_run.head_sha")?;
    let owned = |text: Option<&str>| non_empty(text).map(str::to_owned);
    let detail = WorkflowRun {
        workflow: owned(run.name.as_deref()).or_else(|| {
            event
                .workflow
                .as_ref()
                .and_then(|w| owned(w.name.as_deref()))
        }),
        workflow_path: owned(run.path.as_deref()).or_else(|| {
            event
                .workflow
                .as_ref()
                .and_then(|w| owned(w.path.as_deref()))
        }),
        run_id: run.id,
        run_number: run.run_number,
        run_attempt: run.run_attempt,
        event: owned(run.event.as_deref()),
        // As GitHub sent them: a completed run may still say `queued` with a null conclusion.
        status: owned(run.status.as_deref()),
        conclusion: owned(run.conclusion.as_deref()),
        head_sha: sha.clone(),
        head_branch: owned(run.head_branch.as_deref()),
        html_url: owned(run.html_url.as_deref()),
        created_at: owned(run.created_at.as_deref()),
        run_started_at: owned(run.run_started_at.as_deref()),
        updated_at: owned(run.updated_at.as_deref()),
        duration_secs: duration_secs(run.run_started_at.as_deref(), run.updated_at.as_deref()),
    };
    let actor = actor(&[
        run.triggering_actor.as_ref(),
        run.actor.as_ref(),
        event.sender.as_ref(),
    ]);
    let app_names: Vec<String> = apps.iter().map(|app| app.name.to_string()).collect();
    let first = state
        .engine
        .record_workflow_run(CompletedWorkflowRun {
            delivery: github_delivery(delivery),
            apps: apps.iter().map(|app| app.name.clone()).collect(),
            sha,
            actor,
            detail,
        })
        .await
        .map_err(storage_failure)?;
    Ok(if first {
        Handled::Recorded(json!({
            "recorded": "workflow_run_completed",
            "apps": app_names,
            "run_id": run.id,
            "conclusion": non_empty(run.conclusion.as_deref()),
        }))
    } else {
        Handled::Duplicate
    })
}

/// `deployment_protection_rule` `requested`: GitHub holds the job until we answer at the
/// callback URL. The engine stores the gate and joins it to the approval flow, which answers it.
async fn protection_rule(
    state: &AppState,
    github: &GithubConfig,
    delivery: &str,
    event: DeploymentProtectionRuleEvent,
) -> Result<Handled, ApiError> {
    let payload_app = event.deployment.payload_str("app");
    let targets = match find_targets(
        &state.config.apps,
        &event.repository.full_name,
        &event.environment,
        payload_app.as_deref(),
    ) {
        Ok(targets) => targets,
        Err(reason) => return ignore(state, delivery, reason).await,
    };
    // The callback answers for one job, and its URL is the gate's key: exactly one app decides.
    let (app, environment) = match targets.as_slice() {
        [one] => *one,
        several => {
            let names: Vec<&str> = several.iter().map(|(app, _)| app.name.as_str()).collect();
            let reason = format!(
                "apps {} all have environment {:?}; put \"app\" in the deployment payload to say which one this is",
                names.join(", "),
                event.environment
            );
            return ignore(state, delivery, reason).await;
        }
    };
    if environment.gate.is_none() {
        let reason = format!(
            "environment {} of app {} has no approval gate (no `after`/`reviewers`); Greenlight does not answer for it",
            environment.name, app.name
        );
        return ignore(state, delivery, reason).await;
    }
    let sha = commit_sha(&event.deployment.sha, "deployment.sha")?;
    let callback_url = callback_url(&event.deployment_callback_url, github)?;
    let request = GateRequest {
        delivery: github_delivery(delivery),
        app: app.name.clone(),
        environment: environment.name.clone(),
        sha,
        callback_url,
        installation_id: event
            .installation
            .as_ref()
            .map(|installation| installation.id),
        github_environment: event.environment.clone(),
        github_deployment_id: event.deployment.id,
        trigger: non_empty(event.event.as_deref()).map(str::to_owned),
        actor: actor(&[event.sender.as_ref()]),
    };
    let stored = state
        .engine
        .record_github_gate(request)
        .await
        .map_err(storage_failure)?;
    Ok(match stored {
        Some(RecordedGate { gate, outcome }) => {
            Handled::Recorded(json!({ "gate": gate, "decision": outcome }))
        }
        None => Handled::Duplicate,
    })
}

/// The apps and environments a GitHub deployment in `repository` to `github_environment`
/// concerns, or why none. GitHub matches environment names without regard to case, so we do
/// too. A deployment payload's `app` picks one app of a monorepo.
fn find_targets<'c>(
    apps: &'c [AppConfig],
    repository: &str,
    github_environment: &str,
    payload_app: Option<&str>,
) -> Result<Vec<(&'c AppConfig, &'c EnvironmentConfig)>, String> {
    let candidates: Vec<&AppConfig> = apps
        .iter()
        .filter(|app| {
            app.repository
                .as_ref()
                .is_some_and(|configured| configured.matches(repository))
        })
        .collect();
    if candidates.is_empty() {
        return Err(unknown_repository(repository));
    }
    let candidates: Vec<&AppConfig> = match payload_app {
        Some(wanted) => {
            let chosen: Vec<&AppConfig> = candidates
                .iter()
                .copied()
                .filter(|app| app.name.as_str() == wanted)
                .collect();
            if chosen.is_empty() {
                return Err(format!(
                    "the deployment payload names app {wanted:?}, which is not configured for repository {repository} (apps: {})",
                    names(&candidates)
                ));
            }
            chosen
        }
        None => candidates,
    };
    let wanted = github_environment.trim();
    let targets: Vec<_> = candidates
        .iter()
        .filter_map(|app| {
            app.environments
                .iter()
                .find(|environment| environment.name.as_str().eq_ignore_ascii_case(wanted))
                .map(|environment| (*app, environment))
        })
        .collect();
    if targets.is_empty() {
        return Err(format!(
            "no app of repository {repository} has an environment named {wanted:?} (apps: {})",
            names(&candidates)
        ));
    }
    Ok(targets)
}

fn names(apps: &[&AppConfig]) -> String {
    apps.iter()
        .map(|app| app.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_repository(repository: &str) -> String {
    format!(
        "repository {repository} is not configured for any app (set repository = \"{repository}\" under [apps.NAME])"
    )
}

fn commit_sha(text: &str, field: &str) -> Result<CommitSha, ApiError> {
    CommitSha::parse(text.trim()).map_err(|error| {
        bad_payload(PayloadError::Field {
            field: field.to_owned(),
            message: error.to_string(),
        })
    })
}

/// The installation token will be sent to this URL, so it must be on the GitHub API Greenlight
/// is configured for, not just any address a payload names.
fn callback_url(text: &str, github: &GithubConfig) -> Result<String, ApiError> {
    let field = "deployment_callback_url";
    let url = url::Url::parse(text.trim())
        .ok()
        .filter(|url| matches!(url.scheme(), "https" | "http"))
        .ok_or_else(|| {
            bad_payload(PayloadError::Field {
                field: field.to_owned(),
                message: "must be an http(s) URL".to_owned(),
            })
        })?;
    if url.origin() != github.api_url.origin() {
        return Err(ApiError::unprocessable(format!(
            "{field}: {} is not on the configured GitHub API ({}); set github.api_url for GitHub Enterprise Server",
            url.origin().ascii_serialization(),
            github.api_url.origin().ascii_serialization()
        )));
    }
    Ok(url.to_string())
}

/// `github:<login>` of the first user given, for the release log.
fn actor(users: &[Option<&User>]) -> String {
    users
        .iter()
        .flatten()
        .find_map(|user| non_empty(user.login.as_deref()))
        .map_or_else(|| "github".to_owned(), |login| format!("github:{login}"))
}

/// Seconds from a run's start to its last update: its duration, for lead-time reports.
fn duration_secs(started: Option<&str>, updated: Option<&str>) -> Option<i64> {
    let parse = |text: Option<&str>| {
        DateTime::parse_from_rfc3339(non_empty(text)?)
            .ok()
            .map(|time| time.with_timezone(&Utc))
    };
    let seconds = (parse(updated)? - parse(started)?).num_seconds();
    (seconds >= 0).then_some(seconds)
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

pub(super) fn bad_payload(error: PayloadError) -> ApiError {
    ApiError::bad_request(error.to_string())
}

/// The engine's refusals name what the sender must fix (422); anything else is ours (500).
/// Field names are the engine's, so they are translated to where GitHub's payload has them.
fn refusal(error: IntakeError) -> ApiError {
    match error.field() {
        Some(field) => {
            let field = match field {
                "image" => "deployment.payload.image",
                "sha" => "deployment.sha",
                "environment" => "deployment_status.environment",
                other => other,
            };
            ApiError::unprocessable(format!("{field}: {error}"))
        }
        None => {
            tracing::error!(%error, "recording a GitHub deployment status failed");
            ApiError::internal()
        }
    }
}

pub(super) fn storage_failure(error: StorageError) -> ApiError {
    tracing::error!(%error, "storing a GitHub delivery failed");
    ApiError::internal()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const CONFIG: &str = r#"
        [slack]
        bot_token = "xoxb-test"
        signing_secret = "slack-secret"

        [apps.shop]
        repository = "Acme/Monorepo"
        image = "ghcr.io/acme/shop"
        ci_token = "shop-token"
        channels = { slack = "C0DEPLOYS" }
        [apps.shop.environments.staging]
        [apps.shop.environments.production]
        after = "staging"
        reviewers = ["alice"]

        [apps.api]
        repository = "acme/monorepo"
        image = "ghcr.io/acme/api"
        ci_token = "api-token"
        [apps.api.environments.staging]

        [apps.web]
        repository = "acme/web"
        image = "ghcr.io/acme/web"
        ci_token = "web-token"
        [apps.web.environments.staging]

        [people]
        alice = { github = "alice" }
    "#;

    fn config() -> Config {
        Config::from_toml_str(CONFIG, &|_| None).unwrap_or_else(|errors| panic!("{errors}"))
    }

    fn found(
        config: &Config,
        repository: &str,
        environment: &str,
        app: Option<&str>,
    ) -> Result<Vec<String>, String> {
        find_targets(&config.apps, repository, environment, app).map(|targets| {
            targets
                .iter()
                .map(|(app, environment)| format!("{}/{}", app.name, environment.name))
                .collect()
        })
    }

    #[test]
    fn targets_follow_repository_environment_and_payload_app() {
        let config = config();
        assert_eq!(
            found(&config, "acme/web", "staging", None),
            Ok(vec!["web/staging".to_owned()])
        );
        // Repository and environment names compare as GitHub compares them.
        assert_eq!(
            found(&config, "ACME/monorepo", "Staging", None),
            Ok(vec!["shop/staging".to_owned(), "api/staging".to_owned()])
        );
        assert_eq!(
            found(&config, "acme/monorepo", "staging", Some("api")),
            Ok(vec!["api/staging".to_owned()])
        );
        assert_eq!(
            found(&config, "acme/monorepo", "production", None),
            Ok(vec!["shop/production".to_owned()])
        );
    }

    #[test]
    fn no_target_says_why() {
        let config = config();
        let reason = found(&config, "octo/other", "staging", None).expect_err("ignored");
        assert!(reason.contains("octo/other is not configured"), "{reason}");
        let reason = found(&config, "acme/web", "github-pages", None).expect_err("ignored");
        assert!(reason.contains("\"github-pages\""), "{reason}");
        assert!(reason.contains("apps: web"), "{reason}");
        let reason = found(&config, "acme/monorepo", "staging", Some("web")).expect_err("ignored");
        assert!(reason.contains("names app \"web\""), "{reason}");
    }

    #[test]
    fn actor_is_the_first_known_login() {
        let nobody = User { login: None };
        let octocat = User {
            login: Some("octocat".to_owned()),
        };
        assert_eq!(
            actor(&[None, Some(&nobody), Some(&octocat)]),
            "github:octocat"
        );
        assert_eq!(actor(&[None]), "github");
    }

    #[test]
    fn durations_need_both_times_in_order() {
        assert_eq!(
            duration_secs(Some("2020-10-05T16:33:49Z"), Some("2020-10-05T16:35:00Z")),
            Some(71)
        );
        assert_eq!(duration_secs(Some(""), Some("2020-10-05T16:35:00Z")), None);
        assert_eq!(
            duration_secs(Some("2020-10-05T16:33:49Z"), Some("2020-10-05T16:33:24Z")),
            None
        );
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("hello", 5), "hello");
    }

    #[test]
    fn callbacks_must_go_to_the_configured_github_api() {
        let github = GithubConfig {
            webhook_secret: crate::secret::SecretList::single(crate::secret::Secret::new("s")),
            app: None,
            token: None,
            api_url: url::Url::parse("https://api.github.com").expect("url"),
        };
        let ok = "https://api.github.com/repos/acme/shop/actions/runs/1/deployment_protection_rule";
        assert_eq!(callback_url(ok, &github).as_deref(), Ok(ok));
        let elsewhere = callback_url("https://evil.example/steal", &github).expect_err("refused");
        assert_eq!(
            elsewhere.status,
            axum::http::StatusCode::UNPROCESSABLE_ENTITY
        );
        let garbage = callback_url("not a url", &github).expect_err("refused");
        assert_eq!(garbage.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(garbage.detail.starts_with("deployment_callback_url"));
    }
}
