//! The fuzz campaign of every parser of outside input, on stable Rust; see `greenlight_tests::fuzz`.
//! Not run in CI (a binary is not a test). Run it in release mode:
//!
//! ```text
//! cargo run --release -p greenlight-tests --bin fuzz_parsers -- [--execs N] [--parser NAME]…
//!     [--seed S] [--max-seconds T] [--out DIR]
//! ```
//!
//! For each parser it prints executions, executions per second, corpus size, distinct
//! outcomes, the slowest input's time and every finding (a panic, a broken contract, or an
//! input slower than 250 ms), whose input is saved under `--out`. Exits 1 if anything was found.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use greenlight_tests::fuzz::{self, PARSERS};

#[derive(Parser)]
#[command(about = "Fuzz every parser of outside input (SPEC §5) with a mutating stable harness")]
struct Args {
    /// Executions per parser.
    #[arg(long, default_value_t = 1_000_000)]
    execs: u64,
    /// Only these parsers (repeatable); all by default.
    #[arg(long = "parser", value_parser = clap::builder::PossibleValuesParser::new(PARSERS))]
    parsers: Vec<String>,
    /// The random seed, so a run can be repeated.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop a parser's run after this many seconds even if `--execs` is not reached.
    #[arg(long, default_value_t = 300)]
    max_seconds: u64,
    /// Where inputs that found something are written.
    #[arg(long, default_value = "target/fuzz-findings")]
    out: PathBuf,
}

fn main() {
    let args = Args::parse();
    let fixtures = greenlight_tests::fixtures::dir();
    let names: Vec<&str> = if args.parsers.is_empty() {
        PARSERS.to_vec()
    } else {
        args.parsers.iter().map(String::as_str).collect()
    };
    fuzz::quiet_panics();
    let mut found = 0;
    println!(
        "parser               execs   execs/s  seconds  corpus  outcomes  slowest_ms  findings"
    );
    for name in names {
        let target = fuzz::target(name, &fixtures).expect("a parser from the list");
        let report = fuzz::run(
            &target,
            args.execs,
            args.seed,
            Duration::from_secs(args.max_seconds),
        );
        println!(
            "{:<18} {:>9} {:>9.0} {:>8.1} {:>7} {:>9} {:>11.2} {:>9}",
            target.name,
            report.execs,
            report.execs_per_second(),
            report.elapsed.as_secs_f64(),
            report.corpus,
            report.outcomes,
            report.slowest.as_secs_f64() * 1000.0,
            report.findings.len(),
        );
        for (index, (input, message)) in report.findings.iter().enumerate() {
            found += 1;
            std::fs::create_dir_all(&args.out).expect("create the findings folder");
            let path = args.out.join(format!("{}-{index}.bin", target.name));
            std::fs::write(&path, input).expect("write a finding");
            println!("  finding: {message} (input: {})", path.display());
        }
    }
    if found > 0 {
        std::process::exit(1);
    }
}
