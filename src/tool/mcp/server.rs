//! One `mcp:` entry of a run: its server is connected once, the first time the run asks
//! ([`McpServer::connect`]), its listing becomes tools named `<entry>__<tool>`, and it is
//! closed (process group killed) when the run ends.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::content::read_result;
use super::{
    DEFAULT_STARTUP_TIMEOUT, MAX_SERVER_TOOLS, MAX_TOOL_NAME, McpConnector, McpError, McpSession,
    McpToolInfo, NAME_SEPARATOR, ServerDiagnostics, ServerIdentity, Target,
};
use crate::spec::McpSpec;
use crate::template;
use crate::tool::environment::inherited;
use crate::tool::truncate::truncate_text;
use crate::tool::{ToolContext, ToolError, ToolOutput, ToolRunner};

/// An `mcp:` entry, resolved by the checker.
#[derive(Clone, Debug, PartialEq)]
pub struct McpEntry {
    pub exclude: Vec<String>,
    pub include: Option<Vec<String>>,
    pub spec: McpSpec,
}

/// A server tool as the run offers it.
#[derive(Clone)]
pub(crate) struct ServerTool {
    pub(crate) description: String,
    /// `<entry>__<tool>`.
    pub(crate) name: String,
    pub(crate) parameters: Value,
    pub(crate) runner: Arc<dyn ToolRunner>,
}

/// What connecting an entry's server gave: for the journal (`mcp_connected`,
/// `mcp_failed`), `pe tools` and errors.
#[derive(Clone)]
pub(crate) struct ServerReport {
    pub(crate) duration_ms: u64,
    pub(crate) entry: String,
    pub(crate) identity: ServerIdentity,
    /// The server as errors name it (argv or URL).
    pub(crate) server: String,
    /// Listed tools that were left out, with why (a name too long, a collision, too many).
    pub(crate) skipped: Vec<String>,
    pub(crate) tools: Result<Vec<ServerTool>, McpError>,
    pub(crate) transport: &'static str,
}

/// The server of one entry: not connected until the run needs it, then connected once.
pub(crate) struct McpServer {
    connector: Arc<dyn McpConnector>,
    entry: McpEntry,
    max_output_bytes: usize,
    name: String,
    session: tokio::sync::OnceCell<Option<Arc<dyn McpSession>>>,
}

impl McpServer {
    pub(crate) fn new(
        name: String,
        entry: McpEntry,
        connector: Arc<dyn McpConnector>,
        max_output_bytes: usize,
    ) -> McpServer {
        McpServer {
            connector,
            entry,
            max_output_bytes,
            name,
            session: tokio::sync::OnceCell::new(),
        }
    }

    pub(crate) fn set_connector(&mut self, connector: Arc<dyn McpConnector>) {
        self.connector = connector;
    }

    pub(crate) fn connector(&self) -> Arc<dyn McpConnector> {
        Arc::clone(&self.connector)
    }

    /// Connects (the first time only: a second call reports the server as already
    /// connected, with no tools), lists the tools and names them. `taken` are names already
    /// in use (declared tools, other servers' tools).
    pub(crate) async fn connect(&self, ctx: &ToolContext, taken: &HashSet<String>) -> ServerReport {
        let t0 = Instant::now();
        let mut report = ServerReport {
            duration_ms: 0,
            entry: self.name.clone(),
            identity: ServerIdentity::default(),
            server: String::new(),
            skipped: Vec::new(),
            tools: Ok(Vec::new()),
            transport: if self.entry.spec.url.is_some() {
                "http"
            } else {
                "stdio"
            },
        };
        let target = match self.target(ctx) {
            Ok(target) => target,
            Err(e) => {
                report.tools = Err(e);
                return report;
            }
        };
        report.server = target.describe();
        let limit = self
            .entry
            .spec
            .startup_timeout
            .map_or(DEFAULT_STARTUP_TIMEOUT, |d| d.0);
        let mut connected = None;
        self.session
            .get_or_init(|| async {
                let outcome = self.start(&target, limit).await;
                let session = outcome.as_ref().ok().map(|(s, _)| Arc::clone(s));
                connected = Some(outcome);
                session
            })
            .await;
        report.duration_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
        report.tools = match connected {
            Some(Ok((session, listing))) => {
                report.identity = session.identity();
                self.name_tools(session, listing, taken, &mut report.skipped)
            }
            Some(Err(e)) => Err(e),
            // Connected by an earlier call: its tools are already in the toolbox.
            None => Ok(Vec::new()),
        };
        report
    }

    /// Connects and lists the tools within `limit` (the connector applies it to the
    /// handshake; what is left of it bounds the listing).
    async fn start(
        &self,
        target: &Target,
        limit: std::time::Duration,
    ) -> Result<(Arc<dyn McpSession>, Vec<McpToolInfo>), McpError> {
        let t0 = Instant::now();
        let session = self.connector.connect(&self.name, target, limit).await?;
        let left = limit.saturating_sub(t0.elapsed());
        match tokio::time::timeout(left, session.list_tools()).await {
            Ok(Ok(listing)) => Ok((session, listing)),
            Ok(Err(e)) => {
                session.close().await;
                Err(e)
            }
            Err(_) => {
                let diagnostics = session.close().await;
                Err(McpError::StartupTimeout {
                    after: crate::duration::Duration(limit).to_string(),
                    entry: self.name.clone(),
                    server: target.describe(),
                    stderr: diagnostics.stderr,
                })
            }
        }
    }

    /// The session, if connected.
    pub(crate) fn session(&self) -> Option<Arc<dyn McpSession>> {
        self.session.get().cloned().flatten()
    }

    /// Closes the server (kills its process group); `None` when it was never connected.
    pub(crate) async fn close(&self) -> Option<ServerDiagnostics> {
        match self.session() {
            Some(session) => Some(session.close().await),
            None => None,
        }
    }

    /// The entry's templates rendered over the run's inputs, and the environment resolved.
    fn target(&self, ctx: &ToolContext) -> Result<Target, McpError> {
        let vars = json!({"inputs": ctx.inputs});
        let render = |what: String, text: &str| {
            template::render(text, &vars).map_err(|e| McpError::Render {
                entry: self.name.clone(),
                reason: e.to_string(),
                what,
            })
        };
        let spec = &self.entry.spec;
        if let Some(url) = &spec.url {
            let mut headers = Vec::new();
            for (name, value) in &spec.headers {
                headers.push((name.clone(), render(format!("header {name}"), value)?));
            }
            for (name, variable) in &spec.headers_from_env {
                let value = std::env::var(variable).map_err(|_| McpError::MissingEnv {
                    entry: self.name.clone(),
                    header: name.clone(),
                    variable: variable.clone(),
                })?;
                headers.push((name.clone(), value));
            }
            return Ok(Target::Http {
                headers,
                url: render("url".into(), url)?,
            });
        }
        let argv = spec
            .command
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, text)| render(format!("command[{i}]"), text))
            .collect::<Result<Vec<_>, _>>()?;
        let root = ctx.root();
        let cwd = match &spec.cwd {
            Some(cwd) => root.join(cwd),
            None => root,
        };
        let mut env: Vec<(String, String)> = inherited(&spec.inherit_env)
            .into_iter()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        for (key, value) in &spec.env {
            let value = render(format!("env {key}"), value)?;
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value));
        }
        Ok(Target::Stdio { argv, cwd, env })
    }

    /// Turns a listing into the run's tools: `include`/`exclude` applied, names made
    /// `<entry>__<tool>`, tools whose name cannot be given to a model left out with why.
    fn name_tools(
        &self,
        session: Arc<dyn McpSession>,
        listing: Vec<McpToolInfo>,
        taken: &HashSet<String>,
        skipped: &mut Vec<String>,
    ) -> Result<Vec<ServerTool>, McpError> {
        if let Some(include) = &self.entry.include {
            let missing: Vec<&str> = include
                .iter()
                .filter(|name| !listing.iter().any(|t| &t.name == *name))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                let offered: Vec<&str> = listing.iter().map(|t| t.name.as_str()).collect();
                return Err(McpError::Naming {
                    entry: self.name.clone(),
                    problem: format!(
                        "`include` names {}, which the server does not offer; it offers: {}",
                        quoted(&missing),
                        if offered.is_empty() {
                            "no tools".to_string()
                        } else {
                            offered.join(", ")
                        }
                    ),
                });
            }
        }
        let mut tools: Vec<ServerTool> = Vec::new();
        let mut used = taken.clone();
        for info in listing {
            let selected = self
                .entry
                .include
                .as_ref()
                .is_none_or(|names| names.contains(&info.name))
                && !self.entry.exclude.contains(&info.name);
            if !selected {
                continue;
            }
            let name = tool_name(&self.name, &info.name);
            if name.len() > MAX_TOOL_NAME {
                skipped.push(format!(
                    "{}: `{name}` is longer than {MAX_TOOL_NAME} characters",
                    info.name
                ));
                continue;
            }
            if !used.insert(name.clone()) {
                skipped.push(format!(
                    "{}: `{name}` is already the name of another tool",
                    info.name
                ));
                continue;
            }
            if tools.len() == MAX_SERVER_TOOLS {
                skipped.push(format!(
                    "{}: more than {MAX_SERVER_TOOLS} tools (list the ones needed in `include`)",
                    info.name
                ));
                continue;
            }
            let description = if info.description.trim().is_empty() {
                format!("`{}` of the MCP server `{}`.", info.name, self.name)
            } else {
                info.description.clone()
            };
            let runner = Arc::new(McpToolRunner {
                max_output_bytes: self.max_output_bytes,
                remote: info.name.clone(),
                session: Arc::clone(&session),
                tool: name.clone(),
            });
            tools.push(ServerTool {
                description,
                name,
                parameters: info.input_schema,
                runner,
            });
        }
        Ok(tools)
    }
}

/// `files` + `read_text_file` → `files__read_text_file`; characters a model API refuses in
/// a tool name become `_`.
pub(crate) fn tool_name(entry: &str, remote: &str) -> String {
    let clean: String = remote
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{entry}{NAME_SEPARATOR}{clean}")
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Calls one server tool. `isError` results are tool errors (they follow `on_error`).
struct McpToolRunner {
    max_output_bytes: usize,
    remote: String,
    session: Arc<dyn McpSession>,
    tool: String,
}

#[async_trait::async_trait]
impl ToolRunner for McpToolRunner {
    async fn call(&self, args: &Value, _ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let result = self
            .session
            .call_tool(&self.remote, args)
            .await
            .map_err(|e| ToolError::failed(format!("`{}`: {e}", self.tool)))?;
        let read = read_result(&result);
        let output = truncate_text(&read.text, self.max_output_bytes);
        if read.is_error {
            let text = if output.content.is_empty() {
                "the server reported an error without a message".to_string()
            } else {
                output.content
            };
            return Err(ToolError::failed(format!("`{}`: {text}", self.tool)));
        }
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_join_entry_and_tool_with_characters_models_accept() {
        assert_eq!(
            tool_name("files", "read_text_file"),
            "files__read_text_file"
        );
        assert_eq!(tool_name("gh", "repos.get/file"), "gh__repos_get_file");
        assert_eq!(tool_name("x", "ünï"), "x___n_");
    }
}
