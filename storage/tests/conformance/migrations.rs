use std::collections::BTreeSet;
use std::path::Path;

fn stems(dialect: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(dialect);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("entry").path();
            assert_eq!(
                path.extension().and_then(|e| e.to_str()),
                Some("sql"),
                "{}",
                path.display()
            );
            path.file_stem()
                .and_then(|s| s.to_str())
                .expect("utf-8 name")
                .to_owned()
        })
        .collect()
}

#[test]
fn both_dialects_have_the_same_migration_stems() {
    let sqlite = stems("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, stems("postgres"));
}
