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
         test prior-authorization › adalimumab for P-1001 is submitted ... ok\n\
         test release-checklist › every gate passes ... ok\n\
         test release-checklist › a failed smoke test gets a fix step ... ok\n\
         test release-checklist › failed verification aborts the release ... ok\n\
         test research-compare › France against Germany ... ok\n\
         test scaffold-project › a FastAPI project is scaffolded ... ok\n\
         \n7 passed, 0 failed\n",
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
