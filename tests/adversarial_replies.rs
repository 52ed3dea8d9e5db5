//! Adversarial: a model that answers with too much or with garbage. Huge invalid plans and
//! revisions must get bounded re-asks (finding 4), a huge reply must not balloon later
//! prompts, memory or the journal (finding 5, engine side), malformed replies end the run
//! with an error and never a panic, and a tool that never returns cannot hang the run
//! (finding 8). Every run stays under 100 MB and a few seconds; request sizes are read from
//! the cassette `--record` writes, which holds what each model was sent. Models get a
//! `max_tokens` far above every reply, so the scripted provider never cuts one: what the
//! engine does with the whole of it is under test.

mod adversarial_support;

use adversarial_support::{Case, excerpt};
use serde_json::{Value, json};

/// The model requests of a cassette: `(role, request size in bytes)`.
fn requests(case: &Case, cassette: &str) -> Vec<(String, usize)> {
    std::fs::read_to_string(case.path(cassette))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "model")
        .map(|e| {
            (
                e["role"].as_str().unwrap_or("").to_string(),
                e["request"].to_string().len(),
            )
        })
        .collect()
}

/// `n` steps that name an unknown tool and an unknown dependency each.
fn bad_steps(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                json!({"id": format!("step_{i}"), "description": format!("Do thing number {i} carefully"),
                       "tool": format!("tool_{i}"), "depends_on": [format!("missing_{i}")]})
            })
            .collect(),
    )
}

#[test]
fn a_huge_invalid_plan_gets_bounded_re_asks() {
    let case = Case::new(
        "version: 1
name: big-plan
task: Plan something.
models: {default: {model: scripted/replies.json, max_tokens: 10000000}}
tools:
  work: {description: Work., mock: done}
",
    );
    let replies = json!({"planner": [{"repeat": true, "json": {"steps": bad_steps(2000)}}]});
    case.write("replies.json", &replies.to_string());
    assert!(std::fs::metadata(case.path("replies.json")).unwrap().len() > 190_000);
    let run = case.exec(&["--record", "run.jsonl"], &[]);
    run.within_bounds("huge plan");
    assert_eq!(run.code, Some(1), "{}", excerpt(&run.stderr));
    let sizes = requests(&case, "run.jsonl");
    assert_eq!(sizes.len(), 3, "{sizes:?}");
    for (role, size) in &sizes {
        assert_eq!(role, "planner");
        assert!(
            *size < 16_000,
            "a planner request of {size} bytes: {sizes:?}"
        );
    }
    let reason = run.doc()["reason"].as_str().unwrap().to_string();
    assert!(reason.len() < 4_000, "reason of {} bytes", reason.len());
    assert!(
        reason.ends_with("; and 3991 more problems"),
        "{}",
        excerpt(&reason)
    );
    assert!(
        run.stderr.len() < 16_000,
        "stderr of {} bytes",
        run.stderr.len()
    );
    let journal = case.journal();
    assert!(journal.len() < 64_000, "journal of {} bytes", journal.len());
}

#[test]
fn huge_invalid_revisions_are_quoted_not_resent() {
    let case = Case::new(
        "version: 1
name: big-revision
task: Do a then b.
models: {default: {model: scripted/replies.json, max_tokens: 10000000}}
tools:
  work:
    description: Work.
    parameters: {type: object, properties: {step: {type: string}}}
    mock: {cases: [{when: {step: a}, error: a is broken}], result: done}
    on_error: fail_step
plan:
  steps: [{id: a, description: Do a, tool: work}, {id: b, description: Do b, tool: work, depends_on: [a]}]
replan: {when: on_failure, on_step_failure: {retries: 0, then: replan}}
",
    );
    let revision =
        json!({"decision": "revise", "reason": "x".repeat(100_000), "steps": bad_steps(2000)});
    let replies = json!({
        "executor": [{"repeat": true, "tool_calls": [{"name": "work", "arguments": {"step": "a"}}]}],
        "replanner": [{"repeat": true, "json": revision}],
    });
    case.write("replies.json", &replies.to_string());
    let run = case.exec(&["--record", "run.jsonl"], &[]);
    run.within_bounds("huge revision");
    assert_eq!(run.code, Some(1), "{}", excerpt(&run.stderr));
    let sizes: Vec<usize> = requests(&case, "run.jsonl")
        .into_iter()
        .filter(|(role, _)| role == "replanner")
        .map(|(_, size)| size)
        .collect();
    assert_eq!(sizes.len(), 3, "{sizes:?}");
    // Each re-ask adds a quote of at most 2 KiB and at most 4 KiB of problems.
    assert!(sizes[0] < 8_000, "{sizes:?}");
    for pair in sizes.windows(2) {
        assert!(
            pair[1] - pair[0] < 8_000,
            "a re-ask grew by more than 8 KB: {sizes:?}"
        );
    }
}

#[test]
fn a_huge_reply_does_not_balloon_prompts_memory_or_the_journal() {
    let case = Case::new(
        "version: 1
name: big-reply
task: Report.
models: {default: {model: scripted/replies.json, max_tokens: 10000000}}
plan:
  steps: [{id: a, description: Report everything}, {id: b, description: Summarize a, depends_on: [a]}]
replan: {when: never}
",
    );
    {
        // 2 MB each: far past the 256 KiB a reply may carry, small enough that loading the
        // replies file (the scripted provider's part) stays a small share of the memory.
        let huge = "0123456789".repeat(200_000);
        let replies = json!({
            "executor": [
                {"when": "Step `a`", "json": {"status": "succeeded", "result": huge}},
                {"when": "Step `b`", "text": huge},
            ],
            "synthesizer": [{"text": huge}],
        });
        case.write("replies.json", &replies.to_string());
    }
    let run = case.exec(&["--record", "run.jsonl"], &[]);
    run.within_bounds("huge reply");
    assert_eq!(run.code, Some(0), "{}", excerpt(&run.stderr));
    // The synthesizer sees both results, each cut at 64 KiB.
    for (role, size) in requests(&case, "run.jsonl") {
        assert!(size < 140_000, "a {role} request of {size} bytes");
    }
    let finished = case.events_of("step_finished");
    for step in &finished {
        let result = step["result"].as_str().unwrap();
        assert!(
            result.len() < 66 * 1024,
            "a step result of {} bytes",
            result.len()
        );
        assert!(
            result.ends_with(" bytes ...]"),
            "{}",
            &result[result.len() - 60..]
        );
    }
    let output = run.doc()["output"].as_str().unwrap().to_string();
    assert_eq!(
        output.len(),
        256 * 1024 + "\n[... truncated 1737856 bytes ...]".len()
    );
    let journal = case.journal();
    assert!(
        journal.len() < 1_000_000,
        "journal of {} bytes",
        journal.len()
    );
}

#[test]
fn malformed_replies_end_the_run_with_an_error_never_a_panic() {
    let case = Case::new(
        "version: 1
name: garbage
task: Plan.
models: {default: {model: scripted/replies.json, max_tokens: 10000000}}
tools:
  work: {description: Work., parameters: {type: object, properties: {n: {type: integer}}}, mock: done}
plan: {max_attempts: 4}
execute: {max_iterations: 6}
replan: {when: never}
",
    );
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let replies = json!({
        "planner": [
            {"text": deep},
            {"text": "\u{0}\u{feff}{\"steps\": [{\"id\": 1}]"},
            {"json": {"steps": "all of them"}},
            {"json": {"steps": [{"id": "a", "description": "Do a", "tool": "work"}]}},
        ],
        "executor": [
            {"tool_calls": [{"name": "nope", "arguments": {}}]},
            {"tool_calls": [{"name": "work", "arguments": {"n": [1, 2]}}]},
            {"tool_calls": [{"name": "work", "arguments": {"n": "NaN", "extra": [[[[[]]]]]}}]},
            {"text": "{\"status\": \"maybe\"}"},
        ],
    });
    case.write("replies.json", &replies.to_string());
    let run = case.exec(&[], &[]);
    run.within_bounds("malformed replies");
    assert_eq!(run.code, Some(1), "{}", excerpt(&run.stderr));
    assert_eq!(
        run.doc()["steps"][0]["error"],
        json!("the executor replied with status `maybe`; expected `succeeded` or `failed`")
    );
    let outcomes: Vec<Value> = case
        .events_of("tool_call")
        .iter()
        .map(|e| e["outcome"].clone())
        .collect();
    assert_eq!(
        outcomes,
        [json!("rejected"), json!("rejected"), json!("rejected")]
    );
}

#[test]
fn a_tool_that_never_returns_cannot_hang_the_run() {
    let case = Case::new(
        "version: 1
name: hang
task: Wait.
models: {default: {model: scripted/replies.json, max_tokens: 10000000}}
tools:
  wait: {description: Wait forever., command: [sleep, '30']}
plan:
  steps: [{id: a, description: Wait, tool: wait}]
execute: {tool_timeout: 1s}
replan: {when: never}
",
    );
    let replies = json!({
        "executor": [
            {"tool_calls": [{"name": "wait", "arguments": {}}]},
            {"json": {"status": "failed", "result": "it hung"}},
        ],
    });
    case.write("replies.json", &replies.to_string());
    let run = case.exec(&[], &[]);
    run.within_bounds("hanging tool");
    assert!(run.elapsed.as_secs_f64() < 5.0, "{:?}", run.elapsed);
    let calls = case.events_of("tool_call");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["error"], json!("`wait` timed out after 1s"));
    assert_eq!(run.code, Some(1), "{}", excerpt(&run.stderr));
}
