//! The shape of the source tree: no production source file grows past 800 lines, so every
//! module stays small enough to read in one sitting (split by job when it would).

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 800;

/// The crates whose production code is held to the limit, relative to the workspace root.
const SOURCE_DIRS: [&str; 3] = ["bot/src", "commands/src", "storage/src"];

/// Test-only files: a module's `tests.rs`, anything under a `tests/` folder, and the
/// property tests of the parsers.
fn is_test_only(path: &Path) -> bool {
    let name = path.file_name().and_then(|name| name.to_str());
    matches!(name, Some("tests.rs" | "parser_properties.rs"))
        || path
            .parent()
            .is_some_and(|folder| folder.components().any(|part| part.as_os_str() == "tests"))
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn no_production_source_file_is_over_800_lines() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the workspace root exists");
    let mut files = Vec::new();
    for dir in SOURCE_DIRS {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        !files.is_empty(),
        "no sources found under {}",
        root.display()
    );
    let mut too_long: Vec<String> = files
        .iter()
        .filter_map(|path| {
            // Relative, so the `tests/` folder this crate lives in does not count as a test folder.
            let relative = path.strip_prefix(&root).expect("found under the root");
            if is_test_only(relative) {
                return None;
            }
            let text =
                std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let lines = text.lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", relative.display()))
        })
        .collect();
    too_long.sort();
    assert!(
        too_long.is_empty(),
        "production source files over {MAX_LINES} lines; split them into modules with one job each: {}",
        too_long.join(", ")
    );
}

#[test]
fn test_only_files_are_recognised() {
    assert!(is_test_only(Path::new("bot/src/config/tests.rs")));
    assert!(is_test_only(Path::new("bot/src/config/tests/deployers.rs")));
    assert!(is_test_only(Path::new("bot/src/parser_properties.rs")));
    assert!(!is_test_only(Path::new("bot/src/config/sections/mod.rs")));
    assert!(!is_test_only(Path::new("storage/src/tests_helpers.rs")));
}
