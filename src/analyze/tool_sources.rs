//! Tools that come from elsewhere: `mcp` entries (checked offline: templates, keys that do
//! not apply; the server's tool names are known only once it connects, so references to
//! `<entry>__<tool>` are accepted when `include`/`exclude` allow them) and `workflow`
//! entries (the child file is checked too, and workflow tools that call each other in a
//! loop across files are refused with the chain of files).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::Analyzer;
use super::templates::vars;
use crate::diagnostic::{Diagnostic, Kind};
use crate::spec::{McpSpec, ToolSpec};
use crate::tool::McpEntry;
use crate::tool::mcp::{NAME_SEPARATOR, tool_name};
use crate::workflow::{ToolKind, Workflow};
use crate::yaml::escape_pointer;

/// Most workflow files in one chain of workflow tools (a parent, its child, …).
pub const MAX_WORKFLOW_DEPTH: usize = 8;

/// Most distinct child files one `pe check` of a file reads (each is checked once).
pub const MAX_WORKFLOW_FILES: usize = 64;

/// A child file as checked: the workflow, or how many problems and the first ones.
#[derive(Clone)]
enum ChildCheck {
    Invalid {
        count: usize,
        /// The message of a cycle found in the file or below it: the parent reports the
        /// cycle itself, so the chain of files reaches the outermost file's diagnostics.
        cycle: Option<String>,
        first: Vec<String>,
    },
    Valid(Arc<Workflow>),
}

thread_local! {
    /// The files being checked, outermost first: a workflow tool naming one of them is a
    /// cycle.
    static CHECKING: RefCell<Vec<PathBuf>> = const { RefCell::new(Vec::new()) };
    /// Child files already checked during the outermost check (a file several tools name is
    /// read once, so nested fan-outs cannot multiply the work).
    static CHECKED: RefCell<Vec<(PathBuf, ChildCheck)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `check` with `path` on the chain of files being checked.
pub(crate) fn checking<T>(path: &Path, check: impl FnOnce() -> T) -> T {
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    CHECKING.with(|c| c.borrow_mut().push(key));
    let out = check();
    let outermost = CHECKING.with(|c| {
        let mut chain = c.borrow_mut();
        chain.pop();
        chain.is_empty()
    });
    if outermost {
        CHECKED.with(|c| c.borrow_mut().clear());
    }
    out
}

/// A path as written, without `.` components and with `dir/..` pairs removed
/// (`./verify.yaml` in `.` is `verify.yaml`, `sub/../a.yaml` is `a.yaml`).
fn tidy(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            _ => out.push(c),
        }
    }
    out.iter().collect()
}

impl Analyzer<'_> {
    /// An `mcp` entry: its templates (over `inputs`), and keys that do not apply.
    pub(super) fn mcp_entry(&mut self, base: &str, spec: &ToolSpec, mcp: &McpSpec) -> ToolKind {
        let at = |key: &str| format!("{base}/mcp/{key}");
        for (i, arg) in mcp.command.iter().flatten().enumerate() {
            self.template(&at(&format!("command/{i}")), arg, vars::TASK, None);
        }
        for (k, v) in &mcp.env {
            self.template(
                &at(&format!("env/{}", escape_pointer(k))),
                v,
                vars::TASK,
                None,
            );
        }
        if let Some(url) = &mcp.url {
            self.template(&at("url"), url, vars::TASK, None);
        }
        for (k, v) in &mcp.headers {
            self.template(
                &at(&format!("headers/{}", escape_pointer(k))),
                v,
                vars::TASK,
                None,
            );
        }
        let stdio_only = [
            ("cwd", mcp.cwd.is_some()),
            ("env", !mcp.env.is_empty()),
            ("inherit_env", !mcp.inherit_env.is_empty()),
        ];
        let http_only = [
            ("headers", !mcp.headers.is_empty()),
            ("headers_from_env", !mcp.headers_from_env.is_empty()),
        ];
        let misplaced: Vec<(&str, &str)> = if mcp.url.is_some() {
            stdio_only
                .iter()
                .filter(|(_, set)| *set)
                .map(|(k, _)| (*k, "a stdio server (`command`)"))
                .collect()
        } else {
            http_only
                .iter()
                .filter(|(_, set)| *set)
                .map(|(k, _)| (*k, "an HTTP server (`url`)"))
                .collect()
        };
        for (key, only) in misplaced {
            self.push(
                Diagnostic::new(
                    Kind::ToolOption,
                    self.doc.key_span(&at(key)),
                    format!("`{key}` applies only to {only}"),
                )
                .label("not used by this server"),
            );
        }
        let tool_level = [
            (
                "parameters",
                spec.parameters.is_some(),
                "the server lists each tool's parameters",
            ),
            ("cwd", spec.cwd.is_some(), "write it under `mcp:`"),
            ("env", !spec.env.is_empty(), "write it under `mcp:`"),
        ];
        for (key, set, help) in tool_level {
            if set {
                self.push(
                    Diagnostic::new(
                        Kind::ToolOption,
                        self.doc.key_span(&format!("{base}/{key}")),
                        format!("`{key}` does not apply to an `mcp` entry"),
                    )
                    .label("not used")
                    .help(help),
                );
            }
        }
        ToolKind::Mcp(McpEntry {
            exclude: spec.exclude.clone(),
            include: spec.include.clone(),
            spec: mcp.clone(),
        })
    }

    /// `include` and `exclude` on a tool that is not an `mcp` entry.
    pub(super) fn mcp_keys_elsewhere(&mut self, base: &str, spec: &ToolSpec) {
        let keys = [
            ("include", spec.include.is_some()),
            ("exclude", !spec.exclude.is_empty()),
        ];
        for (key, set) in keys {
            if set {
                self.push(
                    Diagnostic::new(
                        Kind::ToolOption,
                        self.doc.key_span(&format!("{base}/{key}")),
                        format!("`{key}` applies only to an `mcp` entry"),
                    )
                    .label("not used by this tool"),
                );
            }
        }
    }

    /// A `workflow` entry: the child file is read and checked (its problems reported here,
    /// at the entry), cycles across files refused. Returns the kind and the parameters
    /// (the child's inputs), or `None` when the child cannot be used.
    pub(super) fn workflow_entry(
        &mut self,
        base: &str,
        name: &str,
        spec: &ToolSpec,
        file: &str,
    ) -> Option<(ToolKind, Value, String)> {
        let span = self.doc.value_span(&format!("{base}/workflow"));
        if spec.parameters.is_some() {
            self.push(
                Diagnostic::new(
                    Kind::ToolOption,
                    self.doc.key_span(&format!("{base}/parameters")),
                    "`parameters` does not apply to a `workflow` entry".to_string(),
                )
                .label("not used")
                .help("the child workflow's `inputs` are the tool's parameters"),
            );
        }
        let path = tidy(&self.source.dir().join(file));
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let chain: Vec<PathBuf> = CHECKING.with(|c| c.borrow().clone());
        if let Some(start) = chain.iter().position(|p| *p == key) {
            let names: Vec<String> = chain[start..]
                .iter()
                .chain(std::iter::once(&key))
                .map(|p| short(p))
                .collect();
            self.push(cycle_diagnostic(
                span,
                format!(
                    "workflow tools call each other in a cycle: {}",
                    names.join(" → ")
                ),
            ));
            return None;
        }
        if chain.len() >= MAX_WORKFLOW_DEPTH {
            self.push(
                Diagnostic::new(
                    Kind::WorkflowTool,
                    span,
                    format!("workflow tools nest deeper than {MAX_WORKFLOW_DEPTH} files"),
                )
                .label("one level too many"),
            );
            return None;
        }
        let known = CHECKED.with(|c| {
            c.borrow()
                .iter()
                .find(|(p, _)| *p == key)
                .map(|(_, checked)| checked.clone())
        });
        let checked = match known {
            Some(checked) => checked,
            None => {
                if CHECKED.with(|c| c.borrow().len()) >= MAX_WORKFLOW_FILES {
                    self.push(
                        Diagnostic::new(
                            Kind::WorkflowTool,
                            span,
                            format!("workflow tools name more than {MAX_WORKFLOW_FILES} files"),
                        )
                        .label("one file too many"),
                    );
                    return None;
                }
                let checked = match self.read_child(name, &path) {
                    Ok(checked) => checked,
                    Err(d) => {
                        self.push(d.span_at(span));
                        return None;
                    }
                };
                CHECKED.with(|c| c.borrow_mut().push((key, checked.clone())));
                checked
            }
        };
        let child = match checked {
            ChildCheck::Valid(child) => child,
            ChildCheck::Invalid {
                cycle: Some(cycle), ..
            } => {
                self.push(cycle_diagnostic(span, cycle));
                return None;
            }
            ChildCheck::Invalid {
                count,
                cycle: None,
                first,
            } => {
                self.push(
                    Diagnostic::new(
                        Kind::WorkflowTool,
                        span,
                        format!(
                            "tool `{name}`: the workflow {} has {count} problem{}",
                            path.display(),
                            if count == 1 { "" } else { "s" }
                        ),
                    )
                    .label("not a valid workflow")
                    .help(format!(
                        "{} (run `pe check {}`)",
                        first.join("; "),
                        path.display()
                    )),
                );
                return None;
            }
        };
        let parameters = child_parameters(&child);
        let description = if spec.description.trim().is_empty() {
            child
                .file
                .description
                .clone()
                .unwrap_or_else(|| format!("Runs the workflow `{}`.", child.file.name))
        } else {
            spec.description.clone()
        };
        let kind = ToolKind::Workflow {
            path: file.to_string(),
            workflow: child,
        };
        Some((kind, parameters, description))
    }

    /// Reads and checks a child file (once per outermost check).
    fn read_child(&self, name: &str, path: &Path) -> Result<ChildCheck, Diagnostic> {
        let source = crate::source::Source::read(path).map_err(|e| {
            let reason = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                std::io::ErrorKind::InvalidData => "the file is not UTF-8 text".to_string(),
                _ => e.to_string(),
            };
            Diagnostic::new(
                Kind::WorkflowTool,
                crate::source::Span::new(0, 0),
                format!("tool `{name}`: cannot read {}: {reason}", path.display()),
            )
            .label("no workflow here")
            .help("the path is relative to this workflow's directory")
        })?;
        let checked = crate::check::check_source(&source);
        Ok(match checked.workflow {
            Some(child) => ChildCheck::Valid(Arc::new(child)),
            None => ChildCheck::Invalid {
                count: checked.diagnostics.len(),
                cycle: checked
                    .diagnostics
                    .iter()
                    .find(|d| d.kind == Kind::WorkflowCycle)
                    .map(|d| d.message.clone()),
                first: checked
                    .diagnostics
                    .iter()
                    .take(3)
                    .map(|d| {
                        let (line, column) = source.line_col(d.span.offset);
                        format!("{}:{line}:{column}: {}", path.display(), d.message)
                    })
                    .collect(),
            },
        })
    }

    /// Whether `name` can be a tool of a run: declared (and not an `mcp` entry, which is a
    /// server, not a tool), or `<entry>__<tool>` of an `mcp` entry whose `include` and
    /// `exclude` allow it.
    pub(super) fn tool_known(&self, name: &str) -> bool {
        if let Some(spec) = self.file.tools.get(name) {
            return spec.mcp.is_none();
        }
        self.file.tools.iter().any(|(entry, spec)| {
            let Some(rest) = name
                .strip_prefix(entry.as_str())
                .and_then(|r| r.strip_prefix(NAME_SEPARATOR))
            else {
                return false;
            };
            if spec.mcp.is_none() || rest.is_empty() {
                return false;
            }
            let excluded = spec.exclude.iter().any(|x| tool_name(entry, x) == name);
            let included = spec
                .include
                .as_ref()
                .is_none_or(|names| names.iter().any(|x| tool_name(entry, x) == name));
            included && !excluded
        })
    }

    /// Tool names for "did you mean" help: declared tools, and `<entry>__…` forms.
    pub(super) fn tool_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for (entry, spec) in &self.file.tools {
            if spec.mcp.is_none() {
                names.push(entry.clone());
            } else if let Some(include) = &spec.include {
                names.extend(include.iter().map(|x| tool_name(entry, x)));
            } else {
                names.push(format!("{entry}{NAME_SEPARATOR}<tool>"));
            }
        }
        names
    }
}

/// The parameters of a workflow tool: the child's inputs as an object schema; inputs
/// without a default are required.
fn child_parameters(child: &Workflow) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, schema) in &child.file.inputs {
        properties.insert(name.clone(), schema.clone());
        if schema.get("default").is_none() {
            required.push(Value::String(name.clone()));
        }
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// A file as the cycle message names it: its file name.
/// A cycle of workflow tools, reported at the tool that starts it (`message` names the chain).
fn cycle_diagnostic(span: crate::source::Span, message: String) -> Diagnostic {
    Diagnostic::new(Kind::WorkflowCycle, span, message)
        .label("leads back to a workflow that calls this one")
        .help("a workflow cannot use itself as a tool, directly or through others")
}

fn short(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
