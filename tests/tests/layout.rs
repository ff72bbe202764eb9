//! The shape of the source tree, as ARCHITECTURE.md states it: no production source file
//! grows past 800 lines; the engine and the chat port never name a chat platform; tasks are
//! spawned only through `background.rs`; and the bot's top-level modules depend on each other
//! without cycles.

use std::collections::{BTreeMap, BTreeSet};
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

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// The production code of every `.rs` file under `dir` (relative to the workspace root): its
/// path and its text up to an inline `#[cfg(test)] mod tests`. Test-only files are left out.
fn production_sources(dir: &str) -> Vec<(PathBuf, String)> {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join(dir), &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(&root).expect("under the root").to_owned();
            if is_test_only(&relative) {
                return None;
            }
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let production = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            Some((relative, production))
        })
        .collect()
}

/// `crate::name` paths a text uses, by top-level module name.
fn crate_paths(text: &str) -> BTreeSet<String> {
    text.match_indices("crate::")
        .map(|(at, found)| {
            text[at + found.len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

#[test]
fn no_production_source_file_is_over_800_lines() {
    let root = workspace_root();
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

#[test]
fn the_engine_and_the_chat_port_never_name_a_chat_platform() {
    let mut offenders = Vec::new();
    for dir in ["bot/src/engine", "bot/src/chat", "bot/src/outbox"] {
        for (path, text) in production_sources(dir) {
            for platform in ["slack", "discord"] {
                if crate_paths(&text).contains(platform) {
                    offenders.push(format!("{} uses crate::{platform}", path.display()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "platform code is reached only through the chat port (ChatEffect, ChatAdapter): {}",
        offenders.join(", ")
    );
}

#[test]
fn tasks_are_spawned_only_through_the_background_module() {
    let offenders: Vec<String> = production_sources("bot/src")
        .into_iter()
        .filter(|(path, text)| !path.ends_with("background.rs") && text.contains("tokio::spawn"))
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "spawn through Background (tracked, counted, awaited at shutdown), not tokio::spawn: {}",
        offenders.join(", ")
    );
}

#[test]
fn the_bots_top_level_modules_form_no_cycle() {
    let root = workspace_root().join("bot/src");
    let mut modules: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let entries = std::fs::read_dir(&root).expect("bot/src");
    let names: BTreeSet<String> = entries
        .map(|entry| entry.expect("entry").path())
        .filter_map(|path| {
            let stem = path.file_stem()?.to_str()?.to_owned();
            (path.is_dir() || path.extension().is_some_and(|e| e == "rs")).then_some(stem)
        })
        .filter(|name| !matches!(name.as_str(), "lib" | "main" | "parser_properties"))
        .collect();
    for name in &names {
        let mut uses = BTreeSet::new();
        for source in [format!("bot/src/{name}"), format!("bot/src/{name}.rs")] {
            if !workspace_root().join(&source).exists() {
                continue;
            }
            let texts = if source.ends_with(".rs") {
                let text = std::fs::read_to_string(workspace_root().join(&source)).expect("read");
                let production = match text.find("#[cfg(test)]\nmod tests") {
                    Some(at) => text[..at].to_owned(),
                    None => text,
                };
                vec![production]
            } else {
                production_sources(&source)
                    .into_iter()
                    .map(|(_, text)| text)
                    .collect()
            };
            for text in texts {
                uses.extend(
                    crate_paths(&text)
                        .into_iter()
                        .filter(|used| used != name && names.contains(used)),
                );
            }
        }
        modules.insert(name.clone(), uses);
    }
    // Depth-first search; a module met again while still on the path closes a cycle.
    fn visit(
        module: &str,
        modules: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut cycle = path[at..].to_vec();
            cycle.push(module.to_owned());
            cycles.push(cycle.join(" → "));
            return;
        }
        if !done.insert(module.to_owned()) {
            return;
        }
        path.push(module.to_owned());
        for used in &modules[module] {
            visit(used, modules, path, done, cycles);
        }
        path.pop();
    }
    let mut cycles = Vec::new();
    let mut done = BTreeSet::new();
    for module in modules.keys() {
        visit(module, &modules, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(modules["app"].contains("http"), "the scan reads imports");
    assert!(
        cycles.is_empty(),
        "top-level modules of bot/src depend on each other in a cycle: {}",
        cycles.join("; ")
    );
}
