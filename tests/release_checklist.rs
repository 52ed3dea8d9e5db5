//! The release checklist's three endings, offline on scripted replies, through the binary:
//! status, exit code, final step states and the exact journal of each run.

use assert_cmd::Command;
use serde_json::Value;

struct Run {
    code: Option<i32>,
    result: Value,
    journal: Vec<Value>,
}

fn run(version: &str) -> Run {
    let store = tempfile::tempdir().expect("store");
    let root = env!("CARGO_MANIFEST_DIR");
    let replies = format!("scripted/workflows/replies/release-{version}.yaml");
    let out = Command::cargo_bin("pe")
        .expect("pe")
        .current_dir(root)
        .args([
            "exec",
            "workflows/release-checklist.yaml",
            "--json",
            "--input",
        ])
        .arg(format!("version={version}"))
        .args(["--model", &replies, "--store"])
        .arg(store.path())
        .output()
        .expect("run pe");
    let result: Value = serde_json::from_slice(&out.stdout).expect("one JSON document on stdout");
    let show = Command::cargo_bin("pe")
        .expect("pe")
        .args(["show", "latest", "--json", "--store"])
        .arg(store.path())
        .output()
        .expect("pe show");
    assert_eq!(show.status.code(), Some(0));
    let journal = String::from_utf8(show.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON event"))
        .collect();
    Run {
        code: out.status.code(),
        result,
        journal,
    }
}

/// The journal in short form: event type, plus role, tool and outcome, step and status.
fn timeline(journal: &[Value]) -> Vec<String> {
    journal
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            match s("type").as_str() {
                "llm_call" => format!("llm_call:{}", s("role")),
                "tool_started" => format!("tool_started:{}", s("name")),
                "tool_call" => format!("tool_call:{}:{}", s("name"), s("outcome")),
                "step_started" => format!("step_started:{}", s("step")),
                "step_finished" if e.get("then").is_some() => {
                    format!("step_finished:{}:{}:{}", s("step"), s("status"), s("then"))
                }
                "step_finished" => format!("step_finished:{}:{}", s("step"), s("status")),
                "replanned" => format!("replanned:{}", s("decision")),
                "run_finished" => format!("run_finished:{}", s("status")),
                other => other.to_string(),
            }
        })
        .collect()
}

fn steps(result: &Value) -> Vec<(String, String)> {
    result["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap_or_default().into(),
                s["status"].as_str().unwrap_or_default().into(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn gate(step: &str, tool: &str) -> Vec<String> {
    vec![
        format!("step_started:{step}"),
        "llm_call:executor".into(),
        format!("tool_started:{tool}"),
        format!("tool_call:{tool}:ok"),
        "llm_call:executor".into(),
        format!("step_finished:{step}:succeeded"),
    ]
}

fn start() -> Vec<String> {
    [
        "run_started",
        "llm_call:planner",
        "plan_created",
        "plan_approved",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn version_1_4_2_passes_every_gate() {
    let r = run("1.4.2");
    assert_eq!(r.code, Some(0));
    assert_eq!(r.result["status"], "completed");
    assert_eq!(
        steps(&r.result),
        pairs(&[
            ("ci", "succeeded"),
            ("smoke", "succeeded"),
            ("deploy", "succeeded"),
            ("verify", "succeeded")
        ])
    );
    let mut want = start();
    for (s, t) in [
        ("ci", "run_ci"),
        ("smoke", "smoke_test"),
        ("deploy", "deploy"),
        ("verify", "verify"),
    ] {
        want.extend(gate(s, t));
    }
    want.extend([
        "llm_call:synthesizer".into(),
        "run_finished:completed".into(),
    ]);
    assert_eq!(timeline(&r.journal), want);
    assert_eq!(
        r.result["output"],
        "Released api 1.4.2 to production: CI green (412 tests), smoke test 12/12, 6/6 instances healthy, error rate 0.1% and p99 180 ms within the SLO."
    );
}

#[test]
fn version_1_4_3_fails_smoke_then_a_fix_step_is_inserted_and_the_release_completes() {
    let r = run("1.4.3");
    assert_eq!(r.code, Some(0));
    assert_eq!(r.result["status"], "completed");
    assert_eq!(
        steps(&r.result),
        pairs(&[
            ("ci", "succeeded"),
            ("smoke", "failed"),
            ("fix", "succeeded"),
            ("smoke_retest", "succeeded"),
            ("deploy", "succeeded"),
            ("verify", "succeeded"),
        ])
    );
    let mut want = start();
    want.extend(gate("ci", "run_ci"));
    want.extend(
        [
            "step_started:smoke",
            "llm_call:executor",
            "tool_started:smoke_test",
            "tool_call:smoke_test:error",
            "step_finished:smoke:failed:replan",
            "llm_call:replanner",
            "replanned:revise",
        ]
        .map(String::from),
    );
    for (s, t) in [
        ("fix", "apply_fix"),
        ("smoke_retest", "smoke_test"),
        ("deploy", "deploy"),
        ("verify", "verify"),
    ] {
        want.extend(gate(s, t));
    }
    want.extend([
        "llm_call:synthesizer".into(),
        "run_finished:completed".into(),
    ]);
    assert_eq!(timeline(&r.journal), want);
    let revised = r
        .journal
        .iter()
        .find(|e| e["type"] == "replanned")
        .expect("replanned event");
    assert_eq!(revised["trigger"], "on_failure");
}

#[test]
fn version_1_5_0_fails_verification_and_the_run_aborts() {
    let r = run("1.5.0");
    assert_eq!(r.code, Some(1));
    assert_eq!(r.result["status"], "aborted");
    assert_eq!(
        r.result["reason"],
        "1.5.0 fails verification in production (error rate 7.2% against a 1% SLO); stop the release and roll back"
    );
    assert_eq!(
        steps(&r.result),
        pairs(&[
            ("ci", "succeeded"),
            ("smoke", "succeeded"),
            ("deploy", "succeeded"),
            ("verify", "failed")
        ])
    );
    let mut want = start();
    for (s, t) in [
        ("ci", "run_ci"),
        ("smoke", "smoke_test"),
        ("deploy", "deploy"),
    ] {
        want.extend(gate(s, t));
    }
    want.extend(
        [
            "step_started:verify",
            "llm_call:executor",
            "tool_started:verify",
            "tool_call:verify:error",
            "step_finished:verify:failed:replan",
            "llm_call:replanner",
            "replanned:abort",
            "run_finished:aborted",
        ]
        .map(String::from),
    );
    assert_eq!(timeline(&r.journal), want);
}
