//! The `command` deployer: runs `run` (program and arguments, no shell) with the deployment's
//! placeholders filled in, keeps the tail of its output, and kills it at `timeout`.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::time::Instant;

use super::DeployRequest;
use crate::background::StopSignal;
use crate::config::ChildEnvironment;
use crate::engine::{DeployResult, INTERRUPTED};
use crate::secret::Secret;

/// How much of a command's output (stdout and stderr, interleaved) is kept: the end, where
/// the error usually is.
pub const OUTPUT_LIMIT: usize = 4096;
/// How long output is still read after the command ended.
const READER_GRACE: Duration = Duration::from_secs(2);

/// `run` with `{image}`, `{sha}`, `{app}`, `{environment}` and `{deployment_id}` replaced.
/// Each argument stays one argument whatever the values contain: there is no shell.
pub fn fill_placeholders(run: &[String], request: &DeployRequest) -> Vec<String> {
    let id = request.deployment_id.to_string();
    let values = [
        ("{image}", request.image.as_str()),
        ("{sha}", request.sha.as_str()),
        ("{app}", request.app.as_str()),
        ("{environment}", request.environment.as_str()),
        ("{deployment_id}", id.as_str()),
    ];
    run.iter()
        .map(|argument| {
            // One pass over the argument, so a value that looks like a placeholder stays as is.
            let mut filled = String::with_capacity(argument.len());
            let mut rest = argument.as_str();
            'scan: while !rest.is_empty() {
                for (placeholder, value) in &values {
                    if let Some(after) = rest.strip_prefix(placeholder) {
                        filled.push_str(value);
                        rest = after;
                        continue 'scan;
                    }
                }
                let mut chars = rest.chars();
                if let Some(c) = chars.next() {
                    filled.push(c);
                }
                rest = chars.as_str();
            }
            filled
        })
        .collect()
}

/// How a command deploy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// It ran to the end; `code` is `None` when a signal killed it.
    Exited {
        code: Option<i32>,
        output: String,
        elapsed: Duration,
    },
    TimedOut {
        timeout: Duration,
        output: String,
    },
    /// Greenlight is stopping; the command was killed.
    Interrupted {
        output: String,
    },
    /// The program could not be started (not found, not executable).
    NotStarted {
        program: String,
        reason: String,
    },
}

impl CommandOutcome {
    /// The same outcome with every occurrence of `hidden` in its output replaced.
    fn redacted(self, hidden: &[&str]) -> Self {
        let clean = |mut output: String| {
            for value in hidden {
                output = output.replace(value, "[redacted]");
            }
            output
        };
        match self {
            Self::Exited {
                code,
                output,
                elapsed,
            } => Self::Exited {
                code,
                output: clean(output),
                elapsed,
            },
            Self::TimedOut { timeout, output } => Self::TimedOut {
                timeout,
                output: clean(output),
            },
            Self::Interrupted { output } => Self::Interrupted {
                output: clean(output),
            },
            not_started @ Self::NotStarted { .. } => not_started,
        }
    }

    /// One line for the logs (no output: it may contain anything).
    pub fn summary(&self) -> String {
        match self {
            Self::Exited { code, elapsed, .. } => format!(
                "exited with {} after {}s",
                code.map_or_else(|| "a signal".to_owned(), |code| format!("status {code}")),
                elapsed.as_secs()
            ),
            Self::TimedOut { timeout, .. } => {
                format!("timed out after {}", humantime::format_duration(*timeout))
            }
            Self::Interrupted { .. } => "interrupted".to_owned(),
            Self::NotStarted { program, reason } => format!("could not start {program}: {reason}"),
        }
    }

    /// What the deployment records: exit 0 is deployed, anything else failed; the output's
    /// tail is kept either way.
    pub fn into_result(self) -> DeployResult {
        let with_output = |head: String, output: &str| {
            if output.trim().is_empty() {
                head
            } else {
                format!(
                    "{head}; output (last {} KB):\n{output}",
                    OUTPUT_LIMIT / 1024
                )
            }
        };
        let summary = self.summary();
        match self {
            Self::Exited {
                code: Some(0),
                output,
                ..
            } => DeployResult::Deployed {
                detail: Some(with_output(format!("command {summary}"), &output)),
            },
            Self::Exited { output, .. } => DeployResult::Failed {
                detail: with_output(format!("command {summary}"), &output),
            },
            Self::TimedOut { output, .. } => DeployResult::Failed {
                detail: with_output(format!("command {summary} and was killed"), &output),
            },
            Self::Interrupted { output } => DeployResult::Failed {
                detail: with_output(INTERRUPTED.to_owned(), &output),
            },
            Self::NotStarted { .. } => DeployResult::Failed { detail: summary },
        }
    }
}

/// Runs `argv` to the end, or until `timeout` or `stop`, whichever comes first, with only
/// `child_env` for an environment. Its output never repeats an allow-listed value.
pub async fn run(
    argv: &[String],
    child_env: &ChildEnvironment,
    timeout: Duration,
    stop: StopSignal,
) -> CommandOutcome {
    let outcome = run_unredacted(argv, child_env, timeout, stop).await;
    let hidden: Vec<&str> = child_env
        .allowed_values()
        .map(Secret::expose)
        .filter(|value| value.len() >= MIN_REDACTED_LEN)
        .collect();
    outcome.redacted(&hidden)
}

/// Values shorter than this are not hidden from output: `1` or `yes` would mangle it.
const MIN_REDACTED_LEN: usize = 6;

async fn run_unredacted(
    argv: &[String],
    child_env: &ChildEnvironment,
    timeout: Duration,
    mut stop: StopSignal,
) -> CommandOutcome {
    let Some((program, arguments)) = argv.split_first() else {
        return CommandOutcome::NotStarted {
            program: String::new(),
            reason: "`run` is empty".to_owned(),
        };
    };
    let started = Instant::now();
    let spawned = Command::new(program)
        .args(arguments)
        // Nothing of the server's environment but what the deployer allows (SPEC §10).
        .env_clear()
        .envs(
            child_env
                .values
                .iter()
                .map(|(name, value)| (name, value.expose())),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Whatever ends the wait below (timeout, shutdown) also ends the command.
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            return CommandOutcome::NotStarted {
                program: program.clone(),
                reason: error.to_string(),
            }
        }
    };
    let tail = Arc::new(Mutex::new(Tail::default()));
    // The output is read while the command runs, so a full pipe never blocks it; reading stops
    // shortly after it exits, in case something it started keeps the pipes open.
    let mut reading = std::pin::pin!(read_output(
        child.stdout.take(),
        child.stderr.take(),
        tail.clone()
    ));
    let mut read_all = false;
    let mut deadline = std::pin::pin!(tokio::time::sleep(timeout));
    let ended = loop {
        tokio::select! {
            status = child.wait() => break Some(status),
            () = &mut reading, if !read_all => read_all = true,
            () = &mut deadline => break None,
            () = stop.stopped() => break None,
        }
    };
    let stopping = ended.is_none() && stop.is_stopping();
    if ended.is_none() {
        // Killed here rather than on drop, so the output it printed so far is complete.
        let _ = child.kill().await;
    }
    if !read_all {
        let _ = tokio::time::timeout(READER_GRACE, &mut reading).await;
    }
    if stopping {
        return CommandOutcome::Interrupted {
            output: text_of(&tail),
        };
    }
    match ended {
        Some(Ok(status)) => CommandOutcome::Exited {
            code: status.code(),
            output: text_of(&tail),
            elapsed: started.elapsed(),
        },
        Some(Err(error)) => CommandOutcome::NotStarted {
            program: program.clone(),
            reason: format!("waiting for it failed: {error}"),
        },
        None => CommandOutcome::TimedOut {
            timeout,
            output: text_of(&tail),
        },
    }
}

/// Reads both output streams to their ends into the shared tail.
async fn read_output(
    stdout: Option<impl AsyncRead + Unpin>,
    stderr: Option<impl AsyncRead + Unpin>,
    tail: Arc<Mutex<Tail>>,
) {
    let out = async {
        if let Some(stream) = stdout {
            collect(stream, tail.clone()).await;
        }
    };
    let err = async {
        if let Some(stream) = stderr {
            collect(stream, tail.clone()).await;
        }
    };
    tokio::join!(out, err);
}

/// Reads a stream to its end into the shared tail.
async fn collect(mut stream: impl AsyncRead + Unpin, tail: Arc<Mutex<Tail>>) {
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => lock(&tail).push(&buffer[..n]),
        }
    }
}

fn lock(tail: &Mutex<Tail>) -> std::sync::MutexGuard<'_, Tail> {
    tail.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn text_of(tail: &Mutex<Tail>) -> String {
    lock(tail).text()
}

/// The last `OUTPUT_LIMIT` bytes of output.
#[derive(Default)]
struct Tail {
    bytes: VecDeque<u8>,
    dropped: bool,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend(chunk);
        if self.bytes.len() > OUTPUT_LIMIT {
            let excess = self.bytes.len() - OUTPUT_LIMIT;
            self.bytes.drain(..excess);
            self.dropped = true;
        }
    }

    fn text(&self) -> String {
        let bytes: Vec<u8> = self.bytes.iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes);
        // A cut through a multi-byte character shows as one replacement character at the start.
        let text = text.trim_end();
        if self.dropped {
            format!("…{text}")
        } else {
            text.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use greenlight_commands::DeploymentKind;

    use super::*;
    use crate::background::Background;

    fn request() -> DeployRequest {
        DeployRequest {
            deployment_id: 42,
            app: "shop".into(),
            environment: "production".into(),
            sha: "0123456789abcdef0123456789abcdef01234567".into(),
            image: "ghcr.io/acme/shop:0123456".into(),
            previous_sha: None,
            kind: DeploymentKind::Deploy,
        }
    }

    #[test]
    fn placeholders_are_filled_in_each_argument() {
        let run: Vec<String> = [
            "flyctl",
            "deploy",
            "--image",
            "{image}",
            "-a",
            "{app}-{environment}",
            "--label=d{deployment_id}@{sha}",
            "{unknown}",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            fill_placeholders(&run, &request()),
            vec![
                "flyctl",
                "deploy",
                "--image",
                "ghcr.io/acme/shop:0123456",
                "-a",
                "shop-production",
                "--label=d42@0123456789abcdef0123456789abcdef01234567",
                "{unknown}",
            ]
        );
    }

    #[test]
    fn a_value_that_looks_like_a_placeholder_is_not_expanded_again() {
        let mut request = request();
        request.app = "{sha}".into();
        assert_eq!(
            fill_placeholders(&["{app}".to_owned()], &request),
            vec!["{sha}"]
        );
    }

    #[test]
    fn the_tail_keeps_the_end_of_long_output() {
        let mut tail = Tail::default();
        tail.push(&vec![b'a'; OUTPUT_LIMIT]);
        tail.push(b"the error at the end\n");
        let text = tail.text();
        assert!(text.starts_with('…'), "{}", &text[..10]);
        assert!(text.ends_with("the error at the end"));
        assert!(text.len() <= OUTPUT_LIMIT + 4);
    }

    /// Where the test programs (`sh`, `echo`, `sleep`, `env`) live.
    fn path_only() -> ChildEnvironment {
        ChildEnvironment {
            allowed: Vec::new(),
            values: vec![(
                "PATH".to_owned(),
                Secret::new("/usr/local/bin:/usr/bin:/bin".to_owned()),
            )],
        }
    }

    #[tokio::test]
    async fn the_child_sees_only_path_home_lang_and_the_allow_list_and_never_prints_it() {
        let background = Background::new();
        let mut child_env = path_only();
        child_env.allowed = vec!["FLY_API_TOKEN".to_owned()];
        child_env.values.extend([
            ("LANG".to_owned(), Secret::new("C.UTF-8".to_owned())),
            (
                "FLY_API_TOKEN".to_owned(),
                Secret::new("fo1_very-secret-fly-token".to_owned()),
            ),
        ]);
        let argv = vec!["env".to_owned()];
        let outcome = run(
            &argv,
            &child_env,
            Duration::from_secs(10),
            background.stop_signal(),
        )
        .await;
        let CommandOutcome::Exited {
            code: Some(0),
            output,
            ..
        } = &outcome
        else {
            panic!("{outcome:?}");
        };
        let mut names: Vec<&str> = output
            .lines()
            .filter_map(|line| line.split_once('=').map(|(name, _)| name))
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["FLY_API_TOKEN", "LANG", "PATH"], "{output}");
        assert!(output.contains("FLY_API_TOKEN=[redacted]"), "{output}");
        assert!(!output.contains("very-secret"), "{output}");
        assert!(output.contains("LANG=C.UTF-8"), "{output}");
    }

    #[tokio::test]
    async fn exit_status_and_output_are_kept_without_a_shell() {
        let background = Background::new();
        let argv: Vec<String> = ["sh", "-c", "echo out; echo err >&2; exit 3", "ignored"]
            .map(String::from)
            .to_vec();
        let outcome = run(
            &argv,
            &path_only(),
            Duration::from_secs(10),
            background.stop_signal(),
        )
        .await;
        let CommandOutcome::Exited { code, output, .. } = &outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(*code, Some(3));
        assert!(output.contains("out") && output.contains("err"), "{output}");
        let DeployResult::Failed { detail } = outcome.into_result() else {
            panic!("exit 3 is a failure");
        };
        assert!(
            detail.starts_with("command exited with status 3"),
            "{detail}"
        );

        // `;` is an argument like any other, not a command separator.
        let echo: Vec<String> = ["echo", "a;", "rm", "-rf", "/nothing"]
            .map(String::from)
            .to_vec();
        let outcome = run(
            &echo,
            &path_only(),
            Duration::from_secs(10),
            background.stop_signal(),
        )
        .await;
        assert!(
            matches!(&outcome, CommandOutcome::Exited { code: Some(0), output, .. } if output == "a; rm -rf /nothing"),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_is_killed() {
        let background = Background::new();
        let argv: Vec<String> = ["sleep", "30"].map(String::from).to_vec();
        let outcome = run(
            &argv,
            &path_only(),
            Duration::from_millis(200),
            background.stop_signal(),
        )
        .await;
        assert!(
            matches!(outcome, CommandOutcome::TimedOut { .. }),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn stopping_greenlight_interrupts_the_command() {
        let background = Background::new();
        let stop = background.stop_signal();
        let argv: Vec<String> = ["sleep", "30"].map(String::from).to_vec();
        let running =
            tokio::spawn(
                async move { run(&argv, &path_only(), Duration::from_secs(60), stop).await },
            );
        background.shutdown(Duration::from_secs(1)).await;
        let outcome = running.await.expect("joins");
        assert!(
            matches!(outcome, CommandOutcome::Interrupted { .. }),
            "{outcome:?}"
        );
        let DeployResult::Failed { detail } = outcome.into_result() else {
            panic!("interrupted is a failure");
        };
        assert!(detail.starts_with("interrupted"), "{detail}");
    }

    #[tokio::test]
    async fn a_missing_program_is_reported() {
        let background = Background::new();
        let argv = vec!["/nonexistent/deploy-tool".to_owned()];
        let outcome = run(
            &argv,
            &path_only(),
            Duration::from_secs(5),
            background.stop_signal(),
        )
        .await;
        assert!(
            matches!(outcome, CommandOutcome::NotStarted { .. }),
            "{outcome:?}"
        );
    }
}
