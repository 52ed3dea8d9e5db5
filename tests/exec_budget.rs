//! `pe exec`: every budget limit stops the run before it is crossed, with exit 4 and what
//! was done kept.

mod exec_support;

use exec_support::{Case, steps};

/// Three independent steps; `budget` and `models` spliced in.
fn workflow(budget: &str, extra: &str) -> String {
    format!(
        r#"
version: 1
name: budgets
models: {{default: scripted/replies.yaml}}
task: Three things
plan:
  steps:
    - {{id: a, description: first}}
    - {{id: b, description: second}}
    - {{id: c, description: third}}
budget: {budget}
{extra}"#
    )
}

/// Every call reports 10 input and 10 output tokens.
const REPLIES: &str = r#"
executor:
  - {text: done, repeat: true, usage: {input_tokens: 10, output_tokens: 10}}
synthesizer:
  - {text: all done, usage: {input_tokens: 10, output_tokens: 10}}
"#;

#[test]
fn max_llm_calls_refuses_the_call_beyond_the_limit() {
    let case = Case::new(&workflow("{max_llm_calls: 3}", ""), REPLIES);
    let run = case.exec(&[]);
    assert_eq!((run.code, run.status()), (4, "budget_exhausted"));
    assert_eq!(
        run.reason(),
        "budget.max_llm_calls (3) reached: 3 used, the next call needs 1"
    );
    assert_eq!(
        run.steps(),
        steps(&[("a", "succeeded"), ("b", "succeeded"), ("c", "succeeded")])
    );
    assert_eq!(run.doc["usage"]["llm_calls"], 3);
    assert_eq!(run.doc["output"], serde_json::Value::Null);
    let hit = &case.events_of("budget_exhausted")[0];
    assert_eq!(
        (
            hit["limit"].as_str(),
            hit["max"].as_f64(),
            hit["used"].as_f64()
        ),
        (Some("max_llm_calls"), Some(3.0), Some(3.0))
    );
}

#[test]
fn max_tokens_counts_the_next_calls_estimate() {
    let case = Case::new(&workflow("{max_tokens: 50}", ""), REPLIES);
    let run = case.exec(&[]);
    assert_eq!(run.status(), "budget_exhausted");
    assert_eq!(
        run.reason(),
        "budget.max_tokens (50) reached: 40 used, the next call needs 20"
    );
    assert_eq!(
        run.steps(),
        steps(&[("a", "succeeded"), ("b", "succeeded"), ("c", "failed")])
    );
    assert_eq!(run.step("c")["error"], run.reason());
    assert_eq!(
        run.doc["usage"]["input_tokens"].as_u64().unwrap()
            + run.doc["usage"]["output_tokens"].as_u64().unwrap(),
        40
    );
}

#[test]
fn max_cost_usd_uses_declared_prices() {
    // $1 per token: each call costs $20.
    let models = "models: {default: {model: scripted/replies.yaml, price: {input_per_mtok: 1000000, output_per_mtok: 1000000}}}";
    let wf = workflow("{max_cost_usd: 50}", "")
        .replace("models: {default: scripted/replies.yaml}", models);
    let case = Case::new(&wf, REPLIES);
    let run = case.exec(&[]);
    assert_eq!(run.status(), "budget_exhausted");
    assert_eq!(
        run.reason(),
        "budget.max_cost_usd ($50) reached: $40.000000 spent, the next call needs $20.000000"
    );
    assert_eq!(run.doc["usage"]["cost_usd"], 40.0);
}

#[test]
fn per_role_limits_apply_to_their_role() {
    let case = Case::new(
        &workflow("{per_role: {executor: {max_llm_calls: 2}}}", ""),
        REPLIES,
    );
    let run = case.exec(&[]);
    assert_eq!(run.status(), "budget_exhausted");
    assert_eq!(
        run.reason(),
        "budget.per_role.executor.max_llm_calls (2) reached: 2 used, the next call needs 1"
    );
    assert_eq!(case.events_of("budget_exhausted")[0]["role"], "executor");
}

#[test]
fn concurrent_steps_cannot_overspend_together() {
    let wf = workflow("{max_llm_calls: 2}", "")
        .replace("plan:\n", "plan:\n  parallel: true\n  max_concurrency: 3\n");
    let case = Case::new(&wf, REPLIES);
    let run = case.exec(&[]);
    assert_eq!(run.status(), "budget_exhausted");
    assert_eq!(run.doc["usage"]["llm_calls"], 2);
    assert_eq!(case.events_of("llm_call").len(), 2);
}

#[test]
fn the_run_timeout_interrupts_a_long_step() {
    let wf = r#"
version: 1
name: slow
models: {default: scripted/replies.yaml}
tools:
  wait:
    description: Waits.
    command: [sleep, '5']
task: Wait
plan: {steps: [{id: a, description: wait}]}
budget: {timeout: 300ms}
"#;
    let replies = "executor:\n  - {tool_calls: [{name: wait}]}\n";
    let case = Case::new(wf, replies);
    let t0 = std::time::Instant::now();
    let run = case.exec(&[]);
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(4),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!((run.code, run.status()), (4, "budget_exhausted"));
    assert_eq!(run.reason(), "budget.timeout (300ms) reached");
    assert_eq!(run.step("a")["status"], "failed");
    assert_eq!(
        run.step("a")["error"],
        "interrupted: the run ended budget_exhausted"
    );
    assert_eq!(case.events_of("budget_exhausted")[0]["limit"], "timeout");
}

#[test]
fn cached_input_tokens_are_journaled_and_priced_at_their_own_price() {
    // Each call: 10 input tokens of which 8 were cached, 10 output tokens. Per token: input
    // $1, cached input $0.25, output $2 → 2 × 1 + 8 × 0.25 + 10 × 2 = $24 per call.
    let models = "models: {default: {model: scripted/replies.yaml, price: {input_per_mtok: 1000000, cached_input_per_mtok: 250000, output_per_mtok: 2000000}}}";
    let wf = workflow("{}", "").replace("models: {default: scripted/replies.yaml}", models);
    let replies = REPLIES.replace(
        "usage: {input_tokens: 10, output_tokens: 10}",
        "usage: {input_tokens: 10, cached_input_tokens: 8, output_tokens: 10}",
    );
    let case = Case::new(&wf, &replies);
    let run = case.exec(&[]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    let calls = case.events_of("llm_call");
    let seen: Vec<(u64, u64, f64)> = calls
        .iter()
        .map(|e| {
            (
                e["input_tokens"].as_u64().unwrap(),
                e["cached_input_tokens"].as_u64().unwrap(),
                e["cost_usd"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, vec![(10, 8, 24.0); 4]);
    assert_eq!(run.doc["usage"]["cost_usd"], 96.0);
    assert_eq!(run.doc["usage"]["cached_input_tokens"], 32);
    assert_eq!(
        run.doc["usage"]["per_role"]["executor"]["cached_input_tokens"],
        24
    );
}
