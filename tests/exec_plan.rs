//! `pe exec`: the planner (re-asks, validation, fixed plans), approval and `--plan-only`.

mod exec_support;

use exec_support::{Case, steps};

const WORKFLOW: &str = r#"
version: 1
name: plan-tests
models: {default: scripted/replies.yaml}
tools:
  echo:
    description: Echo the text back.
    parameters: {type: object, properties: {text: {type: string}}, required: [text]}
    mock: '{{ args.text }}'
task: Do the thing
"#;

const EXECUTE_AND_ANSWER: &str = r#"
executor:
  - {text: done, repeat: true}
synthesizer:
  - {text: the answer}
"#;

#[test]
fn a_plan_from_the_planner_runs_and_the_answer_is_printed() {
    let replies = format!(
        r#"
planner:
  - json: {{steps: [{{id: a, description: first}}, {{id: b, description: second, depends_on: [a]}}]}}
{EXECUTE_AND_ANSWER}"#
    );
    let case = Case::new(WORKFLOW, &replies);
    let out = case.exec_raw(&[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "the answer\n");
    assert_eq!(
        case.llm_roles(),
        ["planner", "executor", "executor", "synthesizer"]
    );
}

#[test]
fn an_invalid_plan_is_re_asked_with_the_problems() {
    // The second reply is only used for a prompt that carries the feedback.
    let replies = format!(
        r#"
planner:
  - json: {{steps: [{{id: a, description: x, tool: ecko}}, {{id: a, description: y, depends_on: [zz]}}]}}
  - when: "Your previous plan was rejected: step id `a` is used twice; step `a` names unknown tool `ecko` (did you mean `echo`?); step `a` depends on unknown step `zz` (expected one of: `a`)"
    json: {{steps: [{{id: a, description: x, tool: echo}}]}}
{EXECUTE_AND_ANSWER}"#
    );
    let case = Case::new(WORKFLOW, &replies);
    let run = case.exec(&[]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    let plan = &case.events_of("plan_created")[0];
    assert_eq!(plan["attempts"], 2);
    assert_eq!(plan["source"], "planner");
}

#[test]
fn a_planner_that_keeps_answering_garbage_fails_the_run_after_max_attempts() {
    let workflow = format!("{WORKFLOW}plan: {{max_attempts: 3}}\n");
    let replies =
        "planner:\n  - {text: 'Sure! I would first look at the problem.', repeat: true}\n";
    let case = Case::new(&workflow, replies);
    let run = case.exec(&[]);
    assert_eq!(run.code, 1);
    assert_eq!(run.status(), "failed");
    assert_eq!(
        run.reason(),
        "the planner gave no valid plan in 3 attempts; last problem: the reply is not JSON: `Sure! I would first look at the problem.`"
    );
    assert_eq!(run.steps(), steps(&[]));
    assert_eq!(case.llm_roles(), ["planner", "planner", "planner"]);
    assert!(case.events_of("plan_created").is_empty());
}

#[test]
fn plans_over_max_steps_or_with_cycles_are_refused() {
    let workflow = format!("{WORKFLOW}plan: {{max_attempts: 1, max_steps: 2}}\n");
    let replies = r#"
planner:
  - json: {steps: [{id: a, description: x, depends_on: [c]}, {id: b, description: y}, {id: c, description: z, depends_on: [a]}]}
"#;
    let case = Case::new(&workflow, replies);
    let run = case.exec(&[]);
    assert_eq!(run.status(), "failed");
    assert_eq!(
        run.reason(),
        "the planner gave no valid plan in 1 attempt; last problem: the plan has 3 steps; at most 2 are allowed; steps depend on each other in a cycle: a -> c -> a"
    );
}

#[test]
fn an_empty_plan_is_not_a_plan() {
    let workflow = format!("{WORKFLOW}plan: {{max_attempts: 1}}\n");
    let case = Case::new(&workflow, "planner:\n  - json: {steps: []}\n");
    let run = case.exec(&[]);
    assert_eq!(
        run.reason(),
        "the planner gave no valid plan in 1 attempt; last problem: the plan has no steps"
    );
}

#[test]
fn a_fixed_plan_skips_the_planner_and_renders_inputs() {
    let workflow = r#"
version: 1
name: fixed
inputs: {version: {type: string}}
models: {default: scripted/replies.yaml}
task: Ship {{ inputs.version }}
plan:
  steps:
    - {id: ship, description: 'Ship {{ inputs.version }}'}
"#;
    let replies = r#"
executor:
  - {when: 'Step `ship`: Ship 2.0.0', text: shipped}
synthesizer:
  - {when: 'ship (succeeded): shipped', text: ok}
"#;
    let case = Case::new(workflow, replies);
    let run = case.exec(&["--input", "version=2.0.0"]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    assert_eq!(run.doc["output"], "ok");
    assert_eq!(case.llm_roles(), ["executor", "synthesizer"]);
    assert_eq!(case.events_of("plan_created")[0]["source"], "fixed");
}

#[test]
fn plan_only_prints_the_plan_and_executes_nothing() {
    let replies = r#"
planner:
  - json: {steps: [{id: a, description: first, tool: echo, expected: an echo}, {id: b, description: second, depends_on: [a]}]}
"#;
    let case = Case::new(WORKFLOW, replies);
    let out = case.exec_raw(&["--plan-only"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "1. a: first [tool: echo]\n   expected: an echo\n2. b: second (after a)\n"
    );
    assert_eq!(case.llm_roles(), ["planner"]);
    let finished = &case.events_of("run_finished")[0];
    assert_eq!(finished["status"], "awaiting_approval");
    assert_eq!(
        finished["reason"],
        "--plan-only: the plan was made and not executed"
    );
}

#[test]
fn a_plan_that_needs_approval_waits_without_yes_and_runs_with_it() {
    let workflow =
        format!("{WORKFLOW}plan: {{approve: true, steps: [{{id: a, description: first}}]}}\n");
    let case = Case::new(&workflow, EXECUTE_AND_ANSWER);
    let run = case.exec(&[]);
    assert_eq!(run.code, 5);
    assert_eq!(run.status(), "awaiting_approval");
    let id = run.doc["run_id"].as_str().unwrap();
    assert_eq!(
        run.reason(),
        format!(
            "the plan needs approval: continue with `pe resume {id} --approve` (or --reject), or run again with --yes"
        )
    );
    assert_eq!(run.steps(), steps(&[("a", "pending")]));
    assert!(case.events_of("plan_approved").is_empty());

    let run = case.exec(&["--yes"]);
    assert_eq!(run.code, 0);
    assert_eq!(case.events_of("plan_approved")[0]["by"], "flag");
}
