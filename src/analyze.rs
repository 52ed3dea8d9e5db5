//! Checks the JSON Schema cannot express: references between parts of the file (tools,
//! providers, steps, inputs), dependency cycles, template syntax and template variables,
//! and the validity of the JSON Schemas a workflow embeds. Builds the checked [`Workflow`]
//! when nothing is wrong.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use indexmap::IndexMap;
use serde_json::{Value, json};

use crate::diagnostic::{Diagnostic, Kind, suggestion};
use crate::schema::check_user_schema;
use crate::source::{Source, Span};
use crate::spec::{ModelRef, ModelSettings, ProviderKind, Role, StepSpec, WorkflowFile};
use crate::template::{self, TemplateError};
use crate::workflow::{
    Builtin, DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MODEL, ModelChoice, Tool, ToolKind, Workflow,
};
use crate::yaml::{Document, escape_pointer};

/// The variables each kind of template may use. Documented in the README; the engine
/// provides exactly these.
pub mod vars {
    pub const TASK: &[&str] = &["inputs"];
    pub const TOOL: &[&str] = &["args", "inputs"];
    pub const PLANNER: &[&str] = &[
        "feedback",
        "inputs",
        "max_steps",
        "task",
        "tools",
        "workflow",
    ];
    pub const EXECUTOR: &[&str] = &["context", "inputs", "step", "task", "tools", "workflow"];
    pub const REPLANNER: &[&str] = &[
        "failed_step",
        "inputs",
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

struct Analyzer<'a> {
    diags: &'a mut Vec<Diagnostic>,
    doc: &'a Document,
    file: &'a WorkflowFile,
    source: &'a Source,
}

/// Analyzes a schema-valid file; returns the checked workflow when no problem was found.
pub fn analyze(
    file: WorkflowFile,
    doc: &Document,
    source: &Source,
    diags: &mut Vec<Diagnostic>,
) -> Option<Workflow> {
    let before = diags.len();
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
    a.output();
    a.tests();
    if diags.len() > before {
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
            let kind = if let Some(argv) = &spec.command {
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
                ToolKind::Builtin(b)
            } else {
                // The schema reports a tool without a kind; nothing more to check here.
                continue;
            };
            let parameters = match (&spec.parameters, &kind) {
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
            out.insert(
                name.clone(),
                Tool {
                    description: spec.description.clone(),
                    kind,
                    max_output_bytes: spec.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT_BYTES),
                    name: name.clone(),
                    on_error: spec.on_error,
                    parameters,
                    timeout: spec.timeout,
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

    fn mock_templates(
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

    fn value_templates(&mut self, pointer: &str, value: &Value, params: Option<Option<&Value>>) {
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

    fn task_and_prompts(&mut self) {
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
    fn template(
        &mut self,
        pointer: &str,
        text: &str,
        allowed: &[&str],
        params: Option<Option<&Value>>,
    ) {
        let span = self.doc.value_span(pointer);
        let used = match template::variables(text) {
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
        for var in used {
            let mut parts = var.splitn(3, '.');
            let root = parts.next().unwrap_or_default();
            let field = parts.next();
            if !allowed.contains(&root) {
                let at = self.find_in(span, &var);
                self.push(
                    Diagnostic::new(
                        Kind::UndefinedVariable,
                        at,
                        format!("undefined template variable `{root}`"),
                    )
                    .label("not defined here")
                    .help(format!(
                        "{}; variables here: {}",
                        suggestion(root, allowed),
                        allowed.join(", ")
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
    }

    /// The span of `needle` inside the node at `span`, or the node itself.
    fn find_in(&self, span: Span, needle: &str) -> Span {
        match self.source.slice(span).find(needle) {
            Some(i) => Span::new(span.offset + i, needle.len()),
            None => span,
        }
    }

    /// Maps a position inside a template's text to the source, by finding the template's
    /// line inside the YAML scalar (block scalars are indented, quoted ones escaped).
    fn locate_in_template(
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

    fn fixed_plan(&mut self) {
        let Some(steps) = &self.file.plan.steps else {
            return;
        };
        if steps.len() > self.file.plan.max_steps as usize {
            self.push(
                Diagnostic::new(
                    Kind::OutOfRange,
                    self.doc.key_span("/plan/steps"),
                    format!(
                        "the fixed plan has {} steps, more than `plan.max_steps` ({})",
                        steps.len(),
                        self.file.plan.max_steps
                    ),
                )
                .label("too many steps")
                .help("raise `plan.max_steps` or remove steps"),
            );
        }
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, step) in steps.iter().enumerate() {
            if let Some(j) = first.get(step.id.as_str()) {
                let (line, _) = self
                    .source
                    .line_col(self.doc.value_span(&format!("/plan/steps/{j}/id")).offset);
                self.push(
                    Diagnostic::new(
                        Kind::DuplicateStepId,
                        self.doc.value_span(&format!("/plan/steps/{i}/id")),
                        format!("duplicate step id `{}`", step.id),
                    )
                    .label("used again here")
                    .help(format!(
                        "step ids must be unique; `{}` is first used on line {line}",
                        step.id
                    )),
                );
            } else {
                first.insert(&step.id, i);
            }
        }
        // Step texts are templates over `inputs`, like the task.
        for (i, step) in steps.iter().enumerate() {
            self.template(
                &format!("/plan/steps/{i}/description"),
                &step.description,
                vars::TASK,
                None,
            );
            if let Some(expected) = &step.expected {
                self.template(
                    &format!("/plan/steps/{i}/expected"),
                    expected,
                    vars::TASK,
                    None,
                );
            }
        }
        let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
        let tools: Vec<&str> = self.file.tools.keys().map(String::as_str).collect();
        for (i, step) in steps.iter().enumerate() {
            for (j, dep) in step.depends_on.iter().enumerate() {
                let span = self
                    .doc
                    .value_span(&format!("/plan/steps/{i}/depends_on/{j}"));
                if dep == &step.id {
                    self.push(
                        Diagnostic::new(
                            Kind::DependencyCycle,
                            span,
                            format!("step `{dep}` depends on itself"),
                        )
                        .label("self-dependency"),
                    );
                } else if !ids.contains(&dep.as_str()) {
                    self.push(
                        Diagnostic::new(
                            Kind::UnknownStep,
                            span,
                            format!("step `{}` depends on unknown step `{dep}`", step.id),
                        )
                        .label("no such step")
                        .help(suggestion(dep, &ids)),
                    );
                }
            }
            if let Some(tool) = &step.tool
                && !tools.contains(&tool.as_str())
            {
                self.push(
                    Diagnostic::new(
                        Kind::UnknownTool,
                        self.doc.value_span(&format!("/plan/steps/{i}/tool")),
                        format!("step `{}` names unknown tool `{tool}`", step.id),
                    )
                    .label("not declared under `tools:`")
                    .help(suggestion(tool, &tools)),
                );
            }
        }
        if let Some(cycle) = find_cycle(steps) {
            let first_index = ids.iter().position(|id| *id == cycle[0]).unwrap_or(0);
            self.push(
                Diagnostic::new(
                    Kind::DependencyCycle,
                    self.doc
                        .key_span(&format!("/plan/steps/{first_index}/depends_on")),
                    format!(
                        "steps depend on each other in a cycle: {}",
                        cycle.join(" → ")
                    ),
                )
                .label("cycle starts here")
                .help("remove one `depends_on` entry so the steps can run in some order"),
            );
        }
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

    fn tests(&mut self) {
        let tools: Vec<&str> = self.file.tools.keys().map(String::as_str).collect();
        let inputs: Vec<&str> = self.file.inputs.keys().map(String::as_str).collect();
        let steps: Option<Vec<&str>> = self
            .file
            .plan
            .steps
            .as_ref()
            .map(|s| s.iter().map(|s| s.id.as_str()).collect());
        for (i, case) in self.file.tests.iter().enumerate() {
            let base = format!("/tests/{i}");
            for name in case.tools.keys().chain(case.expect.tool_calls.keys()) {
                if !tools.contains(&name.as_str()) {
                    let p = if case.tools.contains_key(name) {
                        format!("{base}/tools/{}", escape_pointer(name))
                    } else {
                        format!("{base}/expect/tool_calls/{}", escape_pointer(name))
                    };
                    self.push(
                        Diagnostic::new(
                            Kind::UnknownTool,
                            self.doc.key_span(&p),
                            format!("test `{}` refers to unknown tool `{name}`", case.name),
                        )
                        .label("not declared under `tools:`")
                        .help(suggestion(name, &tools)),
                    );
                }
            }
            for name in case.inputs.keys() {
                if !inputs.contains(&name.as_str()) {
                    let p = format!("{base}/inputs/{}", escape_pointer(name));
                    self.push(
                        Diagnostic::new(
                            Kind::UndefinedVariable,
                            self.doc.key_span(&p),
                            format!("test `{}` sets unknown input `{name}`", case.name),
                        )
                        .label("not declared under `inputs:`")
                        .help(suggestion(name, &inputs)),
                    );
                }
            }
            if let Some(ids) = &steps {
                for id in case.expect.steps.keys() {
                    if !ids.contains(&id.as_str()) {
                        let p = format!("{base}/expect/steps/{}", escape_pointer(id));
                        self.push(
                            Diagnostic::new(
                                Kind::UnknownStep,
                                self.doc.key_span(&p),
                                format!("test `{}` expects unknown step `{id}`", case.name),
                            )
                            .label("not in the fixed plan")
                            .help(suggestion(id, ids)),
                        );
                    }
                }
            }
        }
    }
}

/// A model reference that cannot be resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelProblem {
    /// Occurs when the reference is not `provider/model`.
    Malformed { reference: String },
    /// Occurs when the provider is neither built in nor declared.
    UnknownProvider {
        provider: String,
        known: Vec<String>,
    },
}

impl ModelProblem {
    fn into_diagnostic(self, span: Span) -> Diagnostic {
        match self {
            ModelProblem::Malformed { reference } => {
                Diagnostic::new(Kind::InvalidModelRef, span, format!("`{reference}` is not a model reference"))
                    .label("expected `provider/model`")
                    .help("write the provider and the model, e.g. `openai/gpt-4o-mini` or `local/smollm2-135m`")
            }
            ModelProblem::UnknownProvider { provider, known } => {
                let known: Vec<&str> = known.iter().map(String::as_str).collect();
                Diagnostic::new(Kind::UnknownProvider, span, format!("unknown provider `{provider}`"))
                    .label("neither built in nor declared under `providers:`")
                    .help(suggestion(&provider, &known))
            }
        }
    }
}

impl std::fmt::Display for ModelProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelProblem::Malformed { reference } => write!(
                f,
                "`{reference}` is not a model reference (expected `provider/model`)"
            ),
            ModelProblem::UnknownProvider { provider, known } => {
                write!(
                    f,
                    "unknown provider `{provider}` (known: {})",
                    known.join(", ")
                )
            }
        }
    }
}

/// Resolves `provider/model` against declared and built-in providers. Used by the checker
/// and by `--model` overrides, so both accept exactly the same references.
pub fn resolve_model(
    reference: &ModelRef,
    providers: &IndexMap<String, crate::spec::ProviderSpec>,
) -> Result<ModelChoice, ModelProblem> {
    let name = reference.name();
    let (provider, model) = match name.split_once('/') {
        Some((p, m)) if !p.is_empty() && !m.is_empty() => (p, m),
        _ => {
            return Err(ModelProblem::Malformed {
                reference: name.to_string(),
            });
        }
    };
    let settings = match reference {
        ModelRef::Name(n) => ModelSettings {
            model: n.clone(),
            ..ModelSettings::default()
        },
        ModelRef::Settings(s) => s.clone(),
    };
    let (kind, provider_spec) = match providers.get(provider) {
        Some(spec) => (spec.kind, Some(spec.clone())),
        None => match ProviderKind::from_name(provider) {
            Some(kind) => (kind, None),
            None => {
                let mut known: Vec<String> = providers.keys().cloned().collect();
                known.extend(ProviderKind::NAMES.iter().map(|s| s.to_string()));
                return Err(ModelProblem::UnknownProvider {
                    provider: provider.to_string(),
                    known,
                });
            }
        },
    };
    Ok(ModelChoice {
        kind,
        model: model.to_string(),
        provider: provider.to_string(),
        provider_spec,
        settings,
    })
}

/// One dependency cycle among `steps` (ids in order, first repeated at the end), if any.
pub fn find_cycle(steps: &[StepSpec]) -> Option<Vec<String>> {
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut state = vec![0u8; steps.len()];
    let mut stack: Vec<usize> = Vec::new();
    fn visit(
        i: usize,
        steps: &[StepSpec],
        index: &HashMap<&str, usize>,
        state: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        state[i] = 1;
        stack.push(i);
        for dep in &steps[i].depends_on {
            let Some(&j) = index.get(dep.as_str()) else {
                continue;
            };
            if j == i {
                continue;
            }
            if state[j] == 1 {
                let from = stack.iter().position(|&k| k == j).unwrap_or(0);
                let mut cycle: Vec<String> =
                    stack[from..].iter().map(|&k| steps[k].id.clone()).collect();
                cycle.push(steps[j].id.clone());
                return Some(cycle);
            }
            if state[j] == 0
                && let Some(c) = visit(j, steps, index, state, stack)
            {
                return Some(c);
            }
        }
        stack.pop();
        state[i] = 2;
        None
    }
    for i in 0..steps.len() {
        if state[i] == 0
            && let Some(c) = visit(i, steps, &index, &mut state, &mut stack)
        {
            return Some(c);
        }
    }
    None
}

/// Variables a set of names leaves undefined (used by tests of the default prompts).
pub fn undefined_in(text: &str, allowed: &[&str]) -> Result<BTreeSet<String>, TemplateError> {
    Ok(template::variables(text)?
        .into_iter()
        .filter(|v| !allowed.contains(&v.split('.').next().unwrap_or_default()))
        .collect())
}

/// Resolves a path from the workflow file against its directory.
pub fn relative_to(dir: &Path, path: &str) -> std::path::PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, deps: &[&str]) -> StepSpec {
        StepSpec {
            depends_on: deps.iter().map(|s| s.to_string()).collect(),
            description: id.into(),
            expected: None,
            id: id.into(),
            tool: None,
        }
    }

    #[test]
    fn finds_cycles_and_accepts_dags() {
        let dag = [step("a", &[]), step("b", &["a"]), step("c", &["a", "b"])];
        assert_eq!(find_cycle(&dag), None);
        let cyc = [step("a", &["c"]), step("b", &["a"]), step("c", &["b"])];
        assert_eq!(find_cycle(&cyc).unwrap(), ["a", "c", "b", "a"]);
    }

    #[test]
    fn resolves_builtin_and_declared_providers() {
        let providers = IndexMap::new();
        let c = resolve_model(&ModelRef::Name("openai/gpt-4o".into()), &providers).unwrap();
        assert_eq!((c.kind, c.model.as_str()), (ProviderKind::Openai, "gpt-4o"));
        let c = resolve_model(
            &ModelRef::Name("scripted/replies/a.yaml".into()),
            &providers,
        )
        .unwrap();
        assert_eq!(c.model, "replies/a.yaml");
        assert!(matches!(
            resolve_model(&ModelRef::Name("opneai/gpt-4o".into()), &providers),
            Err(ModelProblem::UnknownProvider { .. })
        ));
        assert!(matches!(
            resolve_model(&ModelRef::Name("gpt-4o".into()), &providers),
            Err(ModelProblem::Malformed { .. })
        ));
    }
}
