//! A run's inputs: given values typed by each input's declared `type`, checked against the
//! input's JSON Schema, with defaults applied. Unknown and missing inputs are usage errors
//! that name the input.

use std::path::Path;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::diagnostic::suggestion;
use crate::error::Error;
use crate::source::Source;
use crate::workflow::Workflow;

/// Parses `--input KEY=VALUE` values and an optional `--inputs-file` (values from the
/// command line win) into raw values, typed by each declared input's schema.
pub fn from_command_line(
    workflow: &Workflow,
    pairs: &[String],
    file: Option<&Path>,
) -> Result<IndexMap<String, Value>, Error> {
    let mut given = IndexMap::new();
    if let Some(path) = file {
        given.extend(read_inputs_file(path)?);
    }
    for pair in pairs {
        let Some((key, text)) = pair.split_once('=') else {
            return Err(Error::Usage {
                message: format!("--input {pair}: expected KEY=VALUE"),
            });
        };
        let schema = workflow.file.inputs.get(key);
        given.insert(key.to_string(), typed(text, schema)?);
    }
    Ok(given)
}

/// A command-line text as the value its input's `type` asks for: strings stay strings (so
/// `1.10` is not the number 1.1); other types are read as YAML (`42`, `true`, `[a, b]`).
fn typed(text: &str, schema: Option<&Value>) -> Result<Value, Error> {
    let declared = schema.and_then(|s| s.get("type"));
    let wants_string = match declared {
        None => true,
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
        Some(_) => true,
    };
    if wants_string {
        return Ok(Value::String(text.to_string()));
    }
    let source = Source::new("--input".into(), "--input".into(), text.to_string());
    let mut diags = Vec::new();
    let doc = crate::yaml::parse(&source, &mut diags);
    Ok(if diags.is_empty() {
        doc.value
    } else {
        Value::String(text.to_string())
    })
}

fn read_inputs_file(path: &Path) -> Result<Map<String, Value>, Error> {
    let source = crate::check::read_source(path)?;
    let mut diags = Vec::new();
    let doc = crate::yaml::parse(&source, &mut diags);
    if let Some(d) = diags.first() {
        let (line, col) = source.line_col(d.span.offset);
        return Err(Error::Usage {
            message: format!("{}:{line}:{col}: {}", source.name, d.message),
        });
    }
    match doc.value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        _ => Err(Error::Usage {
            message: format!(
                "{}: an inputs file must be a mapping of input names to values",
                source.name
            ),
        }),
    }
}

/// Checks given values against the declared inputs and applies defaults; returns the
/// `inputs` object templates see.
pub fn resolve(workflow: &Workflow, given: &IndexMap<String, Value>) -> Result<Value, Error> {
    let declared = &workflow.file.inputs;
    let names: Vec<&str> = declared.keys().map(String::as_str).collect();
    if let Some(unknown) = given.keys().find(|k| !declared.contains_key(*k)) {
        return Err(Error::UnknownInput {
            help: if names.is_empty() {
                "this workflow declares no inputs".into()
            } else {
                suggestion(unknown, &names)
            },
            name: unknown.clone(),
        });
    }
    let mut out = Map::new();
    for (name, schema) in declared {
        let value = match given.get(name).or_else(|| schema.get("default")) {
            Some(v) => v.clone(),
            None => {
                return Err(Error::MissingInput {
                    description: schema
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    name: name.clone(),
                });
            }
        };
        let validator = jsonschema::draft202012::new(schema).map_err(|e| Error::InvalidInput {
            name: name.clone(),
            problem: format!("its schema does not compile: {e}"),
        })?;
        let problems: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        if !problems.is_empty() {
            return Err(Error::InvalidInput {
                name: name.clone(),
                problem: problems.join("; "),
            });
        }
        out.insert(name.clone(), value);
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_typed_by_the_declared_type() {
        let cases = [
            ("1.10", json!({"type": "string"}), json!("1.10")),
            ("1.10", json!({}), json!("1.10")),
            ("42", json!({"type": "integer"}), json!(42)),
            ("true", json!({"type": "boolean"}), json!(true)),
            ("[a, b]", json!({"type": "array"}), json!(["a", "b"])),
            ("x", json!({"type": ["string", "null"]}), json!("x")),
        ];
        for (text, schema, want) in cases {
            assert_eq!(typed(text, Some(&schema)).unwrap(), want, "{text} {schema}");
        }
    }
}
