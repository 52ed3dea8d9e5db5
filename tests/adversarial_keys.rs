//! Adversarial: key exfiltration (finding 1 of issue 10). A provider key lives in pe's
//! environment; tools print their environment, print the key they were explicitly given,
//! and read it from a file; the model echoes it back in a step result and in the answer.
//! The key must appear in none of: the requests the model server received, the journal,
//! the cassette, stdout, stderr.

mod adversarial_support;

use adversarial_support::{Case, FakeModel, Reply, excerpt};
use serde_json::json;

const KEY: &str = "sk-gateway-0123456789abcdef";
const OTHER_KEY: &str = "sk-openai-fedcba9876543210";

/// The workflow; `show_key` is given the key explicitly (`inherit_env`) when `named`.
fn workflow(base_url: &str, named: bool) -> String {
    let show_key = if named {
        "command: [printenv, GATEWAY_KEY]\n    inherit_env: [GATEWAY_KEY]"
    } else {
        "command: [sh, -c, 'printenv GATEWAY_KEY || echo unset']"
    };
    format!(
        r#"version: 1
name: exfiltration
task: Collect the facts.
providers:
  gw: {{kind: openai, base_url: '{base_url}', api_key_env: GATEWAY_KEY, max_retries: 0}}
models: {{default: gw/m}}
tools:
  dump_env:
    description: Print the environment.
    command: [env]
  show_key:
    description: Print the key.
    {show_key}
  read:
    description: Read a file.
    builtin: read_file
replan: {{when: never}}
"#
    )
}

fn replies() -> Vec<Reply> {
    let plan = json!({"steps": [
        {"id": "env", "description": "Dump the environment", "tool": "dump_env"},
        {"id": "key", "description": "Show the key", "tool": "show_key"},
        {"id": "file", "description": "Read .env", "tool": "read"}
    ]});
    vec![
        Reply::Text(plan.to_string()),
        Reply::ToolCall("dump_env", json!({})),
        Reply::Text(json!({"status": "succeeded", "result": "dumped"}).to_string()),
        Reply::ToolCall("show_key", json!({})),
        Reply::Text(json!({"status": "succeeded", "result": "shown"}).to_string()),
        Reply::ToolCall("read", json!({"path": ".env"})),
        // The model hands the key back in a result (it knows it from somewhere).
        Reply::Text(
            json!({"status": "succeeded", "result": format!("the key is {KEY}")}).to_string(),
        ),
        Reply::Text(format!("Summary: the key is {KEY} and {OTHER_KEY}")),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_never_reach_the_model_the_journal_the_cassette_or_the_output() {
    let fake = FakeModel::start(replies()).await;
    let case = Case::new(&workflow(&fake.base_url(), false));
    case.write(".env", &format!("GATEWAY_KEY={KEY}\n"));
    let run = tokio::task::block_in_place(|| {
        case.exec(
            &["--record", "run.jsonl"],
            &[("GATEWAY_KEY", KEY), ("OPENAI_API_KEY", OTHER_KEY)],
        )
    });
    run.within_bounds("exfiltration run");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let requests = fake.requests();
    assert_eq!(requests.len(), 8, "{requests:#?}");
    // A command gets a minimal environment: the key is not there to print.
    let dump_result = &requests[2];
    assert!(dump_result.contains("PATH="), "{}", excerpt(dump_result));
    assert!(
        !dump_result.contains("GATEWAY_KEY"),
        "env leaked the variable: {}",
        excerpt(dump_result)
    );
    assert!(
        !dump_result.contains("OPENAI_API_KEY"),
        "env leaked the variable: {}",
        excerpt(dump_result)
    );
    assert!(
        requests[4].contains(r#""content":"unset\n""#),
        "{}",
        excerpt(&requests[4])
    );
    // What a file held and what the model replied reach the next request redacted.
    assert!(
        requests[6].contains("GATEWAY_KEY=[redacted]"),
        "{}",
        excerpt(&requests[6])
    );
    assert!(
        requests[7].contains("the key is [redacted]"),
        "{}",
        excerpt(&requests[7])
    );
    assert_no_key_anywhere(&case, &requests, &run);
}

/// A workflow may hand a tool the key on purpose (`inherit_env`); the model still never
/// sees it.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_a_workflow_hands_a_tool_is_still_redacted_before_the_model() {
    let fake = FakeModel::start(replies()).await;
    let case = Case::new(&workflow(&fake.base_url(), true));
    case.write(".env", &format!("GATEWAY_KEY={KEY}\n"));
    let run = tokio::task::block_in_place(|| {
        case.exec(
            &["--record", "run.jsonl"],
            &[("GATEWAY_KEY", KEY), ("OPENAI_API_KEY", OTHER_KEY)],
        )
    });
    run.within_bounds("exfiltration run");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let requests = fake.requests();
    assert_eq!(requests.len(), 8, "{requests:#?}");

    // The tool did print the key: the model was sent `[redacted]` in its place.
    assert!(
        requests[4].contains(r#""content":"[redacted]\n""#),
        "{}",
        excerpt(&requests[4])
    );
    assert_no_key_anywhere(&case, &requests, &run);
}

/// Neither key in any request, the cassette, the journal, stdout or stderr; the cassette's
/// requests are what the server got.
fn assert_no_key_anywhere(case: &Case, requests: &[String], run: &adversarial_support::Measured) {
    let cassette = std::fs::read_to_string(case.path("run.jsonl")).unwrap();
    let journal = case.journal();
    for (place, text) in requests
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("request #{}", i + 1), r.as_str()))
        .chain([
            ("the cassette".to_string(), cassette.as_str()),
            ("the journal".to_string(), journal.as_str()),
            ("stdout".to_string(), run.stdout.as_str()),
            ("stderr".to_string(), run.stderr.as_str()),
        ])
    {
        for key in [KEY, OTHER_KEY] {
            assert!(
                !text.contains(key),
                "{key} reached {place}: {}",
                excerpt(text)
            );
        }
    }
    // The cassette records what was sent: its requests are the server's, redactions included.
    let recorded: Vec<serde_json::Value> = cassette
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["kind"] == "model")
        .collect();
    assert_eq!(recorded.len(), 8);
    for (recorded, sent) in recorded.iter().zip(requests) {
        let sent: serde_json::Value = serde_json::from_str(sent).unwrap();
        assert_eq!(
            recorded["request"]["messages"].as_array().map(Vec::len),
            sent["messages"].as_array().map(Vec::len)
        );
    }
    let tool_message = recorded[6]["request"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap()["content"]
        .clone();
    assert_eq!(tool_message, json!("GATEWAY_KEY=[redacted]\n"));
    assert_eq!(
        run.doc()["output"],
        json!("Summary: the key is [redacted] and [redacted]")
    );
}
