//! `pe exec` through the OpenAI-compatible provider against a zero-latency local server: what
//! a real run pays on top of the model itself. Run with
//! `cargo bench --no-default-features --bench http` (`PE_BENCH_RUNS=N`, default 15; the
//! embedded model is not needed). `PE_BENCH_BIN=path/to/pe` measures another build of pe
//! (an older one, for before/after ratios taken in the same conditions). The README quotes
//! the figures.
//!
//! The server is a minimal HTTP/1.1 server in this process (a thread per connection, bodies
//! parsed with serde_json, answers prebuilt per role) that measures its own time per request
//! — from the request's last byte read to the response's last byte written — so it can be
//! subtracted. The workflow is the plan-and-execute shape LangGraph's tutorial builds: the
//! planner writes a chain of n steps, the executor answers each step in one turn, the
//! replanner is asked after every step (`replan.when: after_each_step`, it says `continue`),
//! the synthesizer answers: 2n + 2 model calls.
//!
//! Reported, medians over the runs:
//! - own time per model call: the slope between the 10- and the 50-step run of the
//!   process's wall time minus the server's time, per call;
//! - the whole 50-step process, wall time;
//! - start-up: from spawning `pe exec` to the first request reaching the server;
//! - prompt characters sent in the 50-step run (every message's content, every request);
//! - peak RSS of the 50-step process (max RSS from `wait4`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What the server saw during one run.
#[derive(Default)]
struct Seen {
    first_request: Option<Instant>,
    prompt_chars: usize,
    /// Prompt characters by role: planner, replanner, executor and synthesizer (the
    /// workflow has no tools, so those two are told apart by nothing in the request).
    role_chars: [usize; 3],
    requests: usize,
    server_time: Duration,
}

struct Server {
    port: u16,
    seen: Arc<Mutex<Seen>>,
}

impl Server {
    fn start(steps: usize) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let port = listener.local_addr().expect("local address").port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        let answers = Arc::new(Answers::new(steps));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = Arc::clone(&shared);
                let answers = Arc::clone(&answers);
                std::thread::spawn(move || serve(stream, &seen, &answers));
            }
        });
        Server { port, seen }
    }

    fn take(&self) -> Seen {
        std::mem::take(&mut *self.seen.lock().expect("lock"))
    }
}

/// Prebuilt response bodies per role.
struct Answers {
    decision: Vec<u8>,
    executor: Vec<u8>,
    plan: Vec<u8>,
    synthesis: Vec<u8>,
}

impl Answers {
    fn new(steps: usize) -> Answers {
        let plan: Vec<Value> = (0..steps)
            .map(|i| {
                let deps: Vec<String> = if i == 0 { vec![] } else { vec![format!("s{}", i - 1)] };
                json!({"id": format!("s{i}"), "description": format!("Do part {i} of the work"), "depends_on": deps})
            })
            .collect();
        let body = |content: String| {
            serde_json::to_vec(&json!({
                "id": "cmpl", "object": "chat.completion", "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
            }))
            .expect("serialize")
        };
        Answers {
            decision: body(json!({"decision": "continue"}).to_string()),
            executor: body(json!({"status": "succeeded", "result": "done"}).to_string()),
            plan: body(json!({"steps": plan}).to_string()),
            synthesis: body("All parts are done.".into()),
        }
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Seen>, answers: &Answers) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut writer = stream;
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if first {
                first = false;
                let mut s = seen.lock().expect("lock");
                s.first_request.get_or_insert_with(Instant::now);
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let t0 = Instant::now();
        let request: Value = serde_json::from_slice(&body).unwrap_or_default();
        let chars: usize = request["messages"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .map(|m| m["content"].as_str().unwrap_or_default().chars().count())
                    .sum()
            })
            .unwrap_or(0);
        let format = request["response_format"]["json_schema"]["name"]
            .as_str()
            .unwrap_or_default();
        let (answer, role) = if request.get("tools").is_some() {
            (&answers.executor, 2)
        } else if format == "plan" {
            (&answers.plan, 0)
        } else if format == "decision" {
            (&answers.decision, 1)
        } else {
            (&answers.synthesis, 2)
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        );
        let written = writer
            .write_all(head.as_bytes())
            .and_then(|()| writer.write_all(answer))
            .and_then(|()| writer.flush());
        let mut s = seen.lock().expect("lock");
        s.server_time += t0.elapsed();
        s.prompt_chars += chars;
        s.role_chars[role] += chars;
        s.requests += 1;
        if written.is_err() {
            return;
        }
    }
}

fn workflow(port: u16, steps: usize) -> String {
    format!(
        "version: 1\nname: bench-http\ntask: Carry out the generated plan\nproviders:\n  fake: {{kind: openai, base_url: 'http://127.0.0.1:{port}/v1', max_retries: 0}}\nmodels: {{default: fake/m}}\nplan: {{max_steps: {steps}}}\nreplan: {{when: after_each_step}}\n"
    )
}

/// One `pe exec` process: wall time, start-up to the first request, peak RSS (KiB).
struct Process {
    rss_kb: u64,
    startup: Duration,
    wall: Duration,
    seen: Seen,
}

#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which also reports its peak RSS"
)]
fn run(server: &Server, file: &PathBuf, dir: &PathBuf) -> Process {
    let _ = std::fs::remove_dir_all(dir.join(".pe"));
    let _ = server.take();
    let t0 = Instant::now();
    let bin = std::env::var_os("PE_BENCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_pe").into());
    let child = Command::new(bin)
        .current_dir(dir)
        .arg("exec")
        .arg(file)
        .env("NO_COLOR", "1")
        .env_remove("PE_HOME")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pe");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, with valid out-pointers.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = t0.elapsed();
    assert_eq!(waited, pid, "wait4");
    assert_eq!(status, 0, "pe exec failed (status {status})");
    let seen = server.take();
    let startup = seen.first_request.map_or(Duration::ZERO, |t| t - t0);
    Process {
        rss_kb: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        startup,
        wall,
        seen,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("PE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let dir = std::env::temp_dir().join(format!("pe-bench-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the bench directory");
    let mut results = Vec::new();
    for steps in [10usize, 50] {
        let server = Server::start(steps);
        let file = dir.join(format!("chain-{steps}.yaml"));
        std::fs::write(&file, workflow(server.port, steps)).expect("write the workflow");
        // One warm-up run (page cache, the binary).
        let _ = run(&server, &file, &dir);
        let processes: Vec<Process> = (0..runs).map(|_| run(&server, &file, &dir)).collect();
        results.push((steps, processes));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let calls = |steps: usize| (2 * steps + 2) as f64;
    let own = |p: &Process| p.wall.as_secs_f64() - p.seen.server_time.as_secs_f64();
    let (short, long) = (&results[0], &results[1]);
    for (steps, ps) in [short, long] {
        assert!(
            ps.iter().all(|p| p.seen.requests == 2 * steps + 2),
            "{steps} steps: every run makes 2n + 2 requests"
        );
    }
    let per_call = (median(long.1.iter().map(own).collect())
        - median(short.1.iter().map(own).collect()))
        / (calls(long.0) - calls(short.0));
    let wall50 = median(long.1.iter().map(|p| p.wall.as_secs_f64()).collect());
    let server50 = median(
        long.1
            .iter()
            .map(|p| p.seen.server_time.as_secs_f64())
            .collect(),
    );
    let startup = median(
        long.1
            .iter()
            .chain(short.1.iter())
            .map(|p| p.startup.as_secs_f64())
            .collect(),
    );
    let rss = median(long.1.iter().map(|p| p.rss_kb as f64).collect());
    let chars = long.1[0].seen.prompt_chars;
    println!(
        "pe exec through the OpenAI-compatible provider, zero-latency local server, {runs} runs each (medians)"
    );
    println!(
        "  own time per model call (10 → 50 steps, server time subtracted): {:.3} ms",
        per_call * 1e3
    );
    println!(
        "  whole 50-step run (102 calls), process wall time: {:.1} ms (server: {:.1} ms)",
        wall50 * 1e3,
        server50 * 1e3
    );
    println!("  start-up to the first request: {:.1} ms", startup * 1e3);
    let [p, r, e] = long.1[0].seen.role_chars;
    println!(
        "  prompt characters sent, 50-step run: {chars} (planner {p}, replanner {r}, executor and synthesizer {e})"
    );
    println!("  peak RSS, 50-step run: {:.1} MiB", rss / 1024.0);
}
