//! Command-line habits through the binary: shell completions and man pages generated from
//! the argument definitions, the builtins' published parameters, `--color` and `NO_COLOR`
//! on diagnostics, and `--json` on `pe model list`.

use assert_cmd::Command;

fn pe() -> Command {
    let mut cmd = Command::cargo_bin("pe").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

#[test]
fn completions_are_printed_for_every_shell_and_name_the_subcommands() {
    let firsts = [
        ("bash", "_pe() {"),
        ("zsh", "#compdef pe"),
        (
            "fish",
            "# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.",
        ),
        ("powershell", ""),
        ("elvish", ""),
    ];
    for (shell, first) in firsts {
        let out = pe().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert_eq!(script.lines().next(), Some(first), "{shell}");
        for sub in ["check", "exec", "test", "show", "completions", "man"] {
            assert!(script.contains(sub), "{shell} completion has no `{sub}`");
        }
    }
    let bad = pe().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn the_man_page_is_roff_and_out_dir_writes_one_page_per_command() {
    let out = pe().arg("man").output().unwrap();
    let page = String::from_utf8(out.stdout).unwrap();
    assert_eq!(page.lines().nth(2), Some(".TH pe 1  \"pe 0.1.0\" "));
    let dir = tempfile::tempdir().unwrap();
    let out = pe()
        .args(["man", "--out-dir"])
        .arg(dir.path().join("man1"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let mut pages: Vec<String> = std::fs::read_dir(dir.path().join("man1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "pe-check.1",
            "pe-completions.1",
            "pe-exec.1",
            "pe-man.1",
            "pe-model-list.1",
            "pe-model-pull.1",
            "pe-model.1",
            "pe-resume.1",
            "pe-runs.1",
            "pe-schema.1",
            "pe-show.1",
            "pe-test.1",
            "pe-tools.1",
            "pe.1"
        ]
    );
}

#[test]
fn schema_builtins_publishes_each_builtins_parameters() {
    let out = pe().args(["schema", "--builtins"]).output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names,
        [
            "calculator",
            "current_time",
            "list_files",
            "read_file",
            "write_file"
        ]
    );
    assert_eq!(
        doc["write_file"]["parameters"],
        serde_json::json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "File path relative to the workflow"},
                "content": {"type": "string", "description": "Text to write"}
            },
            "required": ["path", "content"],
            "additionalProperties": false
        })
    );
    let replies = pe().args(["schema", "--replies"]).output().unwrap();
    assert_eq!(
        String::from_utf8(replies.stdout).unwrap(),
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/replies.schema.json")
        )
        .unwrap()
    );
}

#[test]
fn color_always_paints_diagnostics_even_with_no_color_and_never_wins_over_a_terminal() {
    let fixture = "tests/fixtures/invalid/unknown-key.yaml";
    let always = pe()
        .env("NO_COLOR", "1")
        .args(["--color", "always", "check", fixture])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&always.stderr).contains("\u{1b}["));
    for args in [
        vec!["check", fixture],
        vec!["--color", "never", "check", fixture],
    ] {
        let plain = pe().env_remove("NO_COLOR").args(&args).output().unwrap();
        assert!(
            !String::from_utf8_lossy(&plain.stderr).contains('\u{1b}'),
            "{args:?}: a pipe gets no escape codes"
        );
    }
    let bad = pe()
        .args(["--color", "sometimes", "check", fixture])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn model_list_json_names_the_directory_and_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let out = pe()
        .env("PE_MODELS_DIR", dir.path())
        .args(["model", "list", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["models_dir"], dir.path().display().to_string());
    assert_eq!(doc["installed"], serde_json::json!([]));
    let names: Vec<&str> = doc["available"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["smollm2-135m", "gemma3-270m"]);
}
