//! Workflows as tools (`tools: {verify: {workflow: ./verify.yaml}}`): the child run is a run
//! of its own, linked to its parent in the journal, `pe runs` and `pe show`; its model calls
//! count against the parent's budget; `pe resume` of the parent resumes an unfinished
//! child; `pe check` follows the files and refuses cycles, naming the chain.

mod exec_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use exec_support::{Case, steps};
use serde_json::{Value, json};

/// The parent: step `a` calls the child through the workflow tool `verify`.
const PARENT: &str = r#"
version: 1
name: parent
models: {default: scripted/replies.yaml}
tools:
  verify: {workflow: ./child.yaml, on_error: fail_step}
task: Verify the thing
plan: {steps: [{id: a, description: verify it, tool: verify}]}
replan: {when: never}
budget: {max_llm_calls: 10}
"#;

/// The child: one step whose tool logs each run to calls.log, and may wait until a file
/// named `open` exists while a file named `gate` does.
const CHILD: &str = r#"
version: 1
name: child
models: {default: scripted/replies.yaml}
inputs:
  thing: {type: string, description: What to verify.}
tools:
  probe:
    description: Probe the thing.
    parameters: {type: object, properties: {thing: {type: string}}, required: [thing]}
    command: [sh, -c, 'printf "%s\n" "$0" >> calls.log; while [ -e gate ] && [ ! -e open ]; do sleep 0.02; done; printf "%s is fine" "$0"', '{{ args.thing }}']
task: Verify {{ inputs.thing }}
plan: {steps: [{id: probe, description: probe it, tool: probe}]}
replan: {when: never}
output:
  schema: {type: object, properties: {fine: {type: boolean}}, required: [fine]}
"#;

/// Replies for parent and child in one file (the child shares the parent's scripted model);
/// every reply repeats and is chosen by the prompt, so a resumed process answers the same.
const REPLIES: &str = r#"
executor:
  - {when: '{"fine":true}', repeat: true, json: {status: succeeded, result: verified}}
  - {when: 'widget is fine', repeat: true, json: {status: succeeded, result: fine}}
  - {when: 'Step `a`', repeat: true, tool_calls: [{name: verify, arguments: {thing: widget}}]}
  - {when: 'Step `probe`', repeat: true, tool_calls: [{name: probe, arguments: {thing: widget}}]}
synthesizer:
  - {when: 'Verify widget', repeat: true, json: {fine: true}}
  - {repeat: true, text: the widget is verified}
"#;

fn case() -> Case {
    let case = Case::new(PARENT, REPLIES);
    std::fs::write(case.path("child.yaml"), CHILD).unwrap();
    case
}

/// `pe runs --json`: `(id, parent, workflow, status)` of every run, as listed.
fn runs(case: &Case) -> Vec<(String, Value, String, String)> {
    let out = case.pe().args(["runs", "--json"]).output().unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = doc.as_array().or_else(|| doc["runs"].as_array()).unwrap();
    rows.iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["parent"].clone(),
                r["workflow"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn show(case: &Case, id: &str) -> String {
    let out = case.pe().args(["show", id]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_child_run_is_journaled_as_its_own_run_linked_to_its_parent() {
    let case = case();
    let run = case.exec(&[]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    let parent = run.doc["run_id"].as_str().unwrap().to_string();
    let call = &case.events_of("tool_call")[0];
    let child = call["child_run"].as_str().unwrap().to_string();
    // parent.<8 hex of the call's idempotency key>
    assert!(
        regex_lite::Regex::new(&format!(
            r"^{}\.[0-9a-f]{{8}}$",
            regex_lite::escape(&parent)
        ))
        .unwrap()
        .is_match(&child),
        "{child}"
    );
    assert_eq!(call["output"], json!("{\"fine\":true}"));
    // The child's model calls count in the parent's usage: 2 parent executor turns and the
    // parent's synthesizer, plus the child's 2 executor turns and its synthesizer.
    assert_eq!(run.doc["usage"]["llm_calls"], 6, "{:#}", run.doc["usage"]);
    assert_eq!(
        runs(&case),
        vec![
            (
                parent.clone(),
                Value::Null,
                "parent".into(),
                "completed".into()
            ),
            (
                child.clone(),
                json!(parent),
                "child".into(),
                "completed".into()
            ),
        ]
    );
    // The table shows the child under its parent.
    let table = case.pe().arg("runs").output().unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    let ids: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split("   ").next().unwrap().trim_end())
        .collect();
    let suffix = &child[parent.len()..];
    assert_eq!(ids, vec![parent.clone(), format!("  ↳ {suffix}")]);
    // pe show names the link both ways; `latest` is the parent.
    let child_story = show(&case, &child);
    assert_eq!(
        child_story.lines().nth(1).map(str::trim),
        Some(format!("child of run {parent} (step `a`, workflow tool `verify`)").as_str()),
        "{child_story}"
    );
    let parent_story = show(&case, "latest");
    assert!(
        parent_story
            .lines()
            .any(|l| l.trim() == format!("child run {child} (pe show {child})")),
        "{parent_story}"
    );
    let started = case
        .events()
        .into_iter()
        .find(|e| e["type"] == "run_started")
        .unwrap();
    assert_eq!(started["parent"], Value::Null);
}

#[test]
fn the_childs_model_calls_count_against_the_parents_budget() {
    let case = Case::new(
        &PARENT.replace("max_llm_calls: 10", "max_llm_calls: 3"),
        REPLIES,
    );
    std::fs::write(case.path("child.yaml"), CHILD).unwrap();
    let run = case.exec(&[]);
    // Parent turn 1 calls the child; the child's 2 executor turns reach the parent's 3.
    assert_eq!(run.status(), "budget_exhausted", "{}", run.stderr);
    assert_eq!(run.doc["usage"]["llm_calls"], 3, "{:#}", run.doc["usage"]);
    assert_eq!(
        run.reason(),
        "budget.max_llm_calls (3) reached: 3 used, the next call needs 1"
    );
    let statuses: Vec<String> = runs(&case).into_iter().map(|r| r.3).collect();
    assert_eq!(statuses, vec!["budget_exhausted", "budget_exhausted"]);
}

#[test]
fn resume_of_the_parent_resumes_its_unfinished_child() {
    let case = case();
    std::fs::write(case.path("gate"), "").unwrap();
    let mut pe = std::process::Command::new(assert_cmd::cargo::cargo_bin!("pe"))
        .args(["exec", "workflow.yaml"])
        .current_dir(case.dir.path())
        .env_remove("PE_HOME")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the child's tool runs (and blocks on the gate), then kill -9 pe.
    let start = Instant::now();
    while !case.path("calls.log").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the child never ran"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    pe.kill().unwrap();
    pe.wait().unwrap();
    std::fs::write(case.path("open"), "").unwrap();
    let before = runs(&case);
    assert_eq!(before.len(), 2, "{before:?}");
    assert_eq!(before[0].3, "unfinished");
    assert_eq!(before[1].3, "unfinished");
    let (parent, child) = (before[0].0.clone(), before[1].0.clone());

    let out = case
        .pe()
        .args(["resume", "latest", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["status"], "completed");
    assert_eq!(doc["run_id"], json!(parent));
    // The same child run, resumed (not a second child), now completed.
    assert_eq!(
        runs(&case),
        vec![
            (
                parent.clone(),
                Value::Null,
                "parent".into(),
                "completed".into()
            ),
            (
                child.clone(),
                json!(parent),
                "child".into(),
                "completed".into()
            ),
        ]
    );
    let child_events: Vec<Value> = {
        let out = case.pe().args(["show", &child, "--json"]).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let kinds: Vec<&str> = child_events
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .filter(|k| ["run_started", "run_resumed", "run_finished"].contains(k))
        .collect();
    assert_eq!(kinds, vec!["run_started", "run_resumed", "run_finished"]);
}

#[test]
fn pe_check_follows_workflow_tools_and_names_a_cycle_across_files() {
    let case = Case::new(
        "version: 1\nname: a\ntools:\n  b: {workflow: ./b.yaml}\ntask: t\n",
        "{}",
    );
    std::fs::write(
        case.path("b.yaml"),
        "version: 1\nname: b\ntools:\n  c: {workflow: sub/c.yaml}\ntask: t\n",
    )
    .unwrap();
    std::fs::create_dir(case.path("sub")).unwrap();
    std::fs::write(
        case.path("sub/c.yaml"),
        "version: 1\nname: c\ntools:\n  a: {workflow: ../workflow.yaml}\ntask: t\n",
    )
    .unwrap();
    let out = case
        .pe()
        .args(["check", "workflow.yaml", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let diagnostics = doc["files"][0]["diagnostics"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc:#}"));
    let found: Vec<(&str, &str)> = diagnostics
        .iter()
        .map(|d| (d["code"].as_str().unwrap(), d["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        found,
        vec![(
            "pe::workflow-cycle",
            "workflow tools call each other in a cycle: workflow.yaml → b.yaml → c.yaml → workflow.yaml"
        )]
    );
    // A child that is not a valid workflow is named with its first problems.
    std::fs::write(
        case.path("sub/c.yaml"),
        "version: 1\nname: c\ntask: t\nbogus: 1\n",
    )
    .unwrap();
    let out = case
        .pe()
        .args(["check", "b.yaml", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &doc["files"][0]["diagnostics"][0];
    assert_eq!(
        (&d["code"], &d["message"], &d["help"], &d["line"]),
        (
            &json!("pe::workflow-tool"),
            &json!("tool `c`: the workflow sub/c.yaml has 1 problem"),
            &json!(
                "sub/c.yaml:4:1: unknown key `bogus` in the workflow (run `pe check sub/c.yaml`)"
            ),
            &json!(4)
        ),
        "{doc:#}"
    );
}

#[test]
fn a_failing_child_is_a_tool_error_that_follows_on_error() {
    let case = Case::new(
        PARENT,
        &REPLIES.replace(
            "- {when: 'Verify widget', repeat: true, json: {fine: true}}",
            "- {when: 'Verify widget', repeat: true, json: {fine: yes please}}",
        ),
    );
    std::fs::write(case.path("child.yaml"), CHILD).unwrap();
    let run = case.exec(&[]);
    assert_eq!(run.status(), "failed", "{}", run.stderr);
    assert_eq!(run.steps(), steps(&[("a", "failed")]));
    let error = run.step("a")["error"].as_str().unwrap();
    let child = case.events_of("tool_call")[0]["child_run"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        error,
        format!(
            "tool `verify` failed: `verify`: workflow `child` (run {child}) ended failed: the final answer does not match output.schema after 2 repairs: at /fine: \"yes please\" is not of type \"boolean\""
        )
    );
}

#[test]
fn replay_answers_a_workflow_tool_from_the_cassette_without_running_the_child() {
    let case = case();
    let recorded = case.exec(&["--record", "run.cassette"]);
    assert_eq!(recorded.status(), "completed", "{}", recorded.stderr);
    std::fs::remove_file(case.path("calls.log")).unwrap();
    let replayed = case.exec(&["--replay", "run.cassette"]);
    assert_eq!(replayed.status(), "completed", "{}", replayed.stderr);
    assert_eq!(replayed.doc["output"], recorded.doc["output"]);
    // The child did not run: its tool left no log, and no child run was journaled or named.
    assert!(!case.path("calls.log").exists());
    let call = &case.events_of("tool_call")[0];
    assert_eq!(call["output"], json!("{\"fine\":true}"));
    assert_eq!(call.get("child_run"), None, "{call:#}");
    let replay_id = replayed.doc["run_id"].as_str().unwrap();
    let children: Vec<Value> = runs(&case).into_iter().map(|r| r.1).collect();
    assert_eq!(
        children,
        vec![Value::Null, json!(recorded.doc["run_id"]), Value::Null],
        "no child under the replayed run {replay_id}"
    );
}
