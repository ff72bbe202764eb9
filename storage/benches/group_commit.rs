//! Group commit throughput on a SQLite file: committed (fsynced) writes per second with 1, 16
//! and 64 concurrent writers, and how many writes each commit carried.
//!
//! `cargo bench -p greenlight-storage --bench group_commit`. Each level runs for a few seconds
//! (`GREENLIGHT_BENCH_SECONDS`, default 3). The file lives under the target directory, on a real
//! disk; a tmpfs would make fsync free and the numbers meaningless.

use std::time::{Duration, Instant};

use chrono::Utc;
use greenlight_commands::{AppName, EnvironmentName};
use greenlight_storage::{NewAuditEntry, Storage};

const LEVELS: [usize; 3] = [1, 16, 64];

fn main() {
    let seconds = std::env::var("GREENLIGHT_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(bench(Duration::from_secs_f64(seconds)));
}

async fn bench(duration: Duration) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir under target/");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let storage = Storage::connect(&url).await.expect("open SQLite");
    storage.migrate().await.expect("migrate");
    println!(
        "group commit on {} ({:?} per level)",
        dir.path().display(),
        duration
    );
    println!(
        "{:>8} {:>12} {:>12} {:>12} {:>10}",
        "writers", "writes/s", "commits/s", "avg batch", "p99 ms"
    );
    for writers in LEVELS {
        let result = run(&storage, writers, duration).await;
        println!(
            "{:>8} {:>12.0} {:>12.0} {:>12.1} {:>10.2}",
            writers,
            result.writes as f64 / result.elapsed,
            result.commits as f64 / result.elapsed,
            result.writes as f64 / result.commits.max(1) as f64,
            result.p99_ms,
        );
    }
    storage.close().await;
}

struct Outcome {
    writes: u64,
    commits: u64,
    elapsed: f64,
    p99_ms: f64,
}

async fn run(storage: &Storage, writers: usize, duration: Duration) -> Outcome {
    let before = storage.write_stats();
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let storage = storage.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let began = Instant::now();
                    storage
                        .append_audit(entry(w, n))
                        .await
                        .expect("append audit entry");
                    latencies.push(began.elapsed());
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("writer task"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = storage.write_stats();
    latencies.sort_unstable();
    let p99 = latencies
        .get(latencies.len().saturating_sub(1) * 99 / 100)
        .copied()
        .unwrap_or_default();
    Outcome {
        writes: after.writes - before.writes,
        commits: after.commits - before.commits,
        elapsed,
        p99_ms: p99.as_secs_f64() * 1000.0,
    }
}

fn entry(writer: usize, n: u64) -> NewAuditEntry {
    NewAuditEntry {
        occurred_at: Utc::now(),
        actor: format!("writer-{writer}"),
        app: AppName::parse("shop").ok(),
        environment: EnvironmentName::parse("production").ok(),
        sha: None,
        kind: "bench.write".to_owned(),
        detail: serde_json::json!({ "n": n }),
    }
}
