//! Every shipped workflow and every YAML block in the README passes `pe check`
//! (the documentation can never show a file the tool rejects).

use std::path::Path;

use assert_cmd::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn check(path: &Path) -> (Option<i32>, String) {
    let out = Command::cargo_bin("pe")
        .expect("pe binary")
        .env("NO_COLOR", "1")
        .arg("check")
        .arg(path)
        .output()
        .expect("run pe");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_shipped_workflow_passes_check() {
    let mut files: Vec<_> = std::fs::read_dir(root().join("workflows"))
        .expect("workflows/")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    for required in [
        "cost-of-living",
        "prior-authorization",
        "release-checklist",
        "research-compare",
        "scaffold-project",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "workflows/{required}.yaml is missing"
        );
    }
    for file in files {
        let (code, stderr) = check(&file);
        assert_eq!(code, Some(0), "{}:\n{stderr}", file.display());
        let text = std::fs::read_to_string(&file).expect("read");
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schemas/workflow.schema.json"),
            "{} must start with the schema modeline so editors validate it",
            file.display()
        );
    }
}

/// YAML blocks in the README: complete workflows (```yaml) must pass; fragments are fenced
/// as ```yaml fragment and only need to be valid YAML mappings.
#[test]
fn every_readme_yaml_block_passes_check() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut count = 0;
    let mut lines = readme.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if line.trim() != "```yaml" {
            continue;
        }
        let block: Vec<&str> = lines
            .by_ref()
            .map(|(_, l)| l)
            .take_while(|l| l.trim() != "```")
            .collect();
        let path = dir.path().join(format!("readme-line-{}.yaml", n + 1));
        std::fs::write(&path, block.join("\n") + "\n").expect("write block");
        let (code, stderr) = check(&path);
        assert_eq!(
            code,
            Some(0),
            "README.md block at line {}:\n{stderr}",
            n + 1
        );
        count += 1;
    }
    assert!(
        count >= 1,
        "the README should show at least one complete workflow"
    );
}
