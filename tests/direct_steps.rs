//! Direct tool steps (issue 12): plan steps with `args` run their tool without an executor
//! call; `{{ steps.ID.result }}` in args reads an earlier result and makes a dependency;
//! `output.template` answers without the synthesizer. Through the `pe` binary.

mod exec_support;

use exec_support::{Case, steps};
use serde_json::{Value, json};

/// A chain of `n` steps, each appending its number to the previous step's result.
fn chain(n: usize) -> String {
    let mut plan = String::new();
    for i in 0..n {
        if i == 0 {
            plan.push_str(
                "    - {id: s0, description: start, tool: append, args: {text: start, add: 0}}\n",
            );
        } else {
            plan.push_str(&format!(
                "    - {{id: s{i}, description: add {i}, tool: append, args: {{text: '{{{{ steps.s{}.result }}}}', add: {i}}}}}\n",
                i - 1
            ));
        }
    }
    plan
}

const APPEND_TOOL: &str = r#"tools:
  append:
    description: Append a number to a text.
    parameters:
      type: object
      properties: {text: {type: string}, add: {type: integer}}
      required: [text, add]
      additionalProperties: false
    mock: '{{ args.text }}+{{ args.add }}'
"#;

#[test]
fn a_fixed_chain_of_fifty_direct_steps_makes_no_model_call() {
    let workflow = format!(
        "version: 1\nname: chain\ntask: Build a chain.\nmodels: {{default: scripted/replies.yaml}}\n{APPEND_TOOL}plan:\n  max_steps: 50\n  steps:\n{}output:\n  template: '{{{{ steps.s49.result }}}}'\nreplan: {{when: never}}\n",
        chain(50)
    );
    // No replies at all: any model call would fail the run.
    let case = Case::new(&workflow, "{}\n");
    let check = case.pe().args(["check", "workflow.yaml"]).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let run = case.exec(&[]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    assert_eq!(run.code, 0);
    let want: String = std::iter::once("start".to_string())
        .chain((0..50).map(|i| format!("+{i}")))
        .collect();
    assert_eq!(run.doc["output"], json!(want));
    assert!(case.llm_roles().is_empty(), "{:?}", case.llm_roles());
    // Every step is journaled as a tool call, started durably before it ran, and each
    // reference became a dependency.
    assert_eq!(case.events_of("tool_started").len(), 50);
    let calls = case.events_of("tool_call");
    assert_eq!(calls.len(), 50);
    assert_eq!(calls[1]["arguments"], json!({"text": "start+0", "add": 1}));
    let plan = &case.events_of("plan_created")[0]["steps"];
    assert_eq!(plan[7]["depends_on"], json!(["s6"]));
}

#[test]
fn a_planner_plan_with_args_runs_fifty_steps_in_two_model_calls() {
    let steps: Vec<Value> = (0..50)
        .map(|i| {
            let text = if i == 0 {
                json!("start")
            } else {
                json!(format!("{{{{ steps.s{}.result }}}}", i - 1))
            };
            json!({"id": format!("s{i}"), "description": format!("add {i}"), "tool": "append",
                   "args": {"text": text, "add": i}})
        })
        .collect();
    let replies = format!(
        "planner:\n  - json: {}\nsynthesizer:\n  - {{when: 'start+0+1', text: 'done'}}\n",
        json!({ "steps": steps })
    );
    let workflow = format!(
        "version: 1\nname: chain\ntask: Build a chain.\nmodels: {{default: scripted/replies.yaml}}\n{APPEND_TOOL}plan:\n  max_steps: 50\n  step_args: required\nreplan: {{when: never}}\n"
    );
    let case = Case::new(&workflow, &replies);
    let run = case.exec(&[]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    assert_eq!(run.doc["output"], json!("done"));
    assert_eq!(case.llm_roles(), ["planner", "synthesizer"]);
    assert_eq!(case.events_of("tool_call").len(), 50);
}

const PLANNER_WORKFLOW: &str = r#"version: 1
name: direct
task: Look up the status of checkout.
models: {default: scripted/replies.yaml}
tools:
  status:
    description: The status of a service.
    parameters:
      type: object
      properties: {service: {type: string, enum: [checkout, search]}}
      required: [service]
      additionalProperties: false
    mock:
      cases:
        - {when: {service: '{{ inputs.service }}'}, result: '{{ args.service }} is green'}
      error: 'asked about {{ args.service }}, not the service the task names'
inputs:
  service: {type: string, default: checkout}
plan:
  step_args: STEP_ARGS
execute:
  direct_fallback: FALLBACK
replan: {when: never}
output:
  template: '{% for id, s in steps | items %}{{ s.result }}{% endfor %}'
"#;

fn planner_case(step_args: &str, fallback: &str, replies: &str) -> Case {
    Case::new(
        &PLANNER_WORKFLOW
            .replace("STEP_ARGS", step_args)
            .replace("FALLBACK", fallback),
        replies,
    )
}

#[test]
fn planner_args_that_do_not_fit_the_tool_are_sent_back_before_anything_runs() {
    // Each re-ask is answered only when its prompt carries the exact problem.
    let replies = r#"planner:
  - json: {steps: [{id: look, description: look, tool: status, args: {service: checkout, extra: 1}}]}
  - when: "step `look`: invalid arguments for `status`: Additional properties are not allowed ('extra' was unexpected)"
    json: {steps: [{id: look, description: look, tool: status}]}
  - when: "step `look` has no `args`; every step names a tool and its arguments"
    json: {steps: [{id: look, description: look, tool: status, args: {service: checkout}}]}
"#;
    let case = planner_case("required", "policy", replies);
    let run = case.exec(&[]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    assert_eq!(run.doc["output"], json!("checkout is green"));
    assert_eq!(case.llm_roles(), ["planner", "planner", "planner"]);
    assert_eq!(case.events_of("tool_call").len(), 1);
}

#[test]
fn a_failing_direct_step_follows_the_failure_policy_and_never_invents_an_answer() {
    let replies = r#"planner:
  - json: {steps: [{id: look, description: look, tool: status, args: {service: search}}]}
"#;
    let case = planner_case("required", "policy", replies);
    let run = case.exec(&[]);
    assert_eq!(run.status(), "failed", "{}", run.stderr);
    assert_ne!(run.code, 0);
    assert_eq!(run.doc["output"], Value::Null);
    assert_eq!(run.steps(), steps(&[("look", "failed")]));
    assert_eq!(
        run.step("look")["error"],
        json!("tool `status` failed: asked about search, not the service the task names")
    );
    assert_eq!(case.llm_roles(), ["planner"]);
}

#[test]
fn a_failing_direct_step_falls_back_to_the_executor_when_the_workflow_says_so() {
    let replies = r#"planner:
  - json: {steps: [{id: look, description: look up checkout, tool: status, args: {service: search}}]}
executor:
  - {when: 'Step `look`', tool_calls: [{name: status, arguments: {service: checkout}}]}
  - {when: 'checkout is green', json: {status: succeeded, result: checkout is green}}
"#;
    let case = planner_case("optional", "executor", replies);
    let run = case.exec(&[]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    assert_eq!(run.doc["output"], json!("checkout is green"));
    assert_eq!(case.llm_roles(), ["planner", "executor", "executor"]);
    // Two tool calls of one attempt, with different idempotency keys.
    let keys: Vec<Value> = case
        .events_of("tool_started")
        .iter()
        .map(|e| e["idempotency_key"].clone())
        .collect();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);
}

#[test]
fn a_step_reading_a_failed_step_does_not_run() {
    let workflow = r#"version: 1
name: refs
task: t
models: {default: scripted/replies.yaml}
tools:
  echo:
    description: Echo.
    parameters: {type: object, properties: {text: {type: string}}, required: [text]}
    mock:
      cases:
        - {when: {text: boom}, error: exploded}
      result: 'echo {{ args.text }}'
plan:
  steps:
    - {id: a, description: a, tool: echo, args: {text: boom}}
    - {id: b, description: b, tool: echo, args: {text: 'after {{ steps.a.result }}'}}
replan: {when: never, on_step_failure: {then: skip}}
output:
  template: '{{ steps.b.status }}'
"#;
    let case = Case::new(workflow, "{}\n");
    let run = case.exec(&[]);
    assert_eq!(run.steps(), steps(&[("a", "failed"), ("b", "skipped")]));
    assert_eq!(run.status(), "failed", "{}", run.stderr);
    assert_eq!(case.events_of("tool_call").len(), 1);
}

#[test]
fn check_reports_every_problem_of_fixed_args_with_its_place() {
    let workflow = r#"version: 1
name: bad-args
task: t
models: {default: scripted/replies.yaml}
tools:
  echo:
    description: Echo.
    parameters:
      type: object
      properties: {text: {type: string}, n: {type: integer}}
      required: [text]
      additionalProperties: false
    mock: ok
plan:
  steps:
    - {id: a, description: a, args: {text: hi}}
    - {id: b, description: b, tool: echo, args: {text: '{{ steps.nope.result }}', n: '{{ inputs.count }}'}}
    - {id: c, description: c, tool: echo, args: {txt: hi, n: two}}
    - {id: d, description: d, tool: echo, args: {text: '{{ steps.d.result }}'}}
output:
  template: '{{ steps.zzz.result }}'
"#;
    let case = Case::new(workflow, "{}\n");
    let out = case
        .pe()
        .args(["check", "workflow.yaml", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<(String, u64, String)> = doc["files"][0]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        (
            "pe::step-arguments",
            16,
            "step `a` has `args` but no `tool`",
        ),
        (
            "pe::unknown-step",
            17,
            "step `b`'s args read unknown step `nope`",
        ),
        (
            "pe::undefined-variable",
            17,
            "`inputs.count` is not a declared input",
        ),
        (
            "pe::step-arguments",
            18,
            "step `c`: invalid arguments for `echo`: /n: \"two\" is not of type \"integer\"; Additional properties are not allowed ('txt' was unexpected); \"text\" is a required property",
        ),
        (
            "pe::unknown-step",
            19,
            "step `d`'s args read its own result",
        ),
        (
            "pe::unknown-step",
            21,
            "output.template reads unknown step `zzz`",
        ),
    ];
    let want: Vec<(String, u64, String)> = want
        .iter()
        .map(|(c, l, m)| (c.to_string(), *l, m.to_string()))
        .collect();
    assert_eq!(found, want);
}

/// Random DAGs of direct steps whose only dependencies are references in `args`, run in
/// parallel, 40 seeds: a step starts only after every step it reads succeeded, a step that
/// reads a failed step never runs, and (failures accepted by `then: skip`) the run is
/// `completed` (exit 0) exactly when some step succeeded.
#[test]
fn references_order_parallel_direct_steps_on_every_seed() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    for seed in 0..40 {
        let count = 2 + next(7) as usize;
        let mut reads: Vec<Vec<usize>> = Vec::new();
        let mut plan = String::new();
        for i in 0..count {
            let fails = next(5) == 0;
            let mine: Vec<usize> = if fails {
                Vec::new()
            } else {
                (0..i).filter(|_| next(3) == 0).collect()
            };
            let text = if fails {
                "boom".to_string()
            } else {
                let refs: Vec<String> = mine
                    .iter()
                    .map(|j| format!("{{{{ steps.s{j}.result }}}}"))
                    .collect();
                format!("s{i}:{}", refs.join(","))
            };
            plan.push_str(&format!(
                "    - {{id: s{i}, description: s{i}, tool: echo, args: {{text: '{text}'}}}}\n"
            ));
            reads.push(mine);
        }
        let workflow = format!(
            "version: 1\nname: dag\ntask: t\nmodels: {{default: scripted/replies.yaml}}\n\
             tools:\n  echo:\n    description: Echo.\n\
             \x20   parameters: {{type: object, properties: {{text: {{type: string}}}}, required: [text]}}\n\
             \x20   mock:\n      cases:\n        - {{when: {{text: boom}}, error: exploded}}\n\
             \x20     result: '{{{{ args.text }}}}'\n\
             plan:\n  parallel: true\n  max_concurrency: 4\n  max_steps: 10\n  steps:\n{plan}\
             replan: {{when: never, on_step_failure: {{then: skip}}}}\n\
             output: {{template: done}}\n"
        );
        let case = Case::new(&workflow, "{}\n");
        let run = case.exec(&[]);
        let events = case.events();
        let mut succeeded_any = false;
        for (i, mine) in reads.iter().enumerate() {
            let id = format!("s{i}");
            let status = run.step(&id)["status"].as_str().unwrap().to_string();
            succeeded_any |= status == "succeeded";
            let started = events
                .iter()
                .find(|e| e["type"] == "step_started" && e["step"] == id.as_str())
                .map(|e| e["seq"].as_u64().unwrap());
            for j in mine {
                let dep = format!("s{j}");
                let dep_ok = run.step(&dep)["status"] == "succeeded";
                match started {
                    Some(seq) => {
                        assert!(
                            dep_ok,
                            "seed {seed}: {id} ran though {dep} did not succeed\n{workflow}"
                        );
                        let done = events
                            .iter()
                            .find(|e| {
                                e["type"] == "step_finished"
                                    && e["step"] == dep.as_str()
                                    && e["status"] == "succeeded"
                            })
                            .map(|e| e["seq"].as_u64().unwrap())
                            .unwrap();
                        assert!(
                            done < seq,
                            "seed {seed}: {id} started before {dep} finished\n{workflow}"
                        );
                    }
                    None => assert!(
                        !dep_ok || status == "skipped",
                        "seed {seed}: {id} never started ({status})\n{workflow}"
                    ),
                }
            }
        }
        // `then: skip` accepts every failure (docs/semantics.md): the run completes exactly
        // when some step succeeded.
        let completed = run.status() == "completed";
        assert_eq!(
            completed,
            succeeded_any,
            "seed {seed}: {}\n{workflow}",
            run.status()
        );
        assert_eq!(run.code == 0, completed, "seed {seed}");
    }
}
