//! The page's HTML (maud: checked at compile time, everything interpolated is escaped). One
//! layout, the sign-in form, the overview and the not-found page; no JavaScript.

use greenlight_storage::EnvironmentStatus;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::charts;
use super::model::{age, decider, stamp, verdict_word, AppNow, Event, Overview, Story};
use greenlight_storage::Decision;

/// Small, responsive, high-contrast; the only style there is.
const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:0;color:#1f2328;background:#fff;line-height:1.45}\
header,main{max-width:60rem;margin:0 auto;padding:0.75rem 1rem}\
header{border-bottom:1px solid #d0d7de}header a{color:inherit;text-decoration:none;font-weight:700}\
a{color:#0550ae}h1{font-size:1.4rem}h2{font-size:1.2rem;margin-top:2rem}h3{font-size:1.05rem}\
table{border-collapse:collapse;width:100%;margin:0.5rem 0}caption{text-align:left;font-weight:600}\
th,td{border-bottom:1px solid #d0d7de;padding:0.35rem 0.5rem;text-align:left;vertical-align:top}\
code{font-size:0.95em}li,td{overflow-wrap:anywhere}.state{font-weight:600}.healthy,.approved{color:#1a7f37}\
.faulty,.rejected,.failed,.expired{color:#9a6700}.rolled_back,.rolled-back,.locked{color:#cf222e}\
.muted{color:#57606a}.story{border:1px solid #d0d7de;border-radius:6px;padding:0.5rem 0.75rem;margin:0.75rem 0}\
.story ol{padding-left:1.2rem;margin:0.25rem 0}.charts{display:flex;flex-wrap:wrap;gap:1rem}\
figure{flex:1 1 18rem;margin:0}svg{width:100%;height:auto}.axis{font-size:11px;fill:#57606a}\
.base{stroke:#8c959f}.key{white-space:nowrap}.error{color:#a40e26;font-weight:600}\
label{display:block;font-weight:600;margin:0.5rem 0}input{font-size:1rem;padding:0.4rem;max-width:100%}\
button{font-size:1rem;padding:0.4rem 1rem;margin-top:0.5rem}nav{margin:1rem 0}\
@media (max-width:40rem){th,td{padding:0.3rem 0.25rem;font-size:0.9rem}}";

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Greenlight" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header { a href="/" { "Greenlight" } " " span class="muted" { "release timeline" } }
                main { (body) }
            }
        }
    }
}

/// The sign-in form, with `error` above it after a refused token; `configured` says whether
/// the token asked for is `server.api_token` or the one `serve` printed.
pub fn sign_in(error: Option<&str>, configured: bool) -> Markup {
    let label = if configured {
        "API token (server.api_token)"
    } else {
        "Sign-in token (in the link greenlight printed at start)"
    };
    layout(
        "Sign in",
        html! {
            h1 { "Sign in" }
            @if let Some(error) = error { p class="error" role="alert" { (error) } }
            form method="post" action="/sign-in" {
                label for="token" { (label) }
                input id="token" name="token" type="password" autocomplete="current-password" required;
                br;
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub fn not_found(what: &str) -> Markup {
    layout(
        "Not found",
        html! {
            h1 { "Not found" }
            p { (what) }
            p { a href="/" { "All apps" } }
        },
    )
}

pub fn unavailable() -> Markup {
    layout(
        "Unavailable",
        html! {
            h1 { "The release log cannot be read right now" }
            p { "The database did not answer; see the server's log. Reload to try again." }
        },
    )
}

pub fn overview(page: &Overview) -> Markup {
    let title = match &page.only_app {
        Some(app) => format!("{app}: releases"),
        None => "Releases".to_owned(),
    };
    let base = match &page.only_app {
        Some(app) => format!("/apps/{app}"),
        None => "/".to_owned(),
    };
    layout(
        &title,
        html! {
            h1 { (title) }
            @if page.only_app.is_some() { p { a href="/" { "All apps" } } }
            @if page.apps.is_empty() {
                p { "No apps are configured yet: add an " code { "[apps.NAME]" } " section to greenlight.toml." }
            }
            @for app in &page.apps { (app_now(app, page)) }
            section aria-labelledby="timeline" {
                h2 id="timeline" { "Timeline" }
                @if page.timeline.is_empty() {
                    p { "No releases recorded yet: CI reports a build to " code { "POST /api/v1/events" } "." }
                }
                @for story in &page.timeline { (story_view(story, page)) }
                nav aria-label="Timeline pages" {
                    @if page.paged { a href=(base) { "Newest" } " " }
                    @if let Some(before) = page.older {
                        a href={(base) "?before=" (before)} rel="next" { "Older releases" }
                    }
                }
            }
        },
    )
}

fn app_now(app: &AppNow, page: &Overview) -> Markup {
    let name = app.name.as_str();
    html! {
        section aria-labelledby={"app-" (name)} {
            h2 id={"app-" (name)} {
                @if page.only_app.is_some() { (name) } @else { a href={"/apps/" (name)} { (name) } }
            }
            table {
                caption { "What runs where" }
                thead { tr {
                    th scope="col" { "Environment" } th scope="col" { "Running" }
                    th scope="col" { "State" } th scope="col" { "Since" } th scope="col" { "Lock" }
                } }
                tbody {
                    @for status in &app.environments { (environment_row(status, page)) }
                }
            }
            @for (status, decisions) in app.environments.iter().zip(&app.decisions) {
                @if let Some(pending) = &status.pending_approval {
                    (waiting(status, pending, decisions, page))
                }
            }
            @if let Some(charts) = &app.charts {
                h3 { "Last " (charts.query.days) " days" }
                (charts::charts(charts))
            }
        }
    }
}

fn environment_row(status: &EnvironmentStatus, page: &Overview) -> Markup {
    html! {
        tr {
            th scope="row" { (status.environment.as_str()) }
            @match &status.current {
                Some(current) => {
                    td { code { (current.sha.short()) } }
                    td class={"state " (current.state.as_str())} {
                        (current.state.as_str())
                        @if !current.approved { " (deployed without approval)" }
                    }
                    td { time datetime=(current.created_at.to_rfc3339()) title=(stamp(current.created_at)) { (age(current.created_at, page.now)) } }
                }
                None => { td colspan="3" class="muted" { "nothing deployed yet" } }
            }
            td {
                @match &status.lock {
                    Some(lock) => {
                        span class="locked" { "locked" } " by " (lock.locked_by) ": " (lock.reason)
                        " (" (age(lock.locked_at, page.now)) ")"
                    }
                    None => { span class="muted" { "unlocked" } }
                }
            }
        }
    }
}

fn waiting(
    status: &EnvironmentStatus,
    pending: &greenlight_storage::PendingApproval,
    decisions: &[Decision],
    page: &Overview,
) -> Markup {
    let request = &pending.request;
    html! {
        h3 { "Waiting for approval: " code { (request.sha.short()) } " to " (status.environment.as_str()) }
        p {
            (pending.approvals.len()) " of " (request.required_approvals) " approvals. "
            @if request.opens_at > page.now { "Opens " (stamp(request.opens_at)) ". " }
            "Expires " (stamp(request.expires_at)) "."
        }
        @if decisions.is_empty() {
            p class="muted" { "No decisions yet." }
        } @else {
            ul {
                @for decision in decisions {
                    li {
                        (decider(decision)) " " (verdict_word(decision)) " "
                        time datetime=(decision.decided_at.to_rfc3339()) { (age(decision.decided_at, page.now)) }
                        @if let Some(comment) = &decision.comment { ": " (comment) }
                    }
                }
            }
        }
    }
}

fn story_view(story: &Story, page: &Overview) -> Markup {
    let release = &story.story.release;
    let subject = release
        .message
        .as_deref()
        .and_then(|message| message.lines().next())
        .unwrap_or("(no commit message)");
    html! {
        article class="story" aria-label={"Release " (release.sha.short())} {
            h3 {
                @if page.only_app.is_none() { (release.app.as_str()) " " }
                code { (release.sha.short()) } " " (subject)
            }
            ol {
                @for event in &story.events { (event_view(event)) }
            }
        }
    }
}

fn event_view(event: &Event) -> Markup {
    html! {
        li {
            time datetime=(event.at.to_rfc3339()) { (stamp(event.at)) } " "
            @if let Some(environment) = &event.environment { strong { (environment) } " " }
            (event.what)
            @if let Some(state) = &event.state { ": " span class={"state " (state)} { (state.replace('_', " ")) } }
            @if let Some(who) = &event.who { " — " (who) }
            @if let Some(note) = &event.note { " " span class="muted" { "(" (note) ")" } }
            @if !event.smoke.is_empty() {
                ul {
                    @for check in &event.smoke {
                        li {
                            "smoke " (check.name) ": " span class={"state " (if check.passed() { "healthy" } else { "faulty" })} { (check.status) }
                            @if let Some(detail) = &check.detail { " " span class="muted" { (detail) } }
                        }
                    }
                }
            }
        }
    }
}
