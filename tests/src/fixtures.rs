//! Access to `../shared/fixtures`: real vendor payloads and signing vectors.

use std::path::PathBuf;

/// The fixtures folder, which sits beside the repository (`../shared/fixtures`) on development
/// machines and in CI. `GREENLIGHT_FIXTURES` overrides it.
pub fn dir() -> PathBuf {
    if let Ok(dir) = std::env::var("GREENLIGHT_FIXTURES") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

/// Reads a fixture file; panics with the path when it is missing (a test setup error).
pub fn read(relative: &str) -> Vec<u8> {
    let path = dir().join(relative);
    std::fs::read(&path).unwrap_or_else(|error| panic!("fixture {}: {error}", path.display()))
}

pub fn read_json(relative: &str) -> serde_json::Value {
    serde_json::from_slice(&read(relative))
        .unwrap_or_else(|error| panic!("fixture {relative} is not JSON: {error}"))
}

/// Every file under a fixtures sub-folder, sorted, as (relative path, bytes).
pub fn all_under(folder: &str) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir().join(folder)];
    while let Some(current) = stack.pop() {
        let entries = std::fs::read_dir(&current)
            .unwrap_or_else(|error| panic!("fixture folder {}: {error}", current.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let relative = path
                    .strip_prefix(dir())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                files.push((relative, bytes));
            }
        }
    }
    files.sort();
    files
}
