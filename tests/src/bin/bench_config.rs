//! Benchmark: how long `greenlight check-config` takes on a company-wide directory.
//! Usage: `bench_config PATH_TO_GREENLIGHT [PEOPLE] [RUNS]` (build it with `--release`).
//!
//! Writes a config with PEOPLE people (each with a Slack id, a Discord id, a GitHub login and
//! an e-mail address), a group of a fifth of them and a production gate whose reviewers are
//! that group plus one person, then times RUNS `check-config` runs of the binary.

use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args
        .next()
        .expect("usage: bench_config PATH_TO_GREENLIGHT [PEOPLE] [RUNS]");
    let people: usize = args.next().map_or(100_000, |n| n.parse().expect("PEOPLE"));
    let runs: usize = args.next().map_or(5, |n| n.parse().expect("RUNS"));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("greenlight.toml");
    std::fs::write(&path, directory(people)).expect("config written");
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let output = Command::new(&binary)
            .arg("check-config")
            .arg("--config")
            .arg(&path)
            .output()
            .expect("greenlight runs");
        times.push(started.elapsed());
        assert!(
            output.status.success(),
            "check-config failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "check-config with {people} people over {runs} runs: min {:.0} ms, median {:.0} ms, max {:.0} ms",
        ms(times[0]),
        ms(times[runs / 2]),
        ms(times[runs - 1])
    );
}

fn directory(people: usize) -> String {
    let mut text = String::from(
        "[slack]\nbot_token = \"xoxb-bench\"\nsigning_secret = \"bench-signing\"\n\n[people]\n",
    );
    for i in 0..people {
        text.push_str(&format!(
            "p{i} = {{ slack = \"U{i:09}\", discord = \"{}\", github = \"gh-{i}\", email = \"p{i}@example.com\" }}\n",
            100_000_000_000_000_000u64 + i as u64
        ));
    }
    let group: Vec<String> = (0..people / 5).map(|i| format!("\"p{i}\"")).collect();
    text.push_str(&format!("\n[groups]\neveryone = [{}]\n", group.join(", ")));
    text.push_str(&format!(
        "\n[apps.shop]\nimage = \"ghcr.io/acme/shop\"\nci_token = \"bench-ci\"\n\
         channels = {{ slack = \"C0DEPLOYS\" }}\n[apps.shop.environments.staging]\n\
         [apps.shop.environments.production]\nafter = \"staging\"\n\
         reviewers = [\"group:everyone\", \"p{}\"]\nrequired_approvals = 2\n",
        people.saturating_sub(1)
    ));
    text
}
