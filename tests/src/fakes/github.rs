//! A fake GitHub REST API for a GitHub App: `POST /app/installations/{id}/access_tokens` checks
//! the App JWT (RS256, with the public half of the test key in `tests/fixtures/github-app/`)
//! and hands out installation tokens; the protection-rule callback `POST /repos/{owner}/{repo}/
//! actions/runs/{id}/deployment_protection_rule` checks the token and GitHub's required headers,
//! answers 204 and records the body. Tokens can be revoked and callbacks made to fail.
//!
//! Reads for approval cards: `GET /repos/{owner}/{repo}/installation` (the App's installation,
//! JWT-authenticated) and the compare API `GET /repos/{owner}/{repo}/compare/{base}...{head}`,
//! answered in GitHub's documented shape from the commits the test set, honouring `per_page`;
//! it checks the token (an installation token, or the `github.token` the test accepts) and can
//! answer a rate limit or a refusal instead.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use greenlight::clock::Clock;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Notify;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::faults::Faults;
use super::{Inbox, Recorded};

/// The App id the fake expects in the JWT's `iss`.
pub const APP_ID: u64 = 123456;
/// The installation in the protection-rule payloads.
pub const INSTALLATION_ID: i64 = 2311213;

/// The test-only private key Greenlight is configured with (see the README beside it).
pub fn private_key_file() -> PathBuf {
    fixtures_dir().join("test-app-key.pem")
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/github-app")
}

pub struct FakeGithub {
    server: MockServer,
    state: Arc<State>,
}

struct State {
    clock: Clock,
    public_key: DecodingKey,
    /// Tokens GitHub would accept now.
    valid_tokens: Mutex<HashSet<String>>,
    /// Every token handed out, in order.
    issued: Mutex<Vec<String>>,
    /// Statuses the next callbacks get, in order, before the fake behaves normally again, and
    /// the count of callback requests.
    callbacks: Faults<u16>,
    /// Answers and status reports GitHub accepted.
    inbox: Inbox,
    /// Each callback request as "status path", for failure messages.
    attempt_log: Mutex<Vec<String>>,
    attempted: Notify,
    /// Tokens accepted besides installation tokens (`github.token`).
    personal_tokens: Mutex<HashSet<String>>,
    /// The commits every comparison lists, oldest first.
    compare_commits: Mutex<Vec<FakeCommit>>,
    /// Failures the next compare requests get, and the count of compare requests.
    compares: Faults<CompareFault>,
    /// Each compare request as "status path?query authorization".
    compare_log: Mutex<Vec<String>>,
}

/// A commit the fake's compare API lists.
#[derive(Debug, Clone)]
pub struct FakeCommit {
    pub sha: String,
    /// The GitHub account the commit is linked to, if any.
    pub login: Option<String>,
    pub name: String,
    pub message: String,
}

impl FakeCommit {
    /// `n`th commit (its short SHA is `n` in hex), by octocat, "Change n" with a body.
    pub fn numbered(n: usize) -> Self {
        Self {
            sha: format!("{n:07x}{}", "a".repeat(33)),
            login: Some("octocat".to_owned()),
            name: "The Octocat".to_owned(),
            message: format!("Change {n}\n\nWith a body that the card leaves out."),
        }
    }
}

/// How a compare request fails.
#[derive(Debug, Clone, Copy)]
pub enum CompareFault {
    /// 403 with `x-ratelimit-remaining: 0` and a reset `seconds` ahead (GitHub's primary rate
    /// limit), and `Retry-After` too.
    RateLimited { seconds: i64 },
    /// A plain error status (404 for an unknown commit, 422, 500).
    Status(u16),
}

#[derive(Debug, Deserialize)]
struct Claims {
    iat: i64,
    exp: i64,
    iss: String,
}

impl FakeGithub {
    /// A fake that judges JWT times by `clock`, the clock Greenlight reads.
    pub async fn start(clock: Clock) -> Self {
        let pem = std::fs::read(fixtures_dir().join("test-app-key.pub.pem"))
            .expect("the test App's public key");
        let state = Arc::new(State {
            clock,
            public_key: DecodingKey::from_rsa_pem(&pem).expect("an RSA public key"),
            valid_tokens: Mutex::new(HashSet::new()),
            issued: Mutex::new(Vec::new()),
            callbacks: Faults::default(),
            inbox: Inbox::new("GitHub"),
            attempt_log: Mutex::new(Vec::new()),
            attempted: Notify::new(),
            personal_tokens: Mutex::new(HashSet::new()),
            compare_commits: Mutex::new(Vec::new()),
            compares: Faults::default(),
            compare_log: Mutex::new(Vec::new()),
        });
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path_regex(r"^/app/installations/[0-9]+/access_tokens$"))
            .respond_with(TokenEndpoint(state.clone()))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path_regex(
                r"^/repos/[^/]+/[^/]+/actions/runs/[0-9]+/deployment_protection_rule$",
            ))
            .respond_with(CallbackEndpoint(state.clone()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/repos/[^/]+/[^/]+/installation$"))
            .respond_with(InstallationEndpoint(state.clone()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/repos/[^/]+/[^/]+/compare/[^/]+$"))
            .respond_with(CompareEndpoint(state.clone()))
            .mount(&server)
            .await;
        Self { server, state }
    }

    /// Accepts `token` as `github.token` (a personal access token).
    pub fn accept_token(&self, token: &str) {
        lock(&self.state.personal_tokens).insert(token.to_owned());
    }

    /// What every comparison lists from now on, oldest first.
    pub fn set_compare_commits(&self, commits: Vec<FakeCommit>) {
        *lock(&self.state.compare_commits) = commits;
    }

    /// The next compare requests fail like this, in order.
    pub fn compare_faults(&self, faults: impl IntoIterator<Item = CompareFault>) {
        self.state.compares.queue(faults);
    }

    /// Compare requests received, answered or not.
    pub fn compare_requests(&self) -> usize {
        self.state.compares.requests()
    }

    /// Every compare request so far, as "status path?query authorization". Compares are reads,
    /// not effects: they are logged here, not in the inbox.
    pub fn compare_log(&self) -> Vec<String> {
        lock(&self.state.compare_log).clone()
    }

    /// What Greenlight sent, for [`Inbox::allow_unread`] and reads the methods below do not
    /// cover.
    pub fn inbox(&self) -> &Inbox {
        &self.state.inbox
    }

    /// The value for `github.api_url`.
    pub fn api_url(&self) -> String {
        self.server.uri()
    }

    /// A `deployment_callback_url` as GitHub puts it in a protection-rule payload.
    pub fn callback_url(&self, run_id: u64) -> String {
        format!(
            "{}/repos/Codertocat/Hello-World/actions/runs/{run_id}/deployment_protection_rule",
            self.server.uri()
        )
    }

    /// Makes the next callbacks answer these HTTP statuses, in order (e.g. 500, or 401 as for
    /// a revoked token).
    pub fn hiccup(&self, statuses: impl IntoIterator<Item = u16>) {
        self.state.callbacks.queue(statuses);
    }

    /// Every token handed out so far stops working, as when GitHub revokes them.
    pub fn revoke_tokens(&self) {
        lock(&self.state.valid_tokens).clear();
    }

    /// Installation tokens handed out so far, oldest first.
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state.issued).clone()
    }

    /// Callback requests received, including refused ones and hiccups.
    pub fn callback_attempts(&self) -> usize {
        self.state.callbacks.requests()
    }

    /// Every callback request so far, as "status path body".
    pub fn attempt_log(&self) -> Vec<String> {
        lock(&self.state.attempt_log).clone()
    }

    /// Waits until at least `count` callback requests arrived.
    pub async fn wait_for_callback_attempts(&self, count: usize) {
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let attempted = self.state.attempted.notified();
                tokio::pin!(attempted);
                attempted.as_mut().enable();
                if self.callback_attempts() >= count {
                    return;
                }
                attempted.await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "{} callback attempts within 10 s, wanted {count}",
            self.callback_attempts()
        );
    }

    /// The next accepted answer (a callback with `state`).
    pub async fn next_answer(&self) -> Recorded {
        self.state
            .inbox
            .next("protection rule answer", |r| {
                r.method == "POST" && r.body.get("state").is_some()
            })
            .await
    }

    /// The next accepted status report (a callback without `state`).
    pub async fn next_status_report(&self) -> Recorded {
        self.state
            .inbox
            .next("status report", |r| {
                r.method == "POST" && r.body.get("state").is_none()
            })
            .await
    }

    /// Fails when GitHub accepted something the test never looked at.
    pub fn assert_all_read(&self) {
        self.state.inbox.assert_all_read();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn github_error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
    }))
}

fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Headers GitHub requires of every REST call; missing ones are refused as GitHub refuses them.
fn check_common_headers(request: &Request) -> Result<(), (u16, String)> {
    if header(request, "user-agent").is_none_or(str::is_empty) {
        return Err((403, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header".to_owned()));
    }
    if header(request, "accept") != Some("application/vnd.github+json") {
        return Err((415, "wrong Accept header".to_owned()));
    }
    if header(request, "x-github-api-version") != Some("2022-11-28") {
        return Err((400, "wrong X-GitHub-Api-Version".to_owned()));
    }
    Ok(())
}

fn bearer(request: &Request) -> Option<&str> {
    header(request, "authorization")?.strip_prefix("Bearer ")
}

struct TokenEndpoint(Arc<State>);

impl Respond for TokenEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if let Err((status, message)) = check_common_headers(request) {
            return github_error(status, &message);
        }
        let Some(jwt) = bearer(request) else {
            return github_error(401, "A JSON web token could not be decoded");
        };
        let mut validation = Validation::new(Algorithm::RS256);
        // Times are judged by Greenlight's (manual) clock below, not this machine's.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let claims = match jsonwebtoken::decode::<Claims>(jwt, &self.0.public_key, &validation) {
            Ok(decoded) => decoded.claims,
            Err(error) => {
                return github_error(
                    401,
                    &format!("A JSON web token could not be decoded: {error}"),
                )
            }
        };
        let now = self.0.clock.now().timestamp();
        if claims.iss != APP_ID.to_string() {
            return github_error(401, "'Issuer' claim ('iss') must be the App's id");
        }
        if claims.iat > now || claims.exp <= now || claims.exp - claims.iat > 600 {
            return github_error(
                401,
                "'Expiration time' claim ('exp') is too far in the future, or the token is not valid now",
            );
        }
        let mut issued = lock(&self.0.issued);
        let token = format!("ghs_test{:04}", issued.len() + 1);
        issued.push(token.clone());
        lock(&self.0.valid_tokens).insert(token.clone());
        let expires_at = self.0.clock.now() + chrono::Duration::hours(1);
        ResponseTemplate::new(201).set_body_json(json!({
            "token": token,
            "expires_at": expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "permissions": {"deployments": "write", "actions": "read"},
            "repository_selection": "all",
        }))
    }
}

struct CallbackEndpoint(Arc<State>);

impl Respond for CallbackEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        // Counted before the test can read the callback, so counts never lag behind reads.
        let outcome = self.answer(request, self.0.callbacks.arrived());
        let status = outcome.as_ref().map_or_else(|(status, _)| *status, |_| 204);
        lock(&self.0.attempt_log).push(format!(
            "{status} {} {}",
            request.url.path(),
            String::from_utf8_lossy(&request.body)
        ));
        self.0.attempted.notify_waiters();
        match outcome {
            Ok(recorded) => {
                self.0.inbox.push(recorded);
                ResponseTemplate::new(204)
            }
            Err((status, message)) => github_error(status, &message),
        }
    }
}

impl CallbackEndpoint {
    /// The callback as accepted, or the status that refuses it and why.
    fn answer(&self, request: &Request, hiccup: Option<u16>) -> Result<Recorded, (u16, String)> {
        if let Some(status) = hiccup {
            return Err((status, "hiccup".to_owned()));
        }
        check_common_headers(request)?;
        let authorized =
            bearer(request).is_some_and(|token| lock(&self.0.valid_tokens).contains(token));
        if !authorized {
            return Err((401, "Bad credentials".to_owned()));
        }
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
            return Err((400, "Problems parsing JSON".to_owned()));
        };
        if body
            .get("environment_name")
            .and_then(|v| v.as_str())
            .is_none()
        {
            return Err((422, "environment_name is required".to_owned()));
        }
        if let Some(state) = body.get("state") {
            if state != "approved" && state != "rejected" {
                return Err((422, "state must be approved or rejected".to_owned()));
            }
        }
        Ok(Recorded::of(request, body))
    }
}

/// `GET /repos/{owner}/{repo}/installation`, as the App (JWT): every repository is installed.
struct InstallationEndpoint(Arc<State>);

impl Respond for InstallationEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if let Err((status, message)) = check_common_headers(request) {
            return github_error(status, &message);
        }
        let Some(jwt) = bearer(request) else {
            return github_error(401, "A JSON web token could not be decoded");
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        match jsonwebtoken::decode::<Claims>(jwt, &self.0.public_key, &validation) {
            Ok(decoded) if decoded.claims.iss == APP_ID.to_string() => ResponseTemplate::new(200)
                .set_body_json(json!({
                    "id": INSTALLATION_ID,
                    "app_id": APP_ID,
                    "target_type": "Organization",
                    "repository_selection": "all",
                })),
            _ => github_error(401, "A JSON web token could not be decoded"),
        }
    }
}

/// GitHub's compare API, in the shape of docs.github.com/rest/commits/commits#compare-two-commits.
struct CompareEndpoint(Arc<State>);

impl Respond for CompareEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let fault = self.0.compares.arrived();
        let response = self.answer(request, fault);
        let authorization = header(request, "authorization").unwrap_or("-").to_owned();
        let query = request
            .url
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        lock(&self.0.compare_log).push(format!(
            "{} {}{query} {authorization}",
            response.0,
            request.url.path()
        ));
        self.0.attempted.notify_waiters();
        response.1
    }
}

impl CompareEndpoint {
    fn answer(&self, request: &Request, fault: Option<CompareFault>) -> (u16, ResponseTemplate) {
        if let Err((status, message)) = check_common_headers(request) {
            return (status, github_error(status, &message));
        }
        let authorized = bearer(request).is_some_and(|token| {
            lock(&self.0.valid_tokens).contains(token)
                || lock(&self.0.personal_tokens).contains(token)
        });
        if !authorized {
            return (401, github_error(401, "Bad credentials"));
        }
        match fault {
            Some(CompareFault::RateLimited { seconds }) => {
                let reset = self.0.clock.now().timestamp() + seconds;
                return (
                    403,
                    github_error(403, "API rate limit exceeded for installation ID 2311213.")
                        .insert_header("x-ratelimit-limit", "5000")
                        .insert_header("x-ratelimit-remaining", "0")
                        .insert_header("x-ratelimit-used", "5000")
                        .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                        .insert_header("retry-after", seconds.to_string().as_str()),
                );
            }
            Some(CompareFault::Status(status)) => {
                let message = match status {
                    404 => "Not Found",
                    422 => "No common ancestor between base and head.",
                    _ => "Server Error",
                };
                return (status, github_error(status, message));
            }
            None => {}
        }
        let path = request.url.path();
        let (repo_path, range) = path.split_once("/compare/").expect("matched path");
        let Some((base, head)) = range.split_once("...") else {
            return (404, github_error(404, "Not Found"));
        };
        let query: std::collections::HashMap<String, String> =
            request.url.query_pairs().into_owned().collect();
        let per_page: usize = query
            .get("per_page")
            .and_then(|n| n.parse().ok())
            .unwrap_or(250)
            .min(250);
        let page: usize = query.get("page").and_then(|n| n.parse().ok()).unwrap_or(1);
        let all = lock(&self.0.compare_commits).clone();
        let html = format!(
            "https://github.com{}",
            repo_path.trim_start_matches("/repos")
        );
        let commit = |c: &FakeCommit| {
            json!({
                "url": format!("{}{repo_path}/commits/{}", self.0.base_url(request), c.sha),
                "sha": c.sha,
                "node_id": "C_kwDOAAAAAAAAAAAA",
                "html_url": format!("{html}/commit/{}", c.sha),
                "comments_url": format!("{}{repo_path}/commits/{}/comments", self.0.base_url(request), c.sha),
                "commit": {
                    "url": format!("{}{repo_path}/git/commits/{}", self.0.base_url(request), c.sha),
                    "author": {"name": c.name, "email": "octocat@github.com", "date": "2026-11-26T12:00:00Z"},
                    "committer": {"name": "GitHub", "email": "noreply@github.com", "date": "2026-11-26T12:00:00Z"},
                    "message": c.message,
                    "tree": {"url": "https://api.github.com/repos/octocat/Hello-World/tree/6dcb09b5b57875f334f61aebed695e2e4193db5e", "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e"},
                    "comment_count": 0,
                    "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null, "verified_at": null}
                },
                "author": c.login.as_ref().map(|login| json!({
                    "login": login, "id": 1, "node_id": "MDQ6VXNlcjE=", "type": "User", "site_admin": false,
                    "avatar_url": "https://github.com/images/error/octocat_happy.gif",
                    "html_url": format!("https://github.com/{login}")
                })),
                "committer": null,
                "parents": [{"url": "https://api.github.com/repos/octocat/Hello-World/commits/6dcb09b5b57875f334f61aebed695e2e4193db5e", "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e"}]
            })
        };
        let listed: Vec<serde_json::Value> = all
            .iter()
            .skip(per_page * page.saturating_sub(1))
            .take(per_page)
            .map(commit)
            .collect();
        let body = json!({
            "url": format!("{}{path}", self.0.base_url(request)),
            "html_url": format!("{html}/compare/{base}...{head}"),
            "permalink_url": format!("{html}/compare/octocat:{base}...octocat:{head}"),
            "diff_url": format!("{html}/compare/{base}...{head}.diff"),
            "patch_url": format!("{html}/compare/{base}...{head}.patch"),
            "base_commit": commit(&FakeCommit { sha: base.to_owned(), login: None, name: "Base".to_owned(), message: "Base".to_owned() }),
            "merge_base_commit": commit(&FakeCommit { sha: base.to_owned(), login: None, name: "Base".to_owned(), message: "Base".to_owned() }),
            "status": "ahead",
            "ahead_by": all.len(),
            "behind_by": 0,
            "total_commits": all.len(),
            "commits": listed,
            "files": [{
                "sha": "bbcd538c8e72b8c175046e27cc8f907076331401",
                "filename": "file1.txt",
                "status": "added",
                "additions": 103,
                "deletions": 21,
                "changes": 124,
                "blob_url": format!("{html}/blob/{head}/file1.txt"),
                "raw_url": format!("{html}/raw/{head}/file1.txt"),
                "contents_url": format!("{}{repo_path}/contents/file1.txt?ref={head}", self.0.base_url(request)),
                "patch": "@@ -132,7 +132,7 @@ module Test @@ -1000,7 +1000,7 @@ module Test"
            }]
        });
        (200, ResponseTemplate::new(200).set_body_json(body))
    }
}

impl State {
    fn base_url(&self, request: &Request) -> String {
        let url = &request.url;
        format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or("127.0.0.1"),
            url.port().unwrap_or(80)
        )
    }
}
