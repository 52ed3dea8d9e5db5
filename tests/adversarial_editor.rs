//! Adversarial: the plan editor's temporary file (finding 9). Another user of the machine
//! must not be able to guess its name, plant a link there first, or read it: `pe exec` on a
//! terminal opens `$EDITOR` on a file with an unpredictable name, created exclusively, mode
//! 0600, in `$TMPDIR`. The editor here is a script that records what it was given.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WORKFLOW: &str = "version: 1
name: edited
task: Do a.
models: {default: scripted/replies.yaml}
tools:
  work: {description: Work., mock: done}
plan: {approve: true}
replan: {when: never}
";

const REPLIES: &str = "planner:
  - json: {steps: [{id: a, description: Do a, tool: work}]}
executor:
  - {json: {status: succeeded, result: did a}}
synthesizer:
  - {text: done}
";

/// Records the file's mode, name and directory, then leaves the plan as it is.
const EDITOR: &str = "#!/bin/sh\nstat -c '%a %n' \"$1\" > \"$(dirname \"$0\")/seen\"\n";

#[test]
fn the_plan_editor_file_is_private_and_unguessable() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::write(dir.path().join("workflow.yaml"), WORKFLOW).unwrap();
    std::fs::write(dir.path().join("replies.yaml"), REPLIES).unwrap();
    let editor = dir.path().join("editor.sh");
    std::fs::write(&editor, EDITOR).unwrap();

    let (mut master, slave) = pty();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("pe"))
        .current_dir(dir.path())
        .env_remove("PE_HOME")
        .env_remove("VISUAL")
        .env("EDITOR", format!("sh {}", editor.display()))
        .env("TMPDIR", &tmp)
        .env("NO_COLOR", "1")
        .args(["exec", "workflow.yaml", "--json"])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let screen = Arc::new(Mutex::new(String::new()));
    let mut reader = master.try_clone().unwrap();
    let shared = Arc::clone(&screen);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            shared
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    for (n, answer) in [(1, "e\n"), (2, "a\n")] {
        let t0 = Instant::now();
        while screen.lock().unwrap().matches("[a/r/e] ").count() < n {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "no prompt #{n}:\n{}",
                screen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        master.write_all(answer.as_bytes()).unwrap();
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", screen.lock().unwrap());
    let seen = std::fs::read_to_string(dir.path().join("seen")).unwrap();
    let (mode, path) = seen.trim().split_once(' ').unwrap();
    assert_eq!(mode, "600");
    let path = std::path::Path::new(path);
    assert_eq!(path.parent(), Some(tmp.as_path()));
    let name = path.file_name().unwrap().to_str().unwrap();
    let shape = regex_lite::Regex::new(r"^pe-plan-[0-9a-f]{32}\.yaml$").unwrap();
    assert!(shape.is_match(name), "{name}");
    // Nothing is left behind.
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

/// A pseudo-terminal (master, slave), from `openpty(3)` in the `libc` crate pe depends on.
fn pty() -> (std::fs::File, OwnedFd) {
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
    unsafe {
        (
            std::fs::File::from(OwnedFd::from_raw_fd(master)),
            OwnedFd::from_raw_fd(slave),
        )
    }
}
