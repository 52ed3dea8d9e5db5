//! Plan approval (`plan.approve: true`) on a real terminal and headless. The terminal is a
//! pseudo-terminal opened with `openpty(3)` from the `libc` crate the binary already
//! depends on: stdin and stderr of `pe` are the terminal, stdout stays a pipe for the JSON
//! result. The workflow's replanner revises the plan, so the revision is asked about too,
//! shown as a diff.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const WORKFLOW: &str = r#"version: 1
name: approved
task: Do a, b and c.
models: {default: scripted/replies.yaml}
tools:
  work:
    description: Do one piece of work.
    parameters: {type: object, properties: {step: {type: string}}, required: [step]}
    mock:
      cases: [{when: {step: b}, error: b is broken}]
      result: 'did {{ args.step }}'
    on_error: fail_step
plan: {approve: true}
execute: {context: none}
replan: {when: on_failure, on_step_failure: {retries: 0, then: replan}, max_replans: 1}
"#;

const REPLIES: &str = r#"planner:
  - {repeat: true, json: {steps: [{id: a, description: Do a, tool: work}, {id: b, description: Do b, tool: work, depends_on: [a]}, {id: c, description: Do c, tool: work, depends_on: [b]}]}}
executor:
  - {when: 'did a', repeat: true, json: {status: succeeded, result: a done}}
  - {when: 'did fix', repeat: true, json: {status: succeeded, result: fix done}}
  - {when: 'did c', repeat: true, json: {status: succeeded, result: c done}}
  - {when: 'Step `a`', repeat: true, tool_calls: [{name: work, arguments: {step: a}}]}
  - {when: 'Step `b`', repeat: true, tool_calls: [{name: work, arguments: {step: b}}]}
  - {when: 'Step `fix`', repeat: true, tool_calls: [{name: work, arguments: {step: fix}}]}
  - {when: 'Step `c`', repeat: true, tool_calls: [{name: work, arguments: {step: c}}]}
replanner:
  - {when: 'Step `b` failed', repeat: true, json: {decision: revise, steps: [{id: fix, description: Fix b, tool: work}, {id: c, description: Do c, tool: work, depends_on: [fix]}]}}
synthesizer:
  - {repeat: true, text: done}
"#;

fn case() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("workflow.yaml"), WORKFLOW).unwrap();
    std::fs::write(d.path().join("replies.yaml"), REPLIES).unwrap();
    d
}

/// `pe ARGS` with stdin and stderr on a pseudo-terminal.
struct Terminal {
    child: std::process::Child,
    master: std::fs::File,
    screen: Arc<Mutex<String>>,
}

impl Terminal {
    fn spawn(dir: &Path, args: &[&str], editor: Option<&str>) -> Terminal {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two fds into the given ints; the other arguments may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(rc, 0, "openpty failed");
        // SAFETY: both fds were just opened by openpty and are owned here.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("pe"));
        cmd.current_dir(dir)
            .env_remove("PE_HOME")
            .env_remove("VISUAL")
            .env("NO_COLOR", "1")
            .args(args)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(slave));
        if let Some(e) = editor {
            cmd.env("EDITOR", e);
        }
        let child = cmd.spawn().unwrap();
        let master = std::fs::File::from(master);
        let screen = Arc::new(Mutex::new(String::new()));
        let mut reader = master.try_clone().unwrap();
        let shared = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shared
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Terminal {
            child,
            master,
            screen,
        }
    }

    /// Waits for the `n`th approval prompt, then types `answer`.
    fn answer(&mut self, n: usize, answer: &str) {
        let t0 = Instant::now();
        while self.screen().matches("[a/r/e] ").count() < n {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "no prompt #{n}; the terminal shows:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.master.write_all(answer.as_bytes()).unwrap();
        self.master.write_all(b"\n").unwrap();
    }

    fn screen(&self) -> String {
        self.screen.lock().unwrap().replace("\r\n", "\n")
    }

    fn finish(self) -> (Option<i32>, Value, String) {
        let out = self.child.wait_with_output().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let screen = self.screen.lock().unwrap().replace("\r\n", "\n");
        let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code(), doc, screen)
    }
}

fn steps(doc: &Value) -> Vec<(String, String, String)> {
    doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["description"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn own(v: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    v.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

fn journal(dir: &Path) -> Vec<Value> {
    let out = assert_cmd::Command::cargo_bin("pe")
        .unwrap()
        .current_dir(dir)
        .env_remove("PE_HOME")
        .args(["show", "latest", "--json"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn at_a_terminal_the_plan_is_edited_in_the_editor_then_the_revision_is_shown_as_a_diff() {
    let dir = case();
    let edits = dir.path().join("edits");
    std::fs::create_dir(&edits).unwrap();
    // First edit: a dependency on a step that does not exist; second: valid, b reworded.
    std::fs::write(
        edits.join("1.yaml"),
        "steps:\n  - {id: a, description: Do a, tool: work}\n  - {id: b, description: Do b, tool: work, depends_on: [zz]}\n",
    )
    .unwrap();
    std::fs::write(
        edits.join("2.yaml"),
        "steps:\n  - {id: a, description: Do a, tool: work}\n  - {id: b, description: Do b carefully, tool: work, depends_on: [a]}\n  - {id: c, description: Do c, tool: work, depends_on: [b]}\n",
    )
    .unwrap();
    std::fs::write(
        edits.join("edit.sh"),
        "n=$(ls \"$(dirname \"$0\")\" | grep -c done); n=$((n+1)); cp \"$(dirname \"$0\")/$n.yaml\" \"$1\"; touch \"$(dirname \"$0\")/done$n\"\n",
    )
    .unwrap();
    let editor = format!("sh {}", edits.join("edit.sh").display());
    let mut t = Terminal::spawn(
        dir.path(),
        &["exec", "workflow.yaml", "--json"],
        Some(&editor),
    );
    t.answer(1, "e");
    t.answer(2, "e");
    t.answer(3, "a");
    t.answer(4, "a");
    let (code, doc, screen) = t.finish();
    assert_eq!(code, Some(0), "{screen}");
    assert_eq!(
        steps(&doc),
        own(&[
            ("a", "Do a", "succeeded"),
            ("b", "Do b carefully", "failed"),
            ("fix", "Fix b", "succeeded"),
            ("c", "Do c", "succeeded"),
        ])
    );
    for shown in [
        "The plan needs approval:\n  1. a: Do a [tool: work]\n  2. b: Do b [tool: work] (after a)\n  3. c: Do c [tool: work] (after b)\n",
        "The edited plan is not valid: step `b` depends on unknown step `zz` (expected one of: `a`, `b`)\n",
        "The edited plan:\n  1. a: Do a [tool: work]\n  2. b: Do b carefully [tool: work] (after a)\n  3. c: Do c [tool: work] (after b)\n",
        "The replanner revised the plan; it needs approval:\n    a: Do a [tool: work]\n    b: Do b carefully [tool: work] (after a)\n  - c: Do c [tool: work] (after b)\n  + c: Do c [tool: work] (after fix)\n  + fix: Fix b [tool: work]\n",
    ] {
        assert!(
            screen.contains(shown),
            "expected on the terminal:\n{shown}\n---- it shows:\n{screen}"
        );
    }
    let approvals: Vec<Value> = journal(dir.path())
        .into_iter()
        .filter(|e| e["type"] == "plan_approved")
        .map(|e| serde_json::json!([e["by"], e["steps"].as_array().map(|s| s.len())]))
        .collect();
    assert_eq!(
        approvals,
        [
            serde_json::json!(["user", 3]),
            serde_json::json!(["user", null])
        ]
    );
}

#[test]
fn at_a_terminal_a_rejected_plan_ends_the_run_rejected() {
    let dir = case();
    let mut t = Terminal::spawn(dir.path(), &["exec", "workflow.yaml", "--json"], None);
    t.answer(1, "r");
    let (code, doc, screen) = t.finish();
    assert_eq!(code, Some(5), "{screen}");
    assert_eq!(doc["status"], "rejected");
    assert_eq!(doc["reason"], "the plan was rejected at the terminal");
}

#[test]
fn headless_the_run_waits_and_pe_resume_approves_or_rejects_it() {
    let pe = |dir: &Path, args: &[&str]| {
        assert_cmd::Command::cargo_bin("pe")
            .unwrap()
            .current_dir(dir)
            .env_remove("PE_HOME")
            .args(args)
            .output()
            .unwrap()
    };
    for (decision, code, status, by) in [
        ("--approve", 0, "completed", Some("flag")),
        ("--reject", 5, "rejected", None),
    ] {
        let dir = case();
        let out = pe(dir.path(), &["exec", "workflow.yaml", "--json"]);
        assert_eq!(out.status.code(), Some(5));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["status"], "awaiting_approval");
        let id = doc["run_id"].as_str().unwrap().to_string();

        let out = pe(dir.path(), &["resume", "latest"]);
        assert_eq!(out.status.code(), Some(5));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "error: run {id} awaits approval of its plan: continue it with `pe resume {id} --approve` or end it with `--reject`\n"
            )
        );

        let out = pe(dir.path(), &["resume", &id, decision, "--json"]);
        assert_eq!(out.status.code(), Some(code));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["status"], status);
        let approvals: Vec<Value> = journal(dir.path())
            .into_iter()
            .filter(|e| e["type"] == "plan_approved")
            .map(|e| e["by"].clone())
            .collect();
        // With --approve, the replanner's revision is approved by the same flag.
        match by {
            Some(by) => assert_eq!(approvals, [by, by]),
            None => assert!(approvals.is_empty()),
        }
    }
}
