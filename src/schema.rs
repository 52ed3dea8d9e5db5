//! The workflow JSON Schema (embedded from `schemas/`) and the mapping of its errors to
//! located diagnostics.
//!
//! The schema is the one source for structure: types, required keys, enums, ranges and
//! unknown keys. Errors come back with a JSON pointer into the document; [`crate::yaml`]
//! turns that into a span. Errors are rephrased for people ("unknown key `max_step`, did you
//! mean `max_steps`?") rather than shown as validator prose.

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use crate::diagnostic::{Diagnostic, DiagnosticSink, Kind, suggestion};
use crate::yaml::{Document, escape_pointer};

/// The published schema, byte for byte.
pub const WORKFLOW_SCHEMA: &str = include_str!("../schemas/workflow.schema.json");

/// The published schema of scripted replies files, byte for byte.
pub const REPLIES_SCHEMA: &str = include_str!("../schemas/replies.schema.json");

/// The compiled replies schema (`pe test`, `--model scripted/FILE`).
pub fn replies_validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(REPLIES_SCHEMA).expect("embedded replies schema is JSON");
        jsonschema::draft202012::new(&schema).expect("embedded replies schema compiles")
    })
}

/// The parsed schema document.
pub fn schema_json() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(WORKFLOW_SCHEMA).expect("embedded schema is JSON"))
}

fn validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::draft202012::new(schema_json()).expect("embedded schema compiles")
    })
}

/// Validates `doc` against the workflow schema, pushing one diagnostic per problem.
/// Returns the pointers of nodes that failed, so the caller can prune them before analysis.
pub fn validate(doc: &Document, diags: &mut dyn DiagnosticSink) -> Vec<String> {
    let mut failed = Vec::new();
    for error in validator().iter_errors(&doc.value) {
        describe(doc, &error, diags, &mut failed);
    }
    failed
}

/// Every way `value` fails `validator`, each prefixed with where (`at /steps/0/id: ...`),
/// joined with `; ` — the text sent back to a model whose structured reply was wrong.
pub fn problems(validator: &Validator, value: &Value) -> Result<(), String> {
    let problems: Vec<String> = validator
        .iter_errors(value)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("at {at}: {e}")
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Why a schema embedded in a workflow is not valid JSON Schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSchemaProblem {
    pub message: String,
    /// JSON pointer inside the embedded schema.
    pub pointer: String,
}

/// Values an embedded schema (an input, tool parameters, output schema) may hold. Compiling
/// one costs memory per value (a regex per `pattern`); no real tool needs thousands.
pub const MAX_USER_SCHEMA_VALUES: usize = 5_000;

/// Checks that `schema` (an input, tool parameters or output schema) is valid JSON Schema.
pub fn check_user_schema(schema: &Value) -> Result<(), UserSchemaProblem> {
    let values = count_values(schema, MAX_USER_SCHEMA_VALUES + 1);
    if values > MAX_USER_SCHEMA_VALUES {
        return Err(UserSchemaProblem {
            message: format!(
                "the schema holds more than {MAX_USER_SCHEMA_VALUES} values; split the tool or simplify its arguments"
            ),
            pointer: String::new(),
        });
    }
    if let Err(e) = jsonschema::draft202012::meta::validate(schema) {
        let pointer = e.instance_path().as_str().to_string();
        let message = if pointer.ends_with("/type") {
            format!(
                "{} is not a JSON Schema type; use one of: string, number, integer, boolean, object, array, null",
                e.instance()
            )
        } else {
            e.to_string()
        };
        return Err(UserSchemaProblem { message, pointer });
    }
    jsonschema::draft202012::new(schema)
        .map(|_| ())
        .map_err(|e| UserSchemaProblem {
            message: e.to_string(),
            pointer: e.instance_path().as_str().to_string(),
        })
}

/// How many values `value` holds, counting up to `stop` at most.
fn count_values(value: &Value, stop: usize) -> usize {
    let mut count = 0;
    let mut pending = vec![value];
    while let Some(v) = pending.pop() {
        count += 1;
        if count >= stop {
            break;
        }
        match v {
            Value::Array(items) => pending.extend(items),
            Value::Object(map) => pending.extend(map.values()),
            _ => {}
        }
    }
    count
}

fn describe(
    doc: &Document,
    error: &ValidationError<'_>,
    diags: &mut dyn DiagnosticSink,
    failed: &mut Vec<String>,
) {
    let pointer = error.instance_path().as_str().to_string();
    let instance = error.instance();
    let what = describe_location(&pointer);
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = allowed_keys(error);
            let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
            for (i, key) in unexpected.iter().enumerate() {
                let child = format!("{pointer}/{}", escape_pointer(key));
                failed.push(child.clone());
                // Keys come in file order: past the number of diagnostics `pe check` shows,
                // none of them can be shown, so no help is worked out for them.
                if i >= crate::check::MAX_DIAGNOSTICS {
                    diags.push(Diagnostic::new(
                        Kind::UnknownKey,
                        doc.key_span(&child),
                        format!("unknown key `{}` in {what}", clip(key)),
                    ));
                    continue;
                }
                let help = match (
                    crate::diagnostic::did_you_mean(key, allowed.iter().copied()),
                    section_of(key),
                ) {
                    (None, Some(section)) if pointer.matches('/').count() <= 1 => {
                        format!("`{}` belongs under `{section}`, not here", clip(key))
                    }
                    _ => suggestion(key, &allowed),
                };
                diags.push(
                    Diagnostic::new(
                        Kind::UnknownKey,
                        doc.key_span(&child),
                        format!("unknown key `{}` in {what}", clip(key)),
                    )
                    .label("not a known key")
                    .help(help),
                );
            }
        }
        ValidationErrorKind::Required { property } => {
            let key = property.as_str().unwrap_or_default();
            // A key missing at the top is reported at the start of the file, not on all of it.
            let span = if pointer.is_empty() {
                crate::source::Span::new(0, 0)
            } else {
                doc.key_span(&pointer)
            };
            diags.push(
                Diagnostic::new(
                    Kind::MissingKey,
                    span,
                    format!("{what} is missing required key `{key}`"),
                )
                .label(format!("`{key}` is required here")),
            );
            failed.push(pointer);
        }
        ValidationErrorKind::Minimum { limit }
        | ValidationErrorKind::ExclusiveMinimum { limit } => {
            let strict = matches!(error.kind(), ValidationErrorKind::ExclusiveMinimum { .. });
            let bound = if strict {
                format!("greater than {limit}")
            } else {
                format!("at least {limit}")
            };
            out_of_range(doc, &pointer, instance, &bound, diags);
            failed.push(pointer);
        }
        ValidationErrorKind::Maximum { limit }
        | ValidationErrorKind::ExclusiveMaximum { limit } => {
            out_of_range(doc, &pointer, instance, &format!("at most {limit}"), diags);
            failed.push(pointer);
        }
        ValidationErrorKind::Enum { options } => {
            let options: Vec<&str> = options
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let got = instance
                .as_str()
                .map(|s| format!("`{}`", clip(s)))
                .unwrap_or_else(|| shown(instance));
            let help = match instance.as_str() {
                Some(s) => suggestion(s, &options),
                None => suggestion("", &options),
            };
            let kind = if pointer.starts_with("/providers/") && pointer.ends_with("/kind") {
                Kind::UnknownProviderKind
            } else if pointer.starts_with("/tools/") && pointer.ends_with("/builtin") {
                Kind::UnknownBuiltin
            } else {
                Kind::Schema
            };
            diags.push(
                Diagnostic::new(
                    kind,
                    doc.value_span(&pointer),
                    format!("{got} is not a valid value for {what}"),
                )
                .label("not allowed here")
                .help(help),
            );
            failed.push(pointer);
        }
        ValidationErrorKind::Pattern { .. } if is_duration(error) => {
            diags.push(
                Diagnostic::new(
                    Kind::InvalidDuration,
                    doc.value_span(&pointer),
                    format!("{} is not a duration", shown(instance)),
                )
                .label("expected a duration")
                .help("write a number and a unit: `500ms`, `90s`, `2m` or `1h`"),
            );
            failed.push(pointer);
        }
        ValidationErrorKind::Pattern { pattern } => {
            diags.push(
                Diagnostic::new(
                    Kind::Schema,
                    doc.value_span(&pointer),
                    format!("{} is not a valid value for {what}", shown(instance)),
                )
                .label("does not match the required pattern")
                .help(format!("it must match `{pattern}`")),
            );
            failed.push(pointer);
        }
        ValidationErrorKind::PropertyNames { error: inner } => {
            let full = inner.instance().as_str().unwrap_or_default().to_string();
            let child = format!("{pointer}/{}", escape_pointer(&full));
            let name = clip(&full);
            let rule = match inner.kind() {
                ValidationErrorKind::Pattern { pattern } => format!("names must match `{pattern}`"),
                _ => clip(&inner.to_string()),
            };
            diags.push(
                Diagnostic::new(
                    Kind::Schema,
                    doc.key_span(&child),
                    format!("`{name}` is not a valid name in {what}"),
                )
                .label("invalid name")
                .help(rule),
            );
            failed.push(child);
        }
        ValidationErrorKind::Type { kind } => {
            let expected = format!("{kind:?}").to_lowercase();
            let expected = expected
                .trim_start_matches("single(")
                .trim_end_matches(')')
                .to_string();
            diags.push(
                Diagnostic::new(
                    Kind::Schema,
                    doc.value_span(&pointer),
                    format!(
                        "{what} must be {}, not {}",
                        article(&expected),
                        type_name(instance)
                    ),
                )
                .label(format!("expected {expected}"))
                .help(form_hint(&pointer).unwrap_or_default()),
            );
            failed.push(pointer);
        }
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            // Report the branch whose type fits the value; if none or several fit, explain
            // the alternatives instead of dumping every branch's errors.
            let fitting: Vec<&Vec<ValidationError<'static>>> = context
                .iter()
                .filter(|errs| {
                    !errs
                        .iter()
                        .any(|e| e.instance_path().as_str() == pointer && is_type_or_required(e))
                })
                .collect();
            if let [branch] = fitting.as_slice() {
                for e in branch.iter() {
                    describe(doc, e, diags, failed);
                }
            } else if let Some(keys) = required_alternatives(context) {
                diags.push(
                    Diagnostic::new(
                        Kind::ToolKind,
                        doc.key_span(&pointer),
                        format!("{what} needs exactly one of {keys}"),
                    )
                    .label("none given"),
                );
                failed.push(pointer);
            } else {
                let forms = context.len();
                diags.push(
                    Diagnostic::new(
                        Kind::Schema,
                        doc.value_span(&pointer),
                        format!("{what} does not match any of its {forms} allowed forms"),
                    )
                    .label(format!("a {} does not fit here", type_name(instance))),
                );
                failed.push(pointer);
            }
        }
        ValidationErrorKind::OneOfMultipleValid { .. } => {
            let keys =
                required_alternatives_of_schema(error).unwrap_or_else(|| "its alternatives".into());
            diags.push(
                Diagnostic::new(
                    Kind::ToolKind,
                    doc.key_span(&pointer),
                    format!("{what} must have only one of {keys}"),
                )
                .label("more than one given")
                .help("split it into separate entries, one per kind"),
            );
            failed.push(pointer);
        }
        ValidationErrorKind::Constant { expected_value } => {
            diags.push(
                Diagnostic::new(
                    Kind::Schema,
                    doc.value_span(&pointer),
                    format!("{what} must be {expected_value}"),
                )
                .label(format!("found {}", shown(instance)))
                .help(if pointer == "/version" {
                    "this pe reads format version 1"
                } else {
                    ""
                }),
            );
            failed.push(pointer);
        }
        ValidationErrorKind::MinItems { limit } => {
            diags.push(
                Diagnostic::new(
                    Kind::OutOfRange,
                    doc.value_span(&pointer),
                    format!("{what} needs at least {limit} item(s)"),
                )
                .label("too few items"),
            );
            failed.push(pointer);
        }
        ValidationErrorKind::MaxItems { limit } => {
            diags.push(
                Diagnostic::new(
                    Kind::OutOfRange,
                    doc.value_span(&pointer),
                    format!(
                        "{what} has {} items; at most {limit} are allowed",
                        instance.as_array().map_or(0, Vec::len)
                    ),
                )
                .label("too many items"),
            );
            failed.push(pointer);
        }
        ValidationErrorKind::MaxProperties { limit } => {
            diags.push(
                Diagnostic::new(
                    Kind::OutOfRange,
                    doc.key_span(&pointer),
                    format!(
                        "{what} has {} entries; at most {limit} are allowed",
                        instance.as_object().map_or(0, serde_json::Map::len)
                    ),
                )
                .label("too many entries"),
            );
            failed.push(pointer);
        }
        ValidationErrorKind::MinLength { .. } => {
            diags.push(
                Diagnostic::new(
                    Kind::Schema,
                    doc.value_span(&pointer),
                    format!("{what} must not be empty"),
                )
                .label("empty"),
            );
            failed.push(pointer);
        }
        _ => {
            diags.push(
                Diagnostic::new(
                    Kind::Schema,
                    doc.value_span(&pointer),
                    format!("{what}: {}", clip(&error.to_string())),
                )
                .label("invalid"),
            );
            failed.push(pointer);
        }
    }
}

/// A message that may quote the offending value, cut to a readable length: the value can
/// be a megabyte long.
fn clip(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// A scalar as quoted in a message, cut like [`clip`].
fn shown(value: &Value) -> String {
    clip(&value.to_string())
}

/// How to write the value at `pointer` when it has the wrong shape: the forms people get
/// wrong first.
fn form_hint(pointer: &str) -> Option<String> {
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    Some(match parts.as_slice() {
        ["tools", _, "http"] => "`http` is a mapping: `http: {url: 'https://api.example.com/items/{{ args.id }}', method: GET}` (also `headers`, `body`)".into(),
        ["tools", _, "command"] => "`command` is an argv list, never a shell line: `command: [./scripts/ci.sh, '{{ args.version }}']`".into(),
        ["tools", _, "parameters"] => "`parameters` is a JSON Schema: `{type: object, properties: {q: {type: string}}, required: [q]}`".into(),
        ["plan", "steps"] => "a fixed plan is a list: `steps: [{id: fetch, description: Fetch the data, tool: fetch}]`".into(),
        ["tests"] => "`tests` is a list of cases: `tests: [{name: happy path, replies: replies.yaml, expect: {status: completed}}]`".into(),
        ["inputs", _] => "an input is a JSON Schema: `{type: string, default: api, description: ...}`".into(),
        _ => return None,
    })
}

fn out_of_range(
    doc: &Document,
    pointer: &str,
    instance: &Value,
    bound: &str,
    diags: &mut dyn DiagnosticSink,
) {
    let what = describe_location(pointer);
    diags.push(
        Diagnostic::new(
            Kind::OutOfRange,
            doc.value_span(pointer),
            format!("{what} is {}, but must be {bound}", shown(instance)),
        )
        .label("out of range"),
    );
}

fn is_type_or_required(e: &ValidationError<'_>) -> bool {
    matches!(
        e.kind(),
        ValidationErrorKind::Type { .. }
            | ValidationErrorKind::Required { .. }
            | ValidationErrorKind::OneOfNotValid { .. }
    )
}

/// `` `command`, `http`, `builtin` or `mock` `` when every branch is a lone `required`.
fn required_alternatives(context: &[Vec<ValidationError<'static>>]) -> Option<String> {
    let keys: Option<Vec<String>> = context
        .iter()
        .map(|errs| match errs.as_slice() {
            [e] => match e.kind() {
                ValidationErrorKind::Required { property } => {
                    property.as_str().map(|s| format!("`{s}`"))
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    keys.filter(|k| !k.is_empty()).map(|k| k.join(", "))
}

fn required_alternatives_of_schema(error: &ValidationError<'_>) -> Option<String> {
    let node = schema_node(error)?;
    let keys: Vec<String> = node
        .as_array()?
        .iter()
        .filter_map(|b| {
            b.get("required")?
                .get(0)?
                .as_str()
                .map(|s| format!("`{s}`"))
        })
        .collect();
    Some(keys.join(", "))
}

/// The schema node an error's keyword sits at (following `$ref`s along the path).
fn schema_node(error: &ValidationError<'_>) -> Option<&'static Value> {
    let root = schema_json();
    let mut node = root;
    for seg in error.schema_path().as_str().split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        node = match node {
            Value::Object(m) => match m.get(&seg) {
                Some(n) => n,
                None => {
                    let target = m.get("$ref")?.as_str()?.strip_prefix('#')?;
                    root.pointer(target)?.get(&seg)?
                }
            },
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
        if let Some(target) = node
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            && node.as_object().is_some_and(|m| m.len() <= 2)
        {
            node = root.pointer(target)?;
        }
    }
    Some(node)
}

fn allowed_keys(error: &ValidationError<'_>) -> Vec<String> {
    let path = error.schema_path().as_str();
    let parent = path.strip_suffix("/additionalProperties").unwrap_or(path);
    let root = schema_json();
    // Walk the evaluation path of the object schema to find its `properties`.
    let mut node = root;
    for seg in parent.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        let next = match node {
            Value::Object(m) => m.get(&seg).or_else(|| {
                let target = m.get("$ref")?.as_str()?.strip_prefix('#')?;
                root.pointer(target)?.get(&seg)
            }),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return Vec::new(),
        }
    }
    if let Some(target) = node
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
    {
        node = root.pointer(target).unwrap_or(node);
    }
    node.get("properties")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The top-level section that defines `key`, for keys written in the wrong section.
fn section_of(key: &str) -> Option<&'static str> {
    let root = schema_json().get("properties")?.as_object()?;
    root.iter()
        .find(|(_, sub)| sub.get("properties").and_then(|p| p.get(key)).is_some())
        .map(|(name, _)| name.as_str())
}

fn is_duration(error: &ValidationError<'_>) -> bool {
    matches!(error.kind(), ValidationErrorKind::Pattern { pattern } if pattern == crate::duration::PATTERN)
}

/// "`plan.max_steps`", "tool `deploy`", "the workflow" — how people name a location.
pub fn describe_location(pointer: &str) -> String {
    if pointer.is_empty() {
        return "the workflow".to_string();
    }
    let dotted: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    match dotted.as_slice() {
        [section, name] if section == "tools" => format!("tool `{name}`"),
        [section, name] if section == "providers" => format!("provider `{name}`"),
        [section, name] if section == "inputs" => format!("input `{name}`"),
        _ => {
            let mut out = String::new();
            for seg in &dotted {
                if seg.parse::<usize>().is_ok() {
                    out.push_str(&format!("[{seg}]"));
                } else {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(seg);
                }
            }
            format!("`{out}`")
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

fn article(t: &str) -> String {
    match t {
        "object" => "a mapping".into(),
        "array" => "a list".into(),
        "integer" => "an integer".into(),
        other => format!("a {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_schema_is_itself_valid() {
        jsonschema::draft202012::meta::validate(schema_json()).unwrap();
        let _ = validator();
    }

    #[test]
    fn locations_read_like_people_write_them() {
        assert_eq!(describe_location("/plan/max_steps"), "`plan.max_steps`");
        assert_eq!(describe_location("/tools/run_ci"), "tool `run_ci`");
        assert_eq!(describe_location("/plan/steps/2/id"), "`plan.steps[2].id`");
        assert_eq!(describe_location(""), "the workflow");
    }
}
