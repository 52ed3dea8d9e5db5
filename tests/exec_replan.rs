//! `pe exec`: step failures, retries, and every replanner decision.

mod exec_support;

use exec_support::{Case, steps};
use serde_json::json;

/// ci → smoke → deploy → verify, with `replan:` settings spliced in.
fn workflow(replan: &str) -> String {
    format!(
        r#"
version: 1
name: release
models: {{default: scripted/replies.yaml}}
task: Release 1.4.3
plan:
  steps:
    - {{id: ci, description: Run CI}}
    - {{id: smoke, description: Smoke test, depends_on: [ci]}}
    - {{id: deploy, description: Deploy, depends_on: [smoke]}}
    - {{id: verify, description: Verify, depends_on: [deploy]}}
replan: {replan}
"#
    )
}

/// Executor replies: `smoke` fails (once, or always with `repeat`), everything else succeeds.
fn replies(smoke_repeat: bool, extra: &str) -> String {
    format!(
        r#"
executor:
  - {{when: 'Step `smoke`', json: {{status: failed, result: smoke red}}, repeat: {smoke_repeat}}}
  - {{when: 'Step `smoke`', json: {{status: succeeded, result: smoke green}}}}
  - {{text: ok, repeat: true}}
synthesizer:
  - {{text: summary}}
{extra}"#
    )
}

#[test]
fn revise_inserts_a_fix_step_and_keeps_finished_results() {
    let extra = r#"
replanner:
  - when: 'Step `smoke` failed: smoke red'
    json:
      decision: revise
      reason: the health check is broken
      steps:
        - {id: fix, description: Fix the health check}
        - {id: smoke_again, description: Smoke test again, depends_on: [fix, ci]}
        - {id: deploy, description: Deploy, depends_on: [smoke_again]}
        - {id: verify, description: Verify, depends_on: [deploy]}
"#;
    let case = Case::new(&workflow("{max_replans: 2}"), &replies(true, extra));
    let run = case.exec(&[]);
    assert_eq!((run.code, run.status()), (0, "completed"), "{}", run.stderr);
    assert_eq!(
        run.steps(),
        steps(&[
            ("ci", "succeeded"),
            ("smoke", "failed"),
            ("fix", "succeeded"),
            ("smoke_again", "succeeded"),
            ("deploy", "succeeded"),
            ("verify", "succeeded"),
        ])
    );
    assert_eq!(run.step("smoke")["error"], "smoke red");
    assert_eq!(run.doc["replans"], 1);
    let replanned = &case.events_of("replanned")[0];
    assert_eq!(replanned["decision"], "revise");
    assert_eq!(replanned["trigger"], "on_failure");
    // ci ran once: its result was kept, not recomputed.
    let started: Vec<_> = case
        .events_of("step_started")
        .iter()
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        started,
        ["ci", "smoke", "fix", "smoke_again", "deploy", "verify"]
    );
}

#[test]
fn continue_keeps_going_without_the_failed_steps_dependents() {
    let extra = "replanner:\n  - {json: {decision: continue}}\n";
    let case = Case::new(&workflow("{}"), &replies(true, extra));
    let run = case.exec(&[]);
    // `continue` keeps the remaining steps but does not accept the failure: the run fails.
    assert_eq!(
        (run.code, run.status(), run.reason(), &run.doc["cause"]),
        (
            1,
            "failed",
            "step `smoke` failed: smoke red",
            &json!("steps_failed")
        )
    );
    assert_eq!(
        run.steps(),
        steps(&[
            ("ci", "succeeded"),
            ("smoke", "failed"),
            ("deploy", "skipped"),
            ("verify", "skipped")
        ])
    );
    assert_eq!(run.step("deploy")["error"], "dependency `smoke` failed");
    assert_eq!(
        run.step("verify")["error"],
        "dependency `deploy` was skipped"
    );
}

#[test]
fn finish_answers_now_and_skips_the_rest() {
    let extra = "replanner:\n  - {json: {decision: finish, reason: CI is enough}}\n";
    let case = Case::new(&workflow("{when: after_each_step}"), &replies(true, extra));
    let run = case.exec(&[]);
    assert_eq!(run.status(), "completed");
    assert_eq!(run.doc["output"], "summary");
    assert_eq!(
        run.steps(),
        steps(&[
            ("ci", "succeeded"),
            ("smoke", "skipped"),
            ("deploy", "skipped"),
            ("verify", "skipped")
        ])
    );
    assert_eq!(
        run.step("smoke")["error"],
        "the replanner finished the run before this step"
    );
    assert_eq!(case.events_of("replanned")[0]["trigger"], "after_each_step");
}

#[test]
fn abort_ends_the_run_with_the_replanners_reason() {
    let extra =
        "replanner:\n  - {json: {decision: abort, reason: smoke is red and nothing can fix it}}\n";
    let case = Case::new(&workflow("{}"), &replies(true, extra));
    let run = case.exec(&[]);
    assert_eq!((run.code, run.status()), (1, "aborted"));
    assert_eq!(run.reason(), "smoke is red and nothing can fix it");
    assert_eq!(
        run.steps(),
        steps(&[
            ("ci", "succeeded"),
            ("smoke", "failed"),
            ("deploy", "skipped"),
            ("verify", "skipped")
        ])
    );
    assert_eq!(run.step("deploy")["error"], "the run ended aborted");
    assert_eq!(run.doc["output"], serde_json::Value::Null);
}

#[test]
fn a_replanner_that_never_finishes_stops_at_max_replans() {
    let extra = r#"
replanner:
  - json: {decision: revise, steps: [{id: smoke, description: Smoke test, depends_on: [ci]}]}
    repeat: true
"#;
    let case = Case::new(&workflow("{max_replans: 2}"), &replies(true, extra));
    let run = case.exec(&[]);
    assert_eq!((run.code, run.status()), (1, "failed"));
    assert_eq!(
        run.reason(),
        "replan.max_replans (2) reached: the replanner asked for another revision"
    );
    assert_eq!(run.doc["replans"], 2);
    assert_eq!(
        case.llm_roles()
            .iter()
            .filter(|r| *r == "replanner")
            .count(),
        3
    );
}

#[test]
fn a_failed_step_is_retried_before_the_policy_applies() {
    let case = Case::new(
        &workflow("{on_step_failure: {retries: 1, then: abort}}"),
        &replies(false, ""),
    );
    let run = case.exec(&[]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    assert_eq!(run.step("smoke")["attempts"], 2);
    assert_eq!(run.step("smoke")["result"], "smoke green");
    let attempts: Vec<_> = case
        .events_of("step_finished")
        .iter()
        .filter(|e| e["step"] == "smoke")
        .map(|e| {
            (
                e["attempt"].as_u64().unwrap(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [(1, "failed".to_string()), (2, "succeeded".to_string())]
    );
}

#[test]
fn then_skip_tolerates_the_failure_and_skips_dependents() {
    let case = Case::new(
        &workflow("{on_step_failure: {then: skip}}"),
        &replies(true, ""),
    );
    let run = case.exec(&[]);
    assert_eq!(run.status(), "completed");
    assert_eq!(
        run.steps(),
        steps(&[
            ("ci", "succeeded"),
            ("smoke", "failed"),
            ("deploy", "skipped"),
            ("verify", "skipped")
        ])
    );
    assert!(!case.llm_roles().contains(&"replanner".to_string()));
}

#[test]
fn then_abort_aborts_after_the_retries() {
    let case = Case::new(
        &workflow("{on_step_failure: {retries: 2, then: abort}}"),
        &replies(true, ""),
    );
    let run = case.exec(&[]);
    assert_eq!((run.code, run.status()), (1, "aborted"));
    assert_eq!(run.reason(), "step `smoke` failed: smoke red");
    assert_eq!(run.step("smoke")["attempts"], 3);
}

#[test]
fn without_a_replanner_a_failure_fails_the_run() {
    let case = Case::new(&workflow("{when: never}"), &replies(true, ""));
    let run = case.exec(&[]);
    assert_eq!((run.code, run.status()), (1, "failed"));
    assert_eq!(run.reason(), "step `smoke` failed: smoke red");
}

#[test]
fn after_plan_review_can_add_steps() {
    let extra = r#"
replanner:
  - when: '- verify: ok'
    json: {decision: revise, reason: announce it, steps: [{id: announce, description: Announce, depends_on: [verify]}]}
  - {when: '- announce: ok', json: {decision: continue}}
"#;
    let replies = format!(
        "executor:\n  - {{text: ok, repeat: true}}\nsynthesizer:\n  - {{text: summary}}\n{extra}"
    );
    let case = Case::new(&workflow("{when: after_plan}"), &replies);
    let run = case.exec(&[]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    assert_eq!(
        run.steps(),
        steps(&[
            ("ci", "succeeded"),
            ("smoke", "succeeded"),
            ("deploy", "succeeded"),
            ("verify", "succeeded"),
            ("announce", "succeeded")
        ])
    );
    let triggers: Vec<_> = case
        .events_of("replanned")
        .iter()
        .map(|e| e["trigger"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(triggers, ["after_plan", "after_plan"]);
}

#[test]
fn an_invalid_decision_is_re_asked_and_a_revision_may_not_reuse_finished_ids() {
    let extra = r#"
replanner:
  - {text: '{"decision": "retry"}'}
  - when: 'unknown decision `retry`'
    json: {decision: revise, steps: [{id: ci, description: again}]}
  - when: 'step id `ci` belongs to a step that already succeeded'
    json: {decision: continue}
"#;
    let case = Case::new(&workflow("{}"), &replies(true, extra));
    let run = case.exec(&[]);
    // The valid decision, `continue`, leaves the failure standing.
    assert_eq!(run.status(), "failed", "{}", run.stderr);
    let decisions: Vec<_> = case
        .events_of("replanned")
        .iter()
        .map(|e| e["decision"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(decisions, ["continue"]);
}
