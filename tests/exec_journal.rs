//! The run journal: the `--json` result is the fold of the journal, torn writes and killed
//! processes leave a readable journal, secrets never reach it.

mod exec_support;

use std::time::{Duration, Instant};

use exec_support::Case;
use pe::run::journal::Journal;
use pe::run::state::RunState;

const WORKFLOW: &str = r#"
version: 1
name: journal
inputs: {note: {type: string, default: nothing}}
models: {default: scripted/replies.yaml}
tools:
  echo:
    description: Echo the note.
    mock: 'note: {{ inputs.note }}'
task: Remember {{ inputs.note }}
plan:
  steps:
    - {id: a, description: echo the note, tool: echo}
    - {id: b, description: fails, depends_on: [a]}
"#;

const REPLIES: &str = r#"
executor:
  - {when: 'Step `a`', tool_calls: [{name: echo}]}
  - {when: 'Step `a`', text: echoed}
  - {when: 'Step `b`', json: {status: failed, result: nope}}
  - {when: 'Step `fixed`', text: fixed it}
replanner:
  - json: {decision: revise, reason: try another way, steps: [{id: fixed, description: another way, depends_on: [a]}]}
synthesizer:
  - {text: done}
"#;

#[test]
fn the_json_result_is_the_fold_of_the_journal() {
    let case = Case::new(WORKFLOW, REPLIES);
    let run = case.exec(&[]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    let journal = Journal::open(&case.store()).unwrap();
    let read = journal.events(run.doc["run_id"].as_str().unwrap()).unwrap();
    let state = RunState::from_events(&read.events);
    assert_eq!(pe::render::result::document(&state), run.doc);
    // And `pe show --json` prints exactly the stored events.
    let shown = case.events();
    assert_eq!(
        shown,
        read.events
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect::<Vec<_>>()
    );
    let types: Vec<_> = shown
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "run_started",
            "plan_created",
            "plan_approved",
            "step_started",
            "llm_call",
            "tool_started",
            "tool_call",
            "llm_call",
            "step_finished",
            "step_started",
            "llm_call",
            "step_finished",
            "llm_call",
            "replanned",
            "step_started",
            "llm_call",
            "step_finished",
            "llm_call",
            "run_finished",
        ]
    );
    let seqs: Vec<_> = shown.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=19).collect::<Vec<_>>());
}

#[test]
fn a_torn_last_event_is_dropped_with_a_warning() {
    let case = Case::new(WORKFLOW, REPLIES);
    let run = case.exec(&[]);
    let id = run.doc["run_id"].as_str().unwrap().to_string();
    let before = case.events();
    let mut journal = Journal::open(&case.store()).unwrap();
    let next = before.len() as u64 + 1;
    journal
        .append_unchecked(
            &id,
            next,
            "step_started",
            &format!(r#"{{"seq":{next},"at":"2026-11-03T12:0"#),
        )
        .unwrap();
    let out = case.pe().args(["show", &id, "--json"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "warning: the last event of run {id} (#{next}) was incompletely written and is ignored\n"
        )
    );
    let lines = String::from_utf8(out.stdout).unwrap().lines().count();
    assert_eq!(lines, before.len());
}

#[test]
fn a_run_killed_mid_step_leaves_a_readable_journal() {
    let wf = r#"
version: 1
name: killed
models: {default: scripted/replies.yaml}
tools:
  wait:
    description: Waits.
    command: [sleep, '3']
task: Wait
plan: {steps: [{id: first, description: quick}, {id: slow, description: wait, depends_on: [first]}]}
"#;
    let replies = "executor:\n  - {when: 'Step `first`', text: quick}\n  - {when: 'Step `slow`', tool_calls: [{name: wait}]}\n";
    let case = Case::new(wf, replies);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("pe"))
        .current_dir(case.dir.path())
        .args(["exec", "workflow.yaml"])
        .env_remove("PE_HOME")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the slow step's tool is running, then kill the process without warning.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "the slow step never started");
        if let Ok(journal) = Journal::open(&case.store())
            && let Ok(runs) = journal.runs()
            && let Some(run) = runs.first()
            && let Ok(read) = journal.events(&run.id)
            && read.events.iter().any(|e| matches!(&e.kind, pe::run::EventKind::ToolStarted { step, .. } if step == "slow"))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let events = case.events();
    let last = events.last().unwrap();
    assert_eq!(
        (last["type"].as_str(), last["step"].as_str()),
        (Some("tool_started"), Some("slow"))
    );
    assert_eq!(events.len(), 9);
    let runs = case.pe().args(["runs", "--json"]).output().unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs["runs"][0]["status"], "unfinished");
}

#[test]
fn secrets_never_reach_the_journal_or_the_output() {
    let case = Case::new(WORKFLOW, REPLIES);
    let secret = "sk-test-0123456789abcdef";
    let out = case
        .pe()
        .env("OPENAI_API_KEY", secret)
        .args([
            "exec",
            "workflow.yaml",
            "--json",
            "--input",
            &format!("note={secret}"),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let shown = case
        .pe()
        .args(["show", "latest", "--json"])
        .output()
        .unwrap();
    let journal = String::from_utf8(shown.stdout).unwrap();
    assert!(!stdout.contains(secret) && !journal.contains(secret));
    let events = case.events();
    assert_eq!(events[0]["inputs"]["note"], "[redacted]");
    assert_eq!(events[0]["task"], "Remember [redacted]");
    let tool = events.iter().find(|e| e["type"] == "tool_call").unwrap();
    assert_eq!(tool["output"], "note: [redacted]");
}
