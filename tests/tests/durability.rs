//! Acknowledged writes survive `kill -9`: a writer process is killed mid-stream and every entry
//! it had acknowledged is found when the file is opened again.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use greenlight_storage::{AuditFilter, Storage};

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crash.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash_writer"))
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start crash_writer");
    let stdout = child.stdout.take().expect("piped stdout");

    let mut acked = BTreeSet::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read stdout");
        let n: u64 = line
            .strip_prefix("acked ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected output {line:?}"));
        acked.insert(n);
        if acked.len() >= 400 {
            break;
        }
    }
    // Child::kill sends SIGKILL: no destructor, no flush, no COMMIT of anything in flight.
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    let storage = Storage::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("reopen");
    let mut found = BTreeSet::new();
    let mut before_id = None;
    loop {
        let page = storage
            .list_audit(&AuditFilter {
                before_id,
                limit: 500,
                ..AuditFilter::default()
            })
            .await
            .expect("list");
        let Some(last) = page.last() else { break };
        before_id = Some(last.id);
        found.extend(page.iter().filter_map(|entry| entry.detail["n"].as_u64()));
    }
    let lost: Vec<_> = acked.difference(&found).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost after kill -9: {lost:?}"
    );
    assert!(found.len() >= acked.len());
    storage.close().await;
}
