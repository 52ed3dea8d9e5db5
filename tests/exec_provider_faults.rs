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
    let error = format!(
        "provider `busy` at {}/v1/chat/completions answered HTTP 503 Service Unavailable for model `m` in 2 attempts: overloaded",
        fake.uri()
    );
    assert_eq!(
        (run.code, run.status(), run.reason()),
        (
            1,
            "failed",
            format!("the planner's model failed: {error}").as_str()
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

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_cannot_be_reached_is_named_with_its_url_and_the_cause() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let models = format!(
        "providers:\n  down: {{kind: openai, base_url: 'http://127.0.0.1:{port}/v1', max_retries: 1}}\nmodels: {{default: down/m}}"
    );
    let workflow = workflow(&models, "").replace(
        "plan: {parallel: true, max_concurrency: 4}",
        "plan: {max_attempts: 1}",
    );
    let case = Case::new(&workflow, "");
    let run = exec(&case, &[], &[]);
    let error = format!(
        "provider `down` at http://127.0.0.1:{port}/v1/chat/completions could not be reached in 2 attempts: cannot connect: client error (Connect): tcp connect error: Connection refused (os error 111)"
    );
    assert_eq!(
        (run.code, run.status(), run.reason()),
        (
            1,
            "failed",
            format!("the planner's model failed: {error}").as_str()
        )
    );
    let calls = case.events_of("llm_call");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["error"], error.as_str());
}

/// Issue 10, finding 5: a 20 MB reply cost 299 MB of memory. Bodies are read up to the
/// provider's `max_response_bytes` (4 MiB by default) and no further.
#[tokio::test(flavor = "multi_thread")]
async fn a_20_mb_reply_is_refused_unread_and_memory_stays_small() {
    let fake = FakeLlm::start(
        Wire::OpenAi,
        Behaviour {
            huge_plan_bytes: Some(20_000_000),
            ..Behaviour::default()
        },
    )
    .await;
    let models = format!(
        "providers:\n  big: {{kind: openai, base_url: '{}/v1'}}\nmodels: {{default: big/m}}",
        fake.uri()
    );
    let workflow = workflow(&models, "").replace(
        "plan: {parallel: true, max_concurrency: 4}",
        "plan: {max_attempts: 2}",
    );
    let case = Case::new(&workflow, "");
    let (run, max_rss_kib) = exec_measured(&case);
    let error = format!(
        "provider `big` at {}/v1/chat/completions sent an answer larger than 4194304 bytes for model `m` (the provider's `max_response_bytes`); it was not read",
        fake.uri()
    );
    assert_eq!(
        (run.code, run.status(), run.reason()),
        (
            1,
            "failed",
            format!("the planner's model failed: {error}").as_str()
        )
    );
    // Not retried: one request per planner call.
    assert_eq!(fake.requests().len(), 2);
    assert!(max_rss_kib < 100 * 1024, "max RSS {max_rss_kib} KiB");
}

/// `pe exec workflow.yaml --json` with its peak memory (max RSS in KiB, from `wait4`).
fn exec_measured(case: &Case) -> (exec_support::Run, i64) {
    let stdout = case.path("stdout.json");
    let stderr = case.path("stderr.txt");
    // Reaped by `wait4` below, which also reports its resource usage.
    #[allow(clippy::zombie_processes)]
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_pe"))
        .current_dir(case.dir.path())
        .env_remove("PE_HOME")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env("PE_RETRY_BASE_MS", "5")
        .args(["exec", "workflow.yaml", "--json"])
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    let stdout = std::fs::read_to_string(stdout).unwrap();
    let run = exec_support::Run {
        code: libc::WEXITSTATUS(status),
        doc: serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}")),
        stderr: std::fs::read_to_string(stderr).unwrap(),
    };
    (run, usage.ru_maxrss)
}
