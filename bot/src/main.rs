//! The `greenlight` binary: parses the command line and hands over to `greenlight::cli`.

use std::process::ExitCode;

use clap::Parser;
use greenlight::cli::Cli;
use greenlight::telemetry::{self, LogFormat};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = LogFormat::from_env_value(std::env::var("GREENLIGHT_LOG_FORMAT").ok().as_deref());
    telemetry::init_logging(format, std::env::var("RUST_LOG").ok().as_deref());
    match greenlight::cli::run(cli, &|name| std::env::var(name).ok()).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
