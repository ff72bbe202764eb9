//! The `greenlight` binary as an operator runs it: on embedded defaults, stopped by SIGTERM,
//! backed up while serving, and its subcommands' help.

use std::io::{BufRead, BufReader};
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
        let pid = i32::try_from(self.child.id()).expect("pid fits in i32");
        let sent = send_signal(pid, "TERM");
        assert!(sent, "SIGTERM could not be sent");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait on child") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "greenlight still running 10 s after SIGTERM"
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

#[test]
fn says_when_no_chat_platform_is_configured() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start(dir.path());
    server.terminate();
    let log = server.logged().join("\n");
    assert!(log.contains("no chat platform is configured"), "log: {log}");
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
fn every_subcommand_has_help() {
    let dir = tempfile::tempdir().expect("temp dir");
    for subcommand in ["serve", "check-config", "migrate", "releases", "backup"] {
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
