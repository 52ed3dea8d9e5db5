//! Outcomes you can trust (issue 9), through the `pe` binary: the seven ways a run used to
//! report `completed` for work that did not complete, act on a plan it was told not to run,
//! or go on unrecorded. Each is repeated (≥ 50 runs, spread over threads) so a race shows.

mod exec_support;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command as Std, Stdio};
use std::time::{Duration, Instant};

use exec_support::{Case, steps};
use serde_json::{Value, json};

/// Runs `f(i)` for `i` in `0..n` on four threads; panics name the iteration.
fn repeat(n: usize, f: impl Fn(usize) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= n {
                        break;
                    }
                    f(i);
                }
            });
        }
    });
}

fn event_types(case: &Case) -> Vec<String> {
    case.events()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

const FLAKY: &str = r#"version: 1
name: flaky-chain
task: Do a, b and c.
models: {default: scripted/replies.yaml}
tools:
  work:
    description: Do one piece of work.
    parameters: {type: object, properties: {step: {type: string}}, required: [step]}
    mock:
      cases:
        - {when: {step: a}, times: 1, error: a is flaky}
        - {when: {step: b}, times: 1, error: b is flaky}
      result: 'did {{ args.step }}'
    on_error: fail_step
plan:
  parallel: PARALLEL
  steps:
    - {id: a, description: Do a}
    - {id: b, description: Do b, depends_on: [a]}
    - {id: c, description: Do c, depends_on: [b]}
replan: {when: never, on_step_failure: {retries: 1, then: abort}}
"#;

const FLAKY_REPLIES: &str = r#"executor:
  - {when: 'did a', repeat: true, json: {status: succeeded, result: a done}}
  - {when: 'did b', repeat: true, json: {status: succeeded, result: b done}}
  - {when: 'did c', repeat: true, json: {status: succeeded, result: c done}}
  - {when: 'Step `a`', repeat: true, tool_calls: [{name: work, arguments: {step: a}}]}
  - {when: 'Step `b`', repeat: true, tool_calls: [{name: work, arguments: {step: b}}]}
  - {when: 'Step `c`', repeat: true, tool_calls: [{name: work, arguments: {step: c}}]}
synthesizer:
  - {repeat: true, text: 'a, b and c done'}
"#;

/// Case 1: a step that succeeds on its retry leaves no dependent unrun.
#[test]
fn steps_that_succeed_on_their_retry_run_every_dependent() {
    repeat(60, |i| {
        let parallel = if i % 2 == 0 { "true" } else { "false" };
        let case = Case::new(&FLAKY.replace("PARALLEL", parallel), FLAKY_REPLIES);
        let run = case.exec(&[]);
        assert_eq!(
            (run.code, run.status(), run.steps()),
            (
                0,
                "completed",
                steps(&[("a", "succeeded"), ("b", "succeeded"), ("c", "succeeded")])
            ),
            "run {i}: {}",
            run.stderr
        );
        let attempts: Vec<&Value> = ["a", "b", "c"]
            .iter()
            .map(|s| &run.step(s)["attempts"])
            .collect();
        assert_eq!(attempts, [&json!(2), &json!(2), &json!(1)], "run {i}");
        let thens: Vec<Value> = case
            .events_of("step_finished")
            .iter()
            .filter(|e| e["status"] == "failed")
            .map(|e| json!([e["step"], e["then"]]))
            .collect();
        assert_eq!(
            thens,
            [json!(["a", "retry"]), json!(["b", "retry"])],
            "run {i}"
        );
    });
}

/// Case 2: `pe resume --reject` of a `--plan-only` run runs nothing.
#[test]
fn a_rejected_plan_only_run_runs_nothing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workflow = std::fs::read_to_string(root.join("workflows/release-checklist.yaml")).unwrap();
    let replies =
        std::fs::read_to_string(root.join("workflows/replies/release-1.4.2.yaml")).unwrap();
    repeat(50, |i| {
        let case = Case::new(&workflow, &replies);
        let planned = case
            .pe()
            .args([
                "exec",
                "workflow.yaml",
                "--plan-only",
                "--input",
                "version=1.4.2",
                "--model",
                "scripted/replies.yaml",
            ])
            .output()
            .unwrap();
        assert_eq!(planned.status.code(), Some(0), "run {i}");
        let out = case
            .pe()
            .args(["resume", "latest", "--reject", "--json"])
            .output()
            .unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (
                out.status.code(),
                doc["status"].clone(),
                doc["cause"].clone()
            ),
            (Some(5), json!("rejected"), json!("rejected")),
            "run {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let types = event_types(&case);
        assert!(
            !types
                .iter()
                .any(|t| t == "step_started" || t == "tool_started" || t == "plan_approved"),
            "run {i}: {types:?}"
        );
        assert_eq!(doc["tool_calls"], json!({}), "run {i}");
        assert_eq!(doc["step_counts"]["skipped"], 4, "run {i}");
    });
}

const BOTH_FAIL: &str = r#"version: 1
name: both-fail
task: Look up a and b, then compare them.
models: {default: scripted/replies.yaml}
tools:
  lookup:
    description: Look a value up.
    parameters: {type: object, properties: {key: {type: string}}, required: [key]}
    mock: {error: 'no such key: {{ args.key }}'}
    on_error: fail_step
plan:
  parallel: true
  steps:
    - {id: a, description: Look up a}
    - {id: b, description: Look up b}
replan: {when: on_failure, on_step_failure: {retries: 0, then: THEN}}
"#;

const BOTH_FAIL_REPLIES: &str = r#"executor:
  - {when: 'Step `a`', repeat: true, tool_calls: [{name: lookup, arguments: {key: a}}]}
  - {when: 'Step `b`', repeat: true, tool_calls: [{name: lookup, arguments: {key: b}}]}
replanner:
  - {repeat: true, json: {decision: continue, reason: keep going}}
synthesizer:
  - {repeat: true, text: Everything checked out fine.}
"#;

/// Case 3: a run whose every step failed fails, and nothing is made up.
#[test]
fn a_run_whose_every_step_failed_fails_without_an_answer() {
    repeat(50, |i| {
        let (then, cause, reason) = if i % 2 == 0 {
            (
                "replan",
                "steps_failed",
                "2 steps failed: `a`, `b`; first error: tool `lookup` failed: no such key: a",
            )
        } else {
            (
                "skip",
                "nothing_succeeded",
                "no step succeeded: there is nothing to answer from",
            )
        };
        let case = Case::new(&BOTH_FAIL.replace("THEN", then), BOTH_FAIL_REPLIES);
        let out = case.exec_raw(&[]);
        assert_eq!(out.status.code(), Some(1), "run {i}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "", "run {i}");
        let run = case.exec(&[]);
        assert_eq!(
            (run.code, run.status(), &run.doc["cause"], run.reason()),
            (1, "failed", &json!(cause), reason),
            "run {i}"
        );
        assert_eq!(run.doc["output"], Value::Null);
        assert!(
            !case.llm_roles().iter().any(|r| r == "synthesizer"),
            "run {i}: the synthesizer was asked"
        );
    });
}

const GATED: &str = r#"version: 1
name: gated
task: Do a, b and c.
models: {default: scripted/replies.yaml}
tools:
  work:
    description: Do one piece of work.
    parameters: {type: object, properties: {step: {type: string}}, required: [step]}
    # Logs each run; blocks while a file named `gate` exists and `open` does not (a killed
    # run's tool ends when the test's directory is removed).
    command: [sh, -c, 'printf "%s\n" "$0" >> calls.log; while [ -e gate ] && [ ! -e open ]; do sleep 0.01; done; printf "did %s" "$0"', '{{ args.step }}']
    on_error: fail_step
plan:
  steps:
    - {id: a, description: Do a}
    - {id: b, description: Do b, depends_on: [a]}
    - {id: c, description: Do c, depends_on: [b]}
replan: {when: never}
"#;

fn calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Case 4: one process at a time drives a run.
#[test]
fn a_live_run_cannot_be_resumed_and_of_two_resumes_one_runs() {
    repeat(50, |i| {
        let case = Case::new(GATED, FLAKY_REPLIES);
        let dir = case.dir.path();
        std::fs::write(dir.join("gate"), "").unwrap();
        let mut exec = Std::new(assert_cmd::cargo::cargo_bin("pe"))
            .current_dir(dir)
            .env_remove("PE_HOME")
            .args(["exec", "workflow.yaml", "--json"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while calls(dir) != ["a"] {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "run {i}: a never started"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // The exec process holds the run: a resume is refused, naming it.
        let busy = case.pe().args(["resume", "latest"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&busy.stderr);
        let named = format!("is being run by process {} on ", exec.id());
        assert_eq!(busy.status.code(), Some(2), "run {i}: {stderr}");
        assert!(stderr.contains(&named), "run {i}: {stderr}");
        assert_eq!(
            calls(dir),
            ["a"],
            "run {i}: the refused resume ran something"
        );
        // Killed, the run is taken over — by exactly one of two racing resumes.
        exec.kill().unwrap();
        assert_eq!(exec.wait().unwrap().signal(), Some(9));
        std::fs::write(dir.join("open"), "").unwrap();
        let spawn = || {
            Std::new(assert_cmd::cargo::cargo_bin("pe"))
                .current_dir(dir)
                .env_remove("PE_HOME")
                .env("NO_COLOR", "1")
                .args(["resume", "latest", "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (one, two) = (spawn(), spawn());
        let mut codes: Vec<i32> = [one, two]
            .into_iter()
            .map(|c| c.wait_with_output().unwrap().status.code().unwrap_or(-1))
            .collect();
        codes.sort_unstable();
        // The loser is refused while the winner runs (2), or finds the run ended (2).
        assert_eq!(codes, [0, 2], "run {i}");
        assert_eq!(
            calls(dir),
            ["a", "a", "b", "c"],
            "run {i}: a step ran twice"
        );
        let seqs: Vec<u64> = case
            .events()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "run {i}");
    });
}

const STORE_BREAKS: &str = r#"version: 1
name: store-breaks
task: Do a, then b.
models: {default: scripted/replies.yaml}
tools:
  break_store:
    description: Drops the run store's events table, as a disk or a person might break it.
    command: [python3, -c, "import sqlite3; c = sqlite3.connect('.pe/runs.db'); c.execute('DROP TABLE events'); c.commit(); print('broken')"]
  mark:
    description: Leaves a mark.
    command: [sh, -c, 'echo b ran > b-ran']
plan:
  steps:
    - {id: a, description: Break the store}
    - {id: b, description: Leave a mark, depends_on: [a]}
replan: {when: never}
"#;

const STORE_REPLIES: &str = r#"executor:
  - {when: 'Step `a`', tool_calls: [{name: break_store}]}
  - {when: 'broken', json: {status: succeeded, result: store broken}}
  - {when: 'Step `b`', tool_calls: [{name: mark}]}
  - {when: 'Step `b`', json: {status: succeeded, result: marked}}
synthesizer:
  - {text: done}
"#;

/// Case 5: a journal write failure stops the run at once, with the store's error.
#[test]
fn a_failed_journal_write_stops_the_run_with_the_stores_error() {
    repeat(50, |i| {
        let case = Case::new(STORE_BREAKS, STORE_REPLIES);
        let out = case.exec_raw(&[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "run {i}: {stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        let want = regex_lite::Regex::new(
            r"^error: run (\S+) stopped: the run store failed: cannot write event \d+ \(tool_call\): run store \.pe/runs\.db: no such table: events; nothing ran after that\. Fix the run store, then `pe resume (\S+)`$",
        )
        .unwrap();
        let caps = want
            .captures(last)
            .unwrap_or_else(|| panic!("run {i}: {stderr}"));
        assert_eq!(&caps[1], &caps[2], "run {i}");
        assert!(!case.path("b-ran").exists(), "run {i}: b ran unrecorded");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "", "run {i}");
    });
}

/// Case 6: no budget can be exceeded — parallel calls cannot each be granted the remaining
/// budget, no step starts once one ran out, and the reason says it once.
#[test]
fn parallel_calls_never_exceed_a_token_budget() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(greedy_server());
    let base = format!("{}/v1", server.uri());
    repeat(50, |i| {
        let workflow = format!(
            r#"version: 1
name: greedy
task: Look up four things.
providers:
  greedy: {{kind: openai, base_url: '{base}', max_retries: 0}}
models: {{default: greedy/m}}
tools:
  lookup:
    description: Look a value up.
    parameters: {{type: object, properties: {{key: {{type: string}}}}, required: [key]}}
    mock: 'value of {{{{ args.key }}}}'
plan:
  parallel: true
  max_concurrency: 4
  steps:
    - {{id: a, description: Look up a}}
    - {{id: b, description: Look up b}}
    - {{id: c, description: Look up c}}
    - {{id: d, description: Look up d}}
replan: {{when: never}}
budget: {{max_tokens: {limit}}}
"#,
            limit = 3000 + 500 * (i % 4)
        );
        let case = Case::new(&workflow, "");
        let run = case.exec(&[]);
        let limit = 3000 + 500 * (i % 4) as u64;
        let used = run.doc["usage"]["input_tokens"].as_u64().unwrap()
            + run.doc["usage"]["output_tokens"].as_u64().unwrap();
        assert!(used <= limit, "run {i}: {used} tokens used of {limit}");
        assert_eq!(run.status(), "budget_exhausted", "run {i}");
        assert!(
            !run.reason().contains("budget exhausted"),
            "run {i}: {}",
            run.reason()
        );
        let types = event_types(&case);
        let hit = types.iter().position(|t| t == "budget_exhausted").unwrap();
        assert!(
            !types[hit..].iter().any(|t| t == "step_started"),
            "run {i}: a step started after the budget ran out: {types:?}"
        );
    });
}

/// An OpenAI-compatible server whose every answer uses its whole output cap (`max_tokens`),
/// as a model that rambles does: the worst case for a budget.
async fn greedy_server() -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};
    let server = MockServer::start().await;
    let respond = |req: &Request| {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let cap = body["max_tokens"]
            .as_u64()
            .or(body["max_completion_tokens"].as_u64())
            .unwrap_or(4096);
        // Input as a tokenizer of four characters per token counts the messages' text.
        let chars: usize = body["messages"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .map(|m| m["content"].as_str().unwrap_or_default().chars().count())
                    .sum()
            })
            .unwrap_or(0);
        let input = chars.div_ceil(4);
        let message = if body.get("tools").is_some() {
            let last_is_tool = body["messages"]
                .as_array()
                .and_then(|m| m.last())
                .is_some_and(|m| m["role"] == "tool");
            if last_is_tool {
                json!({"role": "assistant", "content": "{\"status\": \"succeeded\", \"result\": \"found\"}"})
            } else {
                json!({"role": "assistant", "content": null, "tool_calls": [{
                    "id": "call_1", "type": "function",
                    "function": {"name": "lookup", "arguments": "{\"key\": \"k\"}"}
                }]})
            }
        } else {
            json!({"role": "assistant", "content": "all four found"})
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "x", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": input, "completion_tokens": cap, "total_tokens": input + cap as usize}
        }))
    };
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(respond)
        .mount(&server)
        .await;
    server
}

const SLOW: &str = r#"version: 1
name: slow
task: Do a, then b.
models: {default: scripted/replies.yaml}
plan:
  steps:
    - {id: a, description: Do a}
    - {id: b, description: Do b, depends_on: [a]}
replan: {when: never}
budget: {timeout: 2s}
"#;

// a uses 1.2 s of the 2 s; b's 1.5 s turn fits a timeout counted from zero again but not the
// 0.8 s that are left, with 0.7 s to spare for a machine too busy to wake the process on time.
const SLOW_REPLIES: &str = r#"executor:
  - {when: 'Step `a`', repeat: true, delay: 1200ms, json: {status: succeeded, result: a done}}
  - {when: 'Step `b`', repeat: true, delay: 1500ms, json: {status: succeeded, result: b done}}
synthesizer:
  - {repeat: true, text: done}
"#;

/// Case 7: on resume, `budget.timeout` counts the time the run was already active.
#[test]
fn a_resumed_run_keeps_counting_its_timeout() {
    repeat(50, |i| {
        let case = Case::new(SLOW, SLOW_REPLIES);
        // Killed right after a finished (event 6): 1.2 s of the 2 s are spent.
        let killed = case
            .pe()
            .env("PE_TEST_CRASH_AFTER_EVENT", "6")
            .args(["exec", "workflow.yaml"])
            .output()
            .unwrap();
        assert_eq!(killed.status.signal(), Some(9), "run {i}");
        let out = case
            .pe()
            .args(["resume", "latest", "--json"])
            .output()
            .unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (
                out.status.code(),
                doc["status"].clone(),
                doc["cause"].clone()
            ),
            (Some(4), json!("budget_exhausted"), json!("timeout")),
            "run {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(doc["reason"], "budget.timeout (2s) reached", "run {i}");
        // b was cut off by the timeout 0.8 s into its turn: the resumed process had only what
        // the first one left (counted from zero again, b would finish at 1.5 s).
        assert_eq!(
            (
                &doc["steps"][0]["status"],
                &doc["steps"][1]["status"],
                &doc["steps"][1]["error"]
            ),
            (
                &json!("succeeded"),
                &json!("failed"),
                &json!("interrupted: the run ended budget_exhausted")
            ),
            "run {i}"
        );
    });
}
