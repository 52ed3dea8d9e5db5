//! Every shipped workflow through `kind: openai` against a real OpenAI-compatible server:
//! llama-cpp-python's server (`scripts/llama-server.sh` installs it) with the embedded
//! model's GGUF, behind a recording proxy. With pe's default settings each run must reach a
//! terminal status with no HTTP error from the server (the one `json_schema` refusal that
//! `structured_output: auto` is built to meet aside, which must be journaled), tools must
//! be called and answered, structured replies must parse, and pe's usage must equal the
//! server's totals. What the tiny model decides is not judged.
//!
//! Skipped (with `SKIPPED` on stderr) when the server or the model is not installed,
//! except where `PE_REAL_SERVER_REQUIRED` is set, as `.ci/run` does.

mod llama_server;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use llama_server::{Exchange, Proxy, Server};
use serde_json::Value;

/// The shipped workflows and the inputs they need.
const WORKFLOWS: [(&str, &[&str]); 6] = [
    ("cost-of-living", &[]),
    ("prior-authorization", &[]),
    ("quickstart", &[]),
    ("release-checklist", &["--input", "version=1.4.2"]),
    ("research-compare", &[]),
    ("scaffold-project", &[]),
];

/// Workflows whose steps are direct tool steps: their tools run without the executor, so
/// the server is asked for a plan, not for tool calls.
const DIRECT: [&str; 1] = ["quickstart"];

const TERMINAL: [&str; 4] = ["completed", "failed", "aborted", "budget_exhausted"];

/// What one run did, as seen by the server (through the proxy) and by pe.
#[derive(Debug)]
struct Outcome {
    workflow: &'static str,
    status: String,
    seconds: f64,
    requests: usize,
    /// Non-200 answers other than the one structured-output refusal `auto` expects.
    errors: Vec<String>,
    /// `json_schema` refusals, and the journal's `structured_output_fallback` events.
    refusals: usize,
    fallbacks: usize,
    /// Tool calls the server made, those whose result went back to it, and tool messages
    /// answering an id the server never gave.
    server_tool_calls: usize,
    answered: usize,
    unknown_answers: usize,
    journal_tool_calls: usize,
    /// Structured replies (a `response_format` request that finished) and those that did
    /// not parse as JSON.
    structured: usize,
    unparsed: usize,
    /// The first structured reply that did not parse, for the failure message.
    unparsed_example: Option<String>,
    /// Usage of the completions pe received, and pe's usage of its calls less the
    /// estimates it records for calls a timeout cut off.
    server_usage: (u64, u64),
    pe_usage: (u64, u64),
    /// Requests pe gave up on (its timeout) that the server still answered: their tokens
    /// were spent but pe never saw the answer.
    abandoned: usize,
    /// What the journal says went wrong (llm_retry and failed llm_call events).
    journal_errors: Vec<String>,
}

impl Outcome {
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let w = self.workflow;
        if !TERMINAL.contains(&self.status.as_str()) {
            out.push(format!("{w}: status `{}` is not terminal", self.status));
        }
        for e in &self.errors {
            out.push(format!("{w}: HTTP error from the server: {e}"));
        }
        if self.refusals > 1 || self.refusals != self.fallbacks {
            out.push(format!(
                "{w}: {} json_schema refusals, {} journaled fallbacks",
                self.refusals, self.fallbacks
            ));
        }
        if DIRECT.contains(&self.workflow) {
            if self.server_tool_calls != 0 || self.journal_tool_calls == 0 {
                out.push(format!(
                    "{w}: direct steps: {} tool calls by the server (want 0), {} in the journal",
                    self.server_tool_calls, self.journal_tool_calls
                ));
            }
        } else if self.server_tool_calls == 0 || self.answered == 0 || self.journal_tool_calls == 0
        {
            out.push(format!(
                "{w}: tools not at work: {} calls by the server, {} answered, {} in the journal",
                self.server_tool_calls, self.answered, self.journal_tool_calls
            ));
        }
        if self.unknown_answers > 0 {
            out.push(format!(
                "{w}: {} tool results answer ids the server never gave",
                self.unknown_answers
            ));
        }
        if self.unparsed > 0 {
            out.push(format!(
                "{w}: {} of {} structured replies do not parse, e.g. {}",
                self.unparsed,
                self.structured,
                self.unparsed_example.as_deref().unwrap_or("")
            ));
        }
        if self.server_usage != self.pe_usage {
            out.push(format!(
                "{w}: usage: server {:?}, pe {:?}",
                self.server_usage, self.pe_usage
            ));
        }
        if !out.is_empty() {
            out.push(format!(
                "{w}: {} abandoned requests; journal: {:?}",
                self.abandoned, self.journal_errors
            ));
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_shipped_workflow_runs_on_llama_cpp_python_with_default_settings() {
    let test = "every_shipped_workflow_runs_on_llama_cpp_python_with_default_settings";
    let Some((python, model)) = llama_server::prerequisites(test) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let server = Server::start(&python, &model, logs.path(), &[]).await;
    let proxy = Proxy::start(&server.url).await;
    // `PE_REAL_SERVER_WORKFLOWS=a,b` runs only those (while working on one).
    let only = std::env::var("PE_REAL_SERVER_WORKFLOWS").unwrap_or_default();
    let mut outcomes = Vec::new();
    for (workflow, args) in WORKFLOWS {
        if !only.is_empty() && !only.split(',').any(|w| w == workflow) {
            continue;
        }
        outcomes.push(run(&proxy, workflow, args).await);
    }
    eprintln!(
        "workflow | status | s | requests (abandoned) | tool calls (server/answered/journal) | structured (parsed/all) | usage server = pe"
    );
    for o in &outcomes {
        eprintln!(
            "{} | {} | {:.0} | {} ({}) | {}/{}/{} | {}/{} | {}+{} = {}+{}",
            o.workflow,
            o.status,
            o.seconds,
            o.requests,
            o.abandoned,
            o.server_tool_calls,
            o.answered,
            o.journal_tool_calls,
            o.structured - o.unparsed,
            o.structured,
            o.server_usage.0,
            o.server_usage.1,
            o.pe_usage.0,
            o.pe_usage.1
        );
    }
    let problems: Vec<String> = outcomes.iter().flat_map(Outcome::problems).collect();
    assert!(
        problems.is_empty(),
        "{}\nserver log: {}",
        problems.join("\n"),
        std::fs::read_to_string(&server.log)
            .unwrap_or_default()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Runs one shipped workflow (a fresh copy of `workflows/`) with only `--model` pointing
/// at the proxy.
async fn run(proxy: &Proxy, workflow: &'static str, args: &[&str]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows"),
        &dir.path().join("workflows"),
    );
    proxy.take();
    let t0 = Instant::now();
    let out = pe(dir.path(), &proxy.url)
        .args([
            "exec",
            &format!("workflows/{workflow}.yaml"),
            "--json",
            "--yes",
        ])
        .args(["--model", "openai/smollm2-135m"])
        .args(args)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(900), out)
        .await
        .unwrap_or_else(|_| panic!("{workflow}: no end within 15 minutes"))
        .unwrap();
    let seconds = t0.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{workflow}: stdout is not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let journal = pe(dir.path(), &proxy.url)
        .args(["show", "latest", "--json"])
        .output()
        .await
        .unwrap();
    let events: Vec<Value> = String::from_utf8_lossy(&journal.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    let exchanges = proxy.take();
    let mut outcome = Outcome {
        workflow,
        status: doc["status"].as_str().unwrap_or("").to_string(),
        seconds,
        requests: exchanges.len(),
        errors: Vec::new(),
        refusals: 0,
        fallbacks: count("structured_output_fallback"),
        server_tool_calls: 0,
        answered: 0,
        unknown_answers: 0,
        journal_tool_calls: count("tool_call"),
        structured: 0,
        unparsed: 0,
        unparsed_example: None,
        server_usage: (0, 0),
        pe_usage: (0, 0),
        abandoned: 0,
        journal_errors: Vec::new(),
    };
    for e in &events {
        if e["type"] == "llm_call" && e["estimated"] != true {
            outcome.pe_usage.0 += e["input_tokens"].as_u64().unwrap_or(0);
            outcome.pe_usage.1 += e["output_tokens"].as_u64().unwrap_or(0);
        }
        if let Some(error) = e.get("error").and_then(Value::as_str)
            && (e["type"] == "llm_call" || e["type"] == "llm_retry")
        {
            outcome.journal_errors.push(error.to_string());
        }
    }
    let journal_total = (
        doc["usage"]["input_tokens"].as_u64().unwrap_or(0),
        doc["usage"]["output_tokens"].as_u64().unwrap_or(0),
    );
    if journal_total.0 < outcome.pe_usage.0 || journal_total.1 < outcome.pe_usage.1 {
        outcome.journal_errors.push(format!(
            "--json usage {journal_total:?} is below the journal's {:?}",
            outcome.pe_usage
        ));
    }
    inspect(&exchanges, &mut outcome);
    outcome
}

/// Reads the protocol off the recorded exchanges.
fn inspect(exchanges: &[Exchange], o: &mut Outcome) {
    let mut issued: HashSet<String> = HashSet::new();
    let mut answered: HashSet<String> = HashSet::new();
    for x in exchanges {
        let format = x
            .request
            .pointer("/response_format/type")
            .and_then(Value::as_str);
        if x.status != 200 {
            let message = x.response.to_string();
            if x.status == 500
                && format == Some("json_schema")
                && message.contains("response_format")
            {
                o.refusals += 1;
            } else {
                o.errors.push(format!("{} {}: {message}", x.status, x.path));
            }
            continue;
        }
        for m in x.request["messages"].as_array().into_iter().flatten() {
            if m["role"] == "tool" {
                let id = m["tool_call_id"].as_str().unwrap_or("").to_string();
                if issued.contains(&id) {
                    answered.insert(id);
                } else {
                    o.unknown_answers += 1;
                }
            }
        }
        if !x.delivered {
            o.abandoned += 1;
            continue;
        }
        let choice = &x.response["choices"][0];
        for call in choice["message"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            o.server_tool_calls += 1;
            issued.insert(call["id"].as_str().unwrap_or("").to_string());
        }
        if format.is_some() && choice["finish_reason"] == "stop" {
            o.structured += 1;
            let text = choice["message"]["content"].as_str().unwrap_or("");
            if let Err(e) = serde_json::from_str::<Value>(text) {
                o.unparsed += 1;
                o.unparsed_example.get_or_insert_with(|| {
                    format!("{e}: {text:?} (asked for {})", x.request["response_format"])
                });
            }
        }
        let usage = &x.response["usage"];
        o.server_usage.0 += usage["prompt_tokens"].as_u64().unwrap_or(0);
        o.server_usage.1 += usage["completion_tokens"].as_u64().unwrap_or(0);
    }
    o.answered = answered.len();
}

fn pe(dir: &Path, proxy: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pe"));
    cmd.current_dir(dir)
        .env_remove("PE_HOME")
        .env_remove("OPENAI_API_KEY")
        .env_remove("PE_RETRY_BASE_MS")
        .env("OPENAI_BASE_URL", format!("{proxy}/v1"))
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    cmd
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
