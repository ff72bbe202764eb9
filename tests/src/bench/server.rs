//! A process under measurement: the release `greenlight serve` with a benchmark config, or a
//! Node baseline, on a free port of 127.0.0.1; stopped (SIGTERM, then waited for) when dropped.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub address: SocketAddr,
    pub base: String,
    child: Child,
    /// Already killed and reaped: its pid may belong to another process now.
    reaped: bool,
    /// The working directory (config, database); removed after the process stops.
    _dir: tempfile::TempDir,
}

impl Server {
    /// `binary serve` with `config` as its `greenlight.toml` in a fresh directory.
    pub async fn greenlight(binary: &Path, config: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("greenlight.toml"), config).expect("config");
        let address = free_address();
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env("GREENLIGHT_LISTEN", address.to_string());
        // `BENCH_SERVER_LOG=greenlight=debug` shows the server's log, to study a run.
        let log = match std::env::var("BENCH_SERVER_LOG") {
            Ok(filter) => {
                command.env("RUST_LOG", filter);
                Stdio::inherit()
            }
            Err(_) => {
                command.env("RUST_LOG", "error");
                Stdio::null()
            }
        };
        Self::start(command, dir, address, "/health", log).await
    }

    /// `node script` with `env`, its database in a fresh directory (`DB_PATH`), listening on
    /// `PORT`; healthy once `GET /health` answers.
    pub async fn node(script: &Path, env: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let address = free_address();
        let mut command = Command::new("node");
        command
            .arg(script)
            .env("PORT", address.port().to_string())
            .env("DB_PATH", dir.path().join("baseline.db"))
            .envs(env.iter().map(|(name, value)| (*name, value)));
        Self::start(command, dir, address, "/health", Stdio::null()).await
    }

    async fn start(
        mut command: Command,
        dir: tempfile::TempDir,
        address: SocketAddr,
        health: &str,
        stdout: Stdio,
    ) -> Self {
        let child = command
            .current_dir(dir.path())
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| panic!("start {command:?}: {error}"));
        let server = Self {
            address,
            base: format!("http://{address}"),
            child,
            reaped: false,
            _dir: dir,
        };
        server.wait_healthy(health).await;
        server
    }

    async fn wait_healthy(&self, path: &str) {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(response) = client.get(format!("{}{path}", self.base)).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{} not healthy after 30 s",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the process as `kill -9` does: nothing it was doing is finished or recorded.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }

    /// The process's resident memory in MiB (Linux), for the report.
    pub fn rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}
