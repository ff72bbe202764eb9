//! Helper process for the durability test: appends numbered audit entries to the SQLite file
//! named by its argument from 8 concurrent writers, printing `acked N` once entry N is
//! acknowledged, until it is killed.

use std::io::Write;

use greenlight_storage::{NewAuditEntry, Storage};

#[tokio::main]
async fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: crash_writer DB_PATH");
    let storage = Storage::connect(&format!("sqlite://{path}"))
        .await
        .expect("open database");
    storage.migrate().await.expect("migrate");
    let (acks, mut acked) = tokio::sync::mpsc::unbounded_channel::<u64>();
    for writer in 0..8u64 {
        let storage = storage.clone();
        let acks = acks.clone();
        tokio::spawn(async move {
            for round in 0.. {
                let n = round * 8 + writer;
                let entry = NewAuditEntry {
                    occurred_at: chrono::Utc::now(),
                    actor: "crash-writer".to_owned(),
                    app: None,
                    environment: None,
                    sha: None,
                    kind: "durability_probe".to_owned(),
                    detail: serde_json::json!({ "n": n }),
                };
                storage.append_audit(entry).await.expect("append");
                if acks.send(n).is_err() {
                    return;
                }
            }
        });
    }
    drop(acks);
    let mut stdout = std::io::stdout().lock();
    while let Some(n) = acked.recv().await {
        // Printed only after the write returned, i.e. after COMMIT: every printed number must
        // survive the kill.
        writeln!(stdout, "acked {n}").expect("stdout");
        stdout.flush().expect("flush");
    }
}
