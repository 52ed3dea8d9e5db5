//! minijinja templates: compiled at check time, rendered at run time, strict about undefined
//! variables (a missing variable is an error, never an empty string).
//!
//! Templates are always fields of the parsed workflow, rendered after parsing, so a value
//! substituted into a template can never change the YAML's structure.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior, Value};

/// The environment every template renders in. No HTML auto-escaping: prompts and argv are
/// plain text.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("default delimiters are valid"),
    );
    // A template loop cannot run forever on model-controlled data.
    env.set_fuel(Some(1_000_000));
    env
}

/// Why a template could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// Occurs when rendering needs a variable the context does not have, or a filter fails.
    #[error("template failed to render: {message}")]
    Render { message: String },
    /// Occurs when the template text does not parse.
    #[error("template syntax error: {message}")]
    Syntax {
        message: String,
        /// Byte range within the template text, when minijinja knows it.
        range: Option<std::ops::Range<usize>>,
        line: Option<usize>,
    },
}

/// Parses `text` and returns the variables it reads, dotted (`inputs.version`, `task`).
pub fn variables(text: &str) -> Result<BTreeSet<String>, TemplateError> {
    let env = environment();
    let tmpl = env.template_from_str(text).map_err(syntax_error)?;
    Ok(tmpl.undeclared_variables(true).into_iter().collect())
}

fn syntax_error(e: minijinja::Error) -> TemplateError {
    TemplateError::Syntax {
        message: e
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.kind().to_string()),
        range: e.range(),
        line: e.line(),
    }
}

/// Renders `text` with `ctx` (any serializable value).
pub fn render<S: serde::Serialize>(text: &str, ctx: &S) -> Result<String, TemplateError> {
    // Fast path: text without template syntax is returned as is (most argv elements).
    if !text.contains("{{") && !text.contains("{%") && !text.contains("{#") {
        return Ok(text.to_string());
    }
    let env = environment();
    let tmpl = env.template_from_str(text).map_err(syntax_error)?;
    tmpl.render(Value::from(minijinja::value::Serde(ctx)))
        .map_err(|e| TemplateError::Render {
            message: render_message(&e),
        })
}

fn render_message(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// Renders every string inside a JSON value as a template (for HTTP bodies and mock results).
pub fn render_value<S: serde::Serialize>(
    value: &serde_json::Value,
    ctx: &S,
) -> Result<serde_json::Value, TemplateError> {
    use serde_json::Value as J;
    Ok(match value {
        J::String(s) => J::String(render(s, ctx)?),
        J::Array(items) => J::Array(
            items
                .iter()
                .map(|v| render_value(v, ctx))
                .collect::<Result<_, _>>()?,
        ),
        J::Object(map) => J::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(v, ctx)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_dotted_variables_but_not_loop_locals() {
        let vars = variables(
            "{{ inputs.version }} {% for t in tools %}{{ t.name }}{% endfor %} {{ task }}",
        )
        .unwrap();
        assert_eq!(
            vars.into_iter().collect::<Vec<_>>(),
            ["inputs.version", "task", "tools"]
        );
    }

    #[test]
    fn missing_variables_are_errors_not_empty_strings() {
        let err = render("v={{ inputs.nope }}", &json!({"inputs": {}})).unwrap_err();
        assert!(matches!(err, TemplateError::Render { .. }), "{err}");
        assert_eq!(
            render("v={{ inputs.v }}", &json!({"inputs": {"v": "1.2"}})).unwrap(),
            "v=1.2"
        );
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        match variables("line one\n{{ broken ") {
            Err(TemplateError::Syntax { line, .. }) => assert_eq!(line, Some(2)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn values_substituted_stay_data() {
        let out = render(
            "{{ args.x }}",
            &json!({"args": {"x": "a: b\n- c; rm -rf /"}}),
        )
        .unwrap();
        assert_eq!(out, "a: b\n- c; rm -rf /");
    }
}
