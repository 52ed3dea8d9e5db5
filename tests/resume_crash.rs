//! `pe resume` after `kill -9`: a run killed at every point of its journal — after the
//! planner, mid-step, between steps, during replanning, and again while resuming — ends
//! like the uninterrupted run, and no step that had succeeded runs again (the tool appends
//! each invocation to `calls.log`).
//!
//! Exact kill points come from the hidden `PE_TEST_CRASH_AFTER_EVENT=N` hook: the journal
//! writer sends itself SIGKILL right after event N is committed, while the engine may be
//! ahead of it — as in a real crash. One more test kills from outside, while a tool blocks.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command as Std, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

const WORKFLOW: &str = r#"version: 1
name: crashy
task: Do a, b and c.
models: {default: scripted/replies.yaml}
tools:
  work:
    description: Do one piece of work.
    parameters: {type: object, properties: {step: {type: string}}, required: [step]}
    # Logs each invocation; the work of step b always fails; `gate` may block until a
    # file named `open` exists (the outside-kill test).
    command: [sh, -c, 'printf "%s\n" "$0" >> calls.log; printf "%s %s\n" "$0" "$PE_IDEMPOTENCY_KEY" >> keys.log; while [ -e gate ] && [ ! -e open ]; do sleep 0.02; done; [ "$0" != b ] || { echo "b is broken" >&2; exit 3; }; printf "did %s" "$0"', '{{ args.step }}']
    on_error: fail_step
execute: {context: none}
replan: {when: on_failure, on_step_failure: {retries: 0, then: replan}, max_replans: 1}
"#;

/// Every reply repeats and is chosen by what the prompt contains, so a resumed process
/// (which starts the replies afresh) gets the same answers for the same questions.
const REPLIES: &str = r#"planner:
  - {repeat: true, json: {steps: [{id: a, description: Do a, tool: work}, {id: b, description: Do b, tool: work, depends_on: [a]}, {id: c, description: Do c, tool: work, depends_on: [b]}]}}
executor:
  - {when: 'did a', repeat: true, json: {status: succeeded, result: a done}}
  - {when: 'did fix', repeat: true, json: {status: succeeded, result: fix done}}
  - {when: 'did c', repeat: true, json: {status: succeeded, result: c done}}
  - {when: 'Step `a`', repeat: true, tool_calls: [{name: work, arguments: {step: a}}]}
  - {when: 'Step `b`', repeat: true, tool_calls: [{name: work, arguments: {step: b}}]}
  - {when: 'Step `fix`', repeat: true, tool_calls: [{name: work, arguments: {step: fix}}]}
  - {when: 'Step `c`', repeat: true, tool_calls: [{name: work, arguments: {step: c}}]}
replanner:
  - {when: 'Step `b` failed', repeat: true, json: {decision: revise, reason: fix b first, steps: [{id: fix, description: Fix b, tool: work}, {id: c, description: Do c, tool: work, depends_on: [fix]}]}}
synthesizer:
  - {repeat: true, text: 'a, fix and c done; b failed'}
"#;

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("workflow.yaml"), WORKFLOW).unwrap();
        std::fs::write(d.path().join("replies.yaml"), REPLIES).unwrap();
        Dir(d)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn pe(&self) -> Command {
        let mut c = Command::cargo_bin("pe").unwrap();
        c.current_dir(self.path())
            .env_remove("PE_HOME")
            .env("NO_COLOR", "1");
        c
    }

    fn journal(&self) -> Vec<Value> {
        let out = self
            .pe()
            .args(["show", "latest", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// `pe exec` or `pe resume`, crashing after event `crash` if given; the JSON result
    /// when it was not killed.
    fn run(&self, args: &[&str], crash: Option<usize>) -> Option<Value> {
        let mut cmd = self.pe();
        cmd.args(args);
        if let Some(n) = crash {
            cmd.env("PE_TEST_CRASH_AFTER_EVENT", n.to_string());
        }
        let out = cmd.output().unwrap();
        if crash.is_some() && out.status.signal() == Some(9) {
            return None;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?} crash={crash:?}: {stderr}"
        );
        Some(serde_json::from_slice(&out.stdout).unwrap())
    }
}

/// Status, output, and each step's status and result: what must not depend on crashes.
fn outcome(doc: &Value) -> Value {
    let steps: Vec<Value> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| serde_json::json!([s["id"], s["status"], s["result"], s["attempts"]]))
        .collect();
    serde_json::json!({"status": doc["status"], "output": doc["output"], "steps": steps, "replans": doc["replans"]})
}

fn succeeded_steps(journal: &[Value]) -> Vec<String> {
    journal
        .iter()
        .filter(|e| e["type"] == "step_finished" && e["status"] == "succeeded")
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect()
}

fn count(calls: &[String], step: &str) -> usize {
    calls.iter().filter(|c| *c == step).count()
}

fn label(e: &Value) -> String {
    let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
    match s("type").as_str() {
        "llm_call" => format!("llm_call:{}", s("role")),
        "step_started" | "step_finished" | "tool_started" | "tool_call" => {
            format!("{}:{}{}", s("type"), s("step"), s("status"))
        }
        t => t.to_string(),
    }
}

#[test]
fn a_run_killed_at_any_event_resumes_to_the_same_outcome_without_rerunning_succeeded_steps() {
    let reference = Dir::new();
    let want = outcome(
        &reference
            .run(&["exec", "workflow.yaml", "--json"], None)
            .unwrap(),
    );
    assert_eq!(
        want,
        serde_json::json!({
            "status": "completed",
            "output": "a, fix and c done; b failed",
            "replans": 1,
            "steps": [["a", "succeeded", "a done", 1], ["b", "failed", null, 1], ["fix", "succeeded", "fix done", 1], ["c", "succeeded", "c done", 1]],
        })
    );
    assert_eq!(reference.calls(), ["a", "b", "fix", "c"]);
    let events = reference.journal();
    let labels: Vec<String> = events.iter().map(label).collect();
    // The kill points include every kind of moment the issue names.
    for moment in [
        "plan_created",             // after the planner
        "tool_call:a",              // mid-step
        "step_finished:asucceeded", // between steps
        "llm_call:replanner",       // during replanning
        "replanned",
    ] {
        assert!(labels.iter().any(|l| l == moment), "{moment} in {labels:?}");
    }

    let total = events.len();
    for kill_at in 1..total {
        let dir = Dir::new();
        assert!(
            dir.run(&["exec", "workflow.yaml", "--json"], Some(kill_at))
                .is_none()
        );
        let journal = dir.journal();
        assert_eq!(journal.len(), kill_at, "the journal ends at the kill point");
        let done_before = succeeded_steps(&journal);
        let calls_before = dir.calls();

        // Kill the resume too, two events in, then resume again.
        let second_kill = kill_at + 2;
        let mut result = dir.run(&["resume", "latest", "--json"], Some(second_kill));
        if result.is_none() {
            result = dir.run(&["resume", "latest", "--json"], None);
        }
        let result = result.unwrap();
        let at = &labels[kill_at - 1];
        assert_eq!(
            outcome(&result),
            want,
            "killed after event {kill_at} ({at})"
        );

        let calls = dir.calls();
        for step in &done_before {
            assert_eq!(
                count(&calls, step),
                count(&calls_before, step),
                "killed after event {kill_at} ({at}): step `{step}` had succeeded and ran again; calls {calls:?}"
            );
        }
        for step in ["a", "b", "fix", "c"] {
            assert!(count(&calls, step) >= 1, "{step} never ran: {calls:?}");
        }
        let journal = dir.journal();
        for step in &done_before {
            let restarts = journal
                .iter()
                .skip(kill_at)
                .filter(|e| e["type"] == "step_started" && e["step"] == step.as_str())
                .count();
            assert_eq!(
                restarts, 0,
                "killed after event {kill_at} ({at}): `{step}` started again"
            );
        }
        let seqs: Vec<u64> = journal.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (1..=journal.len() as u64).collect::<Vec<_>>());
        assert_eq!(journal.last().unwrap()["type"], "run_finished");
    }
}

#[test]
fn a_run_killed_from_outside_while_a_tool_blocks_resumes_and_retries_that_step() {
    let dir = Dir::new();
    std::fs::write(dir.path().join("gate"), "").unwrap();
    let bin = assert_cmd::cargo::cargo_bin("pe");
    let mut child = Std::new(&bin)
        .current_dir(dir.path())
        .env_remove("PE_HOME")
        .args(["exec", "workflow.yaml", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until step a's tool is blocked on the gate.
    let t0 = Instant::now();
    while dir.calls() != ["a"] {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the tool never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9));
    let journal = dir.journal();
    let labels: Vec<String> = journal.iter().map(label).collect();
    // The tool that was running is in the journal as started, not ended: its side effects
    // may have happened.
    assert_eq!(
        labels[labels.len() - 3..],
        [
            "step_started:a".to_string(),
            "llm_call:executor".to_string(),
            "tool_started:a".to_string()
        ]
    );

    std::fs::write(dir.path().join("open"), "").unwrap();
    let out = dir
        .pe()
        .args(["resume", "latest", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["status"], "completed");
    // a ran twice (the killed attempt, then the retry); every other step once.
    assert_eq!(dir.calls(), ["a", "a", "b", "fix", "c"]);
    let resumed: Vec<Value> = dir
        .journal()
        .into_iter()
        .filter(|e| e["type"] == "run_resumed")
        .collect();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0]["retried"], serde_json::json!(["a"]));
    // The repeated call of a carried the same idempotency key as the killed one, so a
    // side-effecting script can tell it is a repeat; other calls have keys of their own.
    let keys = std::fs::read_to_string(dir.path().join("keys.log")).unwrap();
    let keys: Vec<(&str, &str)> = keys.lines().map(|l| l.split_once(' ').unwrap()).collect();
    assert_eq!(keys.len(), 5);
    assert_eq!(keys[0].0, "a");
    assert_eq!(keys[0], keys[1]);
    assert!(
        keys[1].1.starts_with("pe-") && keys[1].1.len() == 35,
        "{keys:?}"
    );
    let distinct: std::collections::HashSet<&str> = keys[1..].iter().map(|k| k.1).collect();
    assert_eq!(distinct.len(), 4);
}

#[test]
fn resume_refuses_a_finished_run_and_a_changed_workflow_unless_forced() {
    let dir = Dir::new();
    dir.run(&["exec", "workflow.yaml", "--json"], None).unwrap();
    let out = dir.pe().args(["resume", "latest"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let id = dir.journal()[0]["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: run {id} already ended completed; only an interrupted run or one awaiting approval can be resumed\n"
        )
    );

    let dir = Dir::new();
    assert!(
        dir.run(&["exec", "workflow.yaml", "--json"], Some(3))
            .is_none()
    );
    let id = dir.journal()[0]["run_id"].as_str().unwrap().to_string();
    let changed = WORKFLOW.replace("task: Do a, b and c.", "task: Do a, b and c.  ");
    std::fs::write(dir.path().join("workflow.yaml"), changed).unwrap();
    let out = dir.pe().args(["resume", &id[..12]]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: workflow.yaml changed since run {id} started; resume with --force to continue under the changed file\n"
        )
    );
    let out = dir
        .pe()
        .args(["resume", &id, "--force", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}
