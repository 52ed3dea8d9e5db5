//! Reading structured answers out of model text. Providers with structured output return
//! bare JSON; text models often wrap it in a Markdown fence or a sentence, so the first JSON
//! object in the text is taken. Anything else is an error the engine feeds back to the model
//! — a reply is never guessed into a shape it does not have.

use serde_json::Value;

/// The JSON object a reply contains.
pub fn json_object(text: &str) -> Result<Value, String> {
    let trimmed = strip_fence(text.trim());
    if trimmed.is_empty() {
        return Err("the reply is empty; expected a JSON object".into());
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(v @ Value::Object(_)) => return Ok(v),
        Ok(other) => return Err(format!("expected a JSON object, got {}", kind(&other))),
        Err(_) => {}
    }
    // A sentence around the object: take the outermost braces.
    if let (Some(start), Some(end)) = (trimmed.find('{'), trimmed.rfind('}'))
        && start < end
        && let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(&trimmed[start..=end])
    {
        return Ok(v);
    }
    Err(format!("the reply is not JSON: {}", excerpt(trimmed)))
}

/// Any JSON value a reply contains (for output schemas whose root is not an object).
pub fn json_value(text: &str) -> Result<Value, String> {
    let trimmed = strip_fence(text.trim());
    serde_json::from_str::<Value>(trimmed).or_else(|e| {
        json_object(text).map_err(|_| format!("the reply is not JSON ({e}): {}", excerpt(trimmed)))
    })
}

fn strip_fence(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("```") else {
        return text;
    };
    let body = rest.split_once('\n').map_or("", |(_, b)| b);
    body.trim_end().strip_suffix("```").unwrap_or(body).trim()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The start of a text, on one line, for error messages.
pub fn excerpt(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(80).collect();
    if one_line.chars().count() > 80 {
        out.push('…');
    }
    format!("`{out}`")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_objects_in_fences_and_sentences_and_refuses_the_rest() {
        let cases = [
            (r#"{"a": 1}"#, Ok(json!({"a": 1}))),
            ("```json\n{\"a\": 1}\n```", Ok(json!({"a": 1}))),
            ("Here you go: {\"a\": 1} hope it helps", Ok(json!({"a": 1}))),
            (
                "[1]",
                Err("expected a JSON object, got an array".to_string()),
            ),
            (
                "   ",
                Err("the reply is empty; expected a JSON object".to_string()),
            ),
            (
                "I think we should deploy",
                Err("the reply is not JSON: `I think we should deploy`".to_string()),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(json_object(text), want, "{text}");
        }
    }
}
