//! Record / replay (`pe exec --record FILE`, `--replay FILE`, a test case's `cassette:`).
//! A cassette is JSON lines, one model or tool exchange per line, in the order they
//! completed: the request (a model request as sent, or a tool's name and arguments) and
//! what came back. Secrets are redacted before anything is kept.
//!
//! Both sides are decorators: [`RecordingModel`] / [`RecordingTool`] wrap the real model and
//! tool runners, [`ReplayModel`] / [`ReplayTool`] answer from the cassette without touching
//! a network or running anything. The engine only sees the `Model` and `ToolRunner` traits.
//! Replay matches each request against the first unused exchange of the same kind that is
//! identical; the first request that has none is the drift, reported with the exchange it
//! should have matched and what differs.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Model, ModelError, ModelRequest, ModelResponse, ToolCall, Usage};
use crate::run::redact::Redactor;
use crate::spec::Role;
use crate::tool::mcp::McpToolInfo;
use crate::tool::{ToolContext, ToolError, ToolOutput, ToolRunner};

/// One line of a cassette.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Exchange {
    Model {
        /// The request as the model received it (messages, tools, format, settings).
        request: Value,
        #[serde(flatten)]
        reply: ModelReply,
        role: Role,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
    },
    Tool {
        arguments: Value,
        #[serde(flatten)]
        result: ToolReply,
        tool: String,
    },
    /// What an `mcp` entry's server listed when it connected: replay offers the same tools
    /// without starting it.
    McpTools {
        /// The `mcp` entry.
        tool: String,
        tools: Vec<McpToolInfo>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelReply {
    /// The provider failed (`no_reply_left` for a scripted file that ran out).
    Error { error: String, message: String },
    Response {
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
        usage: Usage,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolReply {
    Failed { message: String },
    Output { content: String, truncated: bool },
    TimedOut { after: String },
}

/// Why a cassette could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CassetteError {
    /// Occurs when a cassette line is not an exchange `pe exec --record` writes.
    #[error("{path}:{line}: not a cassette exchange: {reason}")]
    Invalid {
        line: usize,
        path: String,
        reason: String,
    },
    /// Occurs when the cassette file cannot be read or written.
    #[error("cassette {path}: {reason}")]
    Io { path: String, reason: String },
}

/// Exchanges collected while recording.
pub struct Recording {
    exchanges: Mutex<Vec<Exchange>>,
    redactor: Redactor,
}

impl Recording {
    pub fn new(redactor: Redactor) -> Arc<Recording> {
        Arc::new(Recording {
            exchanges: Mutex::new(Vec::new()),
            redactor,
        })
    }

    pub(crate) fn push(&self, exchange: Exchange) {
        let exchange = match serde_json::to_value(&exchange) {
            Ok(mut v) => {
                self.redactor.value(&mut v);
                serde_json::from_value(v).unwrap_or(exchange)
            }
            Err(_) => exchange,
        };
        self.exchanges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(exchange);
    }

    /// Writes the cassette (after the run: no file I/O happens on the async runtime).
    pub fn save(&self, path: &Path) -> Result<usize, CassetteError> {
        let exchanges = self.exchanges.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = String::new();
        for e in exchanges.iter() {
            text.push_str(&serde_json::to_string(e).unwrap_or_default());
            text.push('\n');
        }
        std::fs::write(path, text).map_err(|e| CassetteError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(exchanges.len())
    }
}

/// Records what the wrapped model answers.
pub struct RecordingModel {
    pub inner: Arc<dyn Model>,
    pub recording: Arc<Recording>,
}

#[async_trait::async_trait]
impl Model for RecordingModel {
    fn reference(&self) -> &str {
        self.inner.reference()
    }

    fn estimate(&self, request: &ModelRequest) -> Usage {
        self.inner.estimate(request)
    }

    fn default_output_cap(&self, role: Role) -> u64 {
        self.inner.default_output_cap(role)
    }

    fn max_requests(&self, request: &ModelRequest) -> u32 {
        self.inner.max_requests(request)
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        self.complete_observed(request, &crate::model::retry::Unobserved)
            .await
    }

    /// The wrapped model's own retries, usage reports and fallbacks still reach the engine:
    /// recording changes what is kept, not what is counted.
    async fn complete_observed(
        &self,
        request: &ModelRequest,
        observer: &dyn crate::model::retry::AttemptObserver,
    ) -> Result<ModelResponse, ModelError> {
        let result = self.inner.complete_observed(request, observer).await;
        let reply = match &result {
            Ok(r) => ModelReply::Response {
                text: r.text.clone(),
                tool_calls: r.tool_calls.clone(),
                truncated: r.truncated,
                usage: r.usage,
            },
            Err(e) => ModelReply::Error {
                error: match e {
                    ModelError::NoReplyLeft { .. } => "no_reply_left".into(),
                    _ => "provider".into(),
                },
                message: e.to_string(),
            },
        };
        self.recording.push(Exchange::Model {
            request: serde_json::to_value(request).unwrap_or(Value::Null),
            reply,
            role: request.role.unwrap_or(Role::Executor),
            step: request.step.clone(),
        });
        result
    }
}

/// Records what the wrapped tool runner returns.
pub struct RecordingTool {
    pub inner: Arc<dyn ToolRunner>,
    pub name: String,
    pub recording: Arc<Recording>,
}

#[async_trait::async_trait]
impl ToolRunner for RecordingTool {
    async fn call(&self, args: &Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let result = self.inner.call(args, ctx).await;
        let reply = match &result {
            Ok(out) => ToolReply::Output {
                content: out.content.clone(),
                truncated: out.truncated,
            },
            Err(ToolError::TimedOut { after, .. }) => ToolReply::TimedOut {
                after: after.clone(),
            },
            Err(e) => ToolReply::Failed {
                message: e.to_string(),
            },
        };
        self.recording.push(Exchange::Tool {
            arguments: args.clone(),
            result: reply,
            tool: self.name.clone(),
        });
        result
    }
}

/// A cassette being replayed: which exchanges were used, and the first drift.
pub struct Replay {
    drift: Mutex<Option<String>>,
    exchanges: Vec<Exchange>,
    label: String,
    used: Mutex<Vec<bool>>,
}

impl Replay {
    /// Reads a cassette file.
    pub fn load(path: &Path) -> Result<Arc<Replay>, CassetteError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CassetteError::Io {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let mut exchanges = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let e = serde_json::from_str(line).map_err(|e| CassetteError::Invalid {
                line: i + 1,
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            exchanges.push(e);
        }
        Ok(Arc::new(Replay {
            drift: Mutex::new(None),
            used: Mutex::new(vec![false; exchanges.len()]),
            exchanges,
            label: shown,
        }))
    }

    /// The first request the recording could not answer, if any.
    pub fn drift(&self) -> Option<String> {
        self.drift.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// After a run: the first drift, else the first recorded model exchange that was never
    /// asked for (the workflow now makes fewer calls).
    pub fn verdict(&self) -> Option<String> {
        if let Some(d) = self.drift() {
            return Some(d);
        }
        let used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let unused: Vec<usize> = (0..self.exchanges.len())
            .filter(|&i| !used[i] && matches!(self.exchanges[i], Exchange::Model { .. }))
            .collect();
        let first = *unused.first()?;
        Some(format!(
            "the run ended with {} recorded model exchange{} unused, first #{} ({})",
            unused.len(),
            if unused.len() == 1 { "" } else { "s" },
            first + 1,
            describe(&self.exchanges[first])
        ))
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub(crate) fn note_drift(&self, message: &str) {
        let mut drift = self.drift.lock().unwrap_or_else(|p| p.into_inner());
        if drift.is_none() {
            *drift = Some(message.to_string());
        }
    }

    /// The tools the server of `entry` listed when recording (marking that exchange used).
    pub(crate) fn mcp_tools(&self, entry: &str) -> Result<Vec<McpToolInfo>, String> {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let found = (0..self.exchanges.len()).find(|&i| {
            !used[i]
                && matches!(&self.exchanges[i], Exchange::McpTools { tool, .. } if tool == entry)
        });
        match found.map(|i| (i, &self.exchanges[i])) {
            Some((i, Exchange::McpTools { tools, .. })) => {
                used[i] = true;
                Ok(tools.clone())
            }
            _ => Err(format!(
                "the cassette has no tool listing of the MCP server `{entry}` (recorded before it was added?)"
            )),
        }
    }

    /// The index of the exchange that answers, marking it used; or why none does.
    fn take(&self, wanted: &Exchange, peek: bool) -> Result<usize, String> {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let same_call = |e: &Exchange| match (e, wanted) {
            (
                Exchange::Model { role, step, .. },
                Exchange::Model {
                    role: r, step: s, ..
                },
            ) => role == r && step == s,
            (Exchange::Tool { tool, .. }, Exchange::Tool { tool: t, .. }) => tool == t,
            _ => false,
        };
        let same_request = |e: &Exchange| match (e, wanted) {
            (Exchange::Model { request, .. }, Exchange::Model { request: r, .. }) => {
                fingerprint(request) == fingerprint(r)
            }
            (Exchange::Tool { arguments, .. }, Exchange::Tool { arguments: a, .. }) => {
                arguments == a
            }
            _ => false,
        };
        let found = (0..self.exchanges.len()).find(|&i| {
            !used[i] && same_call(&self.exchanges[i]) && same_request(&self.exchanges[i])
        });
        if let Some(i) = found {
            if !peek {
                used[i] = true;
            }
            return Ok(i);
        }
        let expected =
            (0..self.exchanges.len()).find(|&i| !used[i] && same_call(&self.exchanges[i]));
        let what = describe(wanted);
        Err(match expected {
            Some(i) => {
                let (old, new) = match (&self.exchanges[i], wanted) {
                    (Exchange::Model { request, .. }, Exchange::Model { request: r, .. }) => {
                        (fingerprint(request), fingerprint(r))
                    }
                    (Exchange::Tool { arguments, .. }, Exchange::Tool { arguments: a, .. }) => {
                        (arguments.clone(), a.clone())
                    }
                    _ => (Value::Null, Value::Null),
                };
                format!(
                    "the {what} differs from recorded exchange #{}: {}",
                    i + 1,
                    differences(&old, &new).join("; ")
                )
            }
            None => format!("the cassette has no {what} left"),
        })
    }
}

/// What identifies a model request: everything sent except `max_output_tokens`, which is
/// derived from the remaining token budget and the provider's own estimate of the call.
fn fingerprint(request: &Value) -> Value {
    let mut v = request.clone();
    if let Value::Object(map) = &mut v {
        map.shift_remove("max_output_tokens");
    }
    v
}

/// `planner call`, `executor call for step `ci``, `call of tool `deploy``.
fn describe(e: &Exchange) -> String {
    match e {
        Exchange::Model { role, step, .. } => match step {
            Some(s) => format!("{} call for step `{s}`", role.as_str()),
            None => format!("{} call", role.as_str()),
        },
        Exchange::Tool { tool, .. } => format!("call of tool `{tool}`"),
        Exchange::McpTools { tool, .. } => format!("tool listing of MCP server `{tool}`"),
    }
}

/// Where two JSON values differ: up to three places, each with a short excerpt.
pub fn differences(recorded: &Value, now: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(recorded, now, String::new(), &mut out);
    let more = out.len().saturating_sub(3);
    out.truncate(3);
    if more > 0 {
        out.push(format!("and {more} more"));
    }
    out
}

fn walk(a: &Value, b: &Value, at: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let here = format!("{at}/{}", crate::yaml::escape_pointer(k));
                match y.get(k) {
                    Some(vb) => walk(va, vb, here, out),
                    None => out.push(format!("at {here}: recorded {}, now absent", short(va))),
                }
            }
            for (k, vb) in y {
                if !x.contains_key(k) {
                    let here = format!("{at}/{}", crate::yaml::escape_pointer(k));
                    out.push(format!("at {here}: not recorded, now {}", short(vb)));
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                walk(va, vb, format!("{at}/{i}"), out);
            }
            if x.len() != y.len() {
                out.push(format!(
                    "at {}: recorded {} items, now {}",
                    if at.is_empty() { "/" } else { &at },
                    x.len(),
                    y.len()
                ));
            }
        }
        (Value::String(x), Value::String(y)) if x != y => {
            out.push(format!("at {at}: {}", string_change(x, y)));
        }
        _ if a != b => out.push(format!(
            "at {}: recorded {}, now {}",
            if at.is_empty() { "/" } else { &at },
            short(a),
            short(b)
        )),
        _ => {}
    }
}

/// Two strings from where they first differ, with a little context before.
fn string_change(a: &str, b: &str) -> String {
    let common = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map(|((i, _), _)| i)
        .unwrap_or(a.len().min(b.len()));
    let start = a[..common]
        .char_indices()
        .rev()
        .nth(19)
        .map_or(0, |(i, _)| i);
    let excerpt = |s: &str| {
        let tail: String = s.get(start..).unwrap_or("").chars().take(50).collect();
        let cut = s.get(start..).is_some_and(|t| t.chars().count() > 50);
        format!(
            "{}{}{}",
            if start > 0 { "…" } else { "" },
            tail,
            if cut { "…" } else { "" }
        )
    };
    format!("recorded {:?}, now {:?}", excerpt(a), excerpt(b))
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

/// Answers model calls from a cassette.
pub struct ReplayModel {
    pub reference: String,
    pub replay: Arc<Replay>,
}

impl ReplayModel {
    fn wanted(request: &ModelRequest) -> Exchange {
        Exchange::Model {
            request: serde_json::to_value(request).unwrap_or(Value::Null),
            reply: ModelReply::Error {
                error: String::new(),
                message: String::new(),
            },
            role: request.role.unwrap_or(Role::Executor),
            step: request.step.clone(),
        }
    }
}

#[async_trait::async_trait]
impl Model for ReplayModel {
    fn reference(&self) -> &str {
        &self.reference
    }

    fn estimate(&self, request: &ModelRequest) -> Usage {
        match self.replay.take(&Self::wanted(request), true) {
            Ok(i) => match &self.replay.exchanges[i] {
                Exchange::Model {
                    reply: ModelReply::Response { usage, .. },
                    ..
                } => *usage,
                _ => Usage::default(),
            },
            Err(_) => Usage::default(),
        }
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let i = match self.replay.take(&Self::wanted(request), false) {
            Ok(i) => i,
            Err(drift) => {
                self.replay.note_drift(&drift);
                return Err(ModelError::Replay {
                    cassette: self.replay.label.clone(),
                    drift,
                });
            }
        };
        match &self.replay.exchanges[i] {
            Exchange::Model {
                reply:
                    ModelReply::Response {
                        text,
                        tool_calls,
                        truncated,
                        usage,
                    },
                ..
            } => Ok(ModelResponse {
                text: text.clone(),
                tool_calls: tool_calls.clone(),
                truncated: *truncated,
                usage: *usage,
            }),
            Exchange::Model {
                reply: ModelReply::Error { error, message },
                role,
                ..
            } => Err(if error == "no_reply_left" {
                ModelError::NoReplyLeft {
                    file: self.replay.label.clone(),
                    matched_when: false,
                    role: role.as_str(),
                }
            } else {
                ModelError::Provider {
                    message: message.clone(),
                    model: self.reference.clone(),
                }
            }),
            Exchange::Tool { .. } | Exchange::McpTools { .. } => Err(ModelError::Replay {
                cassette: self.replay.label.clone(),
                drift: "a model call matched a tool exchange".into(),
            }),
        }
    }
}

/// Answers one tool's calls from a cassette.
pub struct ReplayTool {
    pub name: String,
    pub replay: Arc<Replay>,
}

#[async_trait::async_trait]
impl ToolRunner for ReplayTool {
    async fn call(&self, args: &Value, _ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let wanted = Exchange::Tool {
            arguments: args.clone(),
            result: ToolReply::Failed {
                message: String::new(),
            },
            tool: self.name.clone(),
        };
        let i = match self.replay.take(&wanted, false) {
            Ok(i) => i,
            Err(drift) => {
                self.replay.note_drift(&drift);
                return Err(ToolError::failed(format!("replay: {drift}")));
            }
        };
        match &self.replay.exchanges[i] {
            Exchange::Tool {
                result: ToolReply::Output { content, truncated },
                ..
            } => Ok(ToolOutput {
                content: content.clone(),
                truncated: *truncated,
            }),
            Exchange::Tool {
                result: ToolReply::TimedOut { after },
                ..
            } => Err(ToolError::TimedOut {
                tool: self.name.clone(),
                after: after.clone(),
            }),
            Exchange::Tool {
                result: ToolReply::Failed { message },
                ..
            } => Err(ToolError::failed(message.clone())),
            Exchange::Model { .. } | Exchange::McpTools { .. } => Err(ToolError::failed(
                "replay: a tool call matched a model exchange",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_name_the_place_and_show_an_excerpt() {
        let a = json!({"messages": [{"content": "Release api 1.4.2 to production now"}], "temperature": 0});
        let b = json!({"messages": [{"content": "Release api 1.4.3 to production now"}], "seed": 1, "temperature": 0});
        assert_eq!(
            differences(&a, &b),
            [
                r#"at /messages/0/content: recorded "Release api 1.4.2 to production now", now "Release api 1.4.3 to production now""#,
                "at /seed: not recorded, now 1"
            ]
        );
    }

    #[test]
    fn exchanges_are_flat_json_lines() {
        let e = Exchange::Tool {
            arguments: json!({"version": "1.4.2"}),
            result: ToolReply::Output {
                content: "ok".into(),
                truncated: false,
            },
            tool: "run_ci".into(),
        };
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(
            line,
            r#"{"kind":"tool","arguments":{"version":"1.4.2"},"output":{"content":"ok","truncated":false},"tool":"run_ci"}"#
        );
        assert_eq!(serde_json::from_str::<Exchange>(&line).unwrap(), e);
    }
}
