//! The checked workflow: what the engine accepts. Only [`crate::check`] builds one, after the
//! schema and the analyzer found no problem, so everything here is known to be consistent:
//! tool kinds are resolved, model references point at known providers, templates compile.

use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;

use crate::duration::Duration;
use crate::spec::{
    HttpSpec, MockSpec, ModelSettings, OnError, ProviderKind, ProviderSpec, Role, WorkflowFile,
};
pub use crate::tool::McpEntry;

/// Default output kept from one tool call before it is cut with a marker.
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 64 * 1024;

/// Timeout of a tool call when neither the tool's `timeout` nor `execute.tool_timeout` is
/// set: no call can hang a run forever.
pub const DEFAULT_TOOL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// The model used when a workflow names none: the embedded local model.
pub const DEFAULT_MODEL: &str = "local/smollm2-135m";

/// A workflow that passed `pe check`.
#[derive(Clone, Debug)]
pub struct Workflow {
    /// Directory the workflow file is in; relative paths resolve against it.
    pub dir: PathBuf,
    /// The file as written (read-only; defaults applied by serde).
    pub file: WorkflowFile,
    /// The model of each role, resolved.
    pub models: IndexMap<Role, ModelChoice>,
    pub path: PathBuf,
    pub tools: IndexMap<String, Tool>,
}

impl Workflow {
    pub fn model(&self, role: Role) -> &ModelChoice {
        &self.models[&role]
    }
}

/// A resolved model reference: which provider serves which model, with what settings.
#[derive(Clone, Debug)]
pub struct ModelChoice {
    /// The provider's kind (the API it speaks).
    pub kind: ProviderKind,
    /// The model name as the provider knows it (after `provider/`).
    pub model: String,
    /// The provider name as written (`openai`, or a key of `providers:`).
    pub provider: String,
    /// The declared provider entry, if the name is not a bare built-in.
    pub provider_spec: Option<ProviderSpec>,
    pub settings: ModelSettings,
}

impl ModelChoice {
    /// `provider/model`, as users write it.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }
}

/// A tool with its kind resolved.
#[derive(Clone, Debug)]
pub struct Tool {
    pub description: String,
    pub kind: ToolKind,
    pub max_output_bytes: u64,
    pub name: String,
    pub on_error: OnError,
    /// JSON Schema of the arguments (an empty object schema when none was declared).
    pub parameters: Value,
    /// Arguments that are workspace paths, resolved and confined before the tool runs.
    pub paths: Vec<String>,
    /// The tool's `timeout`, else `execute.tool_timeout`, else [`DEFAULT_TOOL_TIMEOUT`].
    pub timeout: Duration,
}

#[derive(Clone, Debug)]
pub enum ToolKind {
    Builtin(Builtin),
    Command {
        argv: Vec<String>,
        cwd: Option<String>,
        env: IndexMap<String, String>,
        /// Variables of pe's environment passed on besides the minimal set.
        inherit_env: Vec<String>,
    },
    Http(HttpSpec),
    /// An MCP server: not a tool itself; its tools are added when it connects.
    Mcp(McpEntry),
    Mock(MockSpec),
    /// Another workflow, run as a child run per call.
    Workflow {
        /// The child file as written in the entry (relative to this workflow's directory).
        path: String,
        workflow: Arc<Workflow>,
    },
}

impl ToolKind {
    pub fn name(&self) -> &'static str {
        match self {
            ToolKind::Builtin(_) => "builtin",
            ToolKind::Command { .. } => "command",
            ToolKind::Http(_) => "http",
            ToolKind::Mcp(_) => "mcp",
            ToolKind::Mock(_) => "mock",
            ToolKind::Workflow { .. } => "workflow",
        }
    }
}

/// Tools built into pe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// Arithmetic on numbers: `+ - * / % ^`, parentheses, a few functions. Never eval.
    Calculator,
    /// The current UTC time.
    CurrentTime,
    /// Lists a directory inside the workflow's directory.
    ListFiles,
    /// Reads a file inside the workflow's directory.
    ReadFile,
    /// Writes a file inside the workflow's directory.
    WriteFile,
}

impl Builtin {
    pub const NAMES: [&'static str; 5] = [
        "calculator",
        "current_time",
        "list_files",
        "read_file",
        "write_file",
    ];

    pub const ALL: [Builtin; 5] = [
        Builtin::Calculator,
        Builtin::CurrentTime,
        Builtin::ListFiles,
        Builtin::ReadFile,
        Builtin::WriteFile,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Builtin::Calculator => "calculator",
            Builtin::CurrentTime => "current_time",
            Builtin::ListFiles => "list_files",
            Builtin::ReadFile => "read_file",
            Builtin::WriteFile => "write_file",
        }
    }

    /// What the builtin does, as `pe schema --builtins` and the README publish it.
    pub fn description(self) -> &'static str {
        match self {
            Builtin::Calculator => {
                "Arithmetic on numbers: + - * / % ^, parentheses, pi, e, sqrt, abs, round, floor, ceil, min, max, ln, log10, exp. Never eval."
            }
            Builtin::CurrentTime => "The current UTC time, RFC 3339 (2026-11-05T14:03:07Z).",
            Builtin::ListFiles => {
                "Lists a directory inside the workflow's directory (directories end with /)."
            }
            Builtin::ReadFile => {
                "Reads a UTF-8 file inside the workflow's directory (at most `max_output_bytes`)."
            }
            Builtin::WriteFile => {
                "Writes a file inside the workflow's directory, creating parent directories."
            }
        }
    }

    pub fn from_name(name: &str) -> Option<Builtin> {
        Some(match name {
            "calculator" => Builtin::Calculator,
            "current_time" => Builtin::CurrentTime,
            "list_files" => Builtin::ListFiles,
            "read_file" => Builtin::ReadFile,
            "write_file" => Builtin::WriteFile,
            _ => return None,
        })
    }

    /// The argument schema a builtin takes when the workflow declares none.
    pub fn parameters(self) -> Value {
        let string_arg = |name: &str, desc: &str| {
            serde_json::json!({
                "type": "object",
                "properties": {name: {"type": "string", "description": desc}},
                "required": [name],
                "additionalProperties": false
            })
        };
        match self {
            Builtin::Calculator => string_arg(
                "expression",
                "An arithmetic expression, e.g. (4.31 - 2.96) / 2.96 * 100",
            ),
            Builtin::CurrentTime => {
                serde_json::json!({"type": "object", "properties": {}, "additionalProperties": false})
            }
            Builtin::ListFiles => string_arg("path", "Directory relative to the workflow, e.g. ."),
            Builtin::ReadFile => string_arg("path", "File path relative to the workflow"),
            Builtin::WriteFile => serde_json::json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path relative to the workflow"},
                    "content": {"type": "string", "description": "Text to write"}
                },
                "required": ["path", "content"],
                "additionalProperties": false
            }),
        }
    }
}
