//! The `greenlight` binary as an operator runs it: on embedded defaults, stopped by SIGTERM,
//! backed up while serving, and its subcommands' help.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_greenlight");

fn greenlight(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_remove("GREENLIGHT_CONFIG")
        .env_remove("GREENLIGHT_DATABASE_URL")
        .env_remove("GREENLIGHT_URL")
        .env_remove("GREENLIGHT_TOKEN")
        .env_remove("GITHUB_SHA")
        .env_remove("GITHUB_REF")
        .env_remove("GITHUB_ACTOR")
        .env("GREENLIGHT_LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    command
}

/// A running `greenlight serve`; killed if the test fails before stopping it.
struct Server {
    child: Child,
    address: String,
    log: mpsc::Receiver<String>,
    /// Lines read while waiting for the server to come up.
    early_log: Vec<String>,
}

impl Server {
    /// Starts `serve` in `dir` on a kernel-chosen port and waits for its "serving" log line.
    fn start(dir: &Path) -> Self {
        let mut child = greenlight(dir)
            .arg("serve")
            .env("GREENLIGHT_LISTEN", "127.0.0.1:0")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("greenlight starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (lines, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        match wait_until_serving(&log) {
            Ok((address, early_log)) => Self {
                child,
                address,
                log,
                early_log,
            },
            Err(problem) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{problem}");
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    fn terminate(&mut self) -> ExitStatus {
        self.terminate_within(Duration::from_secs(10))
    }

    fn terminate_within(&mut self, bound: Duration) -> ExitStatus {
        let pid = i32::try_from(self.child.id()).expect("pid fits in i32");
        let sent = send_signal(pid, "TERM");
        assert!(sent, "SIGTERM could not be sent");
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait on child") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "greenlight still running {} s after SIGTERM",
                bound.as_secs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the server logged so far.
    fn logged(&self) -> Vec<String> {
        let mut lines = self.early_log.clone();
        lines.extend(self.log.try_iter());
        lines
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Uses `kill(1)`: the workspace forbids `unsafe`, which calling `libc::kill` would need.
fn send_signal(pid: i32, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

/// Reads log lines until "greenlight is serving"; returns its address and the lines so far.
fn wait_until_serving(log: &mpsc::Receiver<String>) -> Result<(String, Vec<String>), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = log.recv_timeout(remaining) else {
            return Err(format!("no 'serving' log line; log so far: {seen:#?}"));
        };
        let parsed: serde_json::Value =
            serde_json::from_str(&line).map_err(|_| format!("log line is not JSON: {line}"))?;
        let address = (parsed["message"] == "greenlight is serving")
            .then(|| parsed["address"].as_str().map(str::to_owned));
        seen.push(line);
        match address {
            Some(Some(address)) => return Ok((address, seen)),
            Some(None) => return Err(format!("'serving' line without an address: {seen:#?}")),
            None => {}
        }
    }
}

fn get_json(url: &str) -> (u16, serde_json::Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let response = reqwest::get(url).await.expect("request succeeds");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    })
}

#[test]
fn serves_on_embedded_defaults_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start(dir.path());

    assert_eq!(
        get_json(&server.url("/health")),
        (200, serde_json::json!({"status": "ok"}))
    );
    let (status, body) = get_json(&server.url("/api/v1/status"));
    assert_eq!(status, 200);
    assert_eq!(body["database"], "ok");
    assert_eq!(body["slack"], "disabled");
    assert!(
        dir.path().join("greenlight.db").exists(),
        "the default SQLite file is created in the working directory"
    );

    let started = Instant::now();
    let exit = server.terminate();
    assert!(exit.success(), "exit status after SIGTERM: {exit:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let log = server.logged().join("\n");
    assert!(log.contains("stopped cleanly"), "log: {log}");
}

/// `[github]` on, so `/webhooks/github` reads bodies of up to 25 MB.
fn start_with_github(dir: &Path) -> Server {
    std::fs::write(
        dir.join("greenlight.toml"),
        "[github]\nwebhook_secret = \"limits-test-secret\"\n",
    )
    .expect("write greenlight.toml");
    Server::start(dir)
}

/// Sends a GitHub delivery's headers with a well-formed (wrong) signature, announcing
/// `length` bytes, and `sent` bytes of them; the connection is returned open.
fn stalled_github_upload(address: &str, length: usize, sent: usize) -> TcpStream {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .write_all(github_head(length, "").as_bytes())
        .expect("send headers");
    // The server may already have refused this one (503) and stopped reading.
    let _ = stream.write_all(&vec![b' '; sent]);
    stream
}

fn github_head(length: usize, extra: &str) -> String {
    format!(
        "POST /webhooks/github HTTP/1.1\r\nHost: greenlight\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: workflow_run\r\nX-GitHub-Delivery: stalled\r\n\
         X-Hub-Signature-256: sha256={}\r\nContent-Length: {length}\r\n{extra}\r\n",
        "ab".repeat(32)
    )
}

#[cfg(target_os = "linux")]
fn resident_megabytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kilobytes: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line");
    kilobytes / 1024
}

#[cfg(target_os = "linux")]
#[test]
fn stalled_large_uploads_keep_memory_bounded_and_health_answering() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = start_with_github(dir.path());
    // 8 MiB of each 24 MiB body: 160 MB if every body were buffered, which is what happened
    // before bodies over 1 MB got their own small budget (the others are refused with 503).
    let stalled: Vec<TcpStream> = (0..20)
        .map(|_| stalled_github_upload(&server.address, 24 << 20, 8 << 20))
        .collect();
    assert_eq!(
        get_json(&server.url("/health")),
        (200, serde_json::json!({"status": "ok"}))
    );
    let rss = resident_megabytes(server.child.id());
    assert!(rss < 150, "RSS {rss} MB with 20 stalled uploads");
    drop(stalled);
    server.terminate();
}

#[test]
fn sigterm_with_a_stalled_request_exits_after_the_drain_deadline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = start_with_github(dir.path());
    // Inside the handler, waiting for a body that never comes (its own deadline is 30 s):
    // hyper answers "100 Continue" when the handler starts reading the body.
    let mut stalled = TcpStream::connect(&server.address).expect("connect");
    stalled
        .write_all(github_head(1000, "Expect: 100-continue\r\n").as_bytes())
        .expect("send headers");
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut answer = [0u8; 64];
    let read = std::io::Read::read(&mut stalled, &mut answer).expect("an interim answer");
    assert!(
        answer[..read].starts_with(b"HTTP/1.1 100"),
        "{:?}",
        String::from_utf8_lossy(&answer[..read])
    );
    stalled.write_all(b"{").expect("send part of the body");
    let exit = server.terminate_within(Duration::from_secs(15));
    assert!(exit.success(), "exit status after SIGTERM: {exit:?}");
    let log = server.logged().join("\n");
    assert!(log.contains("drain deadline"), "log: {log}");
}

#[test]
fn says_when_no_chat_platform_is_configured() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start(dir.path());
    server.terminate();
    let log = server.logged().join("\n");
    assert!(log.contains("no chat platform is configured"), "log: {log}");
}

#[test]
fn a_second_server_on_the_same_sqlite_file_refuses_to_start_and_points_to_postgres() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut first = Server::start(dir.path());
    let output = greenlight(dir.path())
        .arg("serve")
        .env("GREENLIGHT_LISTEN", "127.0.0.1:0")
        .output()
        .expect("the second server runs");
    assert!(
        !output.status.success(),
        "a second server started: {output:?}"
    );
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("greenlight.db is already being served by another greenlight process"),
        "{said}"
    );
    assert!(
        said.contains(&format!("pid {}", first.child.id())),
        "{said}"
    );
    assert!(said.contains("PostgreSQL"), "{said}");
    // The first one never noticed.
    let (status, body) = get_json(&first.url("/api/v1/status"));
    assert_eq!((status, &body["database"]), (200, &serde_json::json!("ok")));
    assert!(first.terminate().success());

    // Once it stopped, the file is free again.
    let mut next = Server::start(dir.path());
    assert!(next.terminate().success());
}

#[test]
fn backup_copies_the_database_while_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start(dir.path());
    let output = greenlight(dir.path())
        .args(["backup", "copy.db"])
        .output()
        .expect("backup runs");
    assert!(output.status.success(), "backup failed: {output:?}");
    let copy = dir.path().join("copy.db");
    assert!(copy.exists());

    // The copy is a complete Greenlight database: the CLI can read its release log.
    let output = greenlight(dir.path())
        .args(["releases", "--json"])
        .env(
            "GREENLIGHT_DATABASE_URL",
            format!("sqlite://{}", copy.display()),
        )
        .output()
        .expect("releases runs");
    assert!(output.status.success(), "releases failed: {output:?}");
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(body, serde_json::json!({"releases": []}));

    // Refuses to overwrite an existing file rather than corrupting it.
    let again = greenlight(dir.path())
        .args(["backup", "copy.db"])
        .output()
        .expect("backup runs");
    assert!(!again.status.success());
    server.terminate();
}

#[test]
fn backup_of_a_mistyped_database_path_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = greenlight(dir.path())
        .args(["backup", "copy.db"])
        .env("GREENLIGHT_DATABASE_URL", "sqlite://greenlite.db")
        .output()
        .expect("backup runs");
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("there is no SQLite database at greenlite.db"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("greenlite.db").exists(),
        "no database created"
    );
    assert!(
        !dir.path().join("copy.db").exists(),
        "no empty backup written"
    );

    // A file that is not Greenlight's is refused too.
    std::fs::write(dir.path().join("notes.db"), b"").expect("file");
    let output = greenlight(dir.path())
        .args(["backup", "copy.db"])
        .env("GREENLIGHT_DATABASE_URL", "sqlite://notes.db")
        .output()
        .expect("backup runs");
    assert!(!output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not a Greenlight database"),
        "{output:?}"
    );
    assert!(
        !dir.path().join("copy.db").exists(),
        "no empty backup written"
    );
}

#[test]
fn every_subcommand_has_help() {
    let dir = tempfile::tempdir().expect("temp dir");
    for subcommand in [
        "serve",
        "check-config",
        "migrate",
        "releases",
        "dora",
        "backup",
        "notify",
    ] {
        let output = greenlight(dir.path())
            .args([subcommand, "--help"])
            .output()
            .expect("help runs");
        assert!(output.status.success(), "{subcommand} --help failed");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Usage: greenlight"), "{subcommand}: {text}");
    }
}

#[test]
fn an_explicit_config_path_that_does_not_exist_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = greenlight(dir.path())
        .args(["--config", "missing.toml", "serve"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing.toml"), "stderr: {stderr}");
}

const EXAMPLE_ENV: [(&str, &str); 13] = [
    ("GREENLIGHT_API_TOKEN", "api-token-1"),
    ("SLACK_BOT_TOKEN", "xoxb-bot-token"),
    ("SLACK_SIGNING_SECRET", "slack-signing"),
    ("DISCORD_APPLICATION_ID", "1100000000000000001"),
    (
        "DISCORD_PUBLIC_KEY",
        "8e4ce25b4a1c3e1f1a7a8d3a32c1c0b0f7e6d5c4b3a29180716253443526170a",
    ),
    ("DISCORD_BOT_TOKEN", "discord-bot-token"),
    ("GITHUB_WEBHOOK_SECRET", "github-webhook"),
    ("GITHUB_APP_KEY_FILE", "github-app.pem"),
    ("GITHUB_TOKEN", "ghp_token"),
    ("SHOP_CI_TOKEN", "shop-ci"),
    ("SHOP_STAGING_FLAGS_TOKEN", "staging-flags"),
    ("SHOP_HOOK_SECRET", "hook-secret"),
    ("SHOP_PROD_FLAGS_TOKEN", "prod-flags"),
];

fn example_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../greenlight.example.toml")
}

#[test]
fn check_config_accepts_the_example_when_its_variables_are_set() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("github-app.pem"),
        "not read by check-config",
    )
    .expect("key file");
    let output = greenlight(dir.path())
        .arg("--config")
        .arg(example_path())
        .arg("check-config")
        .envs(EXAMPLE_ENV)
        .output()
        .expect("check-config runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {:?}",
        output.stderr
    );
    assert!(stdout.contains("configuration is valid"), "{stdout}");
}

#[test]
fn check_config_lists_every_problem_and_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Without the variables: one problem per variable, each naming it and its key.
    let output = greenlight(dir.path())
        .arg("--config")
        .arg(example_path())
        .arg("check-config")
        .output()
        .expect("check-config runs");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for (variable, _) in EXAMPLE_ENV {
        assert!(
            stdout.contains(variable),
            "{variable} not named in:\n{stdout}"
        );
    }
    assert!(stdout.contains("apps.shop.ci_token"), "{stdout}");

    // A broken file: every problem is listed with its key path.
    std::fs::write(
        dir.path().join("broken.toml"),
        r#"
[server]
listen = "nope"
[people]
alice = { slack = "U012AB3CD" }
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "t"
operators = ["group:sre2"]
colour = "blue"
[apps.shop.environments.staging]
smoke = [{ name = "health", url = "ftp://x", timeout = "soon" }]
"#,
    )
    .expect("write");
    let output = greenlight(dir.path())
        .args(["--config", "broken.toml", "check-config"])
        .output()
        .expect("check-config runs");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for path in [
        "server.listen",
        "apps.shop.operators[0]",
        "apps.shop.colour",
        "apps.shop.environments.staging.smoke[0].url",
        "apps.shop.environments.staging.smoke[0].timeout",
    ] {
        assert!(
            stdout.contains(&format!("{path}:")),
            "{path} missing from:\n{stdout}"
        );
    }
}

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

#[test]
fn notify_sends_ci_events_and_releases_reads_them_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("greenlight.toml"),
        r#"
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "shop-ci-token"
[apps.shop.environments.staging]
"#,
    )
    .expect("config");
    let mut server = Server::start(dir.path());
    let base = format!("http://{}", server.address);

    // The SHA comes from $GITHUB_SHA, as in a GitHub Actions step.
    let output = greenlight(dir.path())
        .args(["notify", "--server", &base, "build", "--app", "shop"])
        .args([
            "--image",
            &format!("ghcr.io/acme/shop:{SHA}"),
            "--message",
            "Fix checkout",
        ])
        .env("GITHUB_SHA", SHA)
        .env("GREENLIGHT_TOKEN", "shop-ci-token")
        .output()
        .expect("notify runs");
    assert!(output.status.success(), "notify build: {output:?}");
    let reply: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON reply");
    assert_eq!(reply["release"]["sha"], SHA);

    let output = greenlight(dir.path())
        .args(["notify", "--server", &base, "deployed", "--app", "shop"])
        .args([
            "--environment",
            "staging",
            "--sha",
            SHA,
            "--status",
            "success",
        ])
        .args(["--smoke", "passed"])
        .env("GREENLIGHT_TOKEN", "shop-ci-token")
        .output()
        .expect("notify runs");
    assert!(output.status.success(), "notify deployed: {output:?}");

    // The release log, read by the CLI from the database the server is using.
    let output = greenlight(dir.path())
        .arg("releases")
        .output()
        .expect("releases runs");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{table}");
    assert!(table.contains("staging:healthy"), "{table}");
    assert!(
        table.contains(&SHA[..7]) && table.contains("Fix checkout"),
        "{table}"
    );

    // A refused event fails the step with the server's explanation.
    let output = greenlight(dir.path())
        .args([
            "notify", "--server", &base, "build", "--app", "shop", "--sha", SHA,
        ])
        .args(["--image", "ghcr.io/acme/shop:latest"])
        .env("GREENLIGHT_TOKEN", "shop-ci-token")
        .output()
        .expect("notify runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("mutable"), "{stderr}");

    // No token: says which variable to set.
    let output = greenlight(dir.path())
        .args([
            "notify", "--server", &base, "build", "--app", "shop", "--sha", SHA,
        ])
        .args(["--image", "x"])
        .env_remove("GREENLIGHT_TOKEN")
        .output()
        .expect("notify runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("GREENLIGHT_TOKEN"));
    server.terminate();
}

#[test]
fn dora_measures_what_ci_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("greenlight.toml"),
        r#"
[apps.shop]
image = "ghcr.io/acme/shop"
ci_token = "shop-ci-token"
[apps.shop.environments.staging]
"#,
    )
    .expect("config");
    let mut server = Server::start(dir.path());
    let base = format!("http://{}", server.address);
    let committed = chrono::Utc::now() - chrono::Duration::hours(1);
    let notify = |args: &[&str]| {
        let output = greenlight(dir.path())
            .args(["notify", "--server", &base])
            .args(args)
            .env("GREENLIGHT_TOKEN", "shop-ci-token")
            .output()
            .expect("notify runs");
        assert!(output.status.success(), "notify {args:?}: {output:?}");
    };
    let image = format!("ghcr.io/acme/shop:{SHA}");
    let committed = committed.to_rfc3339();
    notify(&[
        "build",
        "--app",
        "shop",
        "--sha",
        SHA,
        "--image",
        &image,
        "--committed-at",
        &committed,
    ]);
    notify(&[
        "deployed",
        "--app",
        "shop",
        "--environment",
        "staging",
        "--sha",
        SHA,
        "--status",
        "success",
    ]);
    let dora = |args: &[&str]| {
        greenlight(dir.path())
            .arg("dora")
            .args(args)
            .output()
            .expect("dora runs")
    };

    // The only environment is the default; one healthy deployment an hour after its commit.
    let output = dora(&["--app", "shop", "--json"]);
    assert!(output.status.success(), "{output:?}");
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(body["environment"], "staging");
    assert_eq!(body["days"], 30);
    assert_eq!(body["deployment_frequency"]["deployments"], 1);
    assert_eq!(body["change_failure_rate"]["rate"], 0.0);
    assert_eq!(
        body["time_to_restore_seconds"]["median"],
        serde_json::Value::Null
    );
    let lead = body["lead_time_seconds"]["median"]
        .as_f64()
        .expect("a lead time");
    assert!((3600.0..3900.0).contains(&lead), "{body}");

    let output = dora(&["--app", "shop", "--env", "staging", "--days", "7"]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{table}");
    assert!(table.contains("shop staging, last 7 days"), "{table}");
    assert!(table.contains("1 deployment, 0.1429 per day"), "{table}");
    assert!(
        table.contains("time to restore       no samples"),
        "{table}"
    );

    // Refusals name what to fix.
    for (args, mention) in [
        (&["--app", "nope"][..], "app"),
        (&["--app", "shop", "--env", "production"][..], "environment"),
        (&["--app", "shop", "--days", "0"][..], "--days"),
        (&["--app", "shop", "--days", "366"][..], "--days"),
    ] {
        let output = dora(args);
        assert!(!output.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(mention), "{args:?}: {stderr}");
    }
    server.terminate();
}

#[test]
fn slack_manifest_points_slack_at_this_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("greenlight.toml"),
        "[server]\npublic_url = \"https://deploys.acme.example\"\n",
    )
    .expect("config");
    let output = greenlight(dir.path())
        .args(["slack", "manifest"])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{output:?}");
    let manifest: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        manifest["settings"]["interactivity"]["request_url"],
        "https://deploys.acme.example/slack/interactions"
    );
    let commands: Vec<&str> = manifest["features"]["slash_commands"]
        .as_array()
        .expect("commands")
        .iter()
        .filter_map(|c| c["command"].as_str())
        .collect();
    assert_eq!(
        commands,
        ["/rollback", "/lock", "/unlock", "/releases", "/flag"]
    );
}
