//! `pe exec` against real provider kinds, served by a fake model service on 127.0.0.1 in the
//! test process (never the internet): OpenAI, Anthropic, Ollama and a self-hosted
//! OpenAI-compatible server; tool calls round-trip; structured plans parse, natively or
//! through the prompt fallback; per-role models, usage and cost; keys and their errors.

mod exec_support;
mod fake_llm;

use exec_support::Case;
use fake_llm::{Behaviour, FakeLlm, Wire, assert_every_step_ran_once, exec, pe, workflow};
use serde_json::{Value, json};

const KEY: &str = "sk-test-0123456789abcdef";

fn case(models: &str, extra: &str) -> Case {
    Case::new(&workflow(models, extra), "")
}

fn keyed() -> Behaviour {
    Behaviour {
        key: Some(KEY.into()),
        ..Behaviour::default()
    }
}

fn usage(calls: u64, cost: f64) -> Value {
    json!({"cost_usd": cost, "input_tokens": 100 * calls, "llm_calls": calls, "output_tokens": 10 * calls, "requests": calls})
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_runs_a_whole_workflow_with_parallel_tool_calls_and_model_settings() {
    let fake = FakeLlm::start(Wire::OpenAi, keyed()).await;
    let case = case(
        "models:\n  default: openai/gpt-4o-mini\n  planner: {model: openai/gpt-4o, temperature: 0, max_tokens: 2000, top_p: 0.5, seed: 7}",
        "",
    );
    let base = format!("{}/v1", fake.uri());
    let run = exec(
        &case,
        &[("OPENAI_BASE_URL", &base), ("OPENAI_API_KEY", KEY)],
        &[],
    );
    assert_eq!(run.code, 0);
    assert_every_step_ran_once(&case, &run);
    assert_eq!(fake.violations(), Vec::<String>::new());
    assert_eq!(
        run.doc["usage"]["per_role"],
        json!({"planner": usage(1, 0.0), "executor": usage(8, 0.0), "synthesizer": usage(1, 0.0)})
    );

    let requests = fake.requests();
    let planner = &requests[0];
    assert_eq!(planner["model"], "gpt-4o");
    assert_eq!(
        (
            &planner["temperature"],
            &planner["max_tokens"],
            &planner["top_p"],
            &planner["seed"]
        ),
        (&json!(0.0), &json!(2000), &json!(0.5), &json!(7))
    );
    assert_eq!(planner["response_format"]["type"], "json_schema");
    assert_eq!(planner["response_format"]["json_schema"]["name"], "plan");
    // The plan schema has optional fields, so strict mode cannot be asked for.
    assert_eq!(planner["response_format"]["json_schema"]["strict"], false);
    let executor = requests.iter().find(|r| r.get("tools").is_some()).unwrap();
    assert_eq!(executor["model"], "gpt-4o-mini");
    assert_eq!(
        executor["tools"],
        json!([{"type": "function", "function": {
            "name": "lookup",
            "description": "Look a key up.",
            "parameters": {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"], "additionalProperties": false}
        }}])
    );
    assert_eq!(executor.get("temperature"), None);
    // Each step's first turn calls the tool its plan names; later turns leave it to the
    // model, and the turn that called tools goes back with string content.
    let first_turns: Vec<&Value> = requests
        .iter()
        .filter(|r| r.get("tools").is_some() && r["messages"].as_array().unwrap().len() == 1)
        .collect();
    assert_eq!(first_turns.len(), 4);
    for r in first_turns {
        assert_eq!(
            r["tool_choice"],
            json!({"type": "function", "function": {"name": "lookup"}})
        );
    }
    let later: Vec<&Value> = requests
        .iter()
        .filter(|r| r.get("tools").is_some() && r["messages"].as_array().unwrap().len() > 1)
        .collect();
    assert_eq!(later.len(), 4);
    for r in later {
        assert_eq!(r["tool_choice"], "auto");
        assert_eq!(r["messages"][1]["content"], "");
    }
    let models: Vec<(String, String)> = case
        .events_of("llm_call")
        .iter()
        .map(|e| {
            (
                e["role"].as_str().unwrap().into(),
                e["model"].as_str().unwrap().into(),
            )
        })
        .filter(|(r, _)| r != "executor")
        .collect();
    assert_eq!(
        models,
        [
            ("planner".to_string(), "openai/gpt-4o".to_string()),
            ("synthesizer".to_string(), "openai/gpt-4o-mini".to_string())
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_runs_a_whole_workflow_with_a_forced_tool_for_the_plan() {
    let fake = FakeLlm::start(Wire::Anthropic, keyed()).await;
    let case = case("models: {default: anthropic/claude-sonnet-4-5}", "");
    let run = exec(
        &case,
        &[
            ("ANTHROPIC_BASE_URL", &fake.uri()),
            ("ANTHROPIC_API_KEY", KEY),
        ],
        &[],
    );
    assert_eq!(run.code, 0);
    assert_every_step_ran_once(&case, &run);
    assert_eq!(fake.violations(), Vec::<String>::new());
    let planner = &fake.requests()[0];
    assert_eq!(planner["model"], "claude-sonnet-4-5");
    // No `max_tokens` in the workflow: the planner's default output cap.
    assert_eq!(planner["max_tokens"], 2048);
    assert_eq!(planner["tools"][0]["name"], "plan");
    assert_eq!(
        planner["tool_choice"],
        json!({"type": "tool", "name": "plan"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ollama_takes_its_host_without_a_scheme_and_sends_no_key() {
    // The fake insists on no Authorization header, though OPENAI_API_KEY is set.
    let fake = FakeLlm::start(Wire::OpenAi, Behaviour::default()).await;
    let case = case("models: {default: ollama/llama3.1}", "");
    let host = fake.uri().trim_start_matches("http://").to_string();
    let run = exec(
        &case,
        &[("OLLAMA_HOST", &host), ("OPENAI_API_KEY", KEY)],
        &[],
    );
    assert_eq!(run.code, 0);
    assert_every_step_ran_once(&case, &run);
    assert_eq!(fake.violations(), Vec::<String>::new());
    assert_eq!(fake.requests()[0]["model"], "llama3.1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_hosted_server_gets_its_own_key_and_headers_and_prices_make_costs_per_role() {
    let fake = FakeLlm::start(
        Wire::OpenAi,
        Behaviour {
            key: Some("vllm-key-000111222".into()),
            headers: vec![("x-team".into(), "core".into())],
            ..Behaviour::default()
        },
    )
    .await;
    let models = format!(
        r#"providers:
  vllm: {{kind: openai, base_url: '{}/v1', api_key_env: VLLM_KEY, headers: {{X-Team: core}}, timeout: 30s, max_retries: 2}}
models:
  default: {{model: vllm/small, price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
  planner: {{model: vllm/big, price: {{input_per_mtok: 10, output_per_mtok: 30}}}}"#,
        fake.uri()
    );
    let case = case(&models, "");
    // OPENAI_API_KEY is set but must not be sent to a provider with its own base_url.
    let run = exec(
        &case,
        &[("VLLM_KEY", "vllm-key-000111222"), ("OPENAI_API_KEY", KEY)],
        &[],
    );
    assert_eq!(run.code, 0);
    assert_every_step_ran_once(&case, &run);
    assert_eq!(fake.violations(), Vec::<String>::new());
    let per_role = &run.doc["usage"]["per_role"];
    let cost = |role: &str| per_role[role]["cost_usd"].as_f64().unwrap();
    // 100 input and 10 output tokens per call.
    let want = [
        ("planner", 100.0 * 10.0 / 1e6 + 10.0 * 30.0 / 1e6),
        ("executor", 8.0 * (100.0 * 1.0 / 1e6 + 10.0 * 2.0 / 1e6)),
        ("synthesizer", 100.0 * 1.0 / 1e6 + 10.0 * 2.0 / 1e6),
    ];
    for (role, c) in want {
        assert!(
            (cost(role) - c).abs() < 1e-12,
            "{role}: {} != {c}",
            cost(role)
        );
    }
    let total = run.doc["usage"]["cost_usd"].as_f64().unwrap();
    assert!(
        (total - (0.0013 + 0.00096 + 0.00012)).abs() < 1e-12,
        "{total}"
    );
    let call_costs: Vec<(String, Value)> = case
        .events_of("llm_call")
        .iter()
        .filter(|e| e["role"] != "executor")
        .map(|e| {
            (
                e["model"].as_str().unwrap().to_string(),
                e["cost_usd"].clone(),
            )
        })
        .collect();
    assert_eq!(
        call_costs,
        [
            ("vllm/big".to_string(), json!(0.0013)),
            ("vllm/small".to_string(), json!(0.00012))
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn model_overrides_on_the_command_line_route_roles_to_other_providers() {
    let openai = FakeLlm::start(Wire::OpenAi, keyed()).await;
    let ollama = FakeLlm::start(Wire::OpenAi, Behaviour::default()).await;
    let case = case("models: {default: openai/gpt-4o-mini}", "");
    let base = format!("{}/v1", openai.uri());
    let run = exec(
        &case,
        &[
            ("OPENAI_BASE_URL", &base),
            ("OPENAI_API_KEY", KEY),
            ("OLLAMA_HOST", &ollama.uri()),
        ],
        &["--model", "executor=ollama/qwen2.5"],
    );
    assert_eq!(run.code, 0);
    assert_every_step_ran_once(&case, &run);
    assert_eq!(openai.requests().len(), 2);
    assert_eq!(ollama.requests().len(), 8);
    assert_eq!(ollama.requests()[0]["model"], "qwen2.5");
    assert_eq!(
        case.events_of("run_started")[0]["models"],
        json!({"planner": "openai/gpt-4o-mini", "executor": "ollama/qwen2.5", "replanner": "openai/gpt-4o-mini", "synthesizer": "openai/gpt-4o-mini"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn max_cost_usd_counts_declared_prices_and_stops_the_run() {
    let fake = FakeLlm::start(Wire::OpenAi, keyed()).await;
    let case = case(
        "models: {default: {model: openai/gpt-4o, price: {input_per_mtok: 10, output_per_mtok: 30}}}",
        "budget: {max_cost_usd: 0.002}",
    );
    let base = format!("{}/v1", fake.uri());
    let run = exec(
        &case,
        &[("OPENAI_BASE_URL", &base), ("OPENAI_API_KEY", KEY)],
        &[],
    );
    assert_eq!((run.code, run.status()), (4, "budget_exhausted"));
    assert_eq!(run.doc["budget_exhausted"]["limit"], "max_cost_usd");
    assert_eq!(run.doc["budget_exhausted"]["max"], 0.002);
    assert!(run.doc["usage"]["cost_usd"].as_f64().unwrap() <= 0.002);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_refuses_response_format_gets_the_schema_in_the_prompt() {
    let fake = FakeLlm::start(
        Wire::OpenAi,
        Behaviour {
            refuse_response_format: true,
            bad_first_prompt_plan: true,
            ..Behaviour::default()
        },
    )
    .await;
    let models = format!(
        "providers:\n  llamacpp: {{kind: openai, base_url: '{}/v1'}}\nmodels: {{default: llamacpp/qwen}}",
        fake.uri()
    );
    let case = case(&models, "");
    let run = exec(&case, &[], &[]);
    assert_eq!(run.code, 0);
    assert_every_step_ran_once(&case, &run);
    assert_eq!(fake.violations(), Vec::<String>::new());
    let requests = fake.requests();
    // `json_schema` refused, `json_object` refused, then asked in the prompt, then re-asked
    // with the problem.
    assert_eq!(requests[0]["response_format"]["type"], "json_schema");
    assert_eq!(requests[1]["response_format"]["type"], "json_object");
    for r in &requests[2..4] {
        assert_eq!(r.get("response_format"), None);
        let prompt = r["messages"][0]["content"].as_str().unwrap();
        assert!(prompt.ends_with(&format!(
            "\n\nReply with only a JSON document, no prose and no Markdown fence, valid against this JSON Schema:\n{}",
            serde_json::to_string(&plan_schema(&r["messages"][0]["content"])).unwrap()
        )));
    }
    assert_eq!(requests[3]["messages"].as_array().unwrap().len(), 3);
    let fallbacks: Vec<(String, String, u64)> = case
        .events_of("structured_output_fallback")
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().to_string(),
                e["to"].as_str().unwrap().to_string(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fallbacks,
        [
            ("json_schema".into(), "json_object".into(), 400),
            ("json_object".into(), "prompt".into(), 400)
        ]
    );
    // One planner call for the engine, with the usage of both prompt-mode requests.
    let planner: Vec<Value> = case
        .events_of("llm_call")
        .into_iter()
        .filter(|e| e["role"] == "planner")
        .collect();
    assert_eq!(planner.len(), 1);
    assert_eq!(
        (&planner[0]["input_tokens"], &planner[0]["output_tokens"]),
        (&json!(200), &json!(20))
    );
    assert_eq!(case.events_of("plan_created")[0]["attempts"], 1);
}

/// The schema a prompt-mode prompt ends with.
fn plan_schema(prompt: &Value) -> Value {
    let text = prompt.as_str().unwrap();
    let (_, schema) = text.rsplit_once("JSON Schema:\n").unwrap();
    let schema: Value = serde_json::from_str(schema).unwrap();
    assert_eq!(schema["required"], json!(["steps"]));
    schema
}

#[tokio::test(flavor = "multi_thread")]
async fn structured_output_prompt_never_sends_response_format() {
    let fake = FakeLlm::start(
        Wire::OpenAi,
        Behaviour {
            refuse_response_format: true,
            ..Behaviour::default()
        },
    )
    .await;
    let models = format!(
        "providers:\n  lmstudio: {{kind: openai, base_url: '{}/v1', structured_output: prompt}}\nmodels: {{default: lmstudio/qwen}}",
        fake.uri()
    );
    let case = case(&models, "");
    let run = exec(&case, &[], &[]);
    assert_every_step_ran_once(&case, &run);
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.get("response_format").is_none())
    );
    assert_eq!(fake.requests().len(), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_that_wants_max_completion_tokens_gets_it() {
    let fake = FakeLlm::start(
        Wire::OpenAi,
        Behaviour {
            refuse_max_tokens: true,
            ..Behaviour::default()
        },
    )
    .await;
    let models = format!(
        "providers:\n  azure: {{kind: openai, base_url: '{}/v1'}}\nmodels: {{default: {{model: azure/o4-mini, max_tokens: 900}}}}",
        fake.uri()
    );
    let case = case(&models, "");
    let run = exec(&case, &[], &[]);
    assert_every_step_ran_once(&case, &run);
    let caps: Vec<(Option<u64>, Option<u64>)> = fake
        .requests()
        .iter()
        .take(3)
        .map(|r| {
            (
                r.get("max_tokens").and_then(Value::as_u64),
                r.get("max_completion_tokens").and_then(Value::as_u64),
            )
        })
        .collect();
    assert_eq!(
        caps,
        [(Some(900), None), (None, Some(900)), (None, Some(900))]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_fails_fast_with_a_helpful_message_and_never_shows_the_key() {
    let fake = FakeLlm::start(
        Wire::OpenAi,
        Behaviour {
            fixed: Some((
                401,
                json!({"error": {"message": format!("Incorrect API key provided: {KEY}."), "type": "invalid_request_error"}}),
            )),
            ..Behaviour::default()
        },
    )
    .await;
    let case = case("models: {default: openai/gpt-4o-mini}", "");
    let base = format!("{}/v1", fake.uri());
    let env = [("OPENAI_BASE_URL", base.as_str()), ("OPENAI_API_KEY", KEY)];
    let run = exec(&case, &env, &[]);
    let message = format!(
        "provider `openai` at {base}/chat/completions rejected the request for model `gpt-4o-mini` with HTTP 401 Unauthorized: Incorrect API key provided: [redacted]. (check the API key in OPENAI_API_KEY)"
    );
    let message = message.as_str();
    assert_eq!(
        (run.code, run.status(), run.reason()),
        (1, "failed", message)
    );
    // No retry and no planner re-ask: one request.
    assert_eq!(fake.requests().len(), 1);
    let calls = case.events_of("llm_call");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["error"], message);
    assert_eq!(case.events_of("llm_retry").len(), 0);

    let plain = pe(&case, &env, &["exec", "workflow.yaml"]);
    let shown = pe(&case, &env, &["show", "latest"]);
    let journal = pe(&case, &env, &["show", "latest", "--json"]);
    let stderr = String::from_utf8_lossy(&plain.stderr).to_string();
    assert!(
        stderr.contains(&format!("  planner model error: {message}\n")),
        "{stderr}"
    );
    let texts = [
        run.doc.to_string(),
        run.stderr.clone(),
        String::from_utf8_lossy(&plain.stdout).to_string(),
        stderr,
        String::from_utf8_lossy(&shown.stdout).to_string(),
        String::from_utf8_lossy(&journal.stdout).to_string(),
    ];
    for text in texts {
        assert!(!text.contains(KEY), "the key leaked: {text}");
        assert!(
            !text.contains("0123456789abcdef"),
            "part of the key leaked: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_404_names_the_model_and_hints_at_the_fix() {
    let fake = FakeLlm::start(
        Wire::OpenAi,
        Behaviour {
            fixed: Some((
                404,
                json!({"error": "model \"llama9\" not found, try pulling it first"}),
            )),
            ..Behaviour::default()
        },
    )
    .await;
    let case = case("models: {default: ollama/llama9}", "");
    let run = exec(&case, &[("OLLAMA_HOST", &fake.uri())], &[]);
    let want = format!(
        "provider `ollama` at {}/v1/chat/completions rejected the request for model `llama9` with HTTP 404 Not Found: model \"llama9\" not found, try pulling it first (check the model name and the provider's base_url)",
        fake.uri()
    );
    assert_eq!((run.code, run.reason()), (1, want.as_str()));
}

#[test]
fn a_missing_key_or_a_bad_endpoint_fails_before_the_run() {
    let cases = [
        (
            "models: {default: openai/gpt-4o-mini}",
            "error: the planner model `openai/gpt-4o-mini` needs an API key: set the environment variable OPENAI_API_KEY\n",
        ),
        (
            "models: {default: anthropic/claude-sonnet-4-5}",
            "error: the planner model `anthropic/claude-sonnet-4-5` needs an API key: set the environment variable ANTHROPIC_API_KEY\n",
        ),
        (
            "providers:\n  gw: {kind: openai, base_url: 'http://127.0.0.1:9/v1', api_key_env: GW_KEY}\nmodels: {default: gw/m}",
            "error: the planner model `gw/m` needs an API key: set the environment variable GW_KEY\n",
        ),
        (
            "providers:\n  gw: {kind: openai, base_url: 'ftp://127.0.0.1/v1'}\nmodels: {default: gw/m}",
            "error: cannot connect to `gw/m`: `ftp://127.0.0.1/v1` is not an http(s) URL\n",
        ),
        (
            "providers:\n  gw: {kind: ollama, headers: {'X Team': core}}\nmodels: {default: gw/m}",
            "error: cannot connect to `gw/m`: `X Team` is not a valid header name\n",
        ),
    ];
    for (models, want) in cases {
        let case = case(models, "");
        let out = pe(&case, &[], &["exec", "workflow.yaml"]);
        assert_eq!(out.status.code(), Some(2), "{models}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), want);
        assert!(!case.store().exists(), "no run may start");
    }
}
