use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use serde_json::json;

use super::*;
use crate::tool::truncate::marker;

fn runner(argv: &[&str]) -> CommandRunner {
    CommandRunner {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        cwd: None,
        env: IndexMap::new(),
        inherit_env: Vec::new(),
        max_output_bytes: 64 * 1024,
        tool: "t".to_string(),
    }
}

fn context(dir: &Path) -> ToolContext {
    ToolContext {
        idempotency_key: None,
        inputs: json!({"service": "api"}),
        workflow_dir: dir.to_path_buf(),
        ..ToolContext::default()
    }
}

async fn run(runner: &CommandRunner, dir: &Path, args: Value) -> Result<String, String> {
    runner
        .call(&args, &context(dir))
        .await
        .map(|o| o.content)
        .map_err(|e| e.to_string())
}

/// Whether a process is gone (or a zombie nobody reaped yet: it no longer runs).
fn is_dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn model_values_stay_one_argv_element() {
    let dir = tempfile::tempdir().unwrap();
    let echo = runner(&["printf", "[%s]", "{{ args.x }}", "{{ inputs.service }}"]);
    for hostile in [
        "; rm -rf /",
        "$(id)",
        "`id` && echo pwned | cat > f",
        "a b\nc",
        "'\"*?~",
    ] {
        let out = run(&echo, dir.path(), json!({ "x": hostile })).await;
        assert_eq!(out, Ok(format!("[{hostile}][api]")), "{hostile}");
    }
    assert!(!dir.path().join("f").exists());
}

#[tokio::test]
async fn reports_how_a_command_failed() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], String); 6] = [
        (
            &["sh", "-c", "echo out; echo oops >&2; exit 3"],
            "`sh` exited with code 3; stderr:\noops".into(),
        ),
        (
            &["sh", "-c", "echo only-stdout; exit 1"],
            "`sh` exited with code 1; stdout:\nonly-stdout".into(),
        ),
        (
            &["sh", "-c", "exit 7"],
            "`sh` exited with code 7 (no output)".into(),
        ),
        (
            &["sh", "-c", "kill -9 $$"],
            "`sh` was killed by signal 9 (no output)".into(),
        ),
        (
            &["pe-no-such-program-xyz"],
            "cannot run `pe-no-such-program-xyz`: no such executable in PATH".into(),
        ),
        (
            &["./missing.sh"],
            format!(
                "cannot run `./missing.sh`: {} does not exist (or its `#!` interpreter does not)",
                dir.path().join("./missing.sh").display()
            ),
        ),
    ];
    for (argv, want) in cases {
        assert_eq!(
            run(&runner(argv), dir.path(), json!({})).await,
            Err(want),
            "{argv:?}"
        );
    }
}

#[tokio::test]
async fn output_is_stdout_with_stderr_labelled() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str); 4] = [
        ("echo out", "out\n"),
        ("echo warn >&2", "warn\n"),
        ("echo out; echo warn >&2", "out\n[stderr]\nwarn\n"),
        ("printf out; echo warn >&2", "out\n[stderr]\nwarn\n"),
    ];
    for (script, want) in cases {
        assert_eq!(
            run(&runner(&["sh", "-c", script]), dir.path(), json!({})).await,
            Ok(want.into()),
            "{script}"
        );
    }
}

#[tokio::test]
async fn runs_in_cwd_with_templated_env_and_relative_programs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
    let script = dir.path().join("scripts/hello.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"hello $1 from $(pwd)\"\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = dir.path().canonicalize().unwrap();

    let mut in_sub = runner(&["sh", "-c", "pwd; echo \"$GREETING\""]);
    in_sub.cwd = Some("sub".into());
    in_sub
        .env
        .insert("GREETING".into(), "hi {{ args.name }}".into());
    let want = format!("{}\nhi bob\n", root.join("sub").display());
    assert_eq!(
        run(&in_sub, dir.path(), json!({"name": "bob"})).await,
        Ok(want)
    );

    let hello = runner(&["./scripts/hello.sh", "{{ args.name }}"]);
    let want = format!("hello bob from {}\n", root.display());
    assert_eq!(
        run(&hello, dir.path(), json!({"name": "bob"})).await,
        Ok(want)
    );

    let mut nowhere = runner(&["true"]);
    nowhere.cwd = Some("missing".into());
    let want = format!(
        "`t`: working directory {} does not exist",
        dir.path().join("missing").display()
    );
    assert_eq!(run(&nowhere, dir.path(), json!({})).await, Err(want));

    let strict = runner(&["echo", "{{ args.nope }}"]);
    let err = run(&strict, dir.path(), json!({})).await.unwrap_err();
    assert!(
        err.starts_with("`t`: cannot render argv[1]: template failed to render"),
        "{err}"
    );
}

#[tokio::test]
async fn commands_get_a_minimal_environment_plus_what_the_tool_names() {
    // `cargo test` runs tests with CARGO_* variables set: stand-ins for secrets here.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
    let dir = tempfile::tempdir().unwrap();
    let mut env = runner(&["env"]);
    env.inherit_env = vec!["CARGO_MANIFEST_DIR".into()];
    env.env.insert("GREETING".into(), "hi".into());
    let out = run(&env, dir.path(), json!({})).await.unwrap();
    let mut keys: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k)
        .collect();
    keys.sort_unstable();
    let unexpected: Vec<&&str> = keys
        .iter()
        .filter(|k| {
            !MINIMAL_ENV.contains(k)
                && !k.starts_with("LC_")
                && !["CARGO_MANIFEST_DIR", "GREETING"].contains(k)
        })
        .collect();
    assert_eq!(unexpected, Vec::<&&str>::new(), "{out}");
    assert!(keys.contains(&"CARGO_MANIFEST_DIR"), "{out}");
    assert!(keys.contains(&"GREETING"), "{out}");
    assert!(keys.contains(&"PATH"), "{out}");
}

#[tokio::test]
async fn huge_output_is_cut_at_the_limit_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut seq = runner(&["seq", "1", "2000000"]);
    seq.max_output_bytes = 1000;
    let out = seq.call(&json!({}), &context(dir.path())).await.unwrap();
    let full_len: u64 = (1..=2_000_000u64)
        .map(|n| n.to_string().len() as u64 + 1)
        .sum();
    let head: String = (1..=400).map(|n| format!("{n}\n")).collect();
    assert!(out.truncated);
    assert_eq!(
        out.content,
        format!("{}{}", &head[..1000], marker(full_len - 1000))
    );
}

#[tokio::test]
async fn cancelling_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let sleeper = runner(&[
        "sh",
        "-c",
        "echo $$ > sh.pid; sleep 30 & echo $! > child.pid; wait",
    ]);
    let ctx = context(dir.path());
    let started = Instant::now();
    let result =
        tokio::time::timeout(Duration::from_millis(500), sleeper.call(&json!({}), &ctx)).await;
    assert!(result.is_err(), "the call should have timed out");
    let pids: Vec<String> = ["sh.pid", "child.pid"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(dir.path().join(f))
                .unwrap()
                .trim()
                .to_string()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pids.iter().all(|p| is_dead(p)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for pid in &pids {
        assert!(is_dead(pid), "process {pid} survived");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_background_child_holding_the_pipes_does_not_hang_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = run(
        &runner(&["sh", "-c", "sleep 30 & echo done"]),
        dir.path(),
        json!({}),
    )
    .await;
    assert_eq!(out, Ok("done\n".into()));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
