//! `command` tools: run a program with a templated argv, never through a shell.
//!
//! Each argv element is rendered on its own, so a model-chosen value like `; rm -rf /` is
//! one argument, not shell syntax. The program gets a minimal environment ([`MINIMAL_ENV`]),
//! the tool's `inherit_env` names and its `env`: never pe's whole environment, where the
//! provider keys are. The program runs in its own process group with stdin
//! closed; when the call is cancelled (its timeout, the step's, the run's) the whole group is
//! killed, so a tool's children cannot outlive it. Output is read concurrently from both
//! pipes into bounded [`Capture`]s, so a chatty program neither blocks on a full pipe nor
//! fills memory.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

use super::truncate::Capture;
use super::{ToolContext, ToolError, ToolOutput, ToolRunner, template_context};
use crate::template;

/// The variable that carries a call's idempotency key (see [`ToolContext::idempotency_key`]).
pub const IDEMPOTENCY_ENV: &str = "PE_IDEMPOTENCY_KEY";

/// After the program exits, how long its pipes may stay open (held by a background child)
/// before the rest of its process group is killed.
const PIPE_GRACE: Duration = Duration::from_millis(200);

/// The line between stdout and stderr when a successful command wrote to both (its leading
/// newline is left out when stdout already ends a line).
const STDERR_LABEL: &str = "\n[stderr]\n";

/// Variables of pe's environment every command gets when they are set: what programs need
/// to find each other, a home, a locale, a time zone and a temporary directory. Variables
/// starting with `LC_` are passed too.
pub const MINIMAL_ENV: [&str; 10] = [
    "HOME", "LANG", "LANGUAGE", "LOGNAME", "PATH", "SHELL", "TERM", "TMPDIR", "TZ", "USER",
];

/// A `command` tool, ready to run.
pub struct CommandRunner {
    /// argv templates; the first element is the program.
    pub argv: Vec<String>,
    /// Working directory relative to the workflow's directory (default: that directory).
    pub cwd: Option<String>,
    /// Variables set for the program besides the minimal ones; values are templates.
    pub env: IndexMap<String, String>,
    /// Variables of pe's environment passed on besides [`MINIMAL_ENV`].
    pub inherit_env: Vec<String>,
    pub max_output_bytes: usize,
    pub tool: String,
}

#[async_trait::async_trait]
impl ToolRunner for CommandRunner {
    /// Output is stdout. When stdout is empty it is stderr (many tools report there); when
    /// both have text, stderr follows stdout under a `[stderr]` line. The whole is cut to
    /// `max_output_bytes`. A non-zero exit fails with the exit code and the end of stderr
    /// (or of stdout, when stderr is empty).
    async fn call(&self, args: &Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let vars = template_context(args, ctx);
        let argv = self
            .argv
            .iter()
            .enumerate()
            .map(|(i, text)| {
                template::render(text, &vars).map_err(|e| {
                    ToolError::failed(format!("`{}`: cannot render argv[{i}]: {e}", self.tool))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let Some(program) = argv.first().filter(|p| !p.is_empty()) else {
            return Err(ToolError::failed(format!(
                "`{}`: the command is empty",
                self.tool
            )));
        };
        let root = ctx.root();
        let dir = match &self.cwd {
            Some(cwd) => root.join(cwd),
            None => root,
        };
        if !tokio::fs::metadata(&dir).await.is_ok_and(|m| m.is_dir()) {
            return Err(ToolError::failed(format!(
                "`{}`: working directory {} does not exist",
                self.tool,
                dir.display()
            )));
        }
        let executable = resolve_program(program, &dir);
        let mut command = Command::new(&executable);
        command
            .args(&argv[1..])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .env_clear()
            .envs(inherited(&self.inherit_env));
        for (key, value) in &self.env {
            let value = template::render(value, &vars).map_err(|e| {
                ToolError::failed(format!("`{}`: cannot render env {key}: {e}", self.tool))
            })?;
            command.env(key, value);
        }
        if let Some(key) = &ctx.idempotency_key {
            command.env(IDEMPOTENCY_ENV, key);
        }
        let child = command
            .spawn()
            .map_err(|e| spawn_error(program, &executable, &e))?;
        let mut running = Running::new(child);
        let (status, stdout, stderr) = running.finish(self.max_output_bytes).await?;
        if status.success() {
            return Ok(combine(stdout, stderr, self.max_output_bytes));
        }
        Err(ToolError::failed(failure_message(
            program,
            status,
            &stdout,
            &stderr,
            self.max_output_bytes,
        )))
    }
}

/// The part of pe's environment a command gets: [`MINIMAL_ENV`], `LC_*` and `names`.
fn inherited(names: &[String]) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    std::env::vars_os()
        .filter(|(key, _)| {
            key.to_str().is_some_and(|key| {
                MINIMAL_ENV.contains(&key)
                    || key.starts_with("LC_")
                    || names.iter().any(|name| name == key)
            })
        })
        .collect()
}

/// A relative program path with a slash (`./scripts/ci.sh`) means relative to the working
/// directory; resolve it ourselves rather than rely on platform-specific exec behaviour.
/// A bare name (`git`) is looked up in `PATH`.
fn resolve_program(program: &str, dir: &Path) -> PathBuf {
    let path = Path::new(program);
    if program.contains('/') && path.is_relative() {
        dir.join(path)
    } else {
        path.to_path_buf()
    }
}

fn spawn_error(program: &str, executable: &Path, error: &std::io::Error) -> ToolError {
    ToolError::failed(match error.kind() {
        std::io::ErrorKind::NotFound if program.contains('/') => format!(
            "cannot run `{program}`: {} does not exist (or its `#!` interpreter does not)",
            executable.display()
        ),
        std::io::ErrorKind::NotFound => {
            format!("cannot run `{program}`: no such executable in PATH")
        }
        std::io::ErrorKind::PermissionDenied => {
            format!("cannot run `{program}`: permission denied (is it executable?)")
        }
        _ => format!("cannot run `{program}`: {error}"),
    })
}

/// A spawned child whose process group is killed if this is dropped before the child and
/// its pipes are done: dropping the call's future (a timeout) must not leave processes.
struct Running {
    child: Option<Child>,
    /// The process group (the child's pid), while it may still have members to kill.
    group: Option<i32>,
}

impl Running {
    fn new(child: Child) -> Running {
        let group = child.id().and_then(|pid| i32::try_from(pid).ok());
        Running {
            child: Some(child),
            group,
        }
    }

    fn kill_group(&self) {
        if let Some(group) = self.group {
            // SAFETY: killpg only sends a signal; the group is our child's, created with
            // `process_group(0)`, and still has members or has not been reaped yet.
            unsafe {
                libc::killpg(group, libc::SIGKILL);
            }
        }
    }

    /// Waits for the child to exit while draining both pipes.
    async fn finish(&mut self, limit: usize) -> Result<(ExitStatus, Capture, Capture), ToolError> {
        let Some(child) = self.child.as_mut() else {
            return Err(ToolError::failed("the command was already awaited"));
        };
        let stdout = read_capped(child.stdout.take(), limit);
        let stderr = read_capped(child.stderr.take(), limit);
        let mut readers = std::pin::pin!(futures::future::join(stdout, stderr));
        let mut captured = None;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                output = &mut readers, if captured.is_none() => captured = Some(output),
            }
        };
        let status = status
            .map_err(|e| ToolError::failed(format!("waiting for the command failed: {e}")))?;
        let (stdout, stderr) = match captured {
            Some(output) => output,
            None => match tokio::time::timeout(PIPE_GRACE, &mut readers).await {
                Ok(output) => output,
                Err(_) => {
                    // A background child still holds the pipes: it dies with the group.
                    self.kill_group();
                    readers.await
                }
            },
        };
        self.group = None;
        self.child = None;
        Ok((status, stdout, stderr))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill_group();
        if let Some(mut child) = self.child.take() {
            // Reap the killed child so it does not linger as a zombie.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = child.wait().await;
                });
            }
        }
    }
}

async fn read_capped(pipe: Option<impl AsyncRead + Unpin>, limit: usize) -> Capture {
    let mut capture = Capture::new(limit);
    if let Some(mut pipe) = pipe {
        let mut buffer = vec![0u8; 16 * 1024];
        // Read to the end even past the limit (only counting): a program blocked on a full
        // pipe would never exit.
        while let Ok(n @ 1..) = pipe.read(&mut buffer).await {
            capture.push(&buffer[..n]);
        }
    }
    capture
}

fn combine(stdout: Capture, stderr: Capture, limit: usize) -> ToolOutput {
    if stderr.is_empty() {
        return stdout.into_output();
    }
    if stdout.is_empty() {
        return stderr.into_output();
    }
    // Re-capture under the same limit: stdout comes first, so it is kept before stderr.
    let mut both = Capture::new(limit);
    let (head, missing) = stdout.head();
    both.push(head);
    both.skip(missing);
    let label = if missing == 0 && head.ends_with(b"\n") {
        &STDERR_LABEL[1..]
    } else {
        STDERR_LABEL
    };
    both.push(label.as_bytes());
    let (head, missing) = stderr.head();
    both.push(head);
    both.skip(missing);
    both.into_output()
}

fn failure_message(
    program: &str,
    status: ExitStatus,
    stdout: &Capture,
    stderr: &Capture,
    limit: usize,
) -> String {
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "failed".to_string(),
    };
    let (name, stream) = if stderr.is_empty() {
        ("stdout", stdout)
    } else {
        ("stderr", stderr)
    };
    if stream.is_empty() {
        return format!("`{program}` {how} (no output)");
    }
    format!("`{program}` {how}; {name}:\n{}", stream.tail_text(limit))
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
