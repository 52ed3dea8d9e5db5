//! Every shipped workflow runs offline to `completed` on its scripted replies
//! (`workflows/replies/<name>.yaml`), with the tool calls its plan needs. Each runs in a copy
//! of `workflows/` so a workflow that writes files (scaffold-project) leaves the tree clean.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

struct Outcome {
    code: Option<i32>,
    result: Value,
    tool_calls: Vec<String>,
    dir: tempfile::TempDir,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn run(name: &str) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows"),
        &dir.path().join("workflows"),
    );
    let out = Command::cargo_bin("pe")
        .expect("pe")
        .current_dir(dir.path())
        .args([
            "exec",
            &format!("workflows/{name}.yaml"),
            "--json",
            "--store",
            "store",
        ])
        .args([
            "--model",
            &format!("scripted/workflows/replies/{name}.yaml"),
        ])
        .output()
        .expect("run pe");
    let result: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{name}: no JSON result ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let show = Command::cargo_bin("pe")
        .expect("pe")
        .current_dir(dir.path())
        .args(["show", "latest", "--json", "--store", "store"])
        .output()
        .expect("pe show");
    let mut tool_calls: Vec<String> = String::from_utf8_lossy(&show.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "tool_call")
        .map(|e| {
            format!(
                "{}:{}",
                e["name"].as_str().unwrap_or_default(),
                e["outcome"].as_str().unwrap_or_default()
            )
        })
        .collect();
    // Parallel steps may call their tools in any order.
    tool_calls.sort();
    Outcome {
        code: out.status.code(),
        result,
        tool_calls,
        dir,
    }
}

fn assert_completed(o: &Outcome, name: &str) {
    assert_eq!(
        (o.code, o.result["status"].as_str()),
        (Some(0), Some("completed")),
        "{name}: {}",
        o.result
    );
    for step in o.result["steps"].as_array().expect("steps") {
        assert_eq!(step["status"], "succeeded", "{name}: {step}");
    }
}

#[test]
fn research_compare_searches_both_countries_and_calculates() {
    let o = run("research-compare");
    assert_completed(&o, "research-compare");
    assert_eq!(
        o.tool_calls,
        ["calculate:ok", "calculate:ok", "search:ok", "search:ok"]
    );
    let compare = o.result["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == "compare")
        .expect("compare step");
    assert_eq!(compare["depends_on"], serde_json::json!(["gdp_a", "gdp_b"]));
}

#[test]
fn cost_of_living_runs_its_fixed_plan_without_a_planner() {
    let o = run("cost-of-living");
    assert_completed(&o, "cost-of-living");
    assert_eq!(
        o.tool_calls,
        [
            "calculate:ok",
            "calculate:ok",
            "calculate:ok",
            "cost_index:ok",
            "cost_index:ok"
        ]
    );
    let ids: Vec<&str> = o.result["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "index_a",
            "index_b",
            "housing",
            "disposable_a",
            "disposable_b",
            "compare"
        ]
    );
    // Step texts are templates over inputs.
    assert_eq!(
        o.result["steps"][0]["description"],
        "Look up the cost-of-living index of San Francisco."
    );
}

#[test]
fn prior_authorization_submits_and_answers_with_its_output_schema() {
    let o = run("prior-authorization");
    assert_completed(&o, "prior-authorization");
    assert_eq!(
        o.tool_calls,
        [
            "check_coverage:ok",
            "check_formulary:ok",
            "get_clinical_evidence:ok",
            "get_patient:ok",
            "submit_request:ok"
        ]
    );
    assert_eq!(o.result["output"]["submitted"], true);
    assert_eq!(o.result["output"]["tracking_id"], "PA-2026-0042");
}

#[test]
fn scaffold_project_creates_the_files_through_argv_commands_and_write_file() {
    let o = run("scaffold-project");
    assert_completed(&o, "scaffold-project");
    assert_eq!(
        o.tool_calls,
        [
            "list_files:ok",
            "make_dir:ok",
            "python_version:ok",
            "write_file:ok",
            "write_file:ok",
            "write_file:ok",
            "write_file:ok"
        ]
    );
    let project = o.dir.path().join("workflows/scaffold/demo_api");
    let main = std::fs::read_to_string(project.join("app/main.py")).expect("main.py written");
    assert!(main.starts_with("from fastapi import FastAPI\n"), "{main}");
    for f in ["requirements.txt", "Dockerfile", "README.md"] {
        assert!(project.join(f).is_file(), "{f} missing");
    }
}
