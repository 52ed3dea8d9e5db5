//! Template checks: every template compiles and uses only the variables defined where it
//! renders (`inputs.x` a declared input, `args.y` a declared tool parameter).

use std::collections::BTreeSet;

use serde_json::Value;

use super::Analyzer;
use crate::diagnostic::{Diagnostic, Kind, suggestion};
use crate::source::Span;
use crate::spec::Role;
use crate::template::{self, NameKind, TemplateError};
use crate::yaml::escape_pointer;

/// The variables each kind of template may use. Documented in the README; the engine
/// provides exactly these.
pub mod vars {
    pub const TASK: &[&str] = &["inputs"];
    pub const TOOL: &[&str] = &["args", "inputs"];
    /// A plan step's `args` and `output.template`: the inputs and the steps' results.
    pub const RESULTS: &[&str] = &["inputs", "steps"];
    pub const PLANNER: &[&str] = &[
        "feedback",
        "inputs",
        "max_steps",
        "step_args",
        "task",
        "tools",
        "workflow",
    ];
    pub const EXECUTOR: &[&str] = &["context", "inputs", "step", "task", "tools", "workflow"];
    pub const REPLANNER: &[&str] = &[
        "done",
        "failed_step",
        "inputs",
        "pending",
        "plan",
        "replans_left",
        "results",
        "task",
        "tools",
        "workflow",
    ];
    pub const SYNTHESIZER: &[&str] = &["inputs", "output_schema", "results", "task", "workflow"];

    pub fn for_role(role: crate::spec::Role) -> &'static [&'static str] {
        use crate::spec::Role;
        match role {
            Role::Executor => EXECUTOR,
            Role::Planner => PLANNER,
            Role::Replanner => REPLANNER,
            Role::Synthesizer => SYNTHESIZER,
        }
    }
}

/// Problems reported per template before the rest are only counted.
const MAX_TEMPLATE_PROBLEMS: usize = 20;

impl Analyzer<'_> {
    pub(super) fn mock_templates(
        &mut self,
        pointer: &str,
        mock: &crate::spec::MockSpec,
        params: Option<Option<&Value>>,
    ) {
        match mock {
            crate::spec::MockSpec::Fixed(text) => self.template(pointer, text, vars::TOOL, params),
            crate::spec::MockSpec::Cases(cases) => {
                if let Some(r) = &cases.result {
                    self.value_templates(&format!("{pointer}/result"), r, params);
                }
                if let Some(e) = &cases.error {
                    self.template(&format!("{pointer}/error"), e, vars::TOOL, params);
                }
                for (i, case) in cases.cases.iter().enumerate() {
                    if let Some(r) = &case.result {
                        self.value_templates(&format!("{pointer}/cases/{i}/result"), r, params);
                    }
                    if let Some(e) = &case.error {
                        self.template(&format!("{pointer}/cases/{i}/error"), e, vars::TOOL, params);
                    }
                    for (key, want) in &case.when {
                        if let Value::String(text) = want
                            && template::is_templated(text)
                        {
                            let p = format!("{pointer}/cases/{i}/when/{}", escape_pointer(key));
                            self.template(&p, text, vars::TOOL, params);
                        }
                    }
                    if let Some(Some(Value::Object(schema))) = params {
                        let known: Vec<&str> = schema
                            .get("properties")
                            .and_then(Value::as_object)
                            .map(|p| p.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        for key in case.when.keys() {
                            if !known.contains(&key.as_str()) {
                                let p = format!("{pointer}/cases/{i}/when/{}", escape_pointer(key));
                                self.push(
                                    Diagnostic::new(
                                        Kind::UndefinedVariable,
                                        self.doc.key_span(&p),
                                        format!("`{key}` is not a parameter of this tool"),
                                    )
                                    .label("never matches")
                                    .help(suggestion(key, &known)),
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    pub(super) fn value_templates(
        &mut self,
        pointer: &str,
        value: &Value,
        params: Option<Option<&Value>>,
    ) {
        match value {
            Value::String(s) => self.template(pointer, s, vars::TOOL, params),
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.value_templates(&format!("{pointer}/{i}"), v, params);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    self.value_templates(&format!("{pointer}/{}", escape_pointer(k)), v, params);
                }
            }
            _ => {}
        }
    }

    pub(super) fn task_and_prompts(&mut self) {
        let task = self.file.task.clone();
        self.template("/task", &task, vars::TASK, None);
        for role in Role::ALL {
            if let Some(text) = self.file.prompts.role(role).cloned() {
                self.template(
                    &format!("/prompts/{}", role.as_str()),
                    &text,
                    vars::for_role(role),
                    None,
                );
            }
        }
    }

    /// Compiles a template and checks its variables. `params` is `Some(tool parameters)` for
    /// tool templates, where `args.x` must be a declared parameter.
    pub(super) fn template(
        &mut self,
        pointer: &str,
        text: &str,
        allowed: &[&str],
        params: Option<Option<&Value>>,
    ) {
        let span = self.doc.value_span(pointer);
        let inspection = match template::inspect(text) {
            Ok(v) => v,
            Err(TemplateError::Syntax {
                message,
                range,
                line,
            }) => {
                let at = self.locate_in_template(span, text, range.map(|r| r.start), line);
                self.push(
                    Diagnostic::new(Kind::TemplateSyntax, at, "template syntax error")
                        .label(message)
                        .help("templates use minijinja (Jinja2) syntax: {{ variable }}, {% if %}…{% endif %}"),
                );
                return;
            }
            Err(TemplateError::Render { .. }) => return,
        };
        // A template can name thousands of unknown things; locating each costs a search of
        // the file, so the first few are reported and the rest counted.
        let mut left = MAX_TEMPLATE_PROBLEMS;
        let mut omitted: Option<(Kind, usize)> = None;
        let mut omit = |kind: Kind| {
            let entry = omitted.get_or_insert((kind, 0));
            entry.1 += 1;
        };
        for unknown in &inspection.unknown {
            let (kind, what, known) = match unknown.kind {
                NameKind::Filter => (Kind::UnknownFilter, "filter", template::FILTERS),
                NameKind::Test => (Kind::UnknownTest, "test", template::TESTS),
            };
            if left == 0 {
                omit(kind);
                continue;
            }
            left -= 1;
            let at = self.locate_in_template(span, text, unknown.offset, None);
            let at = match self.source.text.get(at.offset..) {
                Some(rest) if rest.starts_with(unknown.name.as_str()) => {
                    Span::new(at.offset, unknown.name.len())
                }
                _ => at,
            };
            self.push(
                Diagnostic::new(kind, at, format!("unknown {what} `{}`", unknown.name))
                    .label(format!("not a {what} pe knows"))
                    .help(suggestion(&unknown.name, known)),
            );
        }
        for var in inspection.variables {
            let mut parts = var.splitn(3, '.');
            let root = parts.next().unwrap_or_default();
            let field = parts.next();
            if !allowed.contains(&root) {
                if left == 0 {
                    omit(Kind::UndefinedVariable);
                    continue;
                }
                left -= 1;
                let at = self.find_in(span, &var);
                self.push(
                    Diagnostic::new(
                        Kind::UndefinedVariable,
                        at,
                        format!("undefined template variable `{root}`"),
                    )
                    .label("not defined here")
                    .help(super::hints::undefined_root_help(
                        root,
                        allowed,
                        &self
                            .file
                            .inputs
                            .keys()
                            .map(String::as_str)
                            .collect::<Vec<_>>(),
                        params.flatten(),
                    )),
                );
                continue;
            }
            let Some(field) = field else { continue };
            let declared: Vec<&str> = match root {
                "inputs" => self.file.inputs.keys().map(String::as_str).collect(),
                "args" => match params {
                    Some(Some(schema)) => schema
                        .get("properties")
                        .and_then(Value::as_object)
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default(),
                    _ => Vec::new(),
                },
                _ => continue,
            };
            if !declared.contains(&field) {
                if left == 0 {
                    omit(Kind::UndefinedVariable);
                    continue;
                }
                left -= 1;
                let at = self.find_in(span, &format!("{root}.{field}"));
                let what = if root == "inputs" {
                    "input"
                } else {
                    "tool parameter"
                };
                let help = if declared.is_empty() {
                    format!(
                        "declare it under `{}`",
                        if root == "inputs" {
                            "inputs:"
                        } else {
                            "parameters.properties:"
                        }
                    )
                } else {
                    suggestion(field, &declared)
                };
                self.push(
                    Diagnostic::new(
                        Kind::UndefinedVariable,
                        at,
                        format!("`{root}.{field}` is not a declared {what}"),
                    )
                    .label(format!("undefined {what}"))
                    .help(help),
                );
            }
        }
        if let Some((kind, n)) = omitted {
            self.push(
                Diagnostic::new(
                    kind,
                    Span::new(span.offset, 0),
                    format!(
                        "this template has {n} more unknown filter, test or variable name{}",
                        if n == 1 { "" } else { "s" }
                    ),
                )
                .label("more problems in this template")
                .help(format!(
                    "the first {MAX_TEMPLATE_PROBLEMS} of its problems are reported; fix them and check again"
                )),
            );
        }
    }

    /// The span of `needle` inside the node at `span`, or the node itself.
    pub(super) fn find_in(&self, span: Span, needle: &str) -> Span {
        match self.source.slice(span).find(needle) {
            Some(i) => Span::new(span.offset + i, needle.len()),
            None => span,
        }
    }

    /// Maps a position inside a template's text to the source, by finding the template's
    /// line inside the YAML scalar (block scalars are indented, quoted ones escaped).
    pub(super) fn locate_in_template(
        &self,
        span: Span,
        text: &str,
        byte: Option<usize>,
        line: Option<usize>,
    ) -> Span {
        let byte = byte.unwrap_or_else(|| {
            let l = line.unwrap_or(1).saturating_sub(1);
            text.split_inclusive('\n').take(l).map(str::len).sum()
        });
        let byte = byte.min(text.len());
        let line_start = text[..byte].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let line_text = text[line_start..].split('\n').next().unwrap_or("");
        let col = byte - line_start;
        let trimmed = line_text.trim_start();
        let lead = line_text.len() - trimmed.len();
        if !trimmed.is_empty()
            && let Some(i) = self.source.slice(span).find(trimmed)
        {
            let offset = span.offset + i + col.saturating_sub(lead);
            return Span::new(offset, 1.min(self.source.text.len().saturating_sub(offset)));
        }
        Span::new(span.offset, 0)
    }
}

/// Variables a set of names leaves undefined (used by tests of the default prompts).
pub fn undefined_in(text: &str, allowed: &[&str]) -> Result<BTreeSet<String>, TemplateError> {
    Ok(template::variables(text)?
        .into_iter()
        .filter(|v| !allowed.contains(&v.split('.').next().unwrap_or_default()))
        .collect())
}
