//! Tools as a workflow file declares them: builtin, command, http, mock, MCP server or
//! workflow, with their parameters, timeouts and error handling.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::duration::Duration;

/// A tool the executor may call. Exactly one of `builtin`, `command`, `http`, `mock`, `mcp`,
/// `workflow` is set (the checker turns it into [`crate::workflow::ToolKind`]).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    #[serde(default)]
    pub builtin: Option<String>,
    /// argv; each element is a template over `args`, `inputs`, `env` is never consulted.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Working directory for `command`, relative to the workflow file.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Required for every kind but `mcp` (each server tool has its own) and `workflow`
    /// (the child's `description` is the default).
    #[serde(default)]
    pub description: String,
    /// Environment variables set for `command` (templated like argv).
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// `mcp`: server tools left out (by their name on the server).
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub http: Option<HttpSpec>,
    /// `mcp`: only these server tools (by their name on the server); all when absent.
    #[serde(default)]
    pub include: Option<Vec<String>>,
    /// An MCP server whose tools become tools of the workflow (`<entry>__<tool>`).
    #[serde(default)]
    pub mcp: Option<McpSpec>,
    /// Variables of pe's own environment a `command` also gets (besides the minimal set).
    #[serde(default)]
    pub inherit_env: Vec<String>,
    /// Bytes of output kept; the rest is cut with a marker.
    #[serde(default)]
    pub max_output_bytes: Option<u64>,
    #[serde(default)]
    pub mock: Option<MockSpec>,
    #[serde(default)]
    pub on_error: OnError,
    /// JSON Schema of the arguments object.
    #[serde(default)]
    pub parameters: Option<Value>,
    /// Arguments that are paths inside the workflow's directory: resolved and confined
    /// like the file builtins' before the tool sees them.
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub timeout: Option<Duration>,
    /// Another workflow file, run as a child run per call (relative to this file).
    #[serde(default)]
    pub workflow: Option<String>,
}

/// How to reach an MCP server: a program speaking MCP on stdin/stdout, or a streamable-HTTP
/// endpoint. Exactly one of `command`, `url`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct McpSpec {
    /// argv of a stdio server; each element a template over `inputs`. Never a shell.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Working directory of the server process, relative to the workflow file.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Variables set for the server process (templates over `inputs`).
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// HTTP headers sent with every request (templates over `inputs`; no secrets here).
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// HTTP headers whose values are read from pe's environment: header → variable name.
    /// The values are secrets: redacted wherever pe shows or journals anything.
    #[serde(default)]
    pub headers_from_env: IndexMap<String, String>,
    /// Variables of pe's environment the server process also gets (secrets such as a
    /// token the server needs); nothing else is inherited beyond the minimal set.
    #[serde(default)]
    pub inherit_env: Vec<String>,
    /// How long starting and initializing the server may take (default 60s).
    #[serde(default)]
    pub startup_timeout: Option<Duration>,
    /// Streamable-HTTP endpoint, e.g. `http://127.0.0.1:3001/mcp` (a template over `inputs`).
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The model sees the error and may try again.
    #[default]
    Continue,
    /// The step fails at once.
    FailStep,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// A JSON value whose strings are templates, or one template string.
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
}

fn default_method() -> String {
    "GET".to_string()
}

/// A mock tool: one fixed result, or cases matched on the arguments.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum MockSpec {
    Fixed(String),
    Cases(MockCases),
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MockCases {
    #[serde(default)]
    pub cases: Vec<MockCase>,
    /// Error text when no case matches (makes the call fail).
    #[serde(default)]
    pub error: Option<String>,
    /// Result when no case matches; a string is a template over `args` and `inputs`.
    #[serde(default)]
    pub result: Option<Value>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MockCase {
    /// The call fails with this text.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub result: Option<Value>,
    /// Matches only the first N calls that fit `when` (e.g. fail once, then succeed).
    #[serde(default)]
    pub times: Option<u32>,
    /// Argument values that must all be equal for the case to apply.
    #[serde(default)]
    pub when: IndexMap<String, Value>,
}
