//! `pe exec`: the executor's tool loop — argument validation, tool failures and timeouts,
//! iteration and time limits, and steps that really run concurrently.

mod exec_support;

use exec_support::{Case, steps};

fn workflow(tools: &str, rest: &str) -> String {
    format!(
        r#"
version: 1
name: tools
models: {{default: scripted/replies.yaml}}
tools:
{tools}
task: Use the tools
{rest}
"#
    )
}

const ECHO: &str = r#"
  echo:
    description: Echo the text back.
    parameters: {type: object, properties: {text: {type: string}}, required: [text], additionalProperties: false}
    mock: 'echo: {{ args.text }}'
"#;

const ONE_STEP: &str = "plan: {steps: [{id: a, description: use a tool}]}";

fn outcomes(case: &Case) -> Vec<(String, String)> {
    case.events_of("tool_call")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn invalid_arguments_go_back_to_the_model_and_nothing_runs() {
    let replies = r#"
executor:
  - {tool_calls: [{name: echo, arguments: {txt: hi}}]}
  - when: "error: invalid arguments for `echo`"
    tool_calls: [{name: echo, arguments: {text: hi}}]
  - {when: 'echo: hi', json: {status: succeeded, result: echoed}}
synthesizer:
  - {text: ok}
"#;
    let case = Case::new(&workflow(ECHO, ONE_STEP), replies);
    let run = case.exec(&[]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    assert_eq!(run.step("a")["result"], "echoed");
    assert_eq!(
        outcomes(&case),
        steps(&[("echo", "rejected"), ("echo", "ok")])
    );
    assert_eq!(run.doc["tool_calls"], serde_json::json!({"echo": 1}));
    let rejected = &case.events_of("tool_call")[0];
    assert_eq!(
        rejected["error"],
        "invalid arguments for `echo`: Additional properties are not allowed ('txt' was unexpected); \"text\" is a required property"
    );
}

#[test]
fn unknown_tools_go_back_to_the_model() {
    let replies = r#"
executor:
  - {tool_calls: [{name: ecko, arguments: {text: hi}}]}
  - {when: 'error: unknown tool `ecko`; available: echo', text: gave up on ecko}
synthesizer:
  - {text: ok}
"#;
    let case = Case::new(&workflow(ECHO, ONE_STEP), replies);
    let run = case.exec(&[]);
    assert_eq!(run.step("a")["result"], "gave up on ecko");
    assert_eq!(outcomes(&case), steps(&[("ecko", "rejected")]));
}

#[test]
fn a_tool_timeout_fails_the_step_with_on_error_fail_step() {
    let tools = r#"
  slow:
    description: Takes too long.
    command: [sleep, '5']
    timeout: 200ms
    on_error: fail_step
"#;
    let replies = "executor:\n  - {tool_calls: [{name: slow}]}\n";
    let case = Case::new(
        &workflow(tools, &format!("{ONE_STEP}\nreplan: {{when: never}}")),
        replies,
    );
    let t0 = std::time::Instant::now();
    let run = case.exec(&[]);
    assert!(t0.elapsed() < std::time::Duration::from_secs(4));
    assert_eq!(run.status(), "failed");
    assert_eq!(
        run.step("a")["error"],
        "tool `slow` failed: `slow` timed out after 200ms"
    );
    assert_eq!(
        run.reason(),
        "step `a` failed: tool `slow` failed: `slow` timed out after 200ms"
    );
    assert_eq!(outcomes(&case), steps(&[("slow", "error")]));
}

#[test]
fn a_failing_tool_with_on_error_continue_is_shown_to_the_model() {
    let tools = r#"
  ci:
    description: Run CI.
    mock: {error: CI red}
"#;
    let replies = r#"
executor:
  - {tool_calls: [{name: ci}]}
  - {when: 'error: CI red', json: {status: failed, result: CI is red}}
"#;
    let case = Case::new(
        &workflow(tools, &format!("{ONE_STEP}\nreplan: {{when: never}}")),
        replies,
    );
    let run = case.exec(&[]);
    assert_eq!(run.step("a")["error"], "CI is red");
    assert_eq!(outcomes(&case), steps(&[("ci", "error")]));
}

#[test]
fn the_step_timeout_bounds_an_attempt() {
    let tools = "  slow:\n    description: Takes too long.\n    command: [sleep, '5']\n";
    let rest = format!("{ONE_STEP}\nexecute: {{step_timeout: 300ms}}\nreplan: {{when: never}}");
    let case = Case::new(
        &workflow(tools, &rest),
        "executor:\n  - {tool_calls: [{name: slow}]}\n",
    );
    let run = case.exec(&[]);
    assert_eq!(
        run.step("a")["error"],
        "the step timed out after 300ms (execute.step_timeout)"
    );
}

#[test]
fn max_iterations_bounds_the_tool_loop() {
    let rest = format!("{ONE_STEP}\nexecute: {{max_iterations: 3}}\nreplan: {{when: never}}");
    let replies =
        "executor:\n  - {tool_calls: [{name: echo, arguments: {text: again}}], repeat: true}\n";
    let case = Case::new(&workflow(ECHO, &rest), replies);
    let run = case.exec(&[]);
    assert_eq!(
        run.step("a")["error"],
        "no final result after 3 model turns (execute.max_iterations)"
    );
    assert_eq!(case.llm_roles(), ["executor", "executor", "executor"]);
    assert_eq!(run.doc["tool_calls"]["echo"], 3);
}

/// A tool that cannot finish unless the other step's tool runs at the same time: it marks
/// itself started, then waits (up to ~2 s) for the other's mark. Run one after the other,
/// the first would time out; so both succeeding proves they overlapped, without timing.
const BARRIER: &str = r#"
  barrier:
    description: Meet the other step.
    parameters: {type: object, properties: {me: {type: string}, other: {type: string}}, required: [me, other]}
    command: [sh, -c, 'touch "$1.started"; n=0; while [ ! -e "$2.started" ]; do n=$((n+1)); [ $n -gt 40 ] && exit 7; sleep 0.05; done; echo met', barrier, '{{ args.me }}', '{{ args.other }}']
    on_error: fail_step
"#;

fn barrier_replies() -> String {
    let mut r = String::from("executor:\n");
    for (me, other) in [("a", "b"), ("b", "a"), ("c", "d"), ("d", "c")] {
        r.push_str(&format!(
            "  - {{when: 'Step `{me}`', tool_calls: [{{name: barrier, arguments: {{me: {me}, other: {other}}}}}]}}\n  - {{when: 'Step `{me}`', text: met}}\n"
        ));
    }
    r.push_str("synthesizer:\n  - {text: ok}\n");
    r
}

const FOUR_STEPS: &str = "steps: [{id: a, description: a}, {id: b, description: b}, {id: c, description: c}, {id: d, description: d}]";

#[test]
fn parallel_steps_run_concurrently_up_to_max_concurrency() {
    let rest = format!(
        "plan: {{parallel: true, max_concurrency: 2, {FOUR_STEPS}}}\nreplan: {{when: never}}"
    );
    let case = Case::new(&workflow(BARRIER, &rest), &barrier_replies());
    let run = case.exec(&[]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    assert_eq!(
        run.steps(),
        steps(&[
            ("a", "succeeded"),
            ("b", "succeeded"),
            ("c", "succeeded"),
            ("d", "succeeded")
        ])
    );
    // The journal's order of starts and finishes never has more than two steps in flight.
    let mut in_flight = 0;
    let mut most = 0;
    for e in case.events() {
        match e["type"].as_str() {
            Some("step_started") => in_flight += 1,
            Some("step_finished") => in_flight -= 1,
            _ => {}
        }
        most = most.max(in_flight);
    }
    assert_eq!(most, 2);
}

#[test]
fn without_parallel_steps_run_one_at_a_time() {
    // The same barrier now fails: `a` waits for `b`, which cannot start before `a` ends.
    let rest = format!("plan: {{{FOUR_STEPS}}}\nreplan: {{when: never}}");
    let case = Case::new(&workflow(BARRIER, &rest), &barrier_replies());
    let run = case.exec(&[]);
    assert_eq!(run.status(), "failed");
    assert_eq!(
        run.step("a")["error"],
        "tool `barrier` failed: `sh` exited with code 7 (no output)"
    );
    assert_eq!(
        run.steps(),
        steps(&[
            ("a", "failed"),
            ("b", "skipped"),
            ("c", "skipped"),
            ("d", "skipped")
        ])
    );
}

#[test]
fn dependents_of_a_failed_step_never_start() {
    let rest = r#"plan:
  parallel: true
  steps:
    - {id: a, description: fails}
    - {id: b, description: needs a, depends_on: [a]}
    - {id: c, description: independent}
replan: {on_step_failure: {then: skip}}"#;
    let replies = r#"
executor:
  - {when: 'Step `a`', json: {status: failed, result: broken}}
  - {text: fine, repeat: true}
synthesizer:
  - {text: partial}
"#;
    let case = Case::new(&workflow(ECHO, rest), replies);
    let run = case.exec(&[]);
    assert_eq!(
        run.steps(),
        steps(&[("a", "failed"), ("b", "skipped"), ("c", "succeeded")])
    );
    let started: Vec<_> = case
        .events_of("step_started")
        .iter()
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    assert!(!started.contains(&"b".to_string()), "{started:?}");
}
