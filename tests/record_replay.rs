//! `pe exec --record` / `--replay`: a recorded run replays to the same result with no
//! model and no tool behind it, and a workflow that drifted fails naming the first
//! differing request. A test case's `cassette:` replays the same way under `pe test`.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn pe(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("pe").unwrap();
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env("PE_HOME", dir.join("store"));
    c
}

fn result(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_recorded_run_replays_offline_and_drift_names_the_first_differing_request() {
    let tmp = tempfile::tempdir().unwrap();
    let cassette = tmp.path().join("release.jsonl");
    let cassette_arg = cassette.to_str().unwrap();
    let recorded = pe(tmp.path())
        .args([
            "exec",
            "workflows/release-checklist.yaml",
            "--json",
            "-i",
            "version=1.4.3",
        ])
        .args([
            "--model",
            "scripted/workflows/replies/release-1.4.3.yaml",
            "--record",
            cassette_arg,
        ])
        .output()
        .unwrap();
    assert_eq!(recorded.status.code(), Some(0));
    let text = std::fs::read_to_string(&cassette).unwrap();
    let kinds: Vec<String> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            match v["kind"].as_str().unwrap() {
                "model" => format!("model:{}", v["role"].as_str().unwrap()),
                _ => format!("tool:{}", v["tool"].as_str().unwrap()),
            }
        })
        .collect();
    assert_eq!(kinds.len(), 20);
    assert_eq!(
        &kinds[..4],
        [
            "model:planner",
            "model:executor",
            "tool:run_ci",
            "model:executor"
        ]
    );

    // No --model: the workflow's default (the embedded local model) is never loaded.
    let replayed = pe(tmp.path())
        .args([
            "exec",
            "workflows/release-checklist.yaml",
            "--json",
            "-i",
            "version=1.4.3",
        ])
        .args(["--replay", cassette_arg])
        .output()
        .unwrap();
    assert_eq!(
        replayed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    let (a, b) = (result(&recorded), result(&replayed));
    for key in ["status", "output", "replans", "tool_calls", "usage"] {
        assert_eq!(a[key], b[key], "{key}");
    }

    let drifted = pe(tmp.path())
        .args([
            "exec",
            "workflows/release-checklist.yaml",
            "--json",
            "-i",
            "version=1.4.2",
        ])
        .args(["--replay", cassette_arg])
        .output()
        .unwrap();
    assert_eq!(drifted.status.code(), Some(1));
    assert_eq!(result(&drifted)["status"], "failed");
    assert_eq!(
        String::from_utf8_lossy(&drifted.stderr)
            .lines()
            .last()
            .unwrap(),
        format!(
            "error: the run drifted from the cassette {cassette_arg}: the planner call differs from recorded exchange #1: \
             at /messages/0/content: recorded \"…ase api version 1.4.3 to production: run CI, run t…\", \
             now \"…ase api version 1.4.2 to production: run CI, run t…\""
        )
    );
}

#[test]
fn pe_test_replays_a_cassette_case() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(root.join("workflows/release-checklist.yaml")).unwrap();
    let head = &source[..source.find("\ntests:").unwrap()];
    let recorded = pe(tmp.path())
        .args([
            "exec",
            "workflows/release-checklist.yaml",
            "-i",
            "version=1.5.0",
        ])
        .args([
            "--model",
            "scripted/workflows/replies/release-1.5.0.yaml",
            "--record",
        ])
        .arg(tmp.path().join("abort.jsonl"))
        .output()
        .unwrap();
    assert_eq!(recorded.status.code(), Some(1));
    let workflow = format!(
        "{head}\ntests:\n  - name: replayed abort\n    inputs: {{version: 1.5.0}}\n    cassette: abort.jsonl\n    expect: {{status: aborted, steps: {{verify: failed}}, tool_calls: {{deploy: 1, rollback: 0}}}}\n"
    );
    std::fs::write(tmp.path().join("release.yaml"), workflow).unwrap();
    let out = pe(tmp.path())
        .arg("test")
        .arg(tmp.path().join("release.yaml"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "test release-checklist › replayed abort ... ok\n\n1 passed, 0 failed\n"
    );
    assert_eq!(out.status.code(), Some(0));
}
