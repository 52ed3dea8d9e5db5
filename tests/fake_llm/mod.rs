//! A fake model service for the provider tests: a wiremock server on 127.0.0.1 inside the
//! test process that speaks the OpenAI chat-completions and Anthropic Messages wire formats
//! and plays every role of a small workflow, deterministically, from what each request
//! contains. It checks what it receives (keys, headers, tool results) and records every
//! problem in `violations`; it can inject faults (5xx, 429 with Retry-After, truncated
//! bodies, a hung request) from a seeded deck.
//!
//! The workflow it plays: the planner makes steps `a`..`d`, each using the `lookup` tool
//! (step `a` calls it twice in one turn); each step calls the tool, then reports the tool
//! output; the synthesizer answers `done: a, b, c, d`.
//!
//! Like the servers people run, it insists on what llama-cpp-python insists on: an
//! assistant turn that called tools has string content (never `null`), and `tool_choice`
//! comes with `tools` (the first turn of a step names the planned tool, later turns say
//! `auto`). A violation is recorded and answered with HTTP 500, as that server does.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const STEPS: [&str; 4] = ["a", "b", "c", "d"];

/// Token usage every fake answer reports.
pub const INPUT_TOKENS: u64 = 100;
pub const OUTPUT_TOKENS: u64 = 10;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Wire {
    Anthropic,
    OpenAi,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    Hang,
    None,
    RateLimited { retry_after: u32 },
    ServerError,
    Truncated,
}

/// What the fake checks and how it misbehaves.
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// Expected `Authorization: Bearer …` (OpenAI) or `x-api-key` (Anthropic); `None`:
    /// no key may be sent.
    pub key: Option<String>,
    /// Headers that must be present with these values.
    pub headers: Vec<(String, String)>,
    /// Refuse `response_format` with a 400, as servers without structured output do.
    pub refuse_response_format: bool,
    /// Refuse `response_format: json_schema` with llama-cpp-python 0.3.36's HTTP 500 (a
    /// validation error naming `response_format`); accept `json_object` with a `schema`.
    pub refuse_json_schema: bool,
    /// Step `b`'s first tool call has arguments that are not JSON (once); the fake checks
    /// they come back verbatim with the parse error in the tool result.
    pub broken_arguments_once: bool,
    /// The planner's answer is padded to at least this many bytes.
    pub huge_plan_bytes: Option<usize>,
    /// Answers carry no `usage`.
    pub no_usage: bool,
    /// In prompt mode, the first plan is missing a description (to force a re-ask).
    pub bad_first_prompt_plan: bool,
    /// Faults by request number (0-based), cycling.
    pub faults: Vec<Fault>,
    /// Refuse `max_tokens` as OpenAI's newer models do (they want `max_completion_tokens`).
    pub refuse_max_tokens: bool,
    /// Answer every request with this status and body.
    pub fixed: Option<(u16, Value)>,
}

/// What the fake saw.
#[derive(Default)]
pub struct Seen {
    pub requests: Vec<Value>,
    pub violations: Vec<String>,
    pub faults: usize,
    /// `(step, tool_call_id, content)` of every tool result that came back.
    pub tool_results: Vec<(String, String, String)>,
}

pub struct FakeLlm {
    pub server: MockServer,
    pub seen: Arc<Mutex<Seen>>,
}

impl FakeLlm {
    pub async fn start(wire: Wire, behaviour: Behaviour) -> FakeLlm {
        let server = MockServer::start().await;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let responder = Responder {
            behaviour,
            count: AtomicUsize::new(0),
            seen: Arc::clone(&seen),
            wire,
        };
        let route = match wire {
            Wire::OpenAi => "/v1/chat/completions",
            Wire::Anthropic => "/v1/messages",
        };
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(responder)
            .mount(&server)
            .await;
        FakeLlm { server, seen }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    pub fn violations(&self) -> Vec<String> {
        self.seen.lock().unwrap().violations.clone()
    }

    pub fn requests(&self) -> Vec<Value> {
        self.seen.lock().unwrap().requests.clone()
    }
}

/// A seeded deck of `n` faults with the given counts; the rest are `None`.
pub fn deck(seed: u64, n: usize, counts: &[(Fault, usize)]) -> Vec<Fault> {
    let mut deck: Vec<Fault> = counts
        .iter()
        .flat_map(|(f, k)| std::iter::repeat_n(*f, *k))
        .collect();
    deck.resize(n, Fault::None);
    fastrand::Rng::with_seed(seed).shuffle(&mut deck);
    deck
}

struct Responder {
    behaviour: Behaviour,
    count: AtomicUsize,
    seen: Arc<Mutex<Seen>>,
    wire: Wire,
}

/// What a role answers, before it is put in a wire format.
enum Reply {
    /// One `lookup` call whose arguments are [`BROKEN_ARGUMENTS`].
    BrokenCall,
    Json(Value),
    Text(String),
    ToolCalls(Vec<(String, Value)>),
}

/// Arguments that are not JSON (cut off), as small models write them.
pub const BROKEN_ARGUMENTS: &str = r#"{"key": "b""#;

/// What llama-cpp-python refuses (HTTP 500) and pe must never send: an assistant turn
/// with tool calls whose content is not a string, or `tools` without `tool_choice`; and
/// what pe promises: only a step's first turn may name a tool, later turns say `auto`.
fn openai_request_problem(body: &Value) -> Option<String> {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    for m in &messages {
        if m["role"] == "assistant" && !m["content"].is_string() {
            return Some(format!(
                "messages: assistant content: Input should be a valid string: {m}"
            ));
        }
    }
    let tools = body.get("tools").and_then(Value::as_array)?;
    if tools.is_empty() {
        return None;
    }
    let acted = messages.iter().any(|m| m["role"] == "tool");
    let named = json!({"type": "function", "function": {"name": "lookup"}});
    let choice = body.get("tool_choice");
    let fine = choice == Some(&json!("auto")) || !acted && choice == Some(&named);
    (!fine).then(|| format!("tool_choice was {choice:?} (a tool answered: {acted})"))
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let mut seen = self.seen.lock().unwrap();
        seen.requests.push(body.clone());
        if let Some((status, body)) = &self.behaviour.fixed {
            return ResponseTemplate::new(*status).set_body_json(body);
        }
        if let Some(problem) = self.check_headers(request) {
            seen.violations.push(problem.clone());
            return ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"message": problem}}));
        }
        let fault = if self.behaviour.faults.is_empty() {
            Fault::None
        } else {
            self.behaviour.faults[n % self.behaviour.faults.len()]
        };
        if fault != Fault::None {
            seen.faults += 1;
        }
        match fault {
            Fault::ServerError => {
                return ResponseTemplate::new(500)
                    .set_body_json(json!({"error": {"message": "injected server error"}}));
            }
            Fault::RateLimited { retry_after } => {
                return ResponseTemplate::new(429)
                    .insert_header("retry-after", retry_after.to_string().as_str())
                    .set_body_json(json!({"error": {"message": "injected rate limit"}}));
            }
            _ => {}
        }
        if self.wire == Wire::OpenAi
            && let Some(problem) = openai_request_problem(&body)
        {
            seen.violations.push(problem.clone());
            return ResponseTemplate::new(500).set_body_json(
                json!({"error": {"message": problem, "type": "internal_server_error"}}),
            );
        }
        if self.wire == Wire::OpenAi
            && self.behaviour.refuse_json_schema
            && body.pointer("/response_format/type") == Some(&json!("json_schema"))
        {
            return ResponseTemplate::new(500).set_body_json(json!({"error": {
                "message": "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}",
                "type": "internal_server_error", "param": null, "code": null
            }}));
        }
        if self.wire == Wire::OpenAi
            && self.behaviour.refuse_response_format
            && body.get("response_format").is_some()
        {
            return ResponseTemplate::new(400).set_body_json(json!({"error": {
                "message": "response_format is not supported by this server",
                "type": "invalid_request_error"
            }}));
        }
        if self.behaviour.refuse_max_tokens && body.get("max_tokens").is_some() {
            return ResponseTemplate::new(400).set_body_json(json!({"error": {
                "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
                "type": "invalid_request_error"
            }}));
        }
        let reply = match self.wire {
            Wire::OpenAi => self.openai_reply(&body, &mut seen),
            Wire::Anthropic => self.anthropic_reply(&body, &mut seen),
        };
        let mut wire_body = match self.wire {
            Wire::OpenAi => openai_body(reply, n),
            Wire::Anthropic => anthropic_body(reply),
        };
        if self.behaviour.no_usage
            && let Some(o) = wire_body.as_object_mut()
        {
            o.remove("usage");
        }
        match fault {
            Fault::Truncated => {
                let text = wire_body.to_string();
                let cut = &text[..text.len() / 2];
                ResponseTemplate::new(200).set_body_raw(cut.to_string(), "application/json")
            }
            Fault::Hang => ResponseTemplate::new(200)
                .set_body_json(wire_body)
                .set_delay(Duration::from_secs(30)),
            _ => ResponseTemplate::new(200).set_body_json(wire_body),
        }
    }
}

impl Responder {
    fn check_headers(&self, request: &Request) -> Option<String> {
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (name, want) = match self.wire {
            Wire::OpenAi => (
                "authorization",
                self.behaviour.key.as_ref().map(|k| format!("Bearer {k}")),
            ),
            Wire::Anthropic => ("x-api-key", self.behaviour.key.clone()),
        };
        if header(name) != want {
            return Some(format!("{name} was {:?}, expected {want:?}", header(name)));
        }
        if self.wire == Wire::Anthropic && header("anthropic-version").is_none() {
            return Some("no anthropic-version header".into());
        }
        for (k, v) in &self.behaviour.headers {
            if header(k).as_deref() != Some(v.as_str()) {
                return Some(format!("header {k} was {:?}, expected {v}", header(k)));
            }
        }
        None
    }

    fn openai_reply(&self, body: &Value, seen: &mut Seen) -> Reply {
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let first = messages
            .first()
            .and_then(|m| m["content"].as_str())
            .unwrap_or("");
        let format = body.pointer("/response_format/json_schema/name");
        if format == Some(&json!("plan")) || first.contains("You are the planner") {
            if body.pointer("/response_format/type") == Some(&json!("json_object")) {
                let required = body.pointer("/response_format/schema/required");
                if required != Some(&json!(["steps"])) {
                    seen.violations
                        .push(format!("json_object without the plan schema: {body}"));
                }
            }
            if let Some(bytes) = self.behaviour.huge_plan_bytes {
                let mut plan = plan();
                plan["steps"][0]["description"] = json!("x".repeat(bytes));
                return Reply::Json(plan);
            }
            if format.is_none() && self.behaviour.bad_first_prompt_plan {
                let asked_again = messages.len() > 1;
                if !asked_again {
                    return Reply::Text(
                        r#"Here is the plan: {"steps": [{"id": "a"}]}"#.to_string(),
                    );
                }
                let correction = messages.last().and_then(|m| m["content"].as_str());
                let want = "That reply is not valid: at /steps/0: \"description\" is a required property\nReply again with only the corrected JSON document.";
                if correction != Some(want) {
                    seen.violations
                        .push(format!("prompt-mode correction was {correction:?}"));
                }
            }
            return Reply::Json(plan());
        }
        if body
            .get("tools")
            .is_some_and(|t| !t.as_array().is_some_and(Vec::is_empty))
        {
            let step = step_of(first);
            let last = messages.last().cloned().unwrap_or(Value::Null);
            if last["role"] != "tool" {
                if self.behaviour.broken_arguments_once && step == "b" {
                    return Reply::BrokenCall;
                }
                return tool_calls(&step);
            }
            if self.behaviour.broken_arguments_once && step == "b" && messages.len() == 3 {
                let sent = messages[1].pointer("/tool_calls/0/function/arguments");
                if sent != Some(&json!(BROKEN_ARGUMENTS)) {
                    seen.violations
                        .push(format!("broken arguments came back as {sent:?}"));
                }
                let want = "error: invalid arguments for `lookup`: \"{\\\"key\\\": \\\"b\\\"\" is not of type \"object\"\n(The arguments of this call are not a JSON object: EOF while parsing an object at line 1 column 11.)";
                if last["content"] != want {
                    seen.violations
                        .push(format!("the broken call's result was {}", last["content"]));
                }
                return tool_calls(&step);
            }
            // The tool results of the previous turn: one per call, in order, after the
            // assistant message that made the calls.
            let calls = expected_calls(&step);
            let results: Vec<&Value> = messages
                .iter()
                .rev()
                .take_while(|m| m["role"] == "tool")
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let assistant = &messages[messages.len() - results.len() - 1];
            let ids: Vec<String> = assistant["tool_calls"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|c| c["id"].as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default();
            let mut outputs = Vec::new();
            for (i, r) in results.iter().enumerate() {
                let id = r["tool_call_id"].as_str().unwrap_or("").to_string();
                let content = r["content"].as_str().unwrap_or("").to_string();
                seen.tool_results
                    .push((step.clone(), id.clone(), content.clone()));
                outputs.push(content);
                if ids.get(i) != Some(&id) {
                    seen.violations.push(format!(
                        "step {step}: tool result {i} answers {id}, calls were {ids:?}"
                    ));
                }
            }
            return final_reply(&step, &calls, &outputs, seen);
        }
        Reply::Text(format!("done: {}", STEPS.join(", ")))
    }

    fn anthropic_reply(&self, body: &Value, seen: &mut Seen) -> Reply {
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let first = messages
            .first()
            .and_then(|m| m.pointer("/content/0/text"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let planned_tool = json!({"type": "tool", "name": "lookup"});
        if let Some(choice) = body.get("tool_choice")
            && choice != &planned_tool
        {
            if choice != &json!({"type": "tool", "name": "plan"}) {
                seen.violations.push(format!("tool_choice was {choice}"));
            }
            return Reply::Json(plan());
        }
        if body.get("tools").is_some() {
            let step = step_of(first);
            let last = messages.last().cloned().unwrap_or(Value::Null);
            let blocks = last["content"].as_array().cloned().unwrap_or_default();
            if last["role"] != "user" || blocks.first().is_none_or(|b| b["type"] != "tool_result") {
                return tool_calls(&step);
            }
            let calls = expected_calls(&step);
            let asked = &messages[messages.len() - 2];
            let ids: Vec<String> = asked["content"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|b| b["type"] == "tool_use")
                        .map(|b| b["id"].as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default();
            let mut outputs = Vec::new();
            for (i, b) in blocks.iter().enumerate() {
                let id = b["tool_use_id"].as_str().unwrap_or("").to_string();
                let content = b["content"].as_str().unwrap_or("").to_string();
                seen.tool_results
                    .push((step.clone(), id.clone(), content.clone()));
                outputs.push(content);
                if ids.get(i) != Some(&id) {
                    seen.violations.push(format!(
                        "step {step}: tool result {i} answers {id}, calls were {ids:?}"
                    ));
                }
            }
            return final_reply(&step, &calls, &outputs, seen);
        }
        Reply::Text(format!("done: {}", STEPS.join(", ")))
    }
}

fn plan() -> Value {
    let steps: Vec<Value> = STEPS
        .iter()
        .map(|s| json!({"id": s, "description": format!("Look up {s}"), "tool": "lookup"}))
        .collect();
    json!({"steps": steps})
}

/// The step a request is for, from the executor prompt's "Step `x`:".
fn step_of(prompt: &str) -> String {
    prompt
        .split("Step `")
        .nth(1)
        .and_then(|r| r.split('`').next())
        .unwrap_or("?")
        .to_string()
}

/// The keys a step looks up (step `a` makes two calls in one turn).
fn expected_calls(step: &str) -> Vec<String> {
    if step == "a" {
        vec!["a".into(), "a2".into()]
    } else {
        vec![step.into()]
    }
}

fn tool_calls(step: &str) -> Reply {
    Reply::ToolCalls(
        expected_calls(step)
            .into_iter()
            .map(|k| ("lookup".to_string(), json!({"key": k})))
            .collect(),
    )
}

fn final_reply(step: &str, calls: &[String], outputs: &[String], seen: &mut Seen) -> Reply {
    let want: Vec<String> = calls.iter().map(|k| format!("value of {k}")).collect();
    if outputs != want {
        seen.violations.push(format!(
            "step {step}: tool results {outputs:?}, expected {want:?}"
        ));
    }
    Reply::Json(json!({"status": "succeeded", "result": outputs.join(" + ")}))
}

fn openai_body(reply: Reply, n: usize) -> Value {
    let (message, finish) = match reply {
        Reply::BrokenCall => (
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": format!("call_{n}_0"), "type": "function",
                 "function": {"name": "lookup", "arguments": BROKEN_ARGUMENTS}}
            ]}),
            "tool_calls",
        ),
        Reply::Text(t) => (json!({"role": "assistant", "content": t}), "stop"),
        Reply::Json(v) => (
            json!({"role": "assistant", "content": v.to_string()}),
            "stop",
        ),
        Reply::ToolCalls(calls) => {
            let calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(i, (name, args))| {
                    json!({"id": format!("call_{n}_{i}"), "type": "function",
                           "function": {"name": name, "arguments": args.to_string()}})
                })
                .collect();
            (
                json!({"role": "assistant", "content": null, "tool_calls": calls}),
                "tool_calls",
            )
        }
    };
    json!({
        "id": format!("chatcmpl-{n}"),
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": INPUT_TOKENS, "completion_tokens": OUTPUT_TOKENS,
                  "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS}
    })
}

fn anthropic_body(reply: Reply) -> Value {
    let (content, stop) = match reply {
        Reply::BrokenCall => unreachable!("the Anthropic API sends arguments as objects"),
        Reply::Text(t) => (json!([{"type": "text", "text": t}]), "end_turn"),
        Reply::Json(v) if v.get("steps").is_some() => (
            json!([{"type": "tool_use", "id": "toolu_plan", "name": "plan", "input": v}]),
            "tool_use",
        ),
        Reply::Json(v) => (json!([{"type": "text", "text": v.to_string()}]), "end_turn"),
        Reply::ToolCalls(calls) => (
            Value::Array(
                calls
                    .iter()
                    .map(|(name, args)| {
                        let key = args["key"].as_str().unwrap_or("");
                        json!({"type": "tool_use", "id": format!("toolu_{key}"), "name": name, "input": args})
                    })
                    .collect(),
            ),
            "tool_use",
        ),
    };
    json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": content, "stop_reason": stop,
        "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS}
    })
}

/// The workflow the fake plays; `models` and `providers` are YAML lines at top level.
pub fn workflow(models_and_providers: &str, extra: &str) -> String {
    format!(
        r#"version: 1
name: fake-llm
{models_and_providers}
tools:
  lookup:
    description: Look a key up.
    parameters: {{type: object, properties: {{key: {{type: string}}}}, required: [key], additionalProperties: false}}
    mock: 'value of {{{{ args.key }}}}'
task: Look up a, b, c and d
plan: {{parallel: true, max_concurrency: 4}}
{extra}
"#
    )
}

/// Variables a developer's shell may set that would change what the tests see.
const PROVIDER_ENV: [&str; 6] = [
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OLLAMA_HOST",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "PE_RETRY_BASE_MS",
];

/// `pe ARGS...` in the case's directory with only `envs` of the provider variables set, and
/// a 5 ms retry base delay so retries are fast.
pub fn pe(
    case: &crate::exec_support::Case,
    envs: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    let mut cmd = case.pe();
    for name in PROVIDER_ENV {
        cmd.env_remove(name);
    }
    cmd.env("PE_RETRY_BASE_MS", "5");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.args(args).output().unwrap()
}

/// `pe exec workflow.yaml --json ARGS...`, parsed.
pub fn exec(
    case: &crate::exec_support::Case,
    envs: &[(&str, &str)],
    args: &[&str],
) -> crate::exec_support::Run {
    let mut all = vec!["exec", "workflow.yaml", "--json"];
    all.extend_from_slice(args);
    let out = pe(case, envs, &all);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let doc = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}\nstderr: {stderr}"));
    crate::exec_support::Run {
        code: out.status.code().unwrap_or(-1),
        doc,
        stderr,
    }
}

/// Every step succeeded, once, with the results the fake's tool calls produce; the tool ran
/// once per call.
pub fn assert_every_step_ran_once(
    case: &crate::exec_support::Case,
    run: &crate::exec_support::Run,
) {
    assert_eq!(
        run.status(),
        "completed",
        "{}\n{}",
        run.reason(),
        run.stderr
    );
    assert_eq!(
        run.steps(),
        crate::exec_support::steps(&[
            ("a", "succeeded"),
            ("b", "succeeded"),
            ("c", "succeeded"),
            ("d", "succeeded"),
        ])
    );
    for (id, result) in [
        ("a", "value of a + value of a2"),
        ("b", "value of b"),
        ("c", "value of c"),
        ("d", "value of d"),
    ] {
        assert_eq!(run.step(id)["result"], result);
        assert_eq!(run.step(id)["attempts"], 1);
    }
    assert_eq!(run.doc["tool_calls"], json!({"lookup": 5}));
    assert_eq!(run.doc["output"], "done: a, b, c, d");
    let mut started: Vec<String> = case
        .events_of("step_started")
        .iter()
        .map(|e| format!("{}#{}", e["step"].as_str().unwrap(), e["attempt"]))
        .collect();
    started.sort();
    assert_eq!(started, ["a#1", "b#1", "c#1", "d#1"]);
    let mut tools: Vec<String> = case
        .events_of("tool_call")
        .iter()
        .map(|e| {
            format!(
                "{}:{}:{}",
                e["step"].as_str().unwrap(),
                e["arguments"]["key"].as_str().unwrap(),
                e["outcome"].as_str().unwrap()
            )
        })
        .collect();
    tools.sort();
    assert_eq!(tools, ["a:a2:ok", "a:a:ok", "b:b:ok", "c:c:ok", "d:d:ok"]);
}
