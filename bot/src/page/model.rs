//! What the page shows, read from storage: each environment now, the release timeline, and the
//! last 30 days of deploys for the charts. Rendering is `view`'s job.

use chrono::{DateTime, Utc};
use greenlight_commands::{AppName, DecisionVerdict, DeploymentKind};
use greenlight_storage::{
    Decision, DoraMetrics, Durations, EnvironmentStatus, FinishedDeploy, Lock, ReleaseStory,
    SmokeResult, StorageError, StoryFilter,
};

use crate::config::{AppConfig, Config};
use crate::dora::{DoraQuery, DEFAULT_DAYS};
use crate::http::AppState;

/// Releases per page of the timeline.
pub const PAGE_SIZE: u32 = 10;

/// Everything one page shows.
pub struct Overview {
    pub now: DateTime<Utc>,
    /// `Some` on `/apps/{app}`.
    pub only_app: Option<AppName>,
    pub apps: Vec<AppNow>,
    pub timeline: Vec<Story>,
    /// The cursor of the next (older) page, when there may be one.
    pub older: Option<i64>,
    /// Whether this is a later page (then the page links back to the newest).
    pub paged: bool,
}

/// One app: each environment now, and its charts.
pub struct AppNow {
    pub name: AppName,
    pub environments: Vec<EnvironmentStatus>,
    /// Decisions on each environment's waiting request, in environment order.
    pub decisions: Vec<Vec<Decision>>,
    pub charts: Option<Charts>,
}

/// The last days of one environment's deploys, with the DORA figures for the summary.
pub struct Charts {
    pub query: DoraQuery,
    pub from: DateTime<Utc>,
    pub deploys: Vec<FinishedDeploy>,
    pub metrics: DoraMetrics,
}

/// One release and what happened to it, oldest first.
pub struct Story {
    pub story: ReleaseStory,
    pub events: Vec<Event>,
}

/// One line of a release's story.
pub struct Event {
    pub at: DateTime<Utc>,
    pub environment: Option<String>,
    pub what: String,
    pub who: Option<String>,
    /// A state word for the badge (`healthy`, `rejected`...).
    pub state: Option<String>,
    pub smoke: Vec<SmokeResult>,
    pub note: Option<String>,
}

impl Event {
    fn new(at: DateTime<Utc>, what: impl Into<String>) -> Self {
        Self {
            at,
            environment: None,
            what: what.into(),
            who: None,
            state: None,
            smoke: Vec::new(),
            note: None,
        }
    }
}

/// Reads the page's data for every app, or `only` one; `before` is the timeline's cursor.
pub async fn load(
    state: &AppState,
    only: Option<&AppConfig>,
    before: Option<i64>,
) -> Result<Overview, StorageError> {
    let now = state.engine.clock().now();
    let config: &Config = &state.config;
    let apps: Vec<&AppConfig> = match only {
        Some(app) => vec![app],
        None => config.apps.iter().collect(),
    };
    let mut app_views = Vec::with_capacity(apps.len());
    for app in &apps {
        app_views.push(load_app(state, app, now).await?);
    }
    let filter = StoryFilter {
        app: only.map(|app| app.name.to_string()),
        before_id: before,
        limit: PAGE_SIZE,
    };
    let stories = state.storage.release_stories(&filter).await?;
    let older = (stories.len() == PAGE_SIZE as usize)
        .then(|| stories.last().map(|story| story.release.id))
        .flatten();
    let until = match before {
        Some(id) => match state.storage.release_by_id(id).await {
            Ok(release) => Some(release.created_at),
            Err(StorageError::NotFound { .. }) => None,
            Err(error) => return Err(error),
        },
        None => None,
    };
    let mut locks = Vec::new();
    if let Some(oldest) = stories.last() {
        for app in &apps {
            locks.extend(
                state
                    .storage
                    .locks_since(app.name.as_str(), oldest.release.created_at)
                    .await?,
            );
        }
    }
    Ok(Overview {
        now,
        only_app: only.map(|app| app.name.clone()),
        apps: app_views,
        timeline: stories_with_events(stories, &locks, until),
        older,
        paged: before.is_some(),
    })
}

async fn load_app(
    state: &AppState,
    app: &AppConfig,
    now: DateTime<Utc>,
) -> Result<AppNow, StorageError> {
    let mut environments = Vec::new();
    let mut decisions = Vec::new();
    for environment in &app.environments {
        let status = state
            .storage
            .environment_status(&app.name, &environment.name)
            .await?;
        let counted = match &status.pending_approval {
            Some(pending) => state
                .storage
                .decisions(pending.request.id)
                .await?
                .into_iter()
                .filter(|decision| decision.refused_reason.is_none())
                .collect(),
            None => Vec::new(),
        };
        environments.push(status);
        decisions.push(counted);
    }
    let charts =
        match DoraQuery::resolve(&state.config, Some(app.name.as_str()), None, DEFAULT_DAYS) {
            Ok(query) => {
                let window = query.window(now);
                Some(Charts {
                    deploys: state.storage.finished_deploys(&window).await?,
                    metrics: state.storage.dora_metrics(&window).await?,
                    from: window.from,
                    query,
                })
            }
            // An app without environments has nothing to chart.
            Err(_) => None,
        };
    Ok(AppNow {
        name: app.name.clone(),
        environments,
        decisions,
        charts,
    })
}

/// Each release's events in time order. A lock belongs to the story of the newest release of
/// its app built before it; `until` (the previous page's oldest release) bounds a later page,
/// whose newer locks belong to the page before.
fn stories_with_events(
    stories: Vec<ReleaseStory>,
    locks: &[Lock],
    until: Option<DateTime<Utc>>,
) -> Vec<Story> {
    let mut stories: Vec<Story> = stories
        .into_iter()
        .map(|story| Story {
            events: release_events(&story),
            story,
        })
        .collect();
    for lock in locks {
        let mut moments = vec![(lock.locked_at, lock_event(lock))];
        if let Some(released_at) = lock.released_at {
            moments.push((released_at, unlock_event(lock, released_at)));
        }
        for (at, event) in moments {
            if until.is_some_and(|until| at >= until) {
                continue;
            }
            let home = stories.iter_mut().find(|story| {
                story.story.release.app == lock.app && story.story.release.created_at <= at
            });
            if let Some(story) = home {
                story.events.push(event);
            }
        }
    }
    for story in &mut stories {
        story.events.sort_by_key(|event| event.at);
    }
    stories
}

fn release_events(story: &ReleaseStory) -> Vec<Event> {
    let release = &story.release;
    let mut events = Vec::new();
    let mut built = Event::new(release.created_at, "built");
    built.who = release.author.clone();
    built.note = Some(release.image.clone());
    events.push(built);
    for deployment in &story.deployments {
        let rollback = deployment.kind == DeploymentKind::Rollback;
        let what = match (&deployment.previous_sha, rollback) {
            (Some(from), true) => format!("rollback from {} to this release", from.short()),
            (None, true) => "rollback to this release".to_owned(),
            (_, false) => "deployment".to_owned(),
        };
        let mut event = Event::new(deployment.created_at, what);
        event.environment = Some(deployment.environment.to_string());
        event.who = deployment
            .triggered_by
            .clone()
            .or_else(|| deployment.deployer.clone());
        event.state = Some(deployment.state.as_str().to_owned());
        event.smoke = deployment.smoke.clone();
        event.note = match (&deployment.detail, deployment.approved) {
            (_, false) => Some("deployed without approval".to_owned()),
            (Some(detail), true) => Some(detail.clone()),
            (None, true) => None,
        };
        events.push(event);
    }
    // After the decisions, so a request ends after the decision that ended it at the same time.
    let mut endings = Vec::new();
    for request in &story.approval_requests {
        let mut opened = Event::new(request.created_at, "approval requested");
        opened.environment = Some(request.environment.to_string());
        opened.who = Some("greenlight".to_owned());
        opened.note = Some(format!(
            "needs {} {}; opens {}, expires {}",
            request.required_approvals,
            if request.required_approvals == 1 {
                "approval"
            } else {
                "approvals"
            },
            stamp(request.opens_at),
            stamp(request.expires_at)
        ));
        events.push(opened);
        if request.state.is_final() {
            let at = request.decided_at.unwrap_or(request.updated_at);
            let mut ended = Event::new(at, "approval request");
            ended.environment = Some(request.environment.to_string());
            ended.state = Some(request.state.as_str().to_owned());
            ended.note = request.outcome_comment.clone();
            endings.push(ended);
        }
    }
    for decision in &story.decisions {
        let environment = story
            .approval_requests
            .iter()
            .find(|request| request.id == decision.request_id)
            .map(|request| request.environment.to_string());
        let mut event = Event::new(decision.decided_at, verdict_word(decision));
        event.environment = environment;
        event.who = Some(decider(decision));
        event.note = decision.comment.clone();
        events.push(event);
    }
    events.extend(endings);
    events
}

/// "approved" or "rejected".
pub fn verdict_word(decision: &Decision) -> &'static str {
    match decision.verdict {
        DecisionVerdict::Approve => "approved",
        DecisionVerdict::Reject => "rejected",
    }
}

/// A person's name, else their chat account.
pub fn decider(decision: &Decision) -> String {
    match &decision.person {
        Some(person) => person.to_string(),
        None => format!("{}:{}", decision.platform, decision.platform_user),
    }
}

fn lock_event(lock: &Lock) -> Event {
    let mut event = Event::new(
        lock.locked_at,
        if lock.automatic {
            "locked automatically"
        } else {
            "locked"
        },
    );
    event.environment = Some(lock.environment.to_string());
    event.who = Some(lock.locked_by.clone());
    event.state = Some("locked".to_owned());
    event.note = Some(lock.reason.clone());
    event
}

fn unlock_event(lock: &Lock, at: DateTime<Utc>) -> Event {
    let mut event = Event::new(at, "unlocked");
    event.environment = Some(lock.environment.to_string());
    event.who = lock.released_by.clone();
    event
}

/// A time as the page writes it.
pub fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// How long ago, roughly: "just now", "5 min ago", "3 h ago", "2 days ago".
pub fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    match seconds {
        i64::MIN..=59 => "just now".to_owned(),
        60..=3_599 => format!("{} min ago", seconds / 60),
        3_600..=172_799 => format!("{} h ago", seconds / 3_600),
        _ => format!("{} days ago", seconds / 86_400),
    }
}

/// Seconds as people read them, to the minute: "1h 30m", "45s".
pub fn duration(seconds: f64) -> String {
    let seconds = seconds.max(0.0).round() as u64;
    let rounded = if seconds >= 60 {
        seconds / 60 * 60
    } else {
        seconds
    };
    humantime::format_duration(std::time::Duration::from_secs(rounded)).to_string()
}

/// "median 1h 30m, p90 2h (4 samples)", or "no samples".
pub fn spread(durations: &Durations) -> String {
    let Some(median) = durations.median_seconds else {
        return "no samples".to_owned();
    };
    let p90 = durations
        .p90_seconds
        .map(|p90| format!(", p90 {}", duration(p90)))
        .unwrap_or_default();
    let samples = durations.samples;
    let noun = if samples == 1 { "sample" } else { "samples" };
    format!("median {}{p90} ({samples} {noun})", duration(median))
}
