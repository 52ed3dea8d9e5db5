//! minijinja templates: compiled at check time, rendered at run time, strict about undefined
//! variables (a missing variable is an error, never an empty string).
//!
//! Templates are always fields of the parsed workflow, rendered after parsing, so a value
//! substituted into a template can never change the YAML's structure.
//!
//! Besides minijinja's builtins, templates have the Jinja2 filters it leaves out
//! (`minijinja-contrib`: `truncate`, `wordwrap`, `wordcount`, `filesizeformat`, `pluralize`,
//! `striptags`), Python's string methods (`.upper()`, `.split()`) and a strict `urlencode`.
//! [`inspect`] finds filters and tests a template uses that do not exist, so `pe check`
//! rejects them instead of the run failing when the template first renders.
//!
//! URL templates ([`render_url`]) percent-encode every substituted value, so a value is one
//! path segment or one query value and never URL syntax.

use std::collections::BTreeSet;

use minijinja::machinery::{Instruction, get_compiled_template};
use minijinja::value::ValueKind;
use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};

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
    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_filter("urlencode", urlencode);
    env
}

/// The environment of URL templates: what every `{{ }}` writes is percent-encoded unless it
/// is marked safe (`urlencode`'s result, or an explicit `| safe` by the workflow's author).
/// `tojson` marks its output safe elsewhere; here JSON is data like any value, so it is
/// encoded too.
fn url_environment() -> Environment<'static> {
    let mut env = environment();
    env.set_formatter(|out, _state, value| {
        let text = value.to_string();
        let written = if value.is_safe() {
            out.write_str(&text)
        } else {
            out.write_str(&encode_component(&text))
        };
        written.map_err(|e| minijinja::Error::new(ErrorKind::WriteFailure, e.to_string()))
    });
    env.add_filter(
        "tojson",
        |value: &Value, indent: Option<Value>, kwargs: minijinja::value::Kwargs| {
            minijinja::filters::tojson(value, indent, kwargs).map(|v| Value::from(v.to_string()))
        },
    );
    env
}

/// Percent-encodes everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`):
/// the result is safe as one path segment and as one query key or value. Stricter than
/// Jinja2's `urlencode`, which leaves `/` alone (so a value could add path segments).
pub(crate) fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The `urlencode` filter: a mapping becomes `key=value&…` (entries that are none skipped),
/// anything else one encoded component. The result is marked safe, so a URL template does
/// not encode it twice.
fn urlencode(value: &Value) -> Result<Value, minijinja::Error> {
    let encoded = if value.kind() == ValueKind::Map {
        let mut pairs = Vec::new();
        for key in value.try_iter()? {
            let item = value.get_item(&key)?;
            if item.is_none() || item.is_undefined() {
                continue;
            }
            pairs.push(format!(
                "{}={}",
                encode_component(&key.to_string()),
                encode_component(&item.to_string())
            ));
        }
        pairs.join("&")
    } else if value.is_none() || value.is_undefined() {
        String::new()
    } else {
        encode_component(&value.to_string())
    };
    Ok(Value::from_safe_string(encoded))
}

/// Filters templates have, for "did you mean" help (the environment is the truth: a unit
/// test checks each of these exists in it).
pub(crate) const FILTERS: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "chain",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "filesizeformat",
    "first",
    "float",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pluralize",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "striptags",
    "sum",
    "title",
    "tojson",
    "trim",
    "truncate",
    "unique",
    "upper",
    "urlencode",
    "wordcount",
    "wordwrap",
    "zip",
];

/// Tests templates have (`{% if x is defined %}`), for "did you mean" help.
pub(crate) const TESTS: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "escaped",
    "even",
    "false",
    "filter",
    "float",
    "ge",
    "gt",
    "in",
    "integer",
    "iterable",
    "le",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "safe",
    "sameas",
    "sequence",
    "startingwith",
    "string",
    "test",
    "true",
    "undefined",
    "upper",
];

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
    Ok(inspect(text)?.variables)
}

/// What a template uses, found without rendering it.
#[derive(Debug, Default)]
pub(crate) struct Inspection {
    /// Filters and tests it applies that do not exist, in template order, each once.
    pub unknown: Vec<UnknownName>,
    /// The variables it reads, dotted (`inputs.version`, `task`).
    pub variables: BTreeSet<String>,
}

/// A filter or test a template names that the environment does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UnknownName {
    pub kind: NameKind,
    pub name: String,
    /// Byte offset of the expression that uses it, within the template text.
    pub offset: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameKind {
    Filter,
    Test,
}

/// Compiles `text` and reports its variables and unknown filters and tests (read from the
/// compiled instructions, so names inside strings or comments are never mistaken for them).
pub(crate) fn inspect(text: &str) -> Result<Inspection, TemplateError> {
    let env = environment();
    let tmpl = env.template_from_str(text).map_err(syntax_error)?;
    // Functions every template has (`range`, `dict`, `namespace`, …) are not variables.
    let globals: std::collections::HashSet<&str> = env.globals().map(|(name, _)| name).collect();
    let variables = tmpl
        .undeclared_variables(true)
        .into_iter()
        .filter(|v| !globals.contains(v.split('.').next().unwrap_or(v)))
        .collect();
    let compiled = get_compiled_template(&tmpl);
    let mut state = env.empty_state();
    let mut unknown: Vec<UnknownName> = Vec::new();
    // Each name is probed once (a template may use thousands).
    let mut probed: std::collections::HashSet<(bool, &str)> = std::collections::HashSet::new();
    for instructions in std::iter::once(&compiled.instructions).chain(compiled.blocks.values()) {
        let mut index = 0;
        while let Some(instruction) = instructions.get(index) {
            let found = match instruction {
                Instruction::ApplyFilter(name, ..) if probed.insert((true, name)) => {
                    let probe = state.apply_filter(name, &[]);
                    matches!(probe, Err(e) if e.kind() == ErrorKind::UnknownFilter)
                        .then_some((NameKind::Filter, *name))
                }
                Instruction::PerformTest(name, ..) if probed.insert((false, name)) => {
                    let probe = state.perform_test(name, &[]);
                    matches!(probe, Err(e) if e.kind() == ErrorKind::UnknownTest)
                        .then_some((NameKind::Test, *name))
                }
                _ => None,
            };
            if let Some((kind, name)) = found {
                unknown.push(UnknownName {
                    kind,
                    name: name.to_string(),
                    offset: instructions
                        .get_span(index)
                        .and_then(|span| usize::try_from(span.start_offset).ok()),
                });
            }
            index += 1;
        }
    }
    Ok(Inspection { unknown, variables })
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

/// Renders a URL template: every substituted value is percent-encoded (see
/// [`url_environment`]), so it is one path segment or one query value.
pub(crate) fn render_url<S: serde::Serialize>(
    text: &str,
    ctx: &S,
) -> Result<String, TemplateError> {
    let env = url_environment();
    let tmpl = env.template_from_str(text).map_err(syntax_error)?;
    tmpl.render(Value::from(minijinja::value::Serde(ctx)))
        .map_err(|e| TemplateError::Render {
            message: render_message(&e),
        })
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

/// Renders a tool's arguments written in a plan (`args`): every string is a template, and a
/// string that is one expression and nothing else (`"{{ inputs.count }}"`) keeps the
/// expression's type, so a number stays a number and a list a list. Any other string
/// renders to text. Rendered once: what a value contains is never rendered again.
pub fn render_args<S: serde::Serialize>(
    value: &serde_json::Value,
    ctx: &S,
) -> Result<serde_json::Value, TemplateError> {
    use serde_json::Value as J;
    Ok(match value {
        J::String(s) => match sole_expression(s) {
            Some(expr) => evaluate(expr, ctx)?,
            None => J::String(render(s, ctx)?),
        },
        J::Array(items) => J::Array(
            items
                .iter()
                .map(|v| render_args(v, ctx))
                .collect::<Result<_, _>>()?,
        ),
        J::Object(map) => J::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_args(v, ctx)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

/// Whether a string holds template syntax (and so is rendered, not taken as it is).
pub fn is_templated(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// `expr` when `text` is `{{ expr }}` and nothing else.
fn sole_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner.trim())
}

fn evaluate<S: serde::Serialize>(expr: &str, ctx: &S) -> Result<serde_json::Value, TemplateError> {
    let env = environment();
    let compiled = env.compile_expression(expr).map_err(syntax_error)?;
    let value = compiled
        .eval(minijinja::value::Serde(ctx))
        .map_err(|e| TemplateError::Render {
            message: render_message(&e),
        })?;
    if value.is_undefined() {
        return Err(TemplateError::Render {
            message: format!("`{expr}` is undefined"),
        });
    }
    serde_json::to_value(&value).map_err(|e| TemplateError::Render {
        message: format!("`{expr}` is not a JSON value: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtin_functions_are_not_variables() {
        let vars =
            variables("{% for i in range(3) %}{{ i }}{% endfor %}{{ dict(a=1).a }}{{ namespace() }}{{ inputs.x }}")
                .unwrap();
        assert_eq!(vars.into_iter().collect::<Vec<_>>(), ["inputs.x"]);
    }

    #[test]
    fn plan_args_keep_the_type_of_a_sole_expression() {
        let vars = json!({"inputs": {"n": 3, "tags": ["a", "b"], "name": "x"}, "steps": {"s": {"result": "{{ inputs.n }}"}}});
        let args = json!({
            "n": "{{ inputs.n }}",
            "tags": "{{- inputs.tags -}}",
            "text": "n={{ inputs.n }}",
            "nested": ["{{ inputs.name }}", 2, {"deep": "{{ inputs.n + 1 }}"}],
            "again": "{{ steps.s.result }}",
        });
        assert_eq!(
            render_args(&args, &vars).unwrap(),
            json!({"n": 3, "tags": ["a", "b"], "text": "n=3", "nested": ["x", 2, {"deep": 4}],
                   "again": "{{ inputs.n }}"})
        );
        let err = render_args(&json!({"x": "{{ inputs.missing }}"}), &vars).unwrap_err();
        assert_eq!(
            err.to_string(),
            "template failed to render: `inputs.missing` is undefined"
        );
    }

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
    fn unknown_filters_and_tests_are_found_once_each_with_their_position() {
        let text = "{{ a | upper }} {{ b | nope }}\n{% if c is bogus %}{{ 'x | nope2' }}{% endif %}{{ d | nope }}";
        let found = inspect(text).unwrap().unknown;
        assert_eq!(
            found,
            [
                UnknownName {
                    kind: NameKind::Filter,
                    name: "nope".into(),
                    offset: Some(23)
                },
                UnknownName {
                    kind: NameKind::Test,
                    name: "bogus".into(),
                    offset: Some(42)
                },
            ]
        );
        assert_eq!(&text[23..27], "nope");
        assert_eq!(&text[42..47], "bogus");
    }

    #[test]
    fn every_listed_filter_and_test_exists() {
        for name in FILTERS {
            let text = format!("{{{{ x | {name} }}}}");
            assert_eq!(inspect(&text).unwrap().unknown, [], "{name}");
        }
        for name in TESTS {
            let text = format!("{{% if x is {name} %}}{{% endif %}}");
            assert_eq!(inspect(&text).unwrap().unknown, [], "{name}");
        }
    }

    #[test]
    fn filters_users_expect_render() {
        let ctx = json!({"s": "Hello big wide world", "n": 2048, "q": "a b/c?d=1&e"});
        let cases = [
            (
                "{{ s | truncate(length=9, killwords=true, end='…') }}",
                "Hello bi…",
            ),
            ("{{ s | wordcount }}", "4"),
            ("{{ n | filesizeformat }}", "2.0 kB"),
            ("{{ s.upper() }}", "HELLO BIG WIDE WORLD"),
            ("{{ s.split()[1] }}", "big"),
            ("{{ q | urlencode }}", "a%20b%2Fc%3Fd%3D1%26e"),
            (
                "{{ {'k': q, 'z': none} | urlencode }}",
                "k=a%20b%2Fc%3Fd%3D1%26e",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(render(text, &ctx).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn url_templates_encode_every_value_once() {
        let ctx = json!({"args": {"name": "a b/../c?x=1#f", "n": 3}});
        let cases = [
            (
                "http://h/s/{{ args.name }}?n={{ args.n }}",
                "http://h/s/a%20b%2F..%2Fc%3Fx%3D1%23f?n=3",
            ),
            (
                "http://h/s/{{ args.name | urlencode }}",
                "http://h/s/a%20b%2F..%2Fc%3Fx%3D1%23f",
            ),
            (
                "http://h/{{ args | tojson }}",
                "http://h/%7B%22name%22%3A%20%22a%20b%2F..%2Fc%3Fx%3D1%23f%22%2C%20%22n%22%3A%203%7D",
            ),
            ("http://h/{{ 'x/y' | safe }}", "http://h/x/y"),
        ];
        for (text, want) in cases {
            assert_eq!(render_url(text, &ctx).unwrap(), want, "{text}");
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
