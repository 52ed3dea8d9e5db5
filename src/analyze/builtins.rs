//! Builtin tools with declared `parameters`: what the model is told must be what the builtin
//! reads. `calculator` reads `expression`; parameters that offer `expr` instead would pass
//! `pe check` and fail on the first call, so they are reported here, against the builtin's
//! own schema (`pe schema --builtins`).

use serde_json::Value;

use super::Analyzer;
use crate::diagnostic::{Diagnostic, Kind, suggestion};
use crate::workflow::Builtin;
use crate::yaml::escape_pointer;

impl Analyzer<'_> {
    pub(super) fn builtin_parameters(
        &mut self,
        base: &str,
        tool: &str,
        builtin: Builtin,
        declared: &Value,
    ) {
        let own = builtin.parameters();
        let own_props = own.get("properties").and_then(Value::as_object);
        let known: Vec<&str> = own_props
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let required: Vec<&str> = strings(own.get("required"));
        let takes = signature(&own);
        let declared_props = declared.get("properties").and_then(Value::as_object);
        let declared_required = strings(declared.get("required"));
        let pointer = format!("{base}/parameters");
        // Arguments already named by a "did you mean" are not reported missing a second time.
        let mut suggested = Vec::new();
        for (key, schema) in declared_props.into_iter().flatten() {
            let at = format!("{pointer}/properties/{}", escape_pointer(key));
            if !known.contains(&key.as_str()) {
                // `expr` for `expression`: a prefix is as telling as a typo.
                let close = crate::diagnostic::did_you_mean(key, known.iter().copied())
                    .or_else(|| known.iter().copied().find(|k| k.starts_with(key.as_str())));
                suggested.extend(close);
                let hint = match close {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => format!("{};", suggestion(key, &known)),
                };
                self.push(
                    Diagnostic::new(
                        Kind::BuiltinArguments,
                        self.doc.key_span(&at),
                        format!(
                            "builtin `{}` of tool `{tool}` has no argument `{key}`",
                            builtin.name()
                        ),
                    )
                    .label("the builtin never reads it")
                    .help(format!("{hint} `{}` takes {takes}", builtin.name())),
                );
                continue;
            }
            let want = own_props
                .and_then(|p| p.get(key))
                .and_then(|s| s.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("string");
            if let Some(got) = schema.get("type").and_then(Value::as_str)
                && got != want
            {
                self.push(
                    Diagnostic::new(
                        Kind::BuiltinArguments,
                        self.doc.value_span(&format!("{at}/type")),
                        format!(
                            "argument `{key}` of builtin `{}` must have type `{want}`, not `{got}`",
                            builtin.name()
                        ),
                    )
                    .label(format!("expected `{want}`"))
                    .help(format!("`{}` takes {takes}", builtin.name())),
                );
            }
        }
        for need in &required {
            let offered = declared_props.is_some_and(|p| p.contains_key(*need));
            if !offered && !suggested.contains(need) {
                self.push(
                    Diagnostic::new(
                        Kind::BuiltinArguments,
                        self.doc.key_span(&pointer),
                        format!(
                            "tool `{tool}` never passes `{need}`, which builtin `{}` needs",
                            builtin.name()
                        ),
                    )
                    .label(format!("`{need}` is not declared"))
                    .help(format!(
                        "declare `{need}: {{type: string}}` under `properties` and list it in `required`, or drop `parameters` to use the builtin's own; `{}` takes {takes}",
                        builtin.name()
                    )),
                );
            } else if offered && !declared_required.contains(need) {
                self.push(
                    Diagnostic::new(
                        Kind::BuiltinArguments,
                        self.doc.key_span(&pointer),
                        format!(
                            "tool `{tool}` lets the model leave out `{need}`, which builtin `{}` needs",
                            builtin.name()
                        ),
                    )
                    .label(format!("`{need}` is not in `required`"))
                    .help(format!("add `required: [{}]`", required.join(", "))),
                );
            }
        }
    }
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `` `expression` (string, required) `` — a builtin's arguments in one phrase.
fn signature(schema: &Value) -> String {
    let required = strings(schema.get("required"));
    let props = schema.get("properties").and_then(Value::as_object);
    let parts: Vec<String> = props
        .into_iter()
        .flatten()
        .map(|(k, s)| {
            let t = s.get("type").and_then(Value::as_str).unwrap_or("any");
            let r = if required.contains(&k.as_str()) {
                ", required"
            } else {
                ""
            };
            format!("`{k}` ({t}{r})")
        })
        .collect();
    if parts.is_empty() {
        "no arguments".to_string()
    } else {
        parts.join(", ")
    }
}
