//! `pe exec`: the synthesizer's answer, validated against `output.schema` with bounded
//! repairs, and model errors along the way.

mod exec_support;

use exec_support::{Case, fixture};
use serde_json::json;

fn workflow(output: &str) -> String {
    format!(
        r#"
version: 1
name: output
models: {{default: scripted/replies.yaml}}
task: Report
plan: {{steps: [{{id: a, description: check}}]}}
output: {output}
"#
    )
}

const SCHEMA: &str = "{max_repairs: 1, schema: {type: object, properties: {ok: {type: boolean}, version: {type: string}}, required: [ok, version], additionalProperties: false}}";

#[test]
fn an_answer_that_fails_the_schema_is_repaired() {
    let replies = r#"
executor:
  - {text: fine}
synthesizer:
  - {text: 'Here it is: {"ok": "yes"}'}
  - when: 'Your answer does not match the required JSON Schema: "version" is a required property; at /ok: "yes" is not of type "boolean"'
    json: {ok: true, version: 1.4.2}
"#;
    let case = Case::new(&workflow(SCHEMA), replies);
    let run = case.exec(&[]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    assert_eq!(run.doc["output"], json!({"ok": true, "version": "1.4.2"}));
}

#[test]
fn an_answer_that_never_validates_fails_the_run() {
    let replies = "executor:\n  - {text: fine}\nsynthesizer:\n  - {json: {ok: 1}, repeat: true}\n";
    let case = Case::new(&workflow(SCHEMA), replies);
    let run = case.exec(&[]);
    assert_eq!((run.code, run.status()), (1, "failed"));
    assert_eq!(
        run.reason(),
        "the final answer does not match output.schema after 1 repair: \"version\" is a required property; at /ok: 1 is not of type \"boolean\""
    );
    assert_eq!(case.llm_roles(), ["executor", "synthesizer", "synthesizer"]);
}

#[test]
fn a_structured_output_is_printed_as_json() {
    let replies =
        "executor:\n  - {text: fine}\nsynthesizer:\n  - {json: {ok: true, version: '2.0.0'}}\n";
    let case = Case::new(&workflow(SCHEMA), replies);
    let out = case.exec_raw(&[]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\n  \"ok\": true,\n  \"version\": \"2.0.0\"\n}\n"
    );
}

#[test]
fn a_provider_error_fails_the_attempt_and_a_retry_can_succeed() {
    let wf = workflow("{}").replace(
        "task: Report",
        "task: Report\nreplan: {on_step_failure: {retries: 1, then: abort}}",
    );
    let replies =
        "executor:\n  - {error: rate limited}\n  - {text: fine}\nsynthesizer:\n  - {text: done}\n";
    let case = Case::new(&wf, replies);
    let run = case.exec(&[]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    let first = &case.events_of("step_finished")[0];
    assert_eq!(
        first["error"],
        "the executor model failed: scripted/replies.yaml failed: rate limited"
    );
    assert_eq!(
        case.events_of("llm_call")[0]["error"],
        "scripted/replies.yaml failed: rate limited"
    );
}

#[test]
fn running_out_of_scripted_replies_fails_the_run_naming_the_role() {
    let case = Case::new(&workflow("{}"), "executor:\n  - {text: fine}\n");
    let run = case.exec(&[]);
    assert_eq!((run.code, run.status()), (1, "failed"));
    assert_eq!(
        run.reason(),
        "the scripted replies in ./replies.yaml have no synthesizer reply left"
    );
}

#[test]
fn the_release_fixture_runs_end_to_end() {
    let store = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("pe")
        .unwrap()
        .arg("exec")
        .arg(fixture("release.yaml"))
        .args(["--input", "version=1.4.2", "--store"])
        .arg(store.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "Released api 1.4.2.\n"
    );
}
