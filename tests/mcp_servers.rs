//! `pe exec` and `pe tools` against real MCP servers: the npm filesystem and everything
//! servers over stdio, and a Python (`mcp` package) server over stdio and streamable HTTP
//! (`tests/mcp_servers/server.py`). `scripts/install-mcp-servers.sh` installs them (pinned)
//! into `~/.cache/pe` (or `$PE_MCP_DIR`). Without them a test prints SKIPPED and passes,
//! unless `PE_REQUIRE_MCP_SERVERS=1` (set by `.ci/run`), where it fails: CI never skips.

mod exec_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use exec_support::{Case, steps};
use serde_json::{Value, json};

/// Where the installed servers are.
struct Servers {
    everything: PathBuf,
    filesystem: PathBuf,
    /// The virtual environment's python, with the `mcp` package.
    python: PathBuf,
}

/// The installed servers, or `None` after printing SKIPPED (a failure when they are required).
fn servers(test: &str) -> Option<Servers> {
    let dir = std::env::var_os("PE_MCP_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/pe")))
        .unwrap_or_default();
    let bin = dir.join("npm/node_modules/.bin");
    let found = Servers {
        everything: bin.join("mcp-server-everything"),
        filesystem: bin.join("mcp-server-filesystem"),
        python: dir.join("mcp-python/bin/python"),
    };
    let python_ok = std::process::Command::new(&found.python)
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    let node_ok = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if node_ok && found.everything.exists() && found.filesystem.exists() && python_ok {
        return Some(found);
    }
    let why = format!(
        "MCP servers not found under {} (run scripts/install-mcp-servers.sh)",
        dir.display()
    );
    if std::env::var("PE_REQUIRE_MCP_SERVERS").is_ok_and(|v| v == "1") {
        panic!("{test}: {why}, and PE_REQUIRE_MCP_SERVERS=1");
    }
    // Written to the stream itself, not through eprintln!, which the test harness captures.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    None
}

fn server_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_servers/server.py")
}

/// A YAML flow sequence of strings (paths quoted as JSON, which YAML reads).
fn argv(items: &[&str]) -> String {
    serde_json::to_string(items).unwrap()
}

/// `(name, outcome)` of every tool call of the latest run.
fn outcomes(case: &Case) -> Vec<(String, String)> {
    case.events_of("tool_call")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Field `key` of every `tool_call` event of the latest run.
fn tool_field(case: &Case, key: &str) -> Vec<Value> {
    case.events_of("tool_call")
        .iter()
        .map(|e| e[key].clone())
        .collect()
}

/// Whether process `pid` is gone (or a zombie, which runs nothing).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // `pid (comm) S ...`: the state follows the last `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Waits up to `limit` for `pid` to be gone.
fn wait_gone(pid: i32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    gone(pid)
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_filesystem_server_lists_reads_and_writes_files() {
    let Some(s) = servers("the_filesystem_server_lists_reads_and_writes_files") else {
        return;
    };
    let command = argv(&["node", s.filesystem.to_str().unwrap(), "./data"]);
    let workflow = format!(
        r#"
version: 1
name: files
models: {{default: scripted/replies.yaml}}
tools:
  files:
    mcp:
      command: {command}
    include: [list_directory, read_text_file, write_file]
    timeout: 30s
task: Copy the greeting
plan: {{steps: [{{id: copy, description: copy a.txt to b.txt}}]}}
"#
    );
    let replies = r#"
executor:
  - {tool_calls: [{name: files__list_directory, arguments: {path: .}}]}
  - {when: '[FILE] a.txt', tool_calls: [{name: files__read_text_file, arguments: {path: a.txt}}]}
  - {when: 'hello from a', tool_calls: [{name: files__write_file, arguments: {path: b.txt, content: "copied: hello from a"}}]}
  - {when: 'Successfully wrote to b.txt', json: {status: succeeded, result: copied}}
synthesizer:
  - {text: done}
"#;
    let case = Case::new(&workflow, replies);
    std::fs::create_dir(case.path("data")).unwrap();
    std::fs::write(case.path("data/a.txt"), "hello from a\n").unwrap();
    let run = case.exec(&[]);
    assert_eq!(run.status(), "completed", "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(case.path("data/b.txt")).unwrap(),
        "copied: hello from a"
    );
    assert_eq!(
        outcomes(&case),
        steps(&[
            ("files__list_directory", "ok"),
            ("files__read_text_file", "ok"),
            ("files__write_file", "ok"),
        ])
    );
    assert_eq!(
        tool_field(&case, "arguments"),
        vec![
            json!({"path": "."}),
            json!({"path": "a.txt"}),
            json!({"path": "b.txt", "content": "copied: hello from a"}),
        ]
    );
    // The server's structuredContent repeats its text: the model sees the text once.
    assert_eq!(
        tool_field(&case, "output"),
        vec![
            json!("[FILE] a.txt"),
            json!("hello from a\n"),
            json!("Successfully wrote to b.txt"),
        ]
    );
    let connected = case.events_of("mcp_connected");
    assert_eq!(connected.len(), 1, "one server process per run");
    assert_eq!(connected[0]["tool"], "files");
    assert_eq!(connected[0]["server"], "secure-filesystem-server 0.2.0");
    assert_eq!(connected[0]["transport"], "stdio");
    assert_eq!(
        connected[0]["tools"],
        json!([
            "files__read_text_file",
            "files__write_file",
            "files__list_directory"
        ])
    );
    assert_eq!(case.events_of("mcp_closed").len(), 1);
}

#[test]
fn pe_tools_lists_the_servers_tools_with_their_parameters() {
    let Some(s) = servers("pe_tools_lists_the_servers_tools_with_their_parameters") else {
        return;
    };
    let command = argv(&["node", s.filesystem.to_str().unwrap(), "."]);
    let workflow = format!(
        r#"
version: 1
name: files
models: {{default: scripted/replies.yaml}}
tools:
  files:
    mcp:
      command: {command}
    include: [list_directory]
task: List
"#
    );
    let case = Case::new(&workflow, "{}");
    let out = case
        .pe()
        .args(["tools", "workflow.yaml", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tools = doc["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1, "{doc:#}");
    assert_eq!(tools[0]["name"], "files__list_directory");
    assert_eq!(
        tools[0]["parameters"]["properties"]["path"]["type"],
        "string"
    );
    assert_eq!(tools[0]["parameters"]["required"], json!(["path"]));
}

#[test]
fn the_everything_server_sums_shows_images_by_size_and_sees_only_the_named_environment() {
    let Some(s) = servers("the_everything_server_sums_shows_images_by_size") else {
        return;
    };
    let command = argv(&["node", s.everything.to_str().unwrap()]);
    let workflow = format!(
        r#"
version: 1
name: everything
models: {{default: scripted/replies.yaml}}
tools:
  ev:
    mcp:
      command: {command}
      env: {{GREETING: hello}}
      inherit_env: [PE_TEST_SHARED]
    include: [get-sum, get-tiny-image, get-env]
task: Sum
plan: {{steps: [{{id: a, description: use the tools}}]}}
"#
    );
    let replies = r#"
executor:
  - {tool_calls: [{name: ev__get-sum, arguments: {a: 2, b: 40}}]}
  - {when: 'The sum of 2 and 40 is 42.', tool_calls: [{name: ev__get-tiny-image, arguments: {}}]}
  - {tool_calls: [{name: ev__get-env, arguments: {}}]}
  - {json: {status: succeeded, result: '42'}}
synthesizer:
  - {text: '42'}
"#;
    let case = Case::new(&workflow, replies);
    let out = case
        .pe()
        .args(["exec", "workflow.yaml", "--json"])
        .env("PE_TEST_SHARED", "shared-value")
        .env("PE_TEST_SECRET", "must-not-reach-the-server")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outputs = tool_field(&case, "output");
    assert_eq!(outputs[0], json!("The sum of 2 and 40 is 42."));
    // Binary content is named with its type and size, never sent to a model as base64.
    assert_eq!(
        outputs[1],
        json!(
            "Here's the image you requested:\n\n[image image/png, 4035 bytes]\n\nThe image above is the MCP logo."
        )
    );
    // get-env answers with the server's environment as JSON.
    let env_text = outputs[2].as_str().unwrap();
    let env: Value = serde_json::from_str(env_text).unwrap();
    assert_eq!(env["GREETING"], "hello", "{env_text}");
    // The inherited variable reached the server; its value is a secret, redacted in what
    // the model and the journal see.
    assert_eq!(env["PE_TEST_SHARED"], "[redacted]", "{env_text}");
    let journal: Vec<String> = case.events().iter().map(Value::to_string).collect();
    assert!(
        journal.iter().all(|e| !e.contains("shared-value")),
        "a secret in the journal"
    );
    assert_eq!(env.get("PE_TEST_SECRET"), None, "{env_text}");
}

/// A workflow whose `t` entry is the Python test server over stdio, with `pidfile`.
fn python_stdio(s: &Servers, pidfile: &Path, tool_extra: &str, plan: &str) -> String {
    let command = argv(&[
        s.python.to_str().unwrap(),
        server_script().to_str().unwrap(),
        "stdio",
        "--pidfile",
        pidfile.to_str().unwrap(),
    ]);
    format!(
        r#"
version: 1
name: python
models: {{default: scripted/replies.yaml}}
tools:
  t:
    mcp:
      command: {command}
{tool_extra}
task: Use the server
{plan}
"#
    )
}

#[test]
fn an_error_result_follows_on_error_and_a_crash_names_the_server_and_its_stderr() {
    let Some(s) = servers("an_error_result_follows_on_error") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("server.pid");
    let workflow = python_stdio(
        &s,
        &pidfile,
        "    timeout: 20s",
        "plan: {steps: [{id: a, description: add}, {id: b, description: crash, depends_on: [a]}]}\nreplan: {when: never}",
    );
    let replies = r#"
executor:
  - {when: 'Step `a`', tool_calls: [{name: t__add, arguments: {a: 2, b: 3}}]}
  - {when: 'refused: no', json: {status: succeeded, result: saw the refusal}}
  - {when: '5', tool_calls: [{name: t__fail, arguments: {reason: 'no'}}]}
  - {when: 'Step `b`', tool_calls: [{name: t__crash, arguments: {}}]}
  - {when: 'exited with code 3', tool_calls: [{name: t__echo, arguments: {text: hi}}]}
  - {json: {status: failed, result: the server is gone}}
"#;
    let case = Case::new(&workflow, replies);
    let run = case.exec(&[]);
    assert_eq!(run.status(), "failed", "{}", run.stderr);
    assert_eq!(run.steps(), steps(&[("a", "succeeded"), ("b", "failed")]));
    assert_eq!(
        outcomes(&case),
        steps(&[
            ("t__add", "ok"),
            ("t__fail", "error"),
            ("t__crash", "error"),
            ("t__echo", "error"),
        ])
    );
    let errors = tool_field(&case, "error");
    // The Python SDK wraps the message of the ToolError the tool raised.
    assert_eq!(
        errors[1],
        json!("`t__fail`: Error executing tool fail: refused: no")
    );
    let crash = errors[2].as_str().unwrap();
    let server = format!(
        "{} {} stdio --pidfile {}",
        s.python.display(),
        server_script().display(),
        pidfile.display()
    );
    let head = format!(
        "`t__crash`: the MCP server of `t` ({server}) exited with code 3 during the run; its last stderr lines:"
    );
    assert_eq!(crash.lines().next(), Some(head.as_str()), "{crash}");
    assert_eq!(
        crash.lines().last(),
        Some("    pe-test-server: crashing on purpose"),
        "{crash}"
    );
    // Later calls say the same, at once: no restart, no hang.
    assert_eq!(
        errors[3].as_str().unwrap().lines().next(),
        Some(head.replace("t__crash", "t__echo").as_str())
    );
    let closed = case.events_of("mcp_closed");
    assert_eq!(closed[0]["exited"], "exited with code 3");
    assert_eq!(
        closed[0]["stderr"].as_str().unwrap().lines().last(),
        Some("pe-test-server: crashing on purpose")
    );
}

#[test]
fn a_hanging_call_times_out_and_the_server_is_killed_at_the_end_of_the_run() {
    let Some(s) = servers("a_hanging_call_times_out") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("server.pid");
    let workflow = python_stdio(
        &s,
        &pidfile,
        "    timeout: 1s\n    on_error: fail_step",
        "plan: {steps: [{id: a, description: hang}]}\nreplan: {when: never}",
    );
    let replies = "executor:\n  - {tool_calls: [{name: t__hang, arguments: {}}]}\n";
    let case = Case::new(&workflow, replies);
    let started = Instant::now();
    let run = case.exec(&[]);
    assert!(started.elapsed() < Duration::from_secs(20), "pe hung");
    assert_eq!(run.status(), "failed", "{}", run.stderr);
    assert_eq!(
        run.step("a")["error"],
        "tool `t__hang` failed: `t__hang` timed out after 1s"
    );
    let pid = read_pid(&pidfile);
    assert!(
        wait_gone(pid, Duration::from_secs(5)),
        "server {pid} outlived pe"
    );
}

#[test]
fn kill_9_of_pe_takes_the_server_with_it() {
    let Some(s) = servers("kill_9_of_pe_takes_the_server_with_it") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("server.pid");
    let workflow = python_stdio(
        &s,
        &pidfile,
        "    timeout: 10m",
        "plan: {steps: [{id: a, description: hang}]}",
    );
    let replies = "executor:\n  - {tool_calls: [{name: t__hang, arguments: {}}]}\n";
    let case = Case::new(&workflow, replies);
    let mut pe = std::process::Command::new(assert_cmd::cargo::cargo_bin!("pe"))
        .args(["exec", "workflow.yaml"])
        .current_dir(case.dir.path())
        .env_remove("PE_HOME")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the hanging call: the journal has its `tool_started`.
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(30), "no hang call");
        let journaled = case
            .pe()
            .args(["show", "latest", "--json"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains("\"tool_started\""));
        if journaled && pidfile.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = read_pid(&pidfile);
    assert!(!gone(pid));
    pe.kill().unwrap(); // SIGKILL
    pe.wait().unwrap();
    assert!(
        wait_gone(pid, Duration::from_secs(5)),
        "server {pid} outlived pe"
    );
}

#[test]
fn the_python_server_over_streamable_http() {
    let Some(s) = servers("the_python_server_over_streamable_http") else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(
        std::process::Command::new(&s.python)
            .arg(server_script())
            .args(["http", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "server not up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let workflow = format!(
        r#"
version: 1
name: http
models: {{default: scripted/replies.yaml}}
tools:
  calc:
    mcp:
      url: http://127.0.0.1:{port}/mcp
    exclude: [crash, hang]
    on_error: fail_step
task: Add
plan: {{steps: [{{id: a, description: add}}, {{id: b, description: fail, depends_on: [a]}}]}}
replan: {{when: never}}
"#
    );
    let replies = r#"
executor:
  - {when: 'Step `a`', tool_calls: [{name: calc__add, arguments: {a: 20, b: 22}}]}
  - {when: '42', json: {status: succeeded, result: '42'}}
  - {when: 'Step `b`', tool_calls: [{name: calc__fail, arguments: {reason: over http}}]}
"#;
    let case = Case::new(&workflow, replies);
    let run = case.exec(&[]);
    assert_eq!(run.status(), "failed", "{}", run.stderr);
    assert_eq!(run.steps(), steps(&[("a", "succeeded"), ("b", "failed")]));
    assert_eq!(
        run.step("b")["error"],
        "tool `calc__fail` failed: `calc__fail`: Error executing tool fail: refused: over http"
    );
    assert_eq!(
        tool_field(&case, "output")[0],
        json!("42"),
        "the structured {{\"result\": 42}} repeats the text"
    );
    // `exclude` left the tools out: the model is never offered them.
    let connected = case.events_of("mcp_connected");
    assert_eq!(
        connected[0]["tools"],
        json!(["calc__add", "calc__echo", "calc__fail"])
    );
    assert_eq!(connected[0]["transport"], "http");
}

#[test]
fn replay_answers_mcp_tools_without_starting_the_server() {
    let Some(s) = servers("replay_answers_mcp_tools_without_starting_the_server") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("server.pid");
    let plan = "plan: {steps: [{id: a, description: add}]}\nreplan: {when: never}";
    let workflow = python_stdio(&s, &pidfile, "    timeout: 20s", plan);
    let replies = r#"
executor:
  - {tool_calls: [{name: t__add, arguments: {a: 2, b: 3}}]}
  - {when: 'refused: no', json: {status: succeeded, result: ok}}
  - {when: '5', tool_calls: [{name: t__fail, arguments: {reason: 'no'}}]}
synthesizer:
  - {text: done}
"#;
    let case = Case::new(&workflow, replies);
    let recorded = case.exec(&["--record", "run.cassette"]);
    assert_eq!(recorded.status(), "completed", "{}", recorded.stderr);
    let first = (outcomes(&case), tool_field(&case, "output"));
    std::fs::remove_file(&pidfile).unwrap();
    // The server's program is gone: a replay that started it would fail.
    let broken = python_stdio(
        &Servers {
            python: PathBuf::from("/nonexistent/python"),
            ..s
        },
        &pidfile,
        "    timeout: 20s",
        plan,
    );
    std::fs::write(case.path("workflow.yaml"), broken).unwrap();
    let replayed = case.exec(&["--replay", "run.cassette"]);
    assert_eq!(replayed.status(), "completed", "{}", replayed.stderr);
    assert!(!pidfile.exists(), "the server started on replay");
    assert_eq!((outcomes(&case), tool_field(&case, "output")), first);
    assert_eq!(first.0, steps(&[("t__add", "ok"), ("t__fail", "error")]));
}

#[test]
fn the_embedded_model_reads_a_file_through_the_filesystem_server() {
    let test = "the_embedded_model_reads_a_file_through_the_filesystem_server";
    let Some(s) = servers(test) else {
        return;
    };
    let model = pe::models_cache::models_dir().join("smollm2-135m.gguf");
    if !model.is_file() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: {} is absent; run `pe model pull smollm2-135m`",
            model.display()
        );
        return;
    }
    let command = argv(&["node", s.filesystem.to_str().unwrap(), "./data"]);
    // The model picks the arguments itself, constrained by the server's input schema; the
    // step says which. Seeded, so the same build answers the same.
    let workflow = format!(
        r#"
version: 1
name: files-local
models: {{default: {{model: local/smollm2-135m, max_tokens: 48, seed: 1}}}}
tools:
  files:
    mcp:
      command: {command}
    include: [read_text_file]
    timeout: 30s
task: Read note.txt.
plan:
  steps:
    - id: read
      description: 'Call files__read_text_file with arguments {{"path": "note.txt"}}.'
      tool: files__read_text_file
      expected: The file's text.
execute: {{max_iterations: 2}}
replan: {{when: never}}
budget: {{max_llm_calls: 4}}
"#
    );
    let case = Case::new(&workflow, "{}");
    std::fs::create_dir(case.path("data")).unwrap();
    std::fs::write(
        case.path("data/note.txt"),
        "The launch code word is TANGERINE.\n",
    )
    .unwrap();
    let out = case
        .pe()
        .args(["exec", "workflow.yaml", "--json"])
        // One inference thread: see tests/local_model.rs.
        .env("PE_LOCAL_THREADS", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--json output is not JSON ({e}); stderr:\n{stderr}"));
    assert!(
        ["completed", "failed"].contains(&doc["status"].as_str().unwrap_or("")),
        "{doc:#}"
    );
    let calls = case.events_of("tool_call");
    assert!(!calls.is_empty(), "the model called no tool: {doc:#}");
    assert_eq!(calls[0]["name"], "files__read_text_file");
    assert_eq!(calls[0]["arguments"], json!({"path": "note.txt"}));
    assert_eq!(calls[0]["outcome"], "ok");
    assert_eq!(
        calls[0]["output"],
        json!("The launch code word is TANGERINE.\n")
    );
}

/// A workflow whose `s` entry runs `mcp` (a flow mapping), with a one-step fixed plan.
fn broken_server(mcp: &str) -> String {
    format!(
        r#"
version: 1
name: broken
models: {{default: scripted/replies.yaml}}
tools:
  s:
    mcp: {mcp}
task: x
plan: {{steps: [{{id: a, description: a}}]}}
replan: {{when: never}}
"#
    )
}

#[test]
fn a_server_that_cannot_start_fails_the_run_naming_it_and_its_stderr() {
    let replies = "executor: [{json: {status: succeeded, result: ok}}]\n";
    let cases = [
        (
            r#"{command: [sh, -c, "echo first >&2; echo boom >&2; exit 7"]}"#,
            "the MCP server of `s` (sh -c echo first >&2; echo boom >&2; exit 7) did not start: the process exited with code 7; its last stderr lines:\n    first\n    boom",
        ),
        (
            "{command: [no-such-mcp-server-xyz]}",
            "cannot start the MCP server of `s` (no-such-mcp-server-xyz): `no-such-mcp-server-xyz`: no such executable in PATH",
        ),
        (
            r#"{command: [sh, -c, "echo not mcp; sleep 30"], startup_timeout: 1s}"#,
            "the MCP server of `s` (sh -c echo not mcp; sleep 30) did not answer the handshake within 1s (mcp.startup_timeout)",
        ),
    ];
    for (mcp, want) in cases {
        let case = Case::new(&broken_server(mcp), replies);
        let started = Instant::now();
        let run = case.exec(&[]);
        assert!(started.elapsed() < Duration::from_secs(15), "{mcp}: hung");
        assert_eq!(run.status(), "failed", "{mcp}: {}", run.stderr);
        assert_eq!(run.code, 1, "{mcp}");
        assert_eq!(run.reason(), want, "{mcp}");
        // Nothing ran: no model call, no step.
        assert_eq!(run.doc["usage"]["llm_calls"], 0, "{mcp}");
        assert_eq!(case.events_of("mcp_failed").len(), 1, "{mcp}");
    }
}
