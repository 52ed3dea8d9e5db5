//! Tools the executor calls: the [`ToolRunner`] trait, one implementation per kind
//! (`command`, `http`, `builtin`, `mock`), and the [`Toolbox`] that validates arguments
//! against each tool's `parameters` schema before anything runs.
//!
//! Model-chosen arguments are data: they are substituted into argv elements, URLs and bodies
//! after parsing, never through a shell.

use std::path::PathBuf;

use serde_json::Value;

/// What a tool call sees besides its arguments.
#[derive(Clone, Debug)]
pub struct ToolContext {
    /// The workflow's inputs (templates may use `inputs.x`).
    pub inputs: Value,
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
