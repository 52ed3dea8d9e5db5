//! Tools the executor calls: the [`ToolRunner`] trait, one implementation per kind
//! (`command`, `http`, `builtin`, `mock`, the tools of `mcp` servers, `workflow`), and the
//! [`Toolbox`] that validates arguments against each tool's `parameters` schema before
//! anything runs.
//!
//! Model-chosen arguments are data: they are substituted into argv elements, URLs and bodies
//! after parsing, never through a shell.

mod builtin;
pub mod calculator;
pub(crate) mod carried;
mod command;
pub(crate) mod environment;
mod files;
mod http;
pub mod mcp;
mod mock;
mod paths;
mod toolbox;
pub mod truncate;
mod workflow_tool;

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

pub use mcp::McpEntry;
pub use toolbox::Toolbox;
pub use workflow_tool::{ChildCall, ChildRunError, ChildRuns, child_run_id};

/// One way of running a tool. The [`Toolbox`] validates arguments and applies the timeout
/// before a runner sees a call, so runners only do their kind's work; they are shared by
/// concurrent steps, hence `Send + Sync` and `&self`.
#[async_trait::async_trait]
pub trait ToolRunner: Send + Sync {
    /// Runs the tool once. Dropping the future cancels the call (used for timeouts): a
    /// runner must not leave work behind when that happens.
    async fn call(&self, args: &Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError>;
}

/// What the model is shown about a tool: enough to choose it and write its arguments.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolDefinition {
    pub description: String,
    pub name: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

/// The variables a tool's templates (argv, env, URL, headers, body, mock results) see.
/// Only the model's `args` and the run's `inputs`: never the process environment, so a
/// template cannot leak a secret into a model-visible string.
pub fn template_context(args: &Value, ctx: &ToolContext) -> Value {
    serde_json::json!({"args": args, "inputs": ctx.inputs})
}

/// What a tool call sees besides its arguments.
#[derive(Clone, Debug, Default)]
pub struct ToolContext {
    /// The run's budget, for the model calls of child runs (workflow tools).
    pub budget: Option<crate::engine::BudgetGate>,
    /// The key of this call (`PE_IDEMPOTENCY_KEY` for commands, `Idempotency-Key` for http):
    /// the same when a resumed run makes the same call of the same step attempt again, so a
    /// side-effecting tool can recognise a repeat. Absent outside a run (`pe test` stubs).
    pub idempotency_key: Option<String>,
    /// The workflow's inputs (templates may use `inputs.x`).
    pub inputs: Value,
    /// The run the call belongs to (absent outside a run).
    pub run_id: Option<String>,
    /// The step the call belongs to.
    pub step: Option<String>,
    /// The directory of the workflow file: the root for relative paths and file builtins.
    pub workflow_dir: PathBuf,
}

/// A successful call's output, already truncated to the tool's `max_output_bytes`.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolOutput {
    pub content: String,
    /// Whether output was cut (the content then ends with a marker saying how much).
    pub truncated: bool,
}

/// Why a tool call failed. The engine shows the message to the model (`on_error: continue`)
/// or fails the step (`on_error: fail_step`).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ToolError {
    /// Occurs when the model calls a tool that is not declared.
    #[error("unknown tool `{name}`; available: {available}")]
    UnknownTool { name: String, available: String },
    /// Occurs when the arguments do not validate against the tool's `parameters`.
    #[error("invalid arguments for `{tool}`: {problems}")]
    InvalidArguments { tool: String, problems: String },
    /// Occurs when the tool ran and reported failure (non-zero exit, HTTP status >= 400,
    /// a mock case with `error`, a builtin refusing its input).
    #[error("{message}")]
    Failed { message: String },
    /// Occurs when the tool did not finish within its `timeout`.
    #[error("`{tool}` timed out after {after}")]
    TimedOut { tool: String, after: String },
}

impl ToolContext {
    /// The workflow's directory as an absolute path. A workflow named without a directory
    /// (`pe exec wf.yaml`) has an empty parent, which must mean the current directory, and
    /// a relative root would be resolved twice once a command changes into it.
    pub fn root(&self) -> PathBuf {
        let dir = if self.workflow_dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            self.workflow_dir.as_path()
        };
        std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
    }
}

impl ToolError {
    /// A [`ToolError::Failed`] with this message.
    pub fn failed(message: impl Into<String>) -> ToolError {
        ToolError::Failed {
            message: message.into(),
        }
    }
}
