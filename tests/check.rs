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

/// `pe check` on a file written into a temporary directory: exit code and stderr.
fn check_text(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.yaml"), text).unwrap();
    let out = pe()
        .current_dir(dir.path())
        .args(["check", "w.yaml"])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stderr).expect("utf-8"),
    )
}

#[test]
fn the_help_names_the_form_people_meant() {
    let (code, stderr) = check_text(
        "version: 1\nname: h\ntask: Check {{ service }}.\ninputs:\n  service: {type: string}\ntools:\n  get:\n    description: Get.\n    http: 'https://example.com'\n",
    );
    assert_eq!(code, Some(3));
    assert_eq!(
        stderr,
        r#"pe::undefined-variable

  × undefined template variable `service`
   ╭─[w.yaml:3:16]
 2 │ name: h
 3 │ task: Check {{ service }}.
   ·                ───┬───
   ·                   ╰── not defined here
 4 │ inputs:
   ╰────
  help: `service` is an input: write `{{ inputs.service }}`
pe::schema

  × `tools.get.http` must be a mapping, not string
   ╭─[w.yaml:9:11]
 8 │     description: Get.
 9 │     http: 'https://example.com'
   ·           ──────────┬──────────
   ·                     ╰── expected object
   ╰────
  help: `http` is a mapping: `http: {url: 'https://api.example.com/items/{{ args.id }}', method:
        GET}` (also `headers`, `body`)
w.yaml: 2 problems
"#
    );
}

#[test]
fn deep_nesting_says_so_and_a_huge_line_is_shown_as_a_window() {
    let text = format!("version: 1\nname: x\ntask: {}\n", "[".repeat(100_000));
    let (code, stderr) = check_text(&text);
    assert_eq!(code, Some(3));
    let window = format!("…{}", "[".repeat(160));
    let expected = format!(
        "pe::yaml-syntax

  × the file is not valid YAML
   ╭─[w.yaml:3:262]
 2 │ name: x
 3 │ {window}…
   · {pad}▲
   · {pad}╰── recursion limit exceeded
   ╰────
  help: `[...]` and `{{...}}` nest at most 255 deep; no workflow needs this: flatten the structure,
        or quote the value if it is text
w.yaml: 1 problem
",
        pad = " ".repeat(54)
    );
    assert_eq!(stderr, expected);
}

#[test]
fn check_reads_standard_input_and_json_is_an_alias_of_format_json() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid/unknown-key.yaml"),
    )
    .unwrap();
    let out = pe()
        .args(["check", "--json", "-"])
        .write_stdin(text)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["files"][0]["file"], "<stdin>");
    assert_eq!(doc["files"][0]["diagnostics"][0]["code"], "pe::unknown-key");
    assert_eq!(doc["files"][0]["diagnostics"][0]["line"], 5);
    let twice = pe()
        .args(["check", "-", "-"])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(twice.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&twice.stderr).ends_with(
            "error: cannot read <stdin>: standard input was already read for another `-` argument\n"
        ),
        "{}",
        String::from_utf8_lossy(&twice.stderr)
    );
}
