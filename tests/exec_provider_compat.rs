//! `pe exec` against OpenAI-compatible servers that differ from OpenAI the way the servers
//! people run do (served by the fake on 127.0.0.1): llama-cpp-python's HTTP 500 refusal of
//! `response_format: json_schema`, explicit structured-output modes, tool-call arguments
//! that are not JSON, servers that report no usage.

mod exec_support;
mod fake_llm;

use exec_support::Case;
use fake_llm::{Behaviour, FakeLlm, Wire, assert_every_step_ran_once, exec};
use serde_json::{Value, json};

fn provider(fake: &FakeLlm, settings: &str) -> Case {
    let models = format!(
        "providers:\n  llama: {{kind: openai, base_url: '{}/v1'{settings}}}\nmodels: {{default: llama/smollm2}}",
        fake.uri()
    );
    Case::new(&fake_llm::workflow(&models, ""), "")
}

fn llama_cpp_python() -> Behaviour {
    Behaviour {
        refuse_json_schema: true,
        ..Behaviour::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_500_naming_response_format_moves_to_json_object_once_journaled_and_shown() {
    let fake = FakeLlm::start(Wire::OpenAi, llama_cpp_python()).await;
    let case = provider(&fake, "");
    let run = exec(&case, &[], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_every_step_ran_once(&case, &run);
    assert_eq!(fake.violations(), Vec::<String>::new());

    let requests = fake.requests();
    let formats: Vec<Value> = requests
        .iter()
        .filter_map(|r| r.pointer("/response_format/type").cloned())
        .collect();
    // Refused once, not retried; every later structured request uses `json_object`.
    assert_eq!(formats, [json!("json_schema"), json!("json_object")]);
    let asked = &requests[1];
    assert_eq!(
        asked["response_format"]["schema"]["required"],
        json!(["steps"])
    );
    let prompt = asked["messages"][0]["content"].as_str().unwrap();
    assert!(
        prompt.contains("\n\nReply with only a JSON document, no prose and no Markdown fence, valid against this JSON Schema:\n{"),
        "{prompt}"
    );
    assert_eq!(case.events_of("llm_retry").len(), 0);

    let fallback = case.events_of("structured_output_fallback");
    assert_eq!(fallback.len(), 1);
    let reason = "1 validation error: {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}";
    let mut event = fallback[0].clone();
    for key in ["seq", "at"] {
        event.as_object_mut().unwrap().remove(key);
    }
    assert_eq!(
        event,
        json!({"type": "structured_output_fallback", "from": "json_schema", "model": "llama/smollm2",
               "provider": "llama", "reason": reason, "role": "planner", "status": 500, "to": "json_object"})
    );
    let shown: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("refused structured output"))
        .collect();
    assert_eq!(
        shown,
        [format!(
            "  provider `llama` refused structured output `json_schema` (HTTP 500: {reason}); using `json_object` for the rest of the run (set `structured_output: json_object` on the provider to start there)"
        )]
    );
    // Each completion's usage is counted once: 10 requests answered, 1 refused.
    assert_eq!(requests.len(), 11);
    assert_eq!(run.doc["usage"]["input_tokens"], 1000);
    assert_eq!(run.doc["usage"]["output_tokens"], 100);
    assert_eq!(
        (
            &run.doc["usage"]["llm_calls"],
            &run.doc["usage"]["requests"]
        ),
        (&json!(10), &json!(10))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn explicit_modes_start_where_they_say_and_json_schema_never_falls_back() {
    // `native`, the setting's earlier name, is `auto`.
    let cases = [
        (", structured_output: json_object", vec!["json_object"]),
        (
            ", structured_output: native",
            vec!["json_schema", "json_object"],
        ),
        (", structured_output: prompt", vec![]),
    ];
    for (settings, want) in cases {
        let fake = FakeLlm::start(Wire::OpenAi, llama_cpp_python()).await;
        let case = provider(&fake, settings);
        let run = exec(&case, &[], &[]);
        assert_eq!(run.code, 0, "{settings}: {}", run.stderr);
        assert_every_step_ran_once(&case, &run);
        let formats: Vec<String> = fake
            .requests()
            .iter()
            .filter_map(|r| r.pointer("/response_format/type"))
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        assert_eq!(formats, want, "{settings}");
    }

    let fake = FakeLlm::start(Wire::OpenAi, llama_cpp_python()).await;
    let case = provider(&fake, ", structured_output: json_schema");
    let run = exec(&case, &[], &[]);
    let want = format!(
        "provider `llama` at {}/v1/chat/completions rejected the request for model `smollm2` with HTTP 500 Internal Server Error: 1 validation error: {{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}} (the server does not accept structured output `json_schema`: set `structured_output: auto` on the provider to let pe find a form it accepts)",
        fake.uri()
    );
    assert_eq!(
        (run.code, run.status(), run.reason()),
        (1, "failed", want.as_str())
    );
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(case.events_of("structured_output_fallback").len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_arguments_that_are_not_json_go_back_verbatim_with_the_parse_error() {
    let fake = FakeLlm::start(
        Wire::OpenAi,
        Behaviour {
            broken_arguments_once: true,
            ..Behaviour::default()
        },
    )
    .await;
    let case = provider(&fake, "");
    let run = exec(&case, &[], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The fake checked the verbatim arguments and the tool result it got back.
    assert_eq!(fake.violations(), Vec::<String>::new());
    assert_eq!(run.step("b")["result"], "value of b");
    let b_calls: Vec<(Value, String)> = case
        .events_of("tool_call")
        .into_iter()
        .filter(|e| e["step"] == "b")
        .map(|e| {
            (
                e["arguments"].clone(),
                e["outcome"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        b_calls,
        [
            (json!(fake_llm::BROKEN_ARGUMENTS), "rejected".to_string()),
            (json!({"key": "b"}), "ok".to_string())
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_usage_gets_estimates_for_every_request() {
    let fake = FakeLlm::start(
        Wire::OpenAi,
        Behaviour {
            no_usage: true,
            ..llama_cpp_python()
        },
    )
    .await;
    let case = provider(&fake, "");
    let run = exec(&case, &[], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_every_step_ran_once(&case, &run);
    // Every call has an estimate, never zero, and says so.
    for call in case.events_of("llm_call") {
        assert!(call["input_tokens"].as_u64().unwrap() > 0, "{call}");
        assert!(call["output_tokens"].as_u64().unwrap() > 0, "{call}");
        assert_eq!(call["estimated"], true, "{call}");
    }
}
