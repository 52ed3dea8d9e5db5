//! Shared helpers of the adversarial suite (`tests/adversarial_*.rs`): `pe` run as a child
//! process with its peak memory and wall time measured, and a fake OpenAI-compatible model
//! server that plays a fixed list of replies and keeps every request it was sent.
//!
//! Peak memory is the maximum resident set size as `wait4(2)` reports it (what
//! `/usr/bin/time -v` prints as "Maximum resident set size"). Linux counts into a child's
//! maximum the memory of the process it was spawned from (a spawn shares the parent's
//! memory until `exec`), and the test process holds big replies of other tests running at
//! the same time. So `pe` runs under GNU `time`, a small process that forks it: `time`'s
//! report is pe's own peak (and its tools'). Where `/usr/bin/time` is missing, `wait4` on pe
//! itself is used after resetting the test's high-water mark (`/proc/self/clear_refs`):
//! that figure is max(the test's memory at the spawn, pe's peak), still an upper bound.

#![allow(dead_code)]

pub mod shapes;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Memory every hostile run must stay under.
pub const MAX_RSS_BYTES: u64 = 100 * 1024 * 1024;

/// CPU time (user + system) every hostile run must stay under. A debug build is several
/// times slower than a release build; `pe check`'s one-second promise is measured on the
/// release build by `benches/check.rs`. CPU time, not wall time: on a 2-core machine shared
/// with other builds, wall time measures the neighbours.
pub const MAX_SECONDS: u64 = if cfg!(debug_assertions) { 8 } else { 3 };

/// Wall time a hostile run must stay under whatever the machine's load (a backstop: a run
/// that hangs fails here).
pub const MAX_WALL_SECONDS: u64 = 60;

/// What one measured `pe` process did.
#[derive(Debug)]
pub struct Measured {
    pub code: Option<i32>,
    /// User + system CPU time, when GNU time measured it.
    pub cpu: Option<Duration>,
    pub elapsed: Duration,
    pub peak_rss_bytes: u64,
    pub stderr: String,
    pub stdout: String,
}

impl Measured {
    /// Asserts the run stayed within [`MAX_RSS_BYTES`] and [`MAX_SECONDS`].
    pub fn within_bounds(&self, what: &str) -> &Measured {
        assert!(
            self.peak_rss_bytes < MAX_RSS_BYTES,
            "{what}: peak RSS {} MB\nstderr: {}",
            self.peak_rss_bytes / (1024 * 1024),
            excerpt(&self.stderr)
        );
        let worked = self.cpu.unwrap_or(self.elapsed);
        assert!(
            worked < Duration::from_secs(MAX_SECONDS),
            "{what}: took {worked:?} of CPU time\nstderr: {}",
            excerpt(&self.stderr)
        );
        assert!(
            self.elapsed < Duration::from_secs(MAX_WALL_SECONDS),
            "{what}: took {:?}\nstderr: {}",
            self.elapsed,
            excerpt(&self.stderr)
        );
        self
    }

    /// The `--json` document on stdout.
    pub fn doc(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                excerpt(&self.stdout),
                excerpt(&self.stderr)
            )
        })
    }
}

/// The start of a long text, for assertion messages.
pub fn excerpt(text: &str) -> String {
    let cut: String = text.chars().take(2000).collect();
    if cut.len() < text.len() {
        format!("{cut}… ({} bytes)", text.len())
    } else {
        cut
    }
}

/// `pe ARGS` in `dir`, with the run store inside `dir` and no colour.
pub fn pe(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("pe"));
    cmd.current_dir(dir)
        .env_remove("PE_HOME")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env("NO_COLOR", "1")
        .args(args);
    cmd
}

/// GNU time, when the machine has it.
const GNU_TIME: &str = "/usr/bin/time";

/// Runs `cmd` to the end, reading both pipes, and measures it (under GNU `time` when there
/// is one; see the module documentation).
pub fn measure(cmd: Command) -> Measured {
    if !Path::new(GNU_TIME).exists() {
        return measure_directly(cmd);
    }
    let report = tempfile::NamedTempFile::new().expect("temp file");
    let mut timed = Command::new(GNU_TIME);
    timed.arg("-f").arg("%M %U %S").arg("-o").arg(report.path());
    timed.arg(cmd.get_program()).args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        timed.current_dir(dir);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => timed.env(key, value),
            None => timed.env_remove(key),
        };
    }
    let mut measured = measure_directly(timed);
    let text = std::fs::read_to_string(report.path()).unwrap_or_default();
    // `time` writes "Command exited with non-zero status N" (or "terminated by signal")
    // before the figure, and exits with pe's status (128 + N for a signal).
    if text.contains("terminated by signal") {
        measured.code = None;
    }
    let figures: Vec<f64> = text
        .lines()
        .last()
        .map(|l| {
            l.split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let [kb, user, system] = figures[..] else {
        panic!("GNU time's report: {text}");
    };
    measured.peak_rss_bytes = kb as u64 * 1024;
    measured.cpu = Some(Duration::from_secs_f64(user + system));
    measured
}

fn measure_directly(mut cmd: Command) -> Measured {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Resets this process's peak RSS to its current RSS (Linux >= 4.0); see the module doc.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn pe");
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let stdout = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let stderr = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not reaped yet (`child` is never waited on).
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 failed");
    let elapsed = started.elapsed();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    std::mem::forget(child);
    Measured {
        code,
        cpu: None,
        elapsed,
        // ru_maxrss is in kilobytes on Linux.
        peak_rss_bytes: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
        stderr: String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned(),
        stdout: String::from_utf8_lossy(&stdout.join().unwrap_or_default()).into_owned(),
    }
}

/// A temporary directory holding `workflow.yaml` (and whatever else a test writes).
pub struct Case {
    pub dir: tempfile::TempDir,
}

impl Case {
    pub fn new(workflow: &str) -> Case {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("workflow.yaml"), workflow).expect("write workflow");
        Case { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }

    /// `pe exec workflow.yaml --json ARGS...`, measured.
    pub fn exec(&self, args: &[&str], env: &[(&str, &str)]) -> Measured {
        let mut all = vec!["exec", "workflow.yaml", "--json"];
        all.extend_from_slice(args);
        let mut cmd = pe(self.dir.path(), &all);
        for (k, v) in env {
            cmd.env(k, v);
        }
        measure(cmd)
    }

    /// The latest run's journal as text (`pe show latest --json`).
    pub fn journal(&self) -> String {
        let out = measure(pe(self.dir.path(), &["show", "latest", "--json"]));
        assert_eq!(out.code, Some(0), "pe show failed: {}", out.stderr);
        out.stdout
    }

    /// The events of one type in the latest run's journal.
    pub fn events_of(&self, kind: &str) -> Vec<Value> {
        self.journal()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("journal line"))
            .filter(|e| e["type"] == kind)
            .collect()
    }
}

/// One reply of the fake model.
#[derive(Clone, Debug)]
pub enum Reply {
    Text(String),
    ToolCall(&'static str, Value),
}

/// A fake OpenAI-compatible server answering the `n`th request with the `n`th reply (the
/// last one again when they run out) and keeping every request body.
pub struct FakeModel {
    pub server: MockServer,
    pub requests: Arc<Mutex<Vec<String>>>,
}

struct Scripted {
    replies: Vec<Reply>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Respond for Scripted {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut seen = self.requests.lock().unwrap();
        seen.push(String::from_utf8_lossy(&request.body).into_owned());
        let n = seen.len() - 1;
        let reply = self.replies[n.min(self.replies.len() - 1)].clone();
        let message = match reply {
            Reply::Text(text) => json!({"role": "assistant", "content": text}),
            Reply::ToolCall(name, args) => json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{"id": format!("call_{n}"), "type": "function",
                                "function": {"name": name, "arguments": args.to_string()}}]
            }),
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "id": format!("chatcmpl-{n}"),
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        }))
    }
}

impl FakeModel {
    pub async fn start(replies: Vec<Reply>) -> FakeModel {
        let server = MockServer::start().await;
        let requests = Arc::new(Mutex::new(Vec::new()));
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(Scripted {
                replies,
                requests: Arc::clone(&requests),
            })
            .mount(&server)
            .await;
        FakeModel { server, requests }
    }

    /// The base URL a `kind: openai` provider uses.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.server.uri())
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}
