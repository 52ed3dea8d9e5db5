//! The [`Toolbox`]: every tool of a workflow behind one `call`, which looks the tool up,
//! validates the model's arguments against its schema, applies its timeout and counts it.
//!
//! Validation happens here, once, for every kind, so no runner can forget it: arguments that
//! do not fit the schema never reach a command line, a URL or a file path.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;
use serde_json::Value;

use super::builtin::BuiltinRunner;
use super::command::CommandRunner;
use super::http::HttpRunner;
use super::mcp::{McpConnector, McpServer, RmcpConnector, ServerDiagnostics, ServerReport};
use super::mock::MockRunner;
use super::paths::ConfinedPaths;
use super::truncate::floor_char_boundary;
use super::workflow_tool::{ChildRuns, WorkflowRunner};
use super::{ToolContext, ToolDefinition, ToolError, ToolOutput, ToolRunner};
use crate::spec::MockSpec;
use crate::workflow::{Tool, ToolKind};

/// A decorator applied to every runner, also to those of MCP tools added when their server
/// connects (record / replay).
type Wrapper = Arc<dyn Fn(&str, Arc<dyn ToolRunner>) -> Arc<dyn ToolRunner> + Send + Sync>;

/// A problem message longer than this is cut: it may quote a huge argument back.
const MAX_PROBLEM_CHARS: usize = 300;

/// The tools of one run, shared (behind an `Arc`) by every step running concurrently.
pub struct Toolbox {
    /// Declared tools (every kind but `mcp`).
    entries: IndexMap<String, Entry>,
    /// One per `mcp` entry, in declaration order; their tools appear once connected.
    servers: Vec<ServerSlot>,
    /// Where workflow tools run their children ([`Toolbox::with_child_runs`]).
    child_runs: Option<Arc<dyn ChildRuns>>,
    /// `pe test` stubs, also for MCP tools that appear later.
    stubs: IndexMap<String, MockSpec>,
    wrappers: Vec<Wrapper>,
}

struct ServerSlot {
    server: McpServer,
    /// The entry as declared (its `on_error`, `timeout`, `max_output_bytes` apply to each of
    /// its tools).
    tool: Tool,
    /// Set once, when the server connected.
    tools: OnceLock<IndexMap<String, Entry>>,
}

struct Entry {
    calls: AtomicU64,
    /// The effective argument schema (a builtin's own when the workflow declares none).
    parameters: Value,
    runner: Arc<dyn ToolRunner>,
    tool: Tool,
    /// The compiled schema, or why it does not compile (then every call fails, saying so).
    validator: Result<jsonschema::Validator, String>,
}

impl std::fmt::Debug for Toolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toolbox")
            .field("tools", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Toolbox {
    /// Builds a runner for every tool and compiles each argument schema once. MCP servers
    /// are not started here: [`Toolbox::connect`] does, when the run needs their tools.
    pub fn new(tools: &IndexMap<String, Tool>) -> Toolbox {
        let http_client = tools
            .values()
            .any(|t| matches!(t.kind, ToolKind::Http(_)))
            .then(HttpRunner::client);
        let mut servers = Vec::new();
        let mut entries = IndexMap::new();
        for (name, tool) in tools {
            let limit = limit(tool);
            let runner: Arc<dyn ToolRunner> = match &tool.kind {
                ToolKind::Builtin(builtin) => Arc::new(BuiltinRunner::new(*builtin, limit)),
                ToolKind::Command {
                    argv,
                    cwd,
                    env,
                    inherit_env,
                } => Arc::new(CommandRunner {
                    argv: argv.clone(),
                    cwd: cwd.clone(),
                    env: env.clone(),
                    inherit_env: inherit_env.clone(),
                    max_output_bytes: limit,
                    tool: name.clone(),
                }),
                ToolKind::Http(spec) => Arc::new(HttpRunner::new(
                    name.clone(),
                    spec.clone(),
                    http_client.clone().unwrap_or_else(HttpRunner::client),
                    limit,
                )),
                ToolKind::Mcp(entry) => {
                    let connector: Arc<dyn McpConnector> = Arc::new(RmcpConnector);
                    servers.push(ServerSlot {
                        server: McpServer::new(name.clone(), entry.clone(), connector, limit),
                        tool: tool.clone(),
                        tools: OnceLock::new(),
                    });
                    continue;
                }
                ToolKind::Mock(spec) => {
                    Arc::new(MockRunner::new(name.clone(), spec.clone(), limit))
                }
                ToolKind::Workflow { workflow, .. } => Arc::new(WorkflowRunner::new(
                    name.clone(),
                    Arc::clone(workflow),
                    None,
                    limit,
                )),
            };
            let runner = confined(name, tool, runner);
            entries.insert(name.clone(), Entry::new(tool.clone(), runner));
        }
        Toolbox {
            entries,
            servers,
            child_runs: None,
            stubs: IndexMap::new(),
            wrappers: Vec::new(),
        }
    }

    /// Lets workflow tools run their child workflows through `host` (the journal store and
    /// models of `pe exec` / `pe resume`, or memory for `pe test`).
    pub fn with_child_runs(mut self, host: Arc<dyn ChildRuns>) -> Toolbox {
        self.child_runs = Some(Arc::clone(&host));
        for (name, entry) in &mut self.entries {
            if let ToolKind::Workflow { workflow, .. } = &entry.tool.kind {
                let runner = Arc::new(WorkflowRunner::new(
                    name.clone(),
                    Arc::clone(workflow),
                    Some(Arc::clone(&host)),
                    limit(&entry.tool),
                ));
                entry.runner = self
                    .wrappers
                    .iter()
                    .fold(runner as Arc<dyn ToolRunner>, |inner, wrap| {
                        wrap(name, inner)
                    });
            }
        }
        self
    }

    /// Whether a workflow tool of this toolbox started the child run `run_id`.
    pub(crate) fn child_started(&self, run_id: &str) -> bool {
        self.child_runs.as_ref().is_some_and(|h| h.started(run_id))
    }

    /// Replaces how each MCP server is reached (record / replay / `pe test` decorators);
    /// `wrap` gets the entry name and the current connector.
    pub(crate) fn map_connectors(
        mut self,
        wrap: impl Fn(&str, Arc<dyn McpConnector>) -> Arc<dyn McpConnector>,
    ) -> Toolbox {
        for slot in &mut self.servers {
            let name = slot.tool.name.clone();
            let connector = wrap(&name, slot.server.connector());
            slot.server.set_connector(connector);
        }
        self
    }

    /// The MCP entries, by name.
    pub fn server_names(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.tool.name.clone()).collect()
    }

    /// Connects every MCP server not connected yet (concurrently) and adds its tools. Each
    /// server connects once per toolbox: a second call reports it with no new tools.
    pub(crate) async fn connect(&self, ctx: &ToolContext) -> Vec<ServerReport> {
        let declared: HashSet<String> = self.entries.keys().cloned().collect();
        let pending: Vec<&ServerSlot> = self
            .servers
            .iter()
            .filter(|s| s.tools.get().is_none())
            .collect();
        let reports = futures::future::join_all(
            pending
                .iter()
                .map(|slot| slot.server.connect(ctx, &declared)),
        )
        .await;
        let mut taken = declared;
        let mut out = Vec::new();
        for (slot, mut report) in pending.into_iter().zip(reports) {
            let mut tools = IndexMap::new();
            if let Ok(listed) = &report.tools {
                for server_tool in listed {
                    if !taken.insert(server_tool.name.clone()) {
                        report.skipped.push(format!(
                            "`{}` is already the name of another tool",
                            server_tool.name
                        ));
                        continue;
                    }
                    let tool = Tool {
                        description: server_tool.description.clone(),
                        name: server_tool.name.clone(),
                        parameters: server_tool.parameters.clone(),
                        ..slot.tool.clone()
                    };
                    let base = match self.stubs.get(&tool.name) {
                        Some(spec) => Arc::new(MockRunner::new(
                            tool.name.clone(),
                            spec.clone(),
                            limit(&tool),
                        )) as Arc<dyn ToolRunner>,
                        None => Arc::clone(&server_tool.runner),
                    };
                    let runner = self
                        .wrappers
                        .iter()
                        .fold(base, |inner, wrap| wrap(&tool.name, inner));
                    tools.insert(tool.name.clone(), Entry::new(tool, runner));
                }
            }
            let _ = slot.tools.set(tools);
            out.push(report);
        }
        out
    }

    /// Closes every connected MCP server (kills its process group) and says how each ended.
    pub(crate) async fn close(&self) -> Vec<(String, ServerDiagnostics)> {
        let mut out = Vec::new();
        for slot in &self.servers {
            if let Some(diagnostics) = slot.server.close().await {
                out.push((slot.tool.name.clone(), diagnostics));
            }
        }
        out
    }

    /// Every tool entry: declared ones, then each connected server's.
    fn all(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.iter().chain(
            self.servers
                .iter()
                .filter_map(|s| s.tools.get())
                .flat_map(|tools| tools.iter()),
        )
    }

    /// Replaces the named tools' behaviour by mocks (`pe test` stubs). Their name,
    /// description, schema, timeout and `on_error` stay: a stub changes what a tool does,
    /// not how the model sees it. Names that are not tools are ignored (the checker reports
    /// them).
    ///
    /// An MCP server is started only when `live` allows its entry; otherwise its tools in
    /// this toolbox are exactly the stubbed ones (`<entry>__<tool>`), which accept any
    /// arguments object.
    pub fn with_stubs(
        mut self,
        stubs: &IndexMap<String, MockSpec>,
        live: impl Fn(&str) -> bool,
    ) -> Toolbox {
        for (name, spec) in stubs {
            if let Some(entry) = self.entries.get_mut(name) {
                let limit = limit(&entry.tool);
                let stub = Arc::new(MockRunner::new(name.clone(), spec.clone(), limit));
                entry.runner = confined(name, &entry.tool, stub);
            }
        }
        self.stubs
            .extend(stubs.iter().map(|(k, v)| (k.clone(), v.clone())));
        for slot in &mut self.servers {
            if !live(&slot.tool.name) {
                let prefix = format!("{}{}", slot.tool.name, super::mcp::NAME_SEPARATOR);
                let names = stubs
                    .keys()
                    .filter_map(|k| k.strip_prefix(&prefix))
                    .map(str::to_string)
                    .collect();
                slot.server
                    .set_connector(Arc::new(super::mcp::StubConnector { names }));
            }
        }
        self
    }

    /// Wraps every tool's runner (record / replay decorators). Lookup, argument validation,
    /// timeouts and counting stay in the toolbox, around the wrapped runner.
    pub fn map_runners(
        mut self,
        wrap: impl Fn(&str, Arc<dyn ToolRunner>) -> Arc<dyn ToolRunner> + Send + Sync + 'static,
    ) -> Toolbox {
        for (name, entry) in &mut self.entries {
            entry.runner = wrap(name, Arc::clone(&entry.runner));
        }
        self.wrappers.push(Arc::new(wrap));
        self
    }

    /// The tools as the model sees them, in declaration order.
    pub fn definitions(&self) -> Vec<ToolDefinition> {
        self.all()
            .map(|(name, entry)| ToolDefinition {
                description: entry.tool.description.clone(),
                name: name.clone(),
                parameters: entry.parameters.clone(),
            })
            .collect()
    }

    /// The declared tool, for what the engine decides itself (`on_error`).
    pub fn get(&self, name: &str) -> Option<&Tool> {
        self.find(name).map(|e| &e.tool)
    }

    /// How often each tool was run (calls refused for unknown names or invalid arguments do
    /// not count), for `pe test` expectations and reports.
    pub fn call_counts(&self) -> IndexMap<String, u64> {
        self.all()
            .map(|(name, entry)| (name.clone(), entry.calls.load(Ordering::Relaxed)))
            .collect()
    }

    /// Looks the tool up, validates `args`, and runs it within its timeout.
    pub async fn call(
        &self,
        name: &str,
        args: &Value,
        ctx: &ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        let entry = self.entry(name)?;
        entry.validate(name, args, &[])?;
        entry.calls.fetch_add(1, Ordering::Relaxed);
        let run = entry.runner.call(args, ctx);
        // Every tool has a timeout (its own, `execute.tool_timeout`, or the default).
        let timeout = entry.tool.timeout;
        tokio::time::timeout(timeout.0, run)
            .await
            .unwrap_or_else(|_| {
                Err(ToolError::TimedOut {
                    tool: name.to_string(),
                    after: timeout.to_string(),
                })
            })
    }

    /// Whether a call would run: the tool exists and the arguments fit its schema (what
    /// [`Toolbox::call`] checks first; the engine asks before journaling a call as started).
    pub fn check(&self, name: &str, args: &Value) -> Result<(), ToolError> {
        self.entry(name)?.validate(name, args, &[])
    }

    /// [`Toolbox::check`] of arguments written in a plan before they are rendered: problems
    /// at or under the JSON pointers `templated` (strings still to be rendered) are left to
    /// the check after rendering.
    pub fn check_written(
        &self,
        name: &str,
        args: &Value,
        templated: &[String],
    ) -> Result<(), ToolError> {
        self.entry(name)?.validate(name, args, templated)
    }

    fn find(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name).or_else(|| {
            self.servers
                .iter()
                .filter_map(|s| s.tools.get())
                .find_map(|tools| tools.get(name))
        })
    }

    fn entry(&self, name: &str) -> Result<&Entry, ToolError> {
        self.find(name).ok_or_else(|| {
            let names: Vec<&str> = self.all().map(|(n, _)| n.as_str()).collect();
            ToolError::UnknownTool {
                name: name.to_string(),
                available: if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                },
            }
        })
    }
}

impl Entry {
    fn new(tool: Tool, runner: Arc<dyn ToolRunner>) -> Entry {
        let parameters = effective_parameters(&tool);
        let validator = jsonschema::draft202012::new(&parameters).map_err(|e| e.to_string());
        Entry {
            calls: AtomicU64::new(0),
            parameters,
            runner,
            tool,
            validator,
        }
    }

    /// Every problem at once, so the model can fix its arguments in one retry.
    fn validate(&self, name: &str, args: &Value, skip: &[String]) -> Result<(), ToolError> {
        let invalid = |problems: String| ToolError::InvalidArguments {
            tool: name.to_string(),
            problems,
        };
        let validator = match &self.validator {
            Ok(validator) => validator,
            Err(reason) => {
                return Err(invalid(format!(
                    "the tool's `parameters` schema does not compile: {reason}"
                )));
            }
        };
        let skipped = |path: &str| {
            skip.iter().any(|p| {
                path.strip_prefix(p.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
        };
        let problems: Vec<String> = validator
            .iter_errors(args)
            .filter(|error| !skipped(error.instance_path().as_str()))
            .map(|error| {
                let path = error.instance_path().as_str();
                let message = clip(&error.to_string());
                if path.is_empty() {
                    message
                } else {
                    format!("{path}: {message}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(invalid(problems.join("; ")))
        }
    }
}

/// The schema the model is shown and arguments are checked against. A builtin whose
/// workflow entry declares no properties gets the builtin's own schema: the runner needs
/// its arguments whatever the workflow says.
fn effective_parameters(tool: &Tool) -> Value {
    if let ToolKind::Builtin(builtin) = tool.kind {
        let has_properties = tool
            .parameters
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty());
        if !has_properties {
            return builtin.parameters();
        }
    }
    tool.parameters.clone()
}

/// The runner behind the path confinement of the tool's `paths` arguments, if it has any.
fn confined(name: &str, tool: &Tool, runner: Arc<dyn ToolRunner>) -> Arc<dyn ToolRunner> {
    if tool.paths.is_empty() {
        return runner;
    }
    Arc::new(ConfinedPaths {
        inner: runner,
        paths: tool.paths.clone(),
        tool: name.to_string(),
    })
}

fn limit(tool: &Tool) -> usize {
    usize::try_from(tool.max_output_bytes).unwrap_or(usize::MAX)
}

fn clip(message: &str) -> String {
    if message.len() <= MAX_PROBLEM_CHARS {
        return message.to_string();
    }
    format!(
        "{}…",
        &message[..floor_char_boundary(message, MAX_PROBLEM_CHARS)]
    )
}

#[cfg(test)]
#[path = "toolbox_tests.rs"]
mod tests;
