//! `pe exec`: inputs from `--input` and `--inputs-file`, `--model` overrides, and the usage
//! errors (exit 2) that name what is wrong.

mod exec_support;

use exec_support::Case;

const WORKFLOW: &str = r#"
version: 1
name: inputs
inputs:
  version: {type: string, pattern: '^\d+\.\d+\.\d+$', description: the version to ship}
  count: {type: integer, default: 1}
  dry_run: {type: boolean, default: false}
models: {default: scripted/replies.yaml}
task: 'Ship {{ inputs.version }} x{{ inputs.count }} dry={{ inputs.dry_run }}'
plan: {steps: [{id: a, description: ship}]}
"#;

const REPLIES: &str =
    "executor:\n  - {text: ok, repeat: true}\nsynthesizer:\n  - {text: done, repeat: true}\n";

fn usage_error(case: &Case, args: &[&str]) -> String {
    let out = case.exec_raw(args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn inputs_are_typed_validated_and_defaulted() {
    let case = Case::new(WORKFLOW, REPLIES);
    let run = case.exec(&["--input", "version=1.10.0", "--input", "count=3"]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    let started = &case.events_of("run_started")[0];
    assert_eq!(
        started["inputs"],
        serde_json::json!({"version": "1.10.0", "count": 3, "dry_run": false})
    );
    assert_eq!(started["task"], "Ship 1.10.0 x3 dry=False");
}

#[test]
fn an_inputs_file_is_read_and_the_command_line_wins() {
    let case = Case::new(WORKFLOW, REPLIES);
    std::fs::write(
        case.path("inputs.yaml"),
        "version: 2.0.0\ncount: 5\ndry_run: true\n",
    )
    .unwrap();
    let run = case.exec(&["--inputs-file", "inputs.yaml", "--input", "count=7"]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    assert_eq!(
        case.events_of("run_started")[0]["task"],
        "Ship 2.0.0 x7 dry=True"
    );
}

#[test]
fn input_problems_are_usage_errors_naming_the_input() {
    let case = Case::new(WORKFLOW, REPLIES);
    let cases: [(&[&str], &str); 5] = [
        (
            &[],
            "error: missing input `version`: set it with `--input version=VALUE` (the version to ship)\n",
        ),
        (
            &["-i", "version=1.0.0", "-i", "verison=1"],
            "error: unknown input `verison`: did you mean `version`?\n",
        ),
        (
            &["-i", "version=1.4"],
            "error: input `version`: \"1.4\" does not match \"^\\d+\\.\\d+\\.\\d+$\"\n",
        ),
        (
            &["-i", "version=1.0.0", "-i", "count=many"],
            "error: input `count`: \"many\" is not of type \"integer\"\n",
        ),
        (
            &["-i", "version"],
            "error: --input version: expected KEY=VALUE\n",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(usage_error(&case, args), want, "{args:?}");
    }
    // Nothing was run or recorded.
    assert!(!case.store().exists());
}

#[test]
fn bad_model_overrides_are_usage_errors() {
    let case = Case::new(WORKFLOW, REPLIES);
    let err = usage_error(
        &case,
        &["-i", "version=1.0.0", "--model", "planer=openai/gpt-4o"],
    );
    assert_eq!(
        err,
        "error: --model planer=openai/gpt-4o: `planer` is not a role; did you mean `planner`?\n"
    );
    let err = usage_error(&case, &["-i", "version=1.0.0", "--model", "nope/x"]);
    assert_eq!(
        err,
        "error: --model nope/x: unknown provider `nope` (known: anthropic, local, ollama, openai, scripted)\n"
    );
}

#[test]
fn a_model_override_replaces_the_workflows_model() {
    // The workflow's own model is not built yet; the override makes the run possible.
    let workflow = WORKFLOW.replace(
        "models: {default: scripted/replies.yaml}",
        "models: {default: local/smollm2-135m}",
    );
    let case = Case::new(&workflow, REPLIES);
    std::fs::create_dir(case.path("other")).unwrap();
    std::fs::write(
        case.path("other/replies.yaml"),
        REPLIES.replace("text: done", "text: from the override"),
    )
    .unwrap();
    let run = case.exec(&[
        "-i",
        "version=1.0.0",
        "--model",
        "scripted/other/replies.yaml",
    ]);
    assert_eq!(run.doc["output"], "from the override", "{}", run.stderr);
    assert_eq!(
        case.events_of("llm_call")[0]["model"],
        "scripted/other/replies.yaml"
    );
}
