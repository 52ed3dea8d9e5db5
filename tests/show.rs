//! `pe show RUN` tells the story of a run through the binary: the task, each tool call's
//! arguments and output, each step's result or error, the replanner's decision and reason,
//! the ending and the final answer; no cost when no model declared a price.

use assert_cmd::Command;

fn pe(store: &std::path::Path) -> Command {
    let mut cmd = Command::cargo_bin("pe").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env("PE_HOME", store);
    cmd
}

/// Replaces what differs between runs: times of day, the run id, durations.
fn normalized(text: &str) -> String {
    let clock = regex_lite::Regex::new(r"(?m)^\d\d:\d\d:\d\d\.\d{3}").unwrap();
    let id = regex_lite::Regex::new(r"\d{8}-\d{6}-\d{3}-[0-9a-f]{4}").unwrap();
    let took = regex_lite::Regex::new(r"\b\d+(\.\d)?(ms|s)\b").unwrap();
    let text = clock.replace_all(text, "HH:MM:SS.mmm");
    let text = id.replace_all(&text, "RUN");
    took.replace_all(&text, "T").into_owned()
}

#[test]
fn show_tells_what_each_step_and_tool_did_and_the_answer() {
    let store = tempfile::tempdir().unwrap();
    let out = pe(store.path())
        .args([
            "exec",
            "workflows/release-checklist.yaml",
            "--input",
            "version=1.4.2",
            "--model",
            "scripted/workflows/replies/release-1.4.2.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let shown = pe(store.path()).args(["show", "latest"]).output().unwrap();
    assert_eq!(shown.status.code(), Some(0));
    let text = normalized(&String::from_utf8(shown.stdout).unwrap());
    let model = "scripted/workflows/replies/release-1.4.2.yaml";
    let expected = format!(
        "\
HH:MM:SS.mmm run RUN · release-checklist
             task: Release api version 1.4.2 to production: run CI, run the smoke test, deploy, then verify the deployment. Stop and abort if verification fails after deploying.
HH:MM:SS.mmm   planner call · {model} · 354+129 tokens · T
HH:MM:SS.mmm plan: 4 steps: ci, smoke, deploy, verify
HH:MM:SS.mmm ▶ ci
HH:MM:SS.mmm   executor call [ci] · {model} · 162+13 tokens · T
HH:MM:SS.mmm   ci · run_ci {{\"version\":\"1.4.2\"}} → ok (T): CI passed for api 1.4.2: build ok, 412 tests, 0 failures
HH:MM:SS.mmm   executor call [ci] · {model} · 177+19 tokens · T
HH:MM:SS.mmm ✓ ci (T): CI passed for 1.4.2: 412 tests, 0 failures
"
    );
    assert_eq!(
        text.lines().take(9).collect::<Vec<_>>().join("\n") + "\n",
        expected
    );
    let tail: Vec<&str> = text.lines().rev().take(4).collect();
    assert_eq!(
        tail,
        vec![
            "Released api 1.4.2 to production: CI green (412 tests), smoke test 12/12, 6/6 instances healthy, error rate 0.1% and p99 180 ms within the SLO.",
            "answer:",
            "",
            "HH:MM:SS.mmm completed in T · 10 model calls · 2331 tokens",
        ]
    );
    assert!(
        !text.contains('$'),
        "no model declared a price, so no cost is shown:\n{text}"
    );
}
