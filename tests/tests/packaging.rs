//! `fly.toml` and the `Dockerfile` say what operators rely on: one always-on machine, SQLite on
//! the `/data` volume, a `/health` check, no secrets, a non-root runtime.

use std::path::PathBuf;

fn repo_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fly() -> toml::Table {
    repo_file("fly.toml")
        .parse()
        .expect("fly.toml is valid TOML")
}

#[test]
fn fly_mounts_a_volume_at_data_and_keeps_sqlite_there() {
    let fly = fly();
    assert_eq!(fly["mounts"]["destination"].as_str(), Some("/data"));
    assert_eq!(
        fly["env"]["GREENLIGHT_DATABASE_URL"].as_str(),
        Some("sqlite:///data/greenlight.db")
    );
}

#[test]
fn fly_keeps_exactly_one_machine_running() {
    let service = &fly()["http_service"];
    assert_eq!(service["min_machines_running"].as_integer(), Some(1));
    assert_eq!(service["auto_stop_machines"].as_str(), Some("off"));
    assert_eq!(service["internal_port"].as_integer(), Some(8080));
}

#[test]
fn fly_checks_health() {
    let checks = fly()["http_service"]["checks"]
        .as_array()
        .expect("http_service.checks is an array")
        .clone();
    assert!(checks
        .iter()
        .any(|check| check["path"].as_str() == Some("/health")
            && check["method"].as_str() == Some("GET")));
}

#[test]
fn fly_holds_no_secrets() {
    let fly = fly();
    let env = fly["env"].as_table().expect("[env] table");
    for (name, value) in env {
        let upper = name.to_ascii_uppercase();
        assert!(
            !["TOKEN", "SECRET", "KEY", "PASSWORD"]
                .iter()
                .any(|word| upper.contains(word)),
            "fly.toml [env] sets {name}={value}: secrets belong in `fly secrets`"
        );
    }
}

#[test]
fn dockerfile_is_multi_stage_and_runs_unprivileged() {
    let dockerfile = repo_file("Dockerfile");
    let stages = dockerfile
        .lines()
        .filter(|line| line.trim_start().to_ascii_uppercase().starts_with("FROM "))
        .count();
    assert!(stages >= 2, "expected a build and a runtime stage");
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("USER "))
        .expect("the runtime stage sets USER");
    assert!(!["root", "0"].contains(&user.trim()), "runs as {user}");
    assert!(dockerfile.contains("/data"));
    // A local greenlight.toml may hold secrets: never copied into the image.
    for line in dockerfile
        .lines()
        .filter(|line| line.trim_start().starts_with("COPY"))
    {
        assert!(
            !line.contains("greenlight.toml ") && !line.contains("greenlight.toml*"),
            "the image must not take a local config: {line}"
        );
    }
    let ignored = repo_file(".dockerignore");
    assert!(
        ignored.lines().any(|line| line.trim() == "greenlight.toml"),
        "the build context leaves greenlight.toml out"
    );
}
