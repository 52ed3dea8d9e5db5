//! Checks of a tool's own keys: every name in `paths` is a declared string parameter (a
//! path argument the tool never gets, or one that is not text, is a mistake), and builtins,
//! whose file tools confine their own paths, take no `paths`.

use serde_json::Value;

use super::Analyzer;
use crate::diagnostic::{Diagnostic, Kind, suggestion};
use crate::spec::ToolSpec;
use crate::workflow::ToolKind;

impl Analyzer<'_> {
    pub(super) fn tool_paths(
        &mut self,
        base: &str,
        spec: &ToolSpec,
        kind: &ToolKind,
        parameters: &Value,
    ) {
        if spec.paths.is_empty() {
            return;
        }
        if let ToolKind::Builtin(_) = kind {
            self.push(
                Diagnostic::new(
                    Kind::Schema,
                    self.doc.key_span(&format!("{base}/paths")),
                    "a builtin tool takes no `paths`",
                )
                .label("not for builtins")
                .help("the file builtins already resolve and confine their `path` argument"),
            );
            return;
        }
        let properties = parameters.get("properties").and_then(Value::as_object);
        let declared: Vec<&str> = properties
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        for (i, name) in spec.paths.iter().enumerate() {
            let span = self.doc.value_span(&format!("{base}/paths/{i}"));
            let schema = properties.and_then(|p| p.get(name));
            let Some(schema) = schema else {
                self.push(
                    Diagnostic::new(
                        Kind::UndefinedVariable,
                        span,
                        format!("`{name}` is not a parameter of this tool"),
                    )
                    .label("not declared under `parameters.properties`")
                    .help(suggestion(name, &declared)),
                );
                continue;
            };
            if schema.get("type").and_then(Value::as_str) != Some("string") {
                self.push(
                    Diagnostic::new(
                        Kind::Schema,
                        span,
                        format!("path parameter `{name}` must have `type: string`"),
                    )
                    .label("not declared as a string")
                    .help(format!(
                        "declare it as `{name}: {{type: string}}` under `parameters.properties`"
                    )),
                );
            }
        }
    }
}
