//! Benchmark: start-to-healthy time and idle memory of a `greenlight` binary on its embedded
//! defaults. Usage: `bench_startup PATH_TO_GREENLIGHT [RUNS]` (build it with `--release`).
//!
//! Each run starts `greenlight serve` in a fresh folder (so it creates and migrates a new
//! SQLite file), polls `GET /health` until it answers 200, waits a second idle, reads the
//! process's resident memory from /proc, and stops it with SIGTERM.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args
        .next()
        .expect("usage: bench_startup PATH_TO_GREENLIGHT [RUNS]");
    // Each run starts in its own folder, so a relative path must be resolved first.
    let binary = std::fs::canonicalize(&binary).expect("the greenlight binary exists");
    let runs: usize = args
        .next()
        .map_or(10, |n| n.parse().expect("RUNS is a number"));
    let mut startups = Vec::new();
    let mut rss_kib = Vec::new();
    for _ in 0..runs {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let started = Instant::now();
        let mut child = Command::new(&binary)
            .arg("serve")
            .current_dir(dir.path())
            .env("GREENLIGHT_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start greenlight");
        while !healthy(port) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "not healthy after 10 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        startups.push(started.elapsed());
        std::thread::sleep(Duration::from_secs(1));
        rss_kib.push(resident_kib(child.id()));
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = child.wait().expect("wait");
        assert!(status.success(), "greenlight exited with {status}");
    }
    startups.sort();
    rss_kib.sort_unstable();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    println!(
        "start to healthy over {runs} runs: min {:.1} ms, median {:.1} ms, max {:.1} ms",
        ms(&startups[0]),
        ms(&startups[runs / 2]),
        ms(&startups[runs - 1])
    );
    println!(
        "idle RSS after 1 s: min {:.1} MiB, median {:.1} MiB, max {:.1} MiB",
        rss_kib[0] as f64 / 1024.0,
        rss_kib[runs / 2] as f64 / 1024.0,
        rss_kib[runs - 1] as f64 / 1024.0
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}
