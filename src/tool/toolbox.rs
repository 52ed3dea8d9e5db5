//! The [`Toolbox`]: every tool of a workflow behind one `call`, which looks the tool up,
//! validates the model's arguments against its schema, applies its timeout and counts it.
//!
//! Validation happens here, once, for every kind, so no runner can forget it: arguments that
//! do not fit the schema never reach a command line, a URL or a file path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use indexmap::IndexMap;
use serde_json::Value;

use super::builtin::BuiltinRunner;
use super::command::CommandRunner;
use super::http::HttpRunner;
use super::mock::MockRunner;
use super::paths::ConfinedPaths;
use super::truncate::floor_char_boundary;
use super::{ToolContext, ToolDefinition, ToolError, ToolOutput, ToolRunner};
use crate::spec::MockSpec;
use crate::workflow::{Tool, ToolKind};

/// A problem message longer than this is cut: it may quote a huge argument back.
const MAX_PROBLEM_CHARS: usize = 300;

/// The tools of one run, shared (behind an `Arc`) by every step running concurrently.
pub struct Toolbox {
    entries: IndexMap<String, Entry>,
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
    /// Builds a runner for every tool and compiles each argument schema once.
    pub fn new(tools: &IndexMap<String, Tool>) -> Toolbox {
        let http_client = tools
            .values()
            .any(|t| matches!(t.kind, ToolKind::Http(_)))
            .then(HttpRunner::client);
        let entries = tools
            .iter()
            .map(|(name, tool)| {
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
                    ToolKind::Mock(spec) => {
                        Arc::new(MockRunner::new(name.clone(), spec.clone(), limit))
                    }
                };
                let runner = confined(name, tool, runner);
                let parameters = effective_parameters(tool);
                let validator =
                    jsonschema::draft202012::new(&parameters).map_err(|e| e.to_string());
                let entry = Entry {
                    calls: AtomicU64::new(0),
                    parameters,
                    runner,
                    tool: tool.clone(),
                    validator,
                };
                (name.clone(), entry)
            })
            .collect();
        Toolbox { entries }
    }

    /// Replaces the named tools' behaviour by mocks (`pe test` stubs). Their name,
    /// description, schema, timeout and `on_error` stay: a stub changes what a tool does,
    /// not how the model sees it. Names that are not tools are ignored (the checker reports
    /// them).
    pub fn with_stubs(mut self, stubs: &IndexMap<String, MockSpec>) -> Toolbox {
        for (name, spec) in stubs {
            if let Some(entry) = self.entries.get_mut(name) {
                let limit = limit(&entry.tool);
                let stub = Arc::new(MockRunner::new(name.clone(), spec.clone(), limit));
                entry.runner = confined(name, &entry.tool, stub);
            }
        }
        self
    }

    /// Wraps every tool's runner (record / replay decorators). Lookup, argument validation,
    /// timeouts and counting stay in the toolbox, around the wrapped runner.
    pub fn map_runners(
        mut self,
        mut wrap: impl FnMut(&str, Arc<dyn ToolRunner>) -> Arc<dyn ToolRunner>,
    ) -> Toolbox {
        for (name, entry) in &mut self.entries {
            entry.runner = wrap(name, Arc::clone(&entry.runner));
        }
        self
    }

    /// The tools as the model sees them, in declaration order.
    pub fn definitions(&self) -> Vec<ToolDefinition> {
        self.entries
            .iter()
            .map(|(name, entry)| ToolDefinition {
                description: entry.tool.description.clone(),
                name: name.clone(),
                parameters: entry.parameters.clone(),
            })
            .collect()
    }

    /// The declared tool, for what the engine decides itself (`on_error`).
    pub fn get(&self, name: &str) -> Option<&Tool> {
        self.entries.get(name).map(|e| &e.tool)
    }

    /// How often each tool was run (calls refused for unknown names or invalid arguments do
    /// not count), for `pe test` expectations and reports.
    pub fn call_counts(&self) -> IndexMap<String, u64> {
        self.entries
            .iter()
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

    fn entry(&self, name: &str) -> Result<&Entry, ToolError> {
        self.entries
            .get(name)
            .ok_or_else(|| ToolError::UnknownTool {
                name: name.to_string(),
                available: if self.entries.is_empty() {
                    "none".to_string()
                } else {
                    self.entries
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })
    }
}

impl Entry {
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
