//! `pe check` through the binary: one broken workflow per diagnostic kind, each with a
//! snapshot of its rendered diagnostics (line, column, caret, label, help), plus the JSON
//! format and exit codes.

use std::path::Path;

use assert_cmd::Command;

fn pe() -> Command {
    let mut cmd = Command::cargo_bin("pe").expect("pe binary");
    cmd.env("NO_COLOR", "1")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

fn fixtures() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("fixtures dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    names
}

#[test]
fn every_invalid_fixture_fails_with_its_rendered_diagnostics() {
    let names = fixtures();
    assert!(
        names.len() >= 20,
        "expected one fixture per diagnostic kind, found {}",
        names.len()
    );
    for name in names {
        let path = format!("tests/fixtures/invalid/{name}");
        let out = pe().args(["check", &path]).output().expect("run pe");
        assert_eq!(out.status.code(), Some(3), "{name} should be invalid");
        assert!(
            out.stdout.is_empty(),
            "{name}: diagnostics belong on stderr"
        );
        let stderr = String::from_utf8(out.stderr).expect("utf-8");
        insta::assert_snapshot!(name.trim_end_matches(".yaml"), stderr);
    }
}

/// The file name of each fixture names the diagnostic code it exists for.
#[test]
fn each_fixture_reports_the_code_it_is_named_after() {
    for name in fixtures() {
        let stem = name.trim_end_matches(".yaml");
        if stem == "many-problems" {
            continue;
        }
        let path = format!("tests/fixtures/invalid/{name}");
        let out = pe()
            .args(["check", "--format", "json", &path])
            .output()
            .expect("run pe");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
        let codes: Vec<&str> = doc["files"][0]["diagnostics"]
            .as_array()
            .expect("diagnostics")
            .iter()
            .filter_map(|d| d["code"].as_str())
            .collect();
        assert!(
            codes.contains(&format!("pe::{stem}").as_str()),
            "{name}: got {codes:?}"
        );
    }
}

#[test]
fn all_problems_are_reported_in_one_run_in_file_order() {
    let out = pe()
        .args([
            "check",
            "--format",
            "json",
            "tests/fixtures/invalid/many-problems.yaml",
        ])
        .output()
        .expect("run pe");
    assert_eq!(out.status.code(), Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let got: Vec<(String, u64, u64)> = doc["files"][0]["diagnostics"]
        .as_array()
        .expect("array")
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_string(),
                d["line"].as_u64().unwrap_or_default(),
                d["column"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let want = [
        ("pe::schema", 2, 7),
        ("pe::undefined-variable", 3, 19),
        ("pe::unknown-provider", 7, 12),
        ("pe::undefined-variable", 12, 28),
        ("pe::invalid-duration", 13, 14),
        ("pe::unknown-key", 15, 3),
        ("pe::dependency-cycle", 17, 31),
        ("pe::unknown-tool", 18, 54),
        ("pe::out-of-range", 20, 19),
    ];
    let want: Vec<(String, u64, u64)> = want
        .iter()
        .map(|(c, l, col)| (c.to_string(), *l, *col))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn json_format_has_the_documented_fields() {
    let out = pe()
        .args([
            "check",
            "--format",
            "json",
            "tests/fixtures/invalid/unknown-key.yaml",
        ])
        .output()
        .expect("run pe");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    insta::assert_json_snapshot!("json-format", doc);
}

#[test]
fn valid_files_exit_zero_and_say_ok() {
    let out = pe()
        .args(["check", "workflows/release-checklist.yaml"])
        .output()
        .expect("run pe");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "workflows/release-checklist.yaml: ok\n"
    );
}

#[test]
fn usage_errors_exit_two() {
    let out = pe().args(["check"]).output().expect("run pe");
    assert_eq!(out.status.code(), Some(2));
    let out = pe()
        .args(["check", "does/not/exist.yaml"])
        .output()
        .expect("run pe");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: cannot read does/not/exist.yaml: no such file\n"
    );
}

#[test]
fn one_bad_file_does_not_hide_the_others() {
    let out = pe()
        .args([
            "check",
            "workflows/release-checklist.yaml",
            "tests/fixtures/invalid/unknown-key.yaml",
            "missing.yaml",
        ])
        .output()
        .expect("run pe");
    // The highest code wins: an invalid workflow (3) over an unreadable file (2).
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Vec<&str> = stderr
        .lines()
        .filter(|l| l.ends_with(": ok") || l.contains(": 2 problems") || l.starts_with("error:"))
        .collect();
    assert_eq!(
        summary,
        [
            "workflows/release-checklist.yaml: ok",
            "tests/fixtures/invalid/unknown-key.yaml: 2 problems",
            "error: cannot read missing.yaml: no such file",
        ]
    );
}

#[test]
fn schema_command_prints_the_published_schema() {
    let out = pe().arg("schema").output().expect("run pe");
    assert_eq!(out.status.code(), Some(0));
    let published =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/workflow.schema.json"))
            .expect("schema file");
    assert_eq!(out.stdout, published);
}
