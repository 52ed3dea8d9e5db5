//! The live progress view in a real terminal: `pe exec` runs with stderr on a
//! pseudo-terminal (`openpty(3)` from `libc`, 200×40), everything it draws goes through a
//! VT100 parser (the `vt100` crate), and the tests read the final screen — what a person
//! sees when the run ends — and the colours of its cells.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};

const ROWS: u16 = 40;
/// Wide enough that no line wraps: a wrapped line's break would move with the width of the
/// durations in it, which differ from run to run.
const COLS: u16 = 200;

/// Runs `pe ARGS` in the repository with stderr on a fresh terminal; returns the exit code
/// and the parsed terminal.
fn run_in_terminal(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, vt100::Parser) {
    let size = libc::winsize {
        ws_row: ROWS,
        ws_col: COLS,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two fds into the given ints and reads the winsize; the name and
    // termios arguments may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty failed");
    // Output processing as on a real terminal: `\n` moves to the start of the next line.
    // SAFETY: `slave` is an open terminal fd and `attrs` is written by tcgetattr before use.
    unsafe {
        let mut attrs: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(slave, &mut attrs), 0);
        attrs.c_oflag |= libc::OPOST | libc::ONLCR;
        assert_eq!(libc::tcsetattr(slave, libc::TCSANOW, &attrs), 0);
    }
    // SAFETY: both fds were just opened by openpty and are owned here.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let store = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("pe"));
    cmd.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .env_remove("PE_HOME")
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .args(args)
        .arg("--store")
        .arg(store.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    // The parent's copy of the slave is gone with `cmd`: reading the master ends (EIO) when
    // pe exits.
    drop(cmd);
    let mut master = std::fs::File::from(master);
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        all
    });
    let out = child.wait_with_output().unwrap();
    let bytes = reader.join().unwrap();
    let nonzero = |n| std::num::NonZeroU16::new(n).unwrap();
    let mut parser = vt100::Parser::new(nonzero(ROWS), nonzero(COLS), 0);
    parser.process(&bytes);
    (out.status.code(), parser)
}

/// The screen as a person sees it, row by row, with what changes between runs replaced:
/// the run id and durations.
fn normalized(parser: &vt100::Parser) -> String {
    let rows: Vec<String> = parser
        .screen()
        .rows(0, COLS)
        .map(|r| r.trim_end().to_string())
        .collect();
    let text = rows.join("\n");
    let id = regex_lite::Regex::new(r"\d{8}-\d{6}-\d{3}-[0-9a-f]{4}").unwrap();
    let took = regex_lite::Regex::new(r"\b\d+(\.\d)?(ms|s)\b|\b\d+m\d\ds\b").unwrap();
    let text = id.replace_all(&text, "RUN");
    let text = took.replace_all(&text, "T");
    text.trim_end().to_string()
}

fn release(version: &str, extra: &[&str], env: &[(&str, &str)]) -> (Option<i32>, vt100::Parser) {
    let replies = format!("scripted/workflows/replies/release-{version}.yaml");
    let input = format!("version={version}");
    let mut args = vec![
        "exec",
        "workflows/release-checklist.yaml",
        "--input",
        &input,
        "--model",
        &replies,
    ];
    args.extend_from_slice(extra);
    run_in_terminal(&args, env)
}

#[test]
fn the_final_screen_of_a_failing_release_names_the_failed_step() {
    let (code, parser) = release("1.5.0", &[], &[("NO_COLOR", "1")]);
    assert_eq!(code, Some(1));
    assert_eq!(
        normalized(&parser),
        "\
run RUN · release-checklist
plan: 4 steps: ci, smoke, deploy, verify
✓ ci (T): CI passed for 1.5.0: 431 tests, 0 failures
✓ smoke (T): smoke test passed: 12/12 checks
✓ deploy (T): deployed 1.5.0 to production: 6/6 instances healthy
  verify · verify: verification failed for 1.5.0: error rate 7.2% exceeds the 1% SLO for 10 minutes
✗ verify (T): tool `verify` failed: verification failed for 1.5.0: error rate 7.2% exceeds the 1% SLO for 10 minu… → asking the replanner
↻ replanner (on_failure): abort — 1.5.0 fails verification in production (error rate 7.2% against a 1% SLO); stop the release and roll back
aborted in T · 9 model calls · 2419 tokens
aborted: 1.5.0 fails verification in production (error rate 7.2% against a 1% SLO); stop the release and roll back"
    );
}

#[test]
fn a_revised_run_keeps_every_step_and_the_replan_on_screen() {
    let (code, parser) = release("1.4.3", &[], &[("NO_COLOR", "1")]);
    assert_eq!(code, Some(0));
    assert_eq!(
        normalized(&parser),
        "\
run RUN · release-checklist
plan: 4 steps: ci, smoke, deploy, verify
✓ ci (T): CI passed for 1.4.3: 412 tests, 0 failures
  smoke · smoke_test: smoke test failed for 1.4.3: GET /health returned 503 (database connection pool exhausted)
✗ smoke (T): tool `smoke_test` failed: smoke test failed for 1.4.3: GET /health returned 503 (database connection… → asking the replanner
↻ replanner (on_failure): revise — the smoke test found the database connection pool exhausted; fix it and test again before deploying; next: fix, smoke_retest, deploy, verify; accepts the failure of
smoke
✓ fix (T): hotfix applied: connection pool raised from 10 to 50, image rebuilt
✓ smoke_retest (T): smoke test passed after the fix: 12/12 checks
✓ deploy (T): deployed 1.4.3 to production: 6/6 instances healthy
✓ verify (T): verification passed: error rate 0.1%, p99 180 ms
completed in T · 14 model calls · 3733 tokens"
    );
}

/// The colour of the first cell holding `mark` on the screen.
fn colour_of(parser: &vt100::Parser, mark: &str) -> vt100::Color {
    let screen = parser.screen();
    for row in 0..ROWS {
        for col in 0..COLS {
            if let Some(cell) = screen.cell(row, col)
                && cell.contents() == mark
            {
                return cell.fgcolor();
            }
        }
    }
    panic!("no {mark} on the screen:\n{}", screen.contents());
}

#[test]
fn marks_are_coloured_on_a_terminal_unless_no_color_or_color_never() {
    let (_, coloured) = release("1.5.0", &[], &[]);
    assert_eq!(colour_of(&coloured, "✓"), vt100::Color::Idx(2));
    assert_eq!(colour_of(&coloured, "✗"), vt100::Color::Idx(1));
    let (_, no_color) = release("1.5.0", &[], &[("NO_COLOR", "1")]);
    assert_eq!(colour_of(&no_color, "✓"), vt100::Color::Default);
    assert_eq!(colour_of(&no_color, "✗"), vt100::Color::Default);
    let (_, never) = release("1.5.0", &["--color", "never"], &[]);
    assert_eq!(colour_of(&never, "✗"), vt100::Color::Default);
    // `--color always` wins over NO_COLOR.
    let (_, always) = release("1.5.0", &["--color", "always"], &[("NO_COLOR", "1")]);
    assert_eq!(colour_of(&always, "✗"), vt100::Color::Idx(1));
}
