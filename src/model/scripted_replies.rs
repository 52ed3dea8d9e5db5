//! Checks a scripted replies file the way `pe check` checks a workflow: YAML with positions,
//! then the published replies schema (`schemas/replies.schema.json`), each problem located
//! (file, line, column) and named by role and reply index, with "did you mean" for keys.

use jsonschema::ValidationError;
use jsonschema::error::ValidationErrorKind;

use crate::diagnostic::{Diagnostic, Kind, did_you_mean, suggestion};
use crate::source::Source;
use crate::spec::ScriptedReplies;
use crate::yaml::{Document, escape_pointer};

/// The keys a reply may have, for "did you mean".
const REPLY_KEYS: &[&str] = &[
    "delay",
    "error",
    "json",
    "repeat",
    "text",
    "tool_calls",
    "usage",
    "when",
];

/// The replies in `source`, or every problem found in it.
pub fn check_replies(source: &Source) -> Result<ScriptedReplies, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let doc = crate::yaml::parse(source, &mut diags);
    if !diags.is_empty() {
        return Err(diags);
    }
    for error in crate::schema::replies_validator().iter_errors(&doc.value) {
        describe(&doc, &error, &mut diags);
    }
    if !diags.is_empty() {
        diags.sort_by_key(|d| (d.span.offset, d.kind));
        diags.dedup();
        return Err(diags);
    }
    let root = doc.value_span("");
    serde_json::from_value(doc.value).map_err(|e| {
        // The schema and the types agree (tests/schema_sync.rs), so this is a backstop.
        vec![Diagnostic::new(Kind::Schema, root, e.to_string()).label("not a replies file")]
    })
}

/// ``reply `executor[3]` `` for `/executor/3/...`, `the replies file` for the root.
fn whose(pointer: &str) -> String {
    let mut parts = pointer.split('/').skip(1);
    match (
        parts.next(),
        parts.next().and_then(|i| i.parse::<usize>().ok()),
    ) {
        (Some(role), Some(i)) => format!("reply `{role}[{i}]`"),
        (Some(role), None) => format!("the `{role}` list"),
        _ => "the replies file".to_string(),
    }
}

fn describe(doc: &Document, error: &ValidationError<'_>, diags: &mut Vec<Diagnostic>) {
    let pointer = error.instance_path().as_str().to_string();
    let at = whose(&pointer);
    let depth = pointer.matches('/').count();
    let diagnostic = match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            for key in unexpected {
                let child = format!("{pointer}/{}", escape_pointer(key));
                let known: &[&str] = match depth {
                    0 => &["executor", "planner", "replanner", "synthesizer"],
                    2 => REPLY_KEYS,
                    4 => &["arguments", "name"],
                    _ => &["input_tokens", "output_tokens"],
                };
                let help = if depth == 0 && REPLY_KEYS.contains(&key.as_str()) {
                    format!(
                        "a reply goes in a role's list: `executor: [{{{key}: ...}}]` (roles: planner, executor, replanner, synthesizer)"
                    )
                } else {
                    suggestion(key, known)
                };
                diags.push(
                    Diagnostic::new(
                        Kind::UnknownKey,
                        doc.key_span(&child),
                        format!("unknown key `{key}` in {at}"),
                    )
                    .label("not a known key")
                    .help(help),
                );
            }
            return;
        }
        ValidationErrorKind::OneOfNotValid { .. }
        | ValidationErrorKind::OneOfMultipleValid { .. }
            if depth == 2 =>
        {
            let present: Vec<&str> = ["text", "json", "tool_calls", "error"]
                .into_iter()
                .filter(|k| error.instance().get(k).is_some())
                .collect();
            let (label, help) = if present.is_empty() {
                let close = error.instance().as_object().and_then(|m| {
                    m.keys()
                        .find_map(|k| did_you_mean(k, ["text", "json", "tool_calls", "error"]))
                });
                if close.is_some() {
                    // The unknown-key diagnostic on the misspelt kind already says it.
                    return;
                }
                (
                    "none given".to_string(),
                    "add one, e.g. `text: done`".to_string(),
                )
            } else {
                (
                    format!("has {}", present.join(" and ")),
                    "split it into one reply per kind".to_string(),
                )
            };
            Diagnostic::new(
                Kind::ToolKind,
                doc.key_span(&pointer),
                format!("{at} needs exactly one of `text`, `json`, `tool_calls`, `error`"),
            )
            .label(label)
            .help(help)
        }
        ValidationErrorKind::Required { property } => Diagnostic::new(
            Kind::MissingKey,
            doc.key_span(&pointer),
            format!(
                "{at} is missing required key `{}`",
                property.as_str().unwrap_or_default()
            ),
        )
        .label("required here"),
        ValidationErrorKind::Pattern { pattern } if pattern == crate::duration::PATTERN => {
            Diagnostic::new(
                Kind::InvalidDuration,
                doc.value_span(&pointer),
                format!("{} in {at} is not a duration", error.instance()),
            )
            .label("expected a duration")
            .help("write a number and a unit: `500ms`, `90s`, `2m` or `1h`")
        }
        ValidationErrorKind::Type { kind } => {
            let expected = format!("{kind:?}").to_lowercase();
            let expected = expected
                .trim_start_matches("single(")
                .trim_end_matches(')')
                .to_string();
            let what = pointer.rsplit('/').next().unwrap_or_default();
            let what = if depth <= 1 || what.parse::<usize>().is_ok() {
                at.clone()
            } else {
                format!("`{what}` in {at}")
            };
            let help = match (depth, expected.as_str()) {
                (1, "array") => "each role holds a list of replies: `executor:\\n  - text: done`",
                (2, "object") => "a reply is a mapping such as `{text: done}`",
                _ => "",
            };
            Diagnostic::new(
                Kind::Schema,
                doc.value_span(&pointer),
                format!("{what} must be {}", article(&expected)),
            )
            .label(format!("expected {expected}"))
            .help(help)
        }
        _ => Diagnostic::new(
            Kind::Schema,
            doc.value_span(&pointer),
            format!("{at}: {error}"),
        )
        .label("invalid"),
    };
    diags.push(diagnostic);
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

    fn problems(text: &str) -> Vec<String> {
        let source = Source::new("r.yaml".into(), "r.yaml".into(), text.into());
        match check_replies(&source) {
            Ok(_) => Vec::new(),
            Err(diags) => diags
                .iter()
                .map(|d| {
                    let (line, col) = source.line_col(d.span.offset);
                    format!(
                        "{line}:{col} {} | {} | {}",
                        d.message,
                        d.label,
                        d.help.as_deref().unwrap_or("")
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn every_problem_is_located_and_named_by_role_and_index() {
        let text = "planner:\n  - json: {steps: []}\nexecutor:\n  - text: a\n  - jsn: {status: succeeded}\n  - {text: a, error: b}\n  - {text: a, delay: soon}\n  - {when: x}\nsynthesiser:\n  - text: x\n";
        assert_eq!(
            problems(text),
            vec![
                "5:5 unknown key `jsn` in reply `executor[1]` | not a known key | did you mean `json`?",
                "6:5 reply `executor[2]` needs exactly one of `text`, `json`, `tool_calls`, `error` | has text and error | split it into one reply per kind",
                "7:22 \"soon\" in reply `executor[3]` is not a duration | expected a duration | write a number and a unit: `500ms`, `90s`, `2m` or `1h`",
                "8:5 reply `executor[4]` needs exactly one of `text`, `json`, `tool_calls`, `error` | none given | add one, e.g. `text: done`",
                "9:1 unknown key `synthesiser` in the replies file | not a known key | did you mean `synthesizer`?",
            ]
        );
    }

    #[test]
    fn shapes_get_help_on_the_form() {
        assert_eq!(
            problems("executor: {text: a}\n"),
            vec![
                "1:11 the `executor` list must be a list | expected array | each role holds a list of replies: `executor:\\n  - text: done`"
            ]
        );
        assert_eq!(
            problems("text: a\n"),
            vec![
                "1:1 unknown key `text` in the replies file | not a known key | a reply goes in a role's list: `executor: [{text: ...}]` (roles: planner, executor, replanner, synthesizer)"
            ]
        );
        assert_eq!(problems("executor:\n  - text: ok\n"), Vec::<String>::new());
    }
}
