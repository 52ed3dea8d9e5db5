//! `pe exec` against a flaky model service: of every 100 requests, 20 get a 500, 10 a 429
//! with `Retry-After` (0 or 1 seconds), 5 a truncated JSON body, and one request hangs past
//! the provider's timeout. Every run must still complete with every step run exactly once,
//! every failed attempt journaled as an `llm_retry`, and `Retry-After` honoured exactly.

mod exec_support;
mod fake_llm;

use exec_support::Case;
use fake_llm::{Behaviour, FakeLlm, Fault, Wire, assert_every_step_ran_once, deck, exec, workflow};
use serde_json::Value;

const KEY: &str = "sk-test-faults-0123456789";

fn faults() -> Vec<Fault> {
    let mut faults = deck(
        7,
        100,
        &[
            (Fault::ServerError, 20),
            (Fault::RateLimited { retry_after: 0 }, 5),
            (Fault::RateLimited { retry_after: 1 }, 5),
            (Fault::Truncated, 5),
        ],
    );
    // The planner's first request of the first run hangs.
    faults[0] = Fault::Hang;
    faults
}

/// Runs the workflow once and checks the run and its journal against what the fake did.
fn run_once(fake: &FakeLlm, models: &str, env: &[(&str, &str)]) -> usize {
    let before = fake.seen.lock().unwrap().faults;
    let case = Case::new(&workflow(models, ""), "");
    let run = exec(&case, env, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_every_step_ran_once(&case, &run);
    assert_eq!(fake.violations(), Vec::<String>::new());

    let injected = fake.seen.lock().unwrap().faults - before;
    let retries = case.events_of("llm_retry");
    assert_eq!(
        retries.len(),
        injected,
        "every injected fault is one journaled retry"
    );
    let calls = case.events_of("llm_call");
    assert_eq!(
        calls.len(),
        10,
        "1 planner + 8 executor + 1 synthesizer calls"
    );
    let attempts: u64 = calls
        .iter()
        .map(|c| c.get("attempts").and_then(Value::as_u64).unwrap_or(1))
        .sum();
    assert_eq!(attempts as usize, calls.len() + retries.len());
    assert!(calls.iter().all(|c| c.get("error").is_none()));
    // The progress view on stderr shows each retry as it happens.
    let line = regex_lite::Regex::new(
        r"^  (planner|executor|synthesizer) model( \[[a-d]\])?: attempt [1-9] failed: .+; retrying in ([0-9]+ms|[0-9]+\.[0-9]s)$",
    )
    .unwrap();
    let shown = run.stderr.lines().filter(|l| line.is_match(l)).count();
    assert_eq!(shown, injected, "{}", run.stderr);
    // `pe show` gives the attempts of each call that needed more than one.
    let retried = calls.iter().filter(|c| c.get("attempts").is_some()).count();
    let out = fake_llm::pe(&case, env, &["show", "latest"]);
    let timeline = String::from_utf8_lossy(&out.stdout).to_string();
    let line = regex_lite::Regex::new(
        r"^[0-9:.]{12} +(planner|executor|synthesizer) call( \[[a-d]\])? · \S+ · 100\+10 tokens · ([0-9]+ms|[0-9]+\.[0-9]s) · [2-9] attempts$",
    )
    .unwrap();
    let shown = timeline.lines().filter(|l| line.is_match(l)).count();
    assert_eq!(shown, retried, "{timeline}");
    for r in &retries {
        let error = r["error"].as_str().unwrap();
        match r.get("status").and_then(Value::as_u64) {
            Some(500) => assert_eq!(
                error,
                "HTTP 500 Internal Server Error: injected server error"
            ),
            Some(429) => {
                assert_eq!(error, "HTTP 429 Too Many Requests: injected rate limit");
                assert!(
                    r["delay_ms"] == 0 || r["delay_ms"] == 1000,
                    "Retry-After: {r}"
                );
            }
            Some(200) => assert!(
                error.starts_with("malformed response body: EOF while parsing"),
                "{error}"
            ),
            None => assert_eq!(error, "no answer within 2s (the provider's timeout)"),
            other => panic!("unexpected status {other:?}: {r}"),
        }
    }
    injected
}

#[tokio::test(flavor = "multi_thread")]
async fn every_run_completes_through_injected_faults_with_no_step_lost_or_run_twice() {
    let fake = FakeLlm::start(
        Wire::OpenAi,
        Behaviour {
            key: Some(KEY.into()),
            faults: faults(),
            ..Behaviour::default()
        },
    )
    .await;
    let models = format!(
        "providers:\n  flaky: {{kind: openai, base_url: '{}/v1', api_key_env: FLAKY_KEY, timeout: 2s, max_retries: 8}}\nmodels: {{default: flaky/m}}",
        fake.uri()
    );
    let mut injected = 0;
    for _ in 0..3 {
        injected += run_once(&fake, &models, &[("FLAKY_KEY", KEY)]);
    }
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.requests.len(), 30 + injected);
    assert!(injected >= 10, "only {injected} faults were injected");
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_runs_complete_through_the_same_faults() {
    let fake = FakeLlm::start(
        Wire::Anthropic,
        Behaviour {
            key: Some(KEY.into()),
            faults: faults(),
            ..Behaviour::default()
        },
    )
    .await;
    let models = format!(
        "providers:\n  claude: {{kind: anthropic, base_url: '{}', api_key_env: CLAUDE_KEY, timeout: 2s, max_retries: 8}}\nmodels: {{default: claude/sonnet}}",
        fake.uri()
    );
    let mut injected = 0;
    for _ in 0..2 {
        injected += run_once(&fake, &models, &[("CLAUDE_KEY", KEY)]);
    }
    assert!(injected >= 10, "only {injected} faults were injected");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_cut_off_by_a_step_timeout_counts_against_the_budget_as_estimated() {
    // The first executor request hangs; the step times out and is retried. The cut call may
    // have used tokens, so it is recorded (estimated) and counts: with `max_llm_calls: 3`
    // the retry's three calls (tool turn, final answer, synthesizer) no longer fit, with 4
    // they do — and no reservation outlives the dropped call.
    for (limit, want) in [(3, (4, "budget_exhausted")), (4, (0, "completed"))] {
        let mut faults = vec![Fault::None; 100];
        faults[0] = Fault::Hang;
        let fake = FakeLlm::start(
            Wire::OpenAi,
            Behaviour {
                faults,
                ..Behaviour::default()
            },
        )
        .await;
        let models = format!(
            "providers:\n  slow: {{kind: openai, base_url: '{}/v1', timeout: 20s}}\nmodels: {{default: slow/m}}",
            fake.uri()
        );
        let extra = format!(
            "execute: {{step_timeout: 1s}}\nreplan: {{when: never, on_step_failure: {{retries: 1, then: skip}}}}\nbudget: {{max_llm_calls: {limit}}}"
        );
        let workflow = workflow(&models, &extra).replace(
            "plan: {parallel: true, max_concurrency: 4}",
            "plan: {steps: [{id: a, description: Look up a}]}",
        );
        let case = Case::new(&workflow, "");
        let run = exec(&case, &[], &[]);
        assert_eq!((run.code, run.status()), want, "{}", run.reason());
        let cut: Vec<Value> = case
            .events_of("llm_call")
            .into_iter()
            .filter(|c| c["estimated"] == true)
            .map(|c| c["error"].clone())
            .collect();
        assert_eq!(
            cut,
            ["cancelled before the model answered (a timeout); usage estimated"]
        );
        if want.1 == "completed" {
            assert_eq!(run.step("a")["attempts"], 2);
            assert_eq!(run.step("a")["result"], "value of a + value of a2");
            assert_eq!(run.doc["usage"]["llm_calls"], 4);
            assert_eq!(run.doc["usage"]["requests"], 4);
        }
        assert_eq!(fake.violations(), Vec::<String>::new());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn when_every_attempt_fails_the_call_fails_and_the_engine_policy_applies() {
    let fake = FakeLlm::start(
        Wire::OpenAi,
        Behaviour {
            fixed: Some((503, serde_json::json!({"error": {"message": "overloaded"}}))),
            ..Behaviour::default()
        },
    )
    .await;
    let models = format!(
        "providers:\n  busy: {{kind: openai, base_url: '{}/v1', max_retries: 1}}\nmodels: {{default: busy/m}}",
        fake.uri()
    );
    let workflow = workflow(&models, "").replace(
        "plan: {parallel: true, max_concurrency: 4}",
        "plan: {max_attempts: 2}",
    );
    let case = Case::new(&workflow, "");
    let run = exec(&case, &[], &[]);
    assert_eq!(
        (run.code, run.status(), run.reason()),
        (
            1,
            "failed",
            "the planner's model failed: busy gave no usable answer for model `m` after 2 attempts: HTTP 503 Service Unavailable: overloaded"
        )
    );
    // Two planner calls (the engine re-asks), two HTTP attempts each.
    assert_eq!(fake.requests().len(), 4);
    assert_eq!(case.events_of("llm_retry").len(), 2);
    let attempts: Vec<Value> = case
        .events_of("llm_call")
        .iter()
        .map(|c| c["attempts"].clone())
        .collect();
    assert_eq!(attempts, [2, 2]);
}
