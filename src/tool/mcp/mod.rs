//! MCP servers as tool sources. A `tools:` entry with `mcp:` names a server (a program
//! speaking MCP over stdin/stdout, or a streamable-HTTP endpoint); every tool the server lists
//! becomes a tool of the run named `<entry>__<tool>`, with the server's description and input
//! schema, validated and timed by the [`crate::tool::Toolbox`] like any other tool.
//!
//! The SDK (`rmcp`) is used in [`client`] only, behind the [`McpConnector`] / [`McpSession`]
//! traits defined here, so its API changes stay in one file; record/replay and `pe test`
//! stubs are other implementations of the same traits. [`server`] connects one entry once per
//! run (lazily, the first time the run asks) and turns its listing into tools; [`process`]
//! owns a stdio server's process group; [`content`] reads a `tools/call` result.

mod client;
mod content;
mod guard;
mod process;
mod server;
mod stub;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(crate) use client::RmcpConnector;
pub use guard::{GUARD_SUBCOMMAND, guard_main, set_guard_program};
pub use server::McpEntry;
pub(crate) use server::{McpServer, ServerReport, tool_name};
pub(crate) use stub::StubConnector;

/// The separator between an entry's name and a server tool's name: `files__read_text_file`.
/// Not a dot: OpenAI and Anthropic accept only `[A-Za-z0-9_-]` in tool names.
pub const NAME_SEPARATOR: &str = "__";

/// The longest tool name pe gives a model (OpenAI's and Anthropic's limit).
pub const MAX_TOOL_NAME: usize = 64;

/// The most stderr kept per server (its last bytes), for errors and the journal.
pub const STDERR_TAIL_BYTES: usize = 8 * 1024;

/// Lines of a server's stderr shown in an error message.
pub const STDERR_ERROR_LINES: usize = 12;

/// The largest single MCP message (one stdio line, one HTTP response) pe reads: a server
/// cannot make pe hold more than this per call.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Most tools taken from one server; the rest are left out and said so.
pub const MAX_SERVER_TOOLS: usize = 256;

/// The default of `mcp.startup_timeout`.
pub const DEFAULT_STARTUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// One tool as a server lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct McpToolInfo {
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments object.
    pub input_schema: Value,
    /// Its name on the server.
    pub name: String,
}

/// Who answered the `initialize` handshake.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerIdentity {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
}

/// How to reach one server, with every template rendered and the environment resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Http {
        /// Header name and value (values from `headers_from_env` included: secrets).
        headers: Vec<(String, String)>,
        url: String,
    },
    Stdio {
        argv: Vec<String>,
        cwd: PathBuf,
        /// The whole environment of the process (nothing else is inherited).
        env: Vec<(String, String)>,
    },
}

impl Target {
    /// The server as errors name it: its argv or URL (never header values).
    pub fn describe(&self) -> String {
        match self {
            Target::Http { url, .. } => url.clone(),
            Target::Stdio { argv, .. } => argv.join(" "),
        }
    }

    pub fn transport(&self) -> &'static str {
        match self {
            Target::Http { .. } => "http",
            Target::Stdio { .. } => "stdio",
        }
    }
}

/// How a stdio server's process ended (or that it still ran when pe closed it).
#[derive(Clone, Debug, PartialEq)]
pub struct ServerDiagnostics {
    /// `exited with code 1`, `killed by signal 9`; `None` while it runs (or for HTTP).
    pub exit: Option<String>,
    /// The end of its stderr (at most [`STDERR_TAIL_BYTES`]).
    pub stderr: String,
}

/// A connected, initialized server.
#[async_trait::async_trait]
pub(crate) trait McpSession: Send + Sync {
    /// Every tool the server lists (all pages).
    async fn list_tools(&self) -> Result<Vec<McpToolInfo>, McpError>;

    /// Calls one tool; the result is the `tools/call` result as JSON (`content`,
    /// `structuredContent`, `isError`), read by [`content::read_result`].
    async fn call_tool(&self, name: &str, arguments: &Value) -> Result<Value, McpError>;

    /// The server's stderr so far and whether its process ended.
    fn diagnostics(&self) -> ServerDiagnostics;

    fn identity(&self) -> ServerIdentity;

    /// Ends the session and the server's process group. Called once, at the end of the run.
    async fn close(&self) -> ServerDiagnostics;
}

/// Connects to a server (the SDK), or pretends to (replay, `pe test` stubs).
#[async_trait::async_trait]
pub(crate) trait McpConnector: Send + Sync {
    /// Connects and completes the handshake within `limit`.
    async fn connect(
        &self,
        entry: &str,
        target: &Target,
        limit: std::time::Duration,
    ) -> Result<Arc<dyn McpSession>, McpError>;
}

/// Why a server could not be used.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum McpError {
    /// Occurs when a call reached the server and the server's process had exited.
    #[error("the MCP server of `{entry}` ({server}) {exit} during the run{}", stderr_lines(.stderr))]
    Exited {
        entry: String,
        exit: String,
        server: String,
        stderr: String,
    },
    /// Occurs when a `headers_from_env` variable is not set.
    #[error(
        "the MCP server of `{entry}` needs the environment variable {variable} (for header {header}), which is not set"
    )]
    MissingEnv {
        entry: String,
        header: String,
        variable: String,
    },
    /// Occurs when the server's tool listing does not fit the entry: an `include` name the
    /// server does not offer, or two tools that would get the same name.
    #[error("MCP server of `{entry}`: {problem}")]
    Naming { entry: String, problem: String },
    /// Occurs when the server answered a request with a JSON-RPC error (an unknown tool,
    /// arguments it refuses).
    #[error("the MCP server of `{entry}` refused the request: {message}")]
    Refused { entry: String, message: String },
    /// Occurs when a template of the `mcp:` entry (argv, env, url, headers) does not render.
    #[error("the `mcp` entry of `{entry}`: cannot render {what}: {reason}")]
    Render {
        entry: String,
        reason: String,
        what: String,
    },
    /// Occurs when the server program cannot be started at all.
    #[error("cannot start the MCP server of `{entry}` ({server}): {reason}")]
    Spawn {
        entry: String,
        reason: String,
        server: String,
    },
    /// Occurs when the server started but did not complete the MCP handshake or listing
    /// (it exited, wrote something that is not MCP, or refused the connection).
    #[error("the MCP server of `{entry}` ({server}) did not start: {reason}{}", stderr_lines(.stderr))]
    Startup {
        entry: String,
        reason: String,
        server: String,
        stderr: String,
    },
    /// Occurs when starting and initializing took longer than `mcp.startup_timeout`.
    #[error("the MCP server of `{entry}` ({server}) did not answer the handshake within {after} (mcp.startup_timeout){}", stderr_lines(.stderr))]
    StartupTimeout {
        after: String,
        entry: String,
        server: String,
        stderr: String,
    },
    /// Occurs when a request failed on a running server (a broken connection, an HTTP or
    /// protocol error).
    #[error("the MCP server of `{entry}` ({server}) failed: {reason}{}", stderr_lines(.stderr))]
    Transport {
        entry: String,
        reason: String,
        server: String,
        stderr: String,
    },
}

/// `; its last stderr lines:` and the last [`STDERR_ERROR_LINES`] lines, indented, or
/// nothing when the server wrote nothing.
fn stderr_lines(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(STDERR_ERROR_LINES);
    let mut out = String::from("; its last stderr lines:");
    for line in &lines[start..] {
        out.push_str("\n    ");
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_end_with_the_last_stderr_lines() {
        let stderr: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let e = McpError::Exited {
            entry: "files".into(),
            exit: "exited with code 3".into(),
            server: "npx server".into(),
            stderr,
        };
        let want = "the MCP server of `files` (npx server) exited with code 3 during the run; its last stderr lines:\n    line 9\n    line 10\n    line 11\n    line 12\n    line 13\n    line 14\n    line 15\n    line 16\n    line 17\n    line 18\n    line 19\n    line 20";
        assert_eq!(e.to_string(), want);
        let quiet = McpError::Startup {
            entry: "files".into(),
            reason: "connection closed".into(),
            server: "npx server".into(),
            stderr: "\n \n".into(),
        };
        assert_eq!(
            quiet.to_string(),
            "the MCP server of `files` (npx server) did not start: connection closed"
        );
    }
}
