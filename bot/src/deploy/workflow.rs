//! The `github-workflow` deployer: `workflow_dispatch` of the configured workflow with the
//! deployment's `sha`, `image`, `environment` and `deployment_id` as inputs.

use greenlight_storage::Deployment;
use serde_json::json;

use super::{retry_after, started_from, unreachable, Started};
use crate::config::Config;

pub(super) async fn dispatch(
    client: &reqwest::Client,
    config: &Config,
    deployment: &Deployment,
    workflow: &str,
    git_ref: &str,
) -> Started {
    let Some(github) = &config.github else {
        return Started::Refused("a github-workflow deploy needs the [github] section".to_owned());
    };
    let Some(token) = &github.token else {
        return Started::Refused(
            "a github-workflow deploy needs github.token (dispatching as a GitHub App is not supported yet)"
                .to_owned(),
        );
    };
    let Some(repository) = config
        .app(&deployment.app)
        .and_then(|app| app.repository.as_ref())
    else {
        return Started::Refused(format!(
            "a github-workflow deploy needs apps.{}.repository",
            deployment.app
        ));
    };
    let mut url = github.api_url.clone();
    {
        let Ok(mut segments) = url.path_segments_mut() else {
            return Started::Refused("github.api_url cannot take a path".to_owned());
        };
        segments.pop_if_empty().extend([
            "repos",
            repository.owner(),
            repository.name(),
            "actions",
            "workflows",
            workflow,
            "dispatches",
        ]);
    }
    // Workflow inputs are strings, whatever they look like.
    let body = json!({
        "ref": git_ref,
        "inputs": {
            "sha": deployment.sha.as_str(),
            "image": deployment.image,
            "environment": deployment.environment.as_str(),
            "deployment_id": deployment.id.to_string(),
        },
    });
    let sent = client
        .post(url)
        .bearer_auth(token.expose())
        .header(reqwest::header::ACCEPT, "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .json(&body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => return unreachable("GitHub", &error),
    };
    let status = response.status();
    // GitHub's secondary rate limits answer 403 with Retry-After or an exhausted quota.
    let rate_limited = status == reqwest::StatusCode::FORBIDDEN
        && (response
            .headers()
            .contains_key(reqwest::header::RETRY_AFTER)
            || response
                .headers()
                .get("x-ratelimit-remaining")
                .is_some_and(|remaining| remaining == "0"));
    let after = retry_after(&response);
    let text = response.text().await.unwrap_or_default();
    if rate_limited {
        return Started::Unavailable {
            after,
            reason: "GitHub rate limit reached".to_owned(),
        };
    }
    started_from(status, after, &text, "GitHub")
}
