//! Checks the JSON Schema cannot express: references between parts of the file (tools,
//! providers, steps, inputs), dependency cycles, template syntax and template variables,
//! and the validity of the JSON Schemas a workflow embeds. Builds the checked [`Workflow`]
//! when nothing is wrong.

mod builtins;
mod cases;
mod direct;
mod hints;
mod models;
mod plan;
mod templates;
mod tool_sources;
mod tools;

use std::collections::HashSet;

use indexmap::IndexMap;
use serde_json::json;

use crate::diagnostic::{Diagnostic, DiagnosticSink, Kind};
use crate::duration::Duration;
use crate::schema::check_user_schema;
use crate::source::Source;
use crate::spec::{ModelRef, Role, WorkflowFile};
use crate::workflow::{
    Builtin, DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MODEL, DEFAULT_TOOL_TIMEOUT, ModelChoice, Tool,
    ToolKind, Workflow,
};
use crate::yaml::{Document, escape_pointer};

pub use models::{ModelProblem, resolve_model};
pub use plan::find_cycle;
pub use templates::{undefined_in, vars};
pub use tool_sources::MAX_WORKFLOW_DEPTH;
pub(crate) use tool_sources::checking;

struct Analyzer<'a> {
    diags: &'a mut dyn DiagnosticSink,
    doc: &'a Document,
    file: &'a WorkflowFile,
    source: &'a Source,
}

/// Analyzes a schema-valid file; returns the checked workflow when no problem was found.
pub fn analyze(
    file: WorkflowFile,
    doc: &Document,
    source: &Source,
    diags: &mut dyn DiagnosticSink,
) -> Option<Workflow> {
    let before = diags.pushed();
    let mut a = Analyzer {
        diags,
        doc,
        file: &file,
        source,
    };
    a.inputs();
    let models = a.models();
    let tools = a.tools();
    a.task_and_prompts();
    a.fixed_plan();
    a.step_args(&tools);
    a.output();
    a.output_template();
    a.tests();
    if diags.pushed() > before {
        return None;
    }
    let dir = source.dir().to_path_buf();
    Some(Workflow {
        dir,
        file,
        models,
        path: source.path.clone(),
        tools,
    })
}

impl Analyzer<'_> {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn inputs(&mut self) {
        for (name, schema) in &self.file.inputs {
            let pointer = format!("/inputs/{}", escape_pointer(name));
            if let Err(problem) = check_user_schema(schema) {
                self.schema_problem(
                    &pointer,
                    problem,
                    format!("input `{name}` is not a valid JSON Schema"),
                );
                continue;
            }
            if let Some(default) = schema.get("default")
                && let Ok(v) = jsonschema::draft202012::new(schema)
                && let Some(e) = v.iter_errors(default).next()
            {
                self.push(
                    Diagnostic::new(
                        Kind::Schema,
                        self.doc.value_span(&format!("{pointer}/default")),
                        format!("the default of input `{name}` does not match its own schema"),
                    )
                    .label("invalid default")
                    .help(e.to_string()),
                );
            }
        }
    }

    fn models(&mut self) -> IndexMap<Role, ModelChoice> {
        let mut out = IndexMap::new();
        let mut reported = HashSet::new();
        for role in Role::ALL {
            let (pointer, reference) =
                match (self.file.models.role(role), &self.file.models.default) {
                    (Some(r), _) => (format!("/models/{}", role.as_str()), r.clone()),
                    (None, Some(d)) => ("/models/default".to_string(), d.clone()),
                    (None, None) => (String::new(), ModelRef::Name(DEFAULT_MODEL.to_string())),
                };
            match resolve_model(&reference, &self.file.providers) {
                Ok(choice) => {
                    out.insert(role, choice);
                }
                Err(problem) if reported.insert(pointer.clone()) => {
                    let ptr = match reference {
                        ModelRef::Name(_) => pointer.clone(),
                        ModelRef::Settings(_) => format!("{pointer}/model"),
                    };
                    let span = self.doc.value_span(&ptr);
                    self.push(problem.into_diagnostic(span));
                }
                Err(_) => {}
            }
        }
        out
    }

    fn tools(&mut self) -> IndexMap<String, Tool> {
        let mut out = IndexMap::new();
        for (name, spec) in &self.file.tools {
            let base = format!("/tools/{}", escape_pointer(name));
            let mut description = spec.description.clone();
            let mut derived_parameters = None;
            if spec.mcp.is_none() {
                self.mcp_keys_elsewhere(&base, spec);
            }
            let kind = if let Some(mcp) = &spec.mcp {
                self.mcp_entry(&base, spec, mcp)
            } else if let Some(file) = &spec.workflow {
                match self.workflow_entry(&base, name, spec, file) {
                    Some((kind, parameters, child_description)) => {
                        description = child_description;
                        derived_parameters = Some(parameters);
                        kind
                    }
                    None => continue,
                }
            } else if let Some(argv) = &spec.command {
                for (i, arg) in argv.iter().enumerate() {
                    self.template(
                        &format!("{base}/command/{i}"),
                        arg,
                        vars::TOOL,
                        Some(spec.parameters.as_ref()),
                    );
                }
                for (k, v) in &spec.env {
                    self.template(
                        &format!("{base}/env/{}", escape_pointer(k)),
                        v,
                        vars::TOOL,
                        Some(spec.parameters.as_ref()),
                    );
                }
                ToolKind::Command {
                    argv: argv.clone(),
                    cwd: spec.cwd.clone(),
                    env: spec.env.clone(),
                    inherit_env: spec.inherit_env.clone(),
                }
            } else if let Some(http) = &spec.http {
                let params = Some(spec.parameters.as_ref());
                self.template(&format!("{base}/http/url"), &http.url, vars::TOOL, params);
                for (k, v) in &http.headers {
                    self.template(
                        &format!("{base}/http/headers/{}", escape_pointer(k)),
                        v,
                        vars::TOOL,
                        params,
                    );
                }
                if let Some(body) = &http.body {
                    self.value_templates(&format!("{base}/http/body"), body, params);
                }
                ToolKind::Http(http.clone())
            } else if let Some(mock) = &spec.mock {
                self.mock_templates(
                    &format!("{base}/mock"),
                    mock,
                    Some(spec.parameters.as_ref()),
                );
                ToolKind::Mock(mock.clone())
            } else if let Some(b) = spec.builtin.as_deref().and_then(Builtin::from_name) {
                if let Some(declared) = &spec.parameters {
                    self.builtin_parameters(&base, name, b, declared);
                }
                ToolKind::Builtin(b)
            } else {
                // The schema reports a tool without a kind; nothing more to check here.
                continue;
            };
            let parameters = match (&spec.parameters, &kind) {
                _ if derived_parameters.is_some() => derived_parameters.unwrap_or_default(),
                // Reported by `mcp_entry`: the server gives each tool's parameters.
                (Some(_), ToolKind::Mcp(_)) => json!({"type": "object"}),
                (Some(p), _) => {
                    if let Err(problem) = check_user_schema(p) {
                        let what =
                            format!("the parameters of tool `{name}` are not a valid JSON Schema");
                        self.schema_problem(&format!("{base}/parameters"), problem, what);
                    }
                    p.clone()
                }
                (None, ToolKind::Builtin(b)) => b.parameters(),
                (None, _) => json!({"type": "object", "properties": {}}),
            };
            self.tool_paths(&base, spec, &kind, &parameters);
            out.insert(
                name.clone(),
                Tool {
                    description,
                    kind,
                    max_output_bytes: spec.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT_BYTES),
                    name: name.clone(),
                    on_error: spec.on_error,
                    parameters,
                    paths: spec.paths.clone(),
                    timeout: spec
                        .timeout
                        .or(self.file.execute.tool_timeout)
                        .unwrap_or(Duration(DEFAULT_TOOL_TIMEOUT)),
                },
            );
        }
        out
    }

    /// Reports an invalid embedded schema at the offending node inside it.
    fn schema_problem(
        &mut self,
        base: &str,
        problem: crate::schema::UserSchemaProblem,
        message: String,
    ) {
        let inner = format!("{base}{}", problem.pointer);
        let span = if problem.pointer.is_empty() {
            self.doc.key_span(base)
        } else {
            self.doc.value_span(&inner)
        };
        self.push(
            Diagnostic::new(Kind::InvalidJsonSchema, span, message)
                .label("invalid schema")
                .help(problem.message),
        );
    }

    fn output(&mut self) {
        if let Some(schema) = &self.file.output.schema
            && let Err(problem) = check_user_schema(schema)
        {
            self.schema_problem(
                "/output/schema",
                problem,
                "`output.schema` is not a valid JSON Schema".into(),
            );
        }
    }
}
