//! A stdio server's process: spawned from argv (never a shell) with exactly the environment
//! it was given, in a process group of its own led by the guard (see [`super::guard`]),
//! stderr drained into a bounded tail, and the whole group killed when the run closes the
//! server or the handle is dropped.

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::watch;

use super::STDERR_TAIL_BYTES;
use super::guard::{GUARD_SUBCOMMAND, guard_program};

/// The end of a stream, at most [`STDERR_TAIL_BYTES`].
#[derive(Debug, Default)]
pub(crate) struct Tail {
    bytes: Mutex<VecDeque<u8>>,
}

impl Tail {
    fn push(&self, chunk: &[u8]) {
        let mut bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let keep = &chunk[chunk.len().saturating_sub(STDERR_TAIL_BYTES)..];
        let overflow = (bytes.len() + keep.len()).saturating_sub(STDERR_TAIL_BYTES);
        let drop = overflow.min(bytes.len());
        bytes.drain(..drop);
        bytes.extend(keep);
    }

    /// The tail as text (lossy UTF-8; a first line cut in the middle is dropped).
    pub(crate) fn text(&self) -> String {
        let bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let (a, b) = bytes.as_slices();
        let text = String::from_utf8_lossy(&[a, b].concat()).into_owned();
        if bytes.len() >= STDERR_TAIL_BYTES
            && let Some((_, rest)) = text.split_once('\n')
        {
            return rest.to_string();
        }
        text
    }
}

/// A running server process and its group.
pub(crate) struct ServerProcess {
    /// How the server exited, once it has (set by the task that waits for it).
    exit: watch::Receiver<Option<ExitStatus>>,
    /// The process group: the guard's pid, or the server's own when there is no guard.
    group: i32,
    /// The guard (leader of the group); its stdin is the pipe whose closing kills the group.
    guard: Option<Child>,
    pub(crate) stderr: Arc<Tail>,
    /// Set once the server's stderr reached end-of-file (everything it wrote is in `stderr`).
    stderr_done: watch::Receiver<bool>,
}

/// The server's stdin and stdout, for the MCP transport.
pub(crate) struct Pipes {
    pub(crate) stdin: ChildStdin,
    pub(crate) stdout: ChildStdout,
}

impl ServerProcess {
    /// Starts `argv` in `cwd` with exactly `env`. The error is for people: what could not be
    /// started and why.
    pub(crate) fn spawn(
        argv: &[String],
        cwd: &Path,
        env: &[(String, String)],
    ) -> Result<(ServerProcess, Pipes), String> {
        let Some(program) = argv.first().filter(|p| !p.is_empty()) else {
            return Err("the command is empty".into());
        };
        if !cwd.is_dir() {
            return Err(format!(
                "working directory {} does not exist",
                cwd.display()
            ));
        }
        let guard = match guard_program() {
            Some(exe) => Some(spawn_guard(exe)?),
            None => None,
        };
        let guard_pid = guard
            .as_ref()
            .and_then(Child::id)
            .and_then(|p| i32::try_from(p).ok());
        let executable = resolve(program, cwd);
        let mut command = Command::new(&executable);
        command
            .args(&argv[1..])
            .current_dir(cwd)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(guard_pid.unwrap_or(0))
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                if let Some(mut guard) = guard {
                    let _ = guard.start_kill();
                    reap(guard);
                }
                return Err(spawn_reason(program, &executable, &e));
            }
        };
        let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
        let group = guard_pid.unwrap_or(pid);
        let (Some(stdin), Some(stdout), Some(mut stderr_pipe)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            kill_group(group);
            return Err("the server's pipes could not be opened".into());
        };
        let stderr = Arc::new(Tail::default());
        let sink = Arc::clone(&stderr);
        let (done_tx, stderr_done) = watch::channel(false);
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 8 * 1024];
            while let Ok(n @ 1..) = stderr_pipe.read(&mut buffer).await {
                sink.push(&buffer[..n]);
            }
            let _ = done_tx.send(true);
        });
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(async move {
            if let Ok(status) = child.wait().await {
                let _ = exit_tx.send(Some(status));
            }
        });
        let process = ServerProcess {
            exit,
            group,
            guard,
            stderr,
            stderr_done,
        };
        Ok((process, Pipes { stdin, stdout }))
    }

    /// How the server exited, if it has.
    pub(crate) fn exit(&self) -> Option<String> {
        self.exit.borrow().map(describe_exit)
    }

    /// Waits (at most `wait`) until the server's exit is known and its stderr read to the
    /// end: after a broken pipe the waiting task may not have reaped it yet, nor the reading
    /// task seen its last lines (which say why it exited).
    pub(crate) async fn exit_within(&self, wait: std::time::Duration) -> Option<String> {
        let mut exit = self.exit.clone();
        let mut done = self.stderr_done.clone();
        let _ = tokio::time::timeout(wait, async {
            let _ = exit.wait_for(Option::is_some).await;
            let _ = done.wait_for(|d| *d).await;
        })
        .await;
        self.exit()
    }

    /// Kills the group (the guard, the server and everything they started).
    pub(crate) fn kill(&mut self) {
        kill_group(self.group);
        if let Some(guard) = self.guard.take() {
            reap(guard);
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_guard(exe: &PathBuf) -> Result<Child, String> {
    Command::new(exe)
        .arg(GUARD_SUBCOMMAND)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the process guard {}: {e}", exe.display()))
}

fn kill_group(group: i32) {
    if group > 0 {
        // SAFETY: killpg only sends a signal, to a group this process created and whose
        // leader (the guard) it has not reaped yet, so the id cannot belong to anyone else.
        unsafe {
            libc::killpg(group, libc::SIGKILL);
        }
    }
}

/// Reaps a killed child in the background, so it does not linger as a zombie.
fn reap(mut child: Child) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = child.wait().await;
        });
    }
}

/// A relative program with a slash is relative to the working directory; a bare name is
/// looked up in `PATH` (as for command tools).
fn resolve(program: &str, cwd: &Path) -> PathBuf {
    let path = Path::new(program);
    if program.contains('/') && path.is_relative() {
        cwd.join(path)
    } else {
        path.to_path_buf()
    }
}

fn spawn_reason(program: &str, executable: &Path, error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound if program.contains('/') => format!(
            "{} does not exist (or its `#!` interpreter does not)",
            executable.display()
        ),
        std::io::ErrorKind::NotFound => format!("`{program}`: no such executable in PATH"),
        std::io::ErrorKind::PermissionDenied => {
            format!("`{program}`: permission denied (is it executable?)")
        }
        _ => format!("`{program}`: {error}"),
    }
}

fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "exited".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes_and_drops_a_cut_first_line() {
        let tail = Tail::default();
        tail.push(b"first\n");
        assert_eq!(tail.text(), "first\n");
        let long = "x".repeat(STDERR_TAIL_BYTES);
        tail.push(long.as_bytes());
        tail.push(b"\nlast line\n");
        assert_eq!(tail.text(), "last line\n");
    }
}
