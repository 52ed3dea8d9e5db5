//! `pe check` speed: a large generated workflow (~5,000 lines, 200 tools) checked in process,
//! and process start-up to exit for a small file. Run with `cargo bench --bench check`.
//! Figures are medians over many runs; the README quotes them with the machine they ran on.
//!
//! Then hostile files (`tests/adversarial_support/shapes.rs`: YAML bombs and about 1 MB in
//! the shapes that cost the checker most): the `pe check` process's wall time, CPU time
//! (user + system) and peak RSS (GNU time's "maximum resident set size": it forks pe from a
//! small process, so the figure is pe's own), medians of 5 runs. Limits: under a second and
//! 100 MB each.

#[path = "../tests/adversarial_support/shapes.rs"]
mod shapes;

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

fn large_workflow(tools: usize) -> String {
    let mut y = String::from(
        "version: 1\nname: big\ndescription: generated\ninputs:\n  version: {type: string, default: 1.0.0}\ntask: 'Release {{ inputs.version }}'\ntools:\n",
    );
    for i in 0..tools {
        let _ = write!(
            y,
            "  tool_{i}:\n    description: Tool number {i} does one specific thing to the release.\n    parameters:\n      type: object\n      properties:\n        version: {{type: string, description: Version to act on}}\n        target: {{type: string, enum: [staging, production]}}\n        force: {{type: boolean, description: Skip confirmations}}\n        retries: {{type: integer, minimum: 0, maximum: 5}}\n        note: {{type: string, maxLength: 200}}\n      required: [version, target]\n    command:\n      - ./scripts/tool_{i}.sh\n      - '--version={{{{ args.version }}}}'\n      - '--target={{{{ args.target }}}}'\n      - '--service={{{{ inputs.version }}}}'\n    env:\n      RELEASE: '{{{{ args.version }}}}'\n      TARGET: '{{{{ args.target }}}}'\n      LOG_LEVEL: info\n    cwd: scripts\n    max_output_bytes: 65536\n    timeout: 2m\n    on_error: fail_step\n"
        );
    }
    y.push_str("plan:\n  max_steps: 100\n  parallel: true\n  steps:\n");
    for i in 0..100 {
        let dep = if i == 0 {
            String::new()
        } else {
            format!(", depends_on: [s{}]", i - 1)
        };
        let _ = writeln!(
            y,
            "    - {{id: s{i}, description: Step {i} of the release, tool: tool_{i}{dep}}}"
        );
    }
    y.push_str("budget:\n  max_llm_calls: 400\n");
    y
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    let text = large_workflow(200);
    let lines = text.lines().count();
    let source = pe::source::Source::new("big.yaml".into(), "big.yaml".into(), text.clone());
    let checked = pe::check::check_source(&source);
    assert!(
        checked.diagnostics.is_empty(),
        "generated workflow must be valid: {:?}",
        checked.diagnostics.first()
    );
    let runs: Vec<Duration> = (0..30)
        .map(|_| {
            let t = Instant::now();
            let c = pe::check::check_source(&source);
            assert!(c.workflow.is_some());
            t.elapsed()
        })
        .collect();
    println!(
        "check, in process: {lines} lines, 200 tools: median {:.2} ms over 30 runs",
        median(runs).as_secs_f64() * 1e3
    );

    let dir = std::env::temp_dir().join(format!("pe-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let big = dir.join("big.yaml");
    let _ = std::fs::write(&big, &text);
    let small = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/workflows/research-compare.yaml"
    );
    let exe = env!("CARGO_BIN_EXE_pe");
    for (label, file) in [
        ("pe check (process) small file", small.to_string()),
        ("pe check (process) large file", big.display().to_string()),
    ] {
        let runs: Vec<Duration> = (0..30)
            .map(|_| {
                let t = Instant::now();
                let status = Command::new(exe)
                    .args(["check", &file])
                    .output()
                    .expect("run pe")
                    .status;
                assert!(status.success());
                t.elapsed()
            })
            .collect();
        println!(
            "{label}: start-up to exit median {:.2} ms over 30 runs",
            median(runs).as_secs_f64() * 1e3
        );
    }
    hostile(&dir, exe);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Wall time, CPU time (user + system) and peak RSS (KB) of `pe check FILE`, under GNU time.
fn timed_check(
    exe: &str,
    file: &std::path::Path,
    report: &std::path::Path,
) -> (Duration, Duration, u64) {
    let t = Instant::now();
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%M %U %S", "-o"])
        .arg(report)
        .args([exe, "check", "--format", "json"])
        .arg(file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run /usr/bin/time");
    let elapsed = t.elapsed();
    assert!(
        matches!(status.code(), Some(0 | 3)),
        "{}: {status}",
        file.display()
    );
    let text = std::fs::read_to_string(report).unwrap_or_default();
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
    (elapsed, Duration::from_secs_f64(user + system), kb as u64)
}

fn hostile(dir: &std::path::Path, exe: &str) {
    if !std::path::Path::new("/usr/bin/time").exists() {
        println!("hostile files: skipped (no /usr/bin/time to measure peak memory)");
        return;
    }
    let mut files: Vec<(String, String)> = vec![(
        "YAML bomb, 9 levels of 10 aliases".into(),
        shapes::billion_laughs(9),
    )];
    files.extend(
        shapes::hostile_shapes()
            .into_iter()
            .map(|(name, text)| (name.to_string(), text)),
    );
    let file = dir.join("hostile.yaml");
    let report = dir.join("time.txt");
    println!("hostile files, pe check process, medians of 5 runs:");
    for (name, text) in files {
        let _ = std::fs::write(&file, &text);
        let mut times = Vec::new();
        let mut cpus = Vec::new();
        let mut peaks = Vec::new();
        for _ in 0..5 {
            let (t, cpu, kb) = timed_check(exe, &file, &report);
            times.push(t);
            cpus.push(cpu);
            peaks.push(kb);
        }
        peaks.sort_unstable();
        println!(
            "  {name} ({} KB): {:.0} ms wall, {:.0} ms CPU, {:.1} MB",
            text.len() / 1000,
            median(times).as_secs_f64() * 1e3,
            median(cpus).as_secs_f64() * 1e3,
            peaks[peaks.len() / 2] as f64 / 1024.0
        );
    }
}
