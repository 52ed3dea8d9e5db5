//! `pe exec` speed and footprint on the `scripted` provider, so the model costs (next to)
//! nothing and what is measured is pe itself. Run with `cargo bench --bench exec`
//! (`PE_BENCH_RUNS=N` repetitions, default 15). The README quotes the figures.
//!
//! 1. Orchestration overhead per LLM call: chains of 10, 50 and 100 steps (planner,
//!    n × (tool call turn + final turn) with a mock tool, synthesizer = 2n + 2 model calls)
//!    on zero-delay replies, run in process through the library — with events dropped
//!    (the engine alone) and with the journal writer attached as `pe exec` attaches it
//!    (the time then includes waiting for the last commit and closing the store) — and
//!    through the binary. The marginal cost per call is the slope between the shortest
//!    and the longest chain, free of per-run fixed costs, which are measured apart
//!    (process start-up and check, loading the replies, opening and closing the store).
//!    The scripted provider's own work (matching replies, estimating tokens) is inside
//!    every figure, so they are upper bounds of pe's overhead.
//! 2. Peak memory: max RSS of the `pe exec` child (from `wait4`), 50-step plan.
//! 3. Parallel scheduling: 8 independent steps and a join depending on all of them,
//!    `parallel: true`, `max_concurrency: 8`, every reply delayed 200 ms. The critical
//!    path is planner + one step (2 turns) + join (2 turns) + synthesizer = 6 × 200 ms.
//!
//! `PE_BENCH_PROFILE=N` (with `PE_BENCH_PROFILE_STEPS`) only runs the engine N times, for
//! `perf record`; `PE_BENCH_JOURNAL=1` only measures the store.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pe::engine::{self, EventSink, RunConfig, SinkFailed};
use pe::run::event::{Event, EventKind};
use pe::run::journal::Journal;
use pe::run::redact::Redactor;
use pe::run::writer::Writer;
use pe::spec::RunStatus;
use pe::tool::Toolbox;

const PARALLEL_STEPS: usize = 8;
const DELAY_MS: u64 = 200;

/// A workflow (`workflow.yaml`) and its replies (`replies.yaml`) in a directory.
struct Case {
    dir: PathBuf,
}

impl Case {
    fn new(name: &str, workflow: &str, replies: &str) -> Case {
        let dir = std::env::temp_dir().join(format!("pe-bench-exec-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the bench directory");
        std::fs::write(dir.join("workflow.yaml"), workflow).expect("write the workflow");
        std::fs::write(dir.join("replies.yaml"), replies).expect("write the replies");
        Case { dir }
    }

    fn workflow(&self) -> PathBuf {
        self.dir.join("workflow.yaml")
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const TOOLS: &str = r#"tools:
  echo:
    description: Echo the text back.
    parameters: {type: object, properties: {text: {type: string}}, required: [text]}
    mock: 'echoed {{ args.text }}'
"#;

/// `n` steps, each depending on the one before; each step calls `echo` once, then answers.
fn chain(n: usize) -> (String, String) {
    let workflow = format!(
        "version: 1\nname: bench-chain\nmodels: {{default: scripted/replies.yaml}}\n{TOOLS}task: Carry out the generated plan\nplan: {{max_steps: {n}}}\n"
    );
    let steps: Vec<String> = (0..n)
        .map(|i| {
            let dep = if i == 0 {
                String::new()
            } else {
                format!(", \"depends_on\": [\"s{}\"]", i - 1)
            };
            format!(
                "{{\"id\": \"s{i}\", \"description\": \"Do part {i} of the work\", \"tool\": \"echo\", \"expected\": \"part {i} done\"{dep}}}"
            )
        })
        .collect();
    let mut replies = format!(
        "planner:\n  - {{\"json\": {{\"steps\": [{}]}}}}\nexecutor:\n",
        steps.join(", ")
    );
    for i in 0..n {
        let _ = write!(
            replies,
            "  - {{\"when\": \"Step `s{i}`\", \"tool_calls\": [{{\"name\": \"echo\", \"arguments\": {{\"text\": \"part {i}\"}}}}]}}\n  - {{\"when\": \"Step `s{i}`\", \"json\": {{\"status\": \"succeeded\", \"result\": \"part {i} is done\"}}}}\n"
        );
    }
    replies.push_str("synthesizer:\n  - {\"text\": \"All parts are done.\"}\n");
    (workflow, replies)
}

/// `n` independent steps and a `join` depending on all of them; every reply is delayed.
fn fan_in(n: usize, delay_ms: u64) -> (String, String) {
    let workflow = format!(
        "version: 1\nname: bench-fan-in\nmodels: {{default: scripted/replies.yaml}}\n{TOOLS}task: Do the parts in parallel, then join them\nplan: {{max_steps: {}, parallel: true, max_concurrency: {n}}}\n",
        n + 1
    );
    let mut steps: Vec<String> = (0..n)
        .map(|i| {
            format!("{{\"id\": \"p{i}\", \"description\": \"Do part {i}\", \"tool\": \"echo\"}}")
        })
        .collect();
    let all: Vec<String> = (0..n).map(|i| format!("\"p{i}\"")).collect();
    steps.push(format!(
        "{{\"id\": \"join\", \"description\": \"Join the parts\", \"tool\": \"echo\", \"depends_on\": [{}]}}",
        all.join(", ")
    ));
    let delay = format!("\"delay\": \"{delay_ms}ms\"");
    let mut replies = format!(
        "planner:\n  - {{{delay}, \"json\": {{\"steps\": [{}]}}}}\nexecutor:\n",
        steps.join(", ")
    );
    let ids = (0..n).map(|i| format!("p{i}")).chain(["join".to_string()]);
    for id in ids {
        let _ = write!(
            replies,
            "  - {{\"when\": \"Step `{id}`\", {delay}, \"tool_calls\": [{{\"name\": \"echo\", \"arguments\": {{\"text\": \"{id}\"}}}}]}}\n  - {{\"when\": \"Step `{id}`\", {delay}, \"json\": {{\"status\": \"succeeded\", \"result\": \"{id} is done\"}}}}\n"
        );
    }
    let _ = writeln!(
        replies,
        "synthesizer:\n  - {{{delay}, \"text\": \"All parts are joined.\"}}"
    );
    (workflow, replies)
}

/// Drops events after counting them: the engine alone, without the journal.
#[derive(Default)]
struct CountingSink {
    events: AtomicU64,
    llm_calls: AtomicU64,
}

impl EventSink for CountingSink {
    fn record(&self, event: &Event) -> Result<(), SinkFailed> {
        self.events.fetch_add(1, Ordering::Relaxed);
        if matches!(event.kind, EventKind::LlmCall { .. }) {
            self.llm_calls.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// A run's configuration as `pe exec` builds it (fresh models: scripted replies are used up).
fn config(workflow: &Path) -> RunConfig {
    let workflow = Arc::new(pe::check::load_workflow(workflow).expect("the workflow checks"));
    let given = indexmap::IndexMap::new();
    let inputs = pe::run::inputs::resolve(&workflow, &given).expect("inputs resolve");
    let choices =
        pe::model::apply_overrides(&workflow, &[], &workflow.dir).expect("models resolve");
    let models =
        pe::model::connect_all(choices, &engine::roles_used(&workflow)).expect("models connect");
    RunConfig {
        approve: false,
        approver: Arc::new(engine::approval::Headless),
        inputs,
        models,
        parent: None,
        plan_only: false,
        prior: Vec::new(),
        redactor: Redactor::new(Vec::new()),
        run_id: pe::run::id::new_run_id(),
        toolbox: Arc::new(Toolbox::new(&workflow.tools)),
        workflow,
        workflow_sha256: None,
    }
}

/// What one in-process run measured.
struct InProcess {
    wall: Duration,
    llm_calls: u64,
    events: u64,
}

/// Runs the engine in process; with `store`, events go through the journal writer as in
/// `pe exec` and the time includes waiting for the last event to be committed.
fn run_in_process(
    rt: &tokio::runtime::Runtime,
    workflow: &Path,
    store: Option<&Path>,
) -> InProcess {
    let config = config(workflow);
    let counter = Arc::new(CountingSink::default());
    let t0 = Instant::now();
    let state = match store {
        None => rt.block_on(engine::run(config, counter.clone())),
        Some(store) => {
            let journal = Journal::open(store).expect("open the store");
            let writer = Writer::spawn(journal, config.run_id.clone(), Box::new(|_| {}), None);
            let tee = Arc::new(Tee(counter.clone(), writer.handle()));
            let state = rt.block_on(engine::run(config, tee.clone()));
            drop(tee);
            // Dropping the journal closes the store, which checkpoints the WAL into the
            // database, as at the end of `pe exec`.
            drop(writer.finish().expect("the journal is written"));
            state
        }
    }
    .expect("the run starts");
    let wall = t0.elapsed();
    assert_eq!(state.status(), Some(RunStatus::Completed), "{state:?}");
    InProcess {
        wall,
        llm_calls: counter.llm_calls.load(Ordering::Relaxed),
        events: counter.events.load(Ordering::Relaxed),
    }
}

/// Counts events and passes them on to the journal writer.
struct Tee(Arc<CountingSink>, pe::run::writer::WriterHandle);

#[async_trait::async_trait]
impl EventSink for Tee {
    fn record(&self, event: &Event) -> Result<(), SinkFailed> {
        self.0.record(event)?;
        EventSink::record(&self.1, event)
    }

    async fn durable(&self, seq: u64) -> Result<(), SinkFailed> {
        EventSink::durable(&self.1, seq).await
    }
}

/// What one `pe exec` process measured.
struct Process {
    wall: Duration,
    max_rss_kb: u64,
}

/// Runs `pe exec workflow.yaml --json` and reads its peak RSS from `wait4`.
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which also reports its peak RSS"
)]
fn run_binary(case: &Case, store: &Path) -> Process {
    let exe = env!("CARGO_BIN_EXE_pe");
    let t0 = Instant::now();
    let child = Command::new(exe)
        .arg("exec")
        .arg(case.workflow())
        .arg("--json")
        .arg("--store")
        .arg(store)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run pe");
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: wait4 reaps our own child and fills `status` and the whole `usage`.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, usage.as_mut_ptr()) };
    let wall = t0.elapsed();
    assert_eq!(rc, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "pe exec failed with wait status {status}"
    );
    // SAFETY: wait4 succeeded, so `usage` is initialized. Linux reports kilobytes.
    let usage = unsafe { usage.assume_init() };
    Process {
        wall,
        max_rss_kb: u64::try_from(usage.ru_maxrss).unwrap_or(0),
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn min(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(0.0, f64::max)
}

const CHAIN_SIZES: [usize; 3] = [10, 50, 100];

/// Timings (ms) of one chain length.
struct Chain {
    calls: u64,
    engine: Vec<f64>,
    events: u64,
    journaled: Vec<f64>,
    /// Median peak RSS of the `pe exec` runs.
    max_rss_kb: u64,
    process: Vec<f64>,
    steps: usize,
}

fn measure_chain(rt: &tokio::runtime::Runtime, n: usize, runs: usize) -> Chain {
    let (workflow, replies) = chain(n);
    let case = Case::new(&format!("chain-{n}"), &workflow, &replies);
    let store = case.dir.join(".pe");
    // Warm up: page cache, the store's tables, the allocator.
    let _ = run_in_process(rt, &case.workflow(), Some(&store));
    let _ = run_binary(&case, &store);
    let mut chain = Chain {
        calls: 0,
        engine: Vec::new(),
        events: 0,
        journaled: Vec::new(),
        max_rss_kb: 0,
        process: Vec::new(),
        steps: n,
    };
    let mut rss = Vec::new();
    // In-process runs are cheap: take more of them against the shared machine's noise.
    for i in 0..runs * 3 {
        let r = run_in_process(rt, &case.workflow(), None);
        chain.calls = r.llm_calls;
        chain.events = r.events;
        chain.engine.push(r.wall.as_secs_f64() * 1e3);
        let r = run_in_process(rt, &case.workflow(), Some(&store));
        chain.journaled.push(r.wall.as_secs_f64() * 1e3);
        if i % 3 == 0 {
            let p = run_binary(&case, &store);
            chain.process.push(p.wall.as_secs_f64() * 1e3);
            rss.push(p.max_rss_kb as f64);
        }
    }
    chain.max_rss_kb = median(rss) as u64;
    chain
}

/// Costs paid once per run, whatever its length (ms).
struct Fixed {
    append_per_event: f64,
    check_process: f64,
    load: f64,
    store_open_close: f64,
}

fn fixed_costs(steps: usize, runs: usize) -> Fixed {
    let (workflow, replies) = chain(steps);
    let case = Case::new("fixed", &workflow, &replies);
    let exe = env!("CARGO_BIN_EXE_pe");
    let check: Vec<f64> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            let ok = Command::new(exe)
                .arg("check")
                .arg(case.workflow())
                .output()
                .expect("run pe check")
                .status
                .success();
            assert!(ok);
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let load: Vec<f64> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            drop(config(&case.workflow()));
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    // A run's events, recorded once, then appended as the writer does.
    let sink = Arc::new(engine::MemorySink::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let _ = rt.block_on(engine::run(config(&case.workflow()), sink.clone()));
    let recorded = sink.events.lock().expect("events").clone();
    let store = case.dir.join(".pe");
    let mut open_close = Vec::new();
    let mut append = Vec::new();
    for _ in 0..runs {
        let run = pe::run::id::new_run_id();
        let t0 = Instant::now();
        let mut journal = Journal::open(&store).expect("open the store");
        journal.append(&run, &recorded[0]).expect("append");
        drop(journal);
        open_close.push(t0.elapsed().as_secs_f64() * 1e3);
        let run = pe::run::id::new_run_id();
        let mut journal = Journal::open(&store).expect("open the store");
        let t0 = Instant::now();
        for e in &recorded {
            journal.append(&run, e).expect("append");
        }
        append.push(t0.elapsed().as_secs_f64() * 1e3 / recorded.len() as f64);
    }
    Fixed {
        append_per_event: median(append),
        check_process: median(check),
        load: median(load),
        store_open_close: median(open_close),
    }
}

/// `median (min–max)` of timings in ms.
fn spread(xs: &[f64]) -> String {
    format!("{:.1} ({:.0}–{:.0})", median(xs.to_vec()), min(xs), max(xs))
}

fn main() {
    let runs: usize = std::env::var("PE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut table: Vec<[String; 3]> = Vec::new();
    if std::env::var("PE_BENCH_JOURNAL").is_ok() {
        // Only the journal's fixed and per-event costs.
        let f = fixed_costs(50, runs);
        println!(
            "store open + 1 event + close {:.2} ms, append {:.1} µs per event",
            f.store_open_close,
            f.append_per_event * 1e3
        );
        return;
    }
    if let Ok(n) = std::env::var("PE_BENCH_PROFILE") {
        // `PE_BENCH_PROFILE=2000 perf record ...`: only the engine, over and over.
        let steps = std::env::var("PE_BENCH_PROFILE_STEPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50);
        let (workflow, replies) = chain(steps);
        let case = Case::new("profile", &workflow, &replies);
        let count: usize = n.parse().unwrap_or(1000);
        let mut times = Vec::new();
        for _ in 0..count {
            let c = config(&case.workflow());
            let t0 = Instant::now();
            let _ = rt.block_on(engine::run(c, Arc::new(CountingSink::default())));
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        println!("{count} engine runs of {steps} steps: {}", spread(&times));
        return;
    }

    // 1. Overhead per call: chains of several lengths, so the fixed cost of a run (process
    // start, loading, opening and closing the store) and the cost of each call separate.
    let mut rows: Vec<Chain> = Vec::new();
    for n in CHAIN_SIZES {
        rows.push(measure_chain(&rt, n, runs));
    }
    println!(
        "chains of n steps (planner + n × (tool call turn + final turn) + synthesizer); medians of {runs} runs, ms:"
    );
    println!(
        "  {:>5} {:>6} {:>7} {:>12} {:>12} {:>12} {:>10}",
        "steps", "calls", "events", "engine", "+journal", "pe exec", "peak RSS"
    );
    for r in &rows {
        println!(
            "  {:>5} {:>6} {:>7} {:>12} {:>12} {:>12} {:>7.1} MB",
            r.steps,
            r.calls,
            r.events,
            spread(&r.engine),
            spread(&r.journaled),
            spread(&r.process),
            r.max_rss_kb as f64 / 1024.0,
        );
    }
    let (first, last) = (&rows[0], &rows[rows.len() - 1]);
    let calls = (last.calls - first.calls) as f64;
    let slope =
        |f: fn(&Chain) -> &Vec<f64>| (median(f(last).clone()) - median(f(first).clone())) / calls;
    let marginal_engine = slope(|c| &c.engine);
    let marginal_journal = slope(|c| &c.journaled);
    let marginal_process = slope(|c| &c.process);
    // The fastest runs are the least disturbed by other work on the machine.
    let slope_min = |f: fn(&Chain) -> &Vec<f64>| (min(f(last)) - min(f(first))) / calls;
    println!(
        "  per call, marginal between the fastest runs: engine {:.1} µs, engine + journal {:.1} µs, pe exec {:.1} µs",
        slope_min(|c| &c.engine) * 1e3,
        slope_min(|c| &c.journaled) * 1e3,
        slope_min(|c| &c.process) * 1e3
    );
    let fifty = rows.iter().find(|r| r.steps == 50).unwrap_or(last);
    let amortized = |xs: &Vec<f64>| median(xs.clone()) / fifty.calls as f64;
    println!(
        "  per call, marginal ({} → {} steps): engine {:.1} µs, engine + journal {:.1} µs, pe exec {:.1} µs",
        first.steps,
        last.steps,
        marginal_engine * 1e3,
        marginal_journal * 1e3,
        marginal_process * 1e3
    );
    println!(
        "  per call, whole {}-step run / {} calls: engine {:.1} µs, engine + journal {:.1} µs, pe exec {:.1} µs",
        fifty.steps,
        fifty.calls,
        amortized(&fifty.engine) * 1e3,
        amortized(&fifty.journaled) * 1e3,
        amortized(&fifty.process) * 1e3
    );
    let fixed = fixed_costs(fifty.steps, runs);
    println!(
        "  fixed per run: pe check process {:.2} ms, load workflow + replies {:.2} ms, store open + 1 event + close {:.2} ms, journal append {:.1} µs per event",
        fixed.check_process,
        fixed.load,
        fixed.store_open_close,
        fixed.append_per_event * 1e3
    );
    table.push([
        format!(
            "overhead per model call, marginal ({}→{} steps), in process, engine + journal",
            first.steps, last.steps
        ),
        "< 0.1 ms".into(),
        format!("{:.3} ms", marginal_journal),
    ]);
    table.push([
        "the same, engine only (events dropped)".into(),
        "-".into(),
        format!("{:.3} ms", marginal_engine),
    ]);
    table.push([
        "the same, `pe exec` process".into(),
        "-".into(),
        format!("{:.3} ms", marginal_process),
    ]);
    table.push([
        format!(
            "whole {}-step run ÷ {} calls, `pe exec` process (start-up, store open/close included)",
            fifty.steps, fifty.calls
        ),
        "-".into(),
        format!("{:.3} ms", amortized(&fifty.process)),
    ]);
    table.push([
        "journal append, one committed transaction per event (WAL, synchronous=NORMAL)".into(),
        "-".into(),
        format!("{:.3} ms", fixed.append_per_event),
    ]);

    // 2. Peak memory.
    let rss_kb = fifty.max_rss_kb;
    table.push([
        format!(
            "peak memory (max RSS), `pe exec`, {}-step plan",
            fifty.steps
        ),
        "< 20 MB".into(),
        format!("{:.1} MB", rss_kb as f64 / 1024.0),
    ]);

    // 3. Parallel scheduling.
    let (workflow, replies) = fan_in(PARALLEL_STEPS, DELAY_MS);
    let case = Case::new("fan-in", &workflow, &replies);
    let store = case.dir.join(".pe");
    let bound = (6 * DELAY_MS) as f64;
    let parallel_runs = runs.clamp(3, 7);
    let mut in_proc = Vec::new();
    let mut proc = Vec::new();
    for _ in 0..parallel_runs {
        let r = run_in_process(&rt, &case.workflow(), Some(&store));
        assert_eq!(r.llm_calls, 1 + 2 * (PARALLEL_STEPS as u64 + 1) + 1);
        in_proc.push(r.wall.as_secs_f64() * 1e3);
        proc.push(run_binary(&case, &store).wall.as_secs_f64() * 1e3);
    }
    let ip = median(in_proc.clone());
    let pp = median(proc.clone());
    println!(
        "{PARALLEL_STEPS} parallel steps + join, {DELAY_MS} ms per reply: bound {bound:.0} ms; in process median {ip:.1} ms (max {:.1}) = {:.2}% over; pe exec process median {pp:.1} ms (max {:.1}) = {:.2}% over",
        max(&in_proc),
        (ip / bound - 1.0) * 100.0,
        max(&proc),
        (pp / bound - 1.0) * 100.0,
    );
    table.push([
        format!("{PARALLEL_STEPS} parallel steps + join at {DELAY_MS} ms/reply, in process, vs bound {bound:.0} ms"),
        "within 5%".into(),
        format!("{ip:.0} ms (+{:.1}%)", (ip / bound - 1.0) * 100.0),
    ]);
    table.push([
        "the same, pe exec process (start-up included)".into(),
        "within 5%".into(),
        format!("{pp:.0} ms (+{:.1}%)", (pp / bound - 1.0) * 100.0),
    ]);

    println!();
    println!("| what | target | measured |");
    println!("| --- | --- | --- |");
    for [what, target, measured] in table {
        println!("| {what} | {target} | {measured} |");
    }
}
