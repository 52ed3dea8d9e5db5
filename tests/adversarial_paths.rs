//! Adversarial: a model that attacks through tool arguments. Path escapes through the
//! shipped scaffold workflow's command tool (finding 7) and through the file builtins
//! (`..`, absolute, symbolic link, hard link, dangling link, `.pe` and `.git` at depth:
//! finding 9), and injection attempts in every argument position: argv, environment, URL
//! path and query, header, JSON and text bodies (finding 2). Each run stays under 100 MB
//! and a few seconds.

mod adversarial_support;

use adversarial_support::{Case, excerpt};
use serde_json::{Value, json};

/// The journal's tool calls as `(name, outcome, output or error)`.
fn tool_calls(case: &Case) -> Vec<(String, String, String)> {
    case.events_of("tool_call")
        .iter()
        .map(|e| {
            let text = e["output"].as_str().or(e["error"].as_str()).unwrap_or("");
            (
                e["name"].as_str().unwrap_or("").to_string(),
                e["outcome"].as_str().unwrap_or("").to_string(),
                text.to_string(),
            )
        })
        .collect()
}

/// Scripted replies: one step whose executor makes `calls` (one per turn), then succeeds.
fn one_step_replies(tool: &str, calls: &[Value]) -> String {
    let mut executor: Vec<Value> = calls
        .iter()
        .map(|args| json!({"tool_calls": [{"name": tool, "arguments": args}]}))
        .collect();
    executor.push(json!({"json": {"status": "succeeded", "result": "done"}}));
    serde_yaml_free(&json!({
        "planner": [{"json": {"steps": [{"id": "attack", "description": "Attack", "tool": tool}]}}],
        "executor": executor,
        "synthesizer": [{"text": "done"}],
    }))
}

/// JSON is YAML: the replies file is written as JSON.
fn serde_yaml_free(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap()
}

#[test]
fn the_shipped_scaffold_workflow_keeps_make_dir_inside_its_folder() {
    let case = Case::new("");
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/scaffold-project.yaml"),
    )
    .unwrap();
    // The workflow sits two levels down, so `../../escaped` would land in the case's root.
    case.write("ws/workflows/scaffold-project.yaml", &shipped);
    let calls = [
        json!({"path": "../../escaped"}),
        json!({"path": "scaffold/../../../escaped2"}),
        json!({"path": "scaffold/--help"}),
    ];
    case.write("replies.json", &one_step_replies("make_dir", &calls));
    let run = adversarial_support::measure(adversarial_support::pe(
        case.dir.path(),
        &[
            "exec",
            "ws/workflows/scaffold-project.yaml",
            "--json",
            "--model",
            "scripted/replies.json",
        ],
    ));
    run.within_bounds("scaffold attack");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        !case.path("escaped").exists(),
        "make_dir created a directory outside"
    );
    assert!(
        !case.path("ws/escaped").exists(),
        "make_dir created a directory outside"
    );
    assert!(
        !case.path("escaped2").exists(),
        "make_dir created a directory outside"
    );
    // A value that looks like an option is a directory name, not `mkdir --help`.
    assert!(case.path("ws/workflows/scaffold/--help").is_dir());
    let calls = tool_calls(&case);
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(
        (
            calls[0].1.as_str(),
            calls[1].1.as_str(),
            calls[2].1.as_str()
        ),
        ("rejected", "rejected", "ok"),
        "{calls:?}"
    );
    assert_eq!(
        calls[0].2,
        "invalid arguments for `make_dir`: /path: `../../escaped` is refused: `..` may not appear in a path; paths stay inside the workflow's directory"
    );
}

#[test]
fn file_builtins_refuse_every_escape() {
    let case = Case::new(
        "version: 1
name: files
task: Touch files.
models: {default: scripted/replies.json}
tools:
  read: {description: Read a file., builtin: read_file}
  write: {description: Write a file., builtin: write_file}
  list: {description: List a directory., builtin: list_files}
execute: {max_iterations: 20}
replan: {when: never}
",
    );
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "secret").unwrap();
    let root = case.dir.path();
    std::os::unix::fs::symlink(outside.path(), root.join("link_out")).unwrap();
    std::os::unix::fs::symlink(root.join("nowhere"), root.join("dangling")).unwrap();
    std::fs::hard_link(&secret, root.join("hard.txt")).unwrap();
    std::fs::create_dir_all(root.join("deep/er/.pe")).unwrap();
    std::fs::create_dir_all(root.join("sub/.git")).unwrap();
    let attempts: Vec<(&str, Value, &str)> = vec![
        (
            "write",
            json!({"path": "../escape.txt", "content": "x"}),
            "`../escape.txt` is refused: `..` may not appear in a path; paths stay inside the workflow's directory",
        ),
        (
            "write",
            json!({"path": "/tmp/pe-abs.txt", "content": "x"}),
            "`/tmp/pe-abs.txt` is refused: absolute paths are not allowed; use a path relative to the workflow's directory",
        ),
        (
            "write",
            json!({"path": "link_out/x.txt", "content": "x"}),
            "`link_out/x.txt` is refused: it leads outside the workflow's directory (through a symbolic link)",
        ),
        (
            "write",
            json!({"path": "hard.txt", "content": "pwned"}),
            "`hard.txt` is refused: it has 2 hard links, and the others may be outside the workflow's directory",
        ),
        (
            "read",
            json!({"path": "hard.txt"}),
            "`hard.txt` is refused: it has 2 hard links, and the others may be outside the workflow's directory",
        ),
        (
            "read",
            json!({"path": "dangling"}),
            "`dangling` is a symbolic link whose target does not exist",
        ),
        (
            "write",
            json!({"path": "dangling", "content": "x"}),
            "`dangling` is a symbolic link whose target does not exist",
        ),
        (
            "write",
            json!({"path": "deep/er/.pe/runs.db", "content": "x"}),
            "`deep/er/.pe/runs.db` is refused: .pe is protected",
        ),
        (
            "write",
            json!({"path": "sub/.git/config", "content": "x"}),
            "`sub/.git/config` is refused: .git is protected",
        ),
        (
            "list",
            json!({"path": "link_out"}),
            "`link_out` is refused: it leads outside the workflow's directory (through a symbolic link)",
        ),
    ];
    let mut executor: Vec<Value> = attempts
        .iter()
        .map(|(tool, args, _)| json!({"tool_calls": [{"name": tool, "arguments": args}]}))
        .collect();
    executor.push(json!({"json": {"status": "succeeded", "result": "done"}}));
    let replies = json!({
        "planner": [{"json": {"steps": [{"id": "attack", "description": "Attack"}]}}],
        "executor": executor,
        "synthesizer": [{"text": "done"}],
    });
    case.write("replies.json", &serde_json::to_string(&replies).unwrap());
    let run = case.exec(&[], &[]);
    run.within_bounds("file builtin attack");
    let calls = tool_calls(&case);
    assert_eq!(
        calls.len(),
        attempts.len(),
        "{}\n{calls:?}",
        excerpt(&run.stderr)
    );
    for ((tool, _, want), (name, outcome, text)) in attempts.iter().zip(&calls) {
        assert_eq!(name, tool);
        assert_eq!(outcome, "error", "{tool}: {text}");
        assert_eq!(text, want);
    }
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret");
    assert!(!case.path("escape.txt").exists() && !std::path::Path::new("/tmp/pe-abs.txt").exists());
    assert!(!outside.path().join("x.txt").exists());
    assert!(!case.path("deep/er/.pe/runs.db").exists());
    assert!(!case.path("sub/.git/config").exists());
    assert!(!case.path("nowhere").exists());
}
