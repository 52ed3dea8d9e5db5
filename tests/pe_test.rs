//! `pe test`: the shipped workflows' cases pass, and a deliberately wrong expectation fails
//! with every miss explained (expected against actual), through the binary.

use std::path::Path;

use assert_cmd::Command;

fn pe_test(files: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::cargo_bin("pe")
        .expect("pe")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .arg("test")
        .args(files)
        .output()
        .expect("run pe test");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_shipped_workflow_passes_its_tests() {
    let mut files: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows"))
            .expect("workflows/")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .map(|p| format!("workflows/{}", p.file_name().unwrap().to_string_lossy()))
            .collect();
    files.sort();
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = pe_test(&args);
    assert_eq!(
        stdout,
        "test cost-of-living › San Francisco against Austin ... ok\n\
         test deploy-and-verify › deployed and verified (the child stubbed) ... ok\n\
         test deploy-and-verify › the child really runs and finds a bad error rate ... ok\n\
         test notes-digest › two notes, three action items ... ok\n\
         test notes-digest › a note the server cannot read fails the step ... ok\n\
         test prior-authorization › adalimumab for P-1001 is submitted ... ok\n\
         test quickstart › France against Germany ... ok\n\
         test quickstart › a plan that picks other countries fails the run ... ok\n\
         test release-checklist › every gate passes ... ok\n\
         test release-checklist › a failed smoke test gets a fix step ... ok\n\
         test release-checklist › failed verification aborts the release ... ok\n\
         test research-compare › France against Germany ... ok\n\
         test scaffold-project › a FastAPI project is scaffolded ... ok\n\
         test verify-deployment › a healthy deployment ... ok\n\
         test verify-deployment › a bad error rate is reported, not hidden ... ok\n\
         \n15 passed, 0 failed\n",
        "{stderr}"
    );
    assert_eq!(code, Some(0));
    // The scaffold test stubs its file tools: nothing was created.
    assert!(
        !Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("workflows/scaffold")
            .exists()
    );
}

#[test]
fn a_wrong_expectation_fails_with_every_miss_explained() {
    let (code, stdout, _) = pe_test(&["tests/fixtures/test/greeting.yaml"]);
    assert_eq!(
        stdout,
        "test greeting › greets the world ... ok\n\
         test greeting › a wrong expectation ... FAILED\n\
         \n\
         failures:\n\
         \n\
         ---- greeting › a wrong expectation ----\n\
         status: expected completed, got failed (step `greet` failed: no words left)\n\
         step `find`: expected failed, got succeeded\n\
         step `greet`: expected succeeded, got failed (no words left)\n\
         output: expected {\"greeting\":\"Hi\"}, got no output\n\
         output: expected it to contain \"Hello\", got no output\n\
         replans: expected 1, got 0\n\
         tool `lookup`: expected 2 calls, got 1\n\
         \n\
         1 passed, 1 failed\n"
    );
    assert_eq!(code, Some(1));
}

#[test]
fn an_invalid_workflow_exits_3_after_the_other_files_ran() {
    let (code, stdout, stderr) = pe_test(&[
        "tests/fixtures/invalid/unknown-key.yaml",
        "tests/fixtures/test/greeting.yaml",
    ]);
    assert_eq!(code, Some(3));
    assert_eq!(stdout.lines().last(), Some("1 passed, 1 failed"));
    assert_eq!(
        stderr.lines().last(),
        Some("error: tests/fixtures/invalid/unknown-key.yaml is not a valid workflow (2 problems)")
    );
}

#[test]
fn expect_steps_may_name_a_step_a_revision_adds_and_failures_show_the_root_error() {
    let (code, stdout, stderr) = pe_test(&["tests/fixtures/test/revise.yaml"]);
    assert_eq!(
        stdout,
        "test revise › a fix step is inserted ... ok\n\
         test revise › the dependency's own error is shown ... FAILED\n\
         \n\
         failures:\n\
         \n\
         ---- revise › the dependency's own error is shown ----\n\
         status: expected completed, got aborted (the service is down)\n\
         step `ship`: expected succeeded, got skipped (the run ended aborted)\n\
         note: step `check` failed: tool `status` failed: HTTP 503: pool exhausted\n\
         \n\
         1 passed, 1 failed\n",
        "{stderr}"
    );
    assert_eq!(code, Some(1));
}

#[test]
fn a_filter_runs_only_matching_cases_and_a_filter_matching_nothing_is_an_error() {
    let (code, stdout, _) = pe_test(&[
        "tests/fixtures/test/greeting.yaml",
        "tests/fixtures/test/revise.yaml",
        "--filter",
        "fix step",
        "-k",
        "greets",
    ]);
    assert_eq!(
        stdout,
        "test greeting › greets the world ... ok\n\
         test revise › a fix step is inserted ... ok\n\
         \n\
         2 passed, 0 failed; 2 filtered out\n"
    );
    assert_eq!(code, Some(0));
    let (code, stdout, stderr) =
        pe_test(&["tests/fixtures/test/greeting.yaml", "--filter", "nothing"]);
    assert_eq!(stdout, "\n0 passed, 0 failed; 2 filtered out\n");
    assert_eq!(stderr, "error: no test case matches --filter nothing\n");
    assert_eq!(code, Some(2));
}

#[test]
fn json_reports_every_case_with_its_problems() {
    let (code, stdout, _) = pe_test(&["--json", "tests/fixtures/test/greeting.yaml"]);
    assert_eq!(code, Some(1));
    let mut doc: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    for case in doc["cases"].as_array_mut().unwrap() {
        assert!(case["duration_ms"].is_u64());
        case["duration_ms"] = 0.into();
    }
    assert_eq!(
        doc,
        serde_json::json!({
            "passed": 1, "failed": 1, "filtered_out": 0, "invalid": [],
            "cases": [
                {"workflow": "greeting", "file": "tests/fixtures/test/greeting.yaml",
                 "name": "greets the world", "passed": true, "status": "completed",
                 "problems": [], "duration_ms": 0},
                {"workflow": "greeting", "file": "tests/fixtures/test/greeting.yaml",
                 "name": "a wrong expectation", "passed": false, "status": "failed",
                 "problems": [
                     "status: expected completed, got failed (step `greet` failed: no words left)",
                     "step `find`: expected failed, got succeeded",
                     "step `greet`: expected succeeded, got failed (no words left)",
                     "output: expected {\"greeting\":\"Hi\"}, got no output",
                     "output: expected it to contain \"Hello\", got no output",
                     "replans: expected 1, got 0",
                     "tool `lookup`: expected 2 calls, got 1"
                 ], "duration_ms": 0}
            ]
        })
    );
}

#[test]
fn a_typo_in_a_replies_file_is_located_by_file_line_column_role_and_index() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.yaml"),
        "version: 1\nname: w\ntask: t\nreplan: {when: never}\ntests:\n  - name: typo\n    replies: r.yaml\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("r.yaml"),
        "planner:\n  - json: {steps: [{id: a, description: A}]}\nexecutor:\n  - jsn: {status: succeeded}\n",
    )
    .unwrap();
    let out = Command::cargo_bin("pe")
        .unwrap()
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .args(["test", "w.yaml"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "pe::unknown-key

  × unknown key `jsn` in reply `executor[0]`
   ╭─[./r.yaml:4:5]
 3 │ executor:
 4 │   - jsn: {status: succeeded}
   ·     ─┬─
   ·      ╰── not a known key
   ╰────
  help: did you mean `json`?
error: ./r.yaml is not a valid replies file (1 problem)
"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "test w › typo ... FAILED\n\nfailures:\n\n---- w › typo ----\nthe run could not start: ./r.yaml is not a valid replies file (1 problem)\n\n0 passed, 1 failed\n"
    );
    assert_eq!(out.status.code(), Some(1));
}
