//! Structured output across providers: when OpenAI's strict mode may be asked for, how a
//! schema whose root is not an object is carried (APIs want an object at the root), and the
//! fallback for servers without native support — the schema goes into the prompt and the
//! reply is checked here, so a bad reply can be re-asked with the exact problem.

use serde_json::{Value, json};

/// The property a non-object root is wrapped in.
const WRAPPED: &str = "value";

/// Whether OpenAI's strict mode accepts `schema`: every object lists all its properties as
/// required and closes with `additionalProperties: false`, and no keyword strict mode
/// refuses appears. Anything else is sent non-strict (the server then guides, the engine
/// validates).
pub fn strict_allowed(schema: &Value) -> bool {
    let Value::Object(map) = schema else {
        return schema.is_boolean();
    };
    const REFUSED: [&str; 8] = [
        "allOf",
        "dependentRequired",
        "dependentSchemas",
        "if",
        "not",
        "oneOf",
        "patternProperties",
        "unevaluatedProperties",
    ];
    if REFUSED.iter().any(|k| map.contains_key(*k)) {
        return false;
    }
    let is_object = map.get("type").is_some_and(|t| {
        t == "object"
            || t.as_array()
                .is_some_and(|a| a.iter().any(|x| x == "object"))
    }) || map.contains_key("properties");
    if is_object {
        if map.get("additionalProperties") != Some(&Value::Bool(false)) {
            return false;
        }
        let required: Vec<&str> = map
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let props = map.get("properties").and_then(Value::as_object);
        if props.is_some_and(|p| p.keys().any(|k| !required.contains(&k.as_str()))) {
            return false;
        }
    }
    let children = ["properties", "$defs", "definitions"]
        .iter()
        .filter_map(|k| map.get(*k).and_then(Value::as_object))
        .flat_map(|m| m.values())
        .chain(map.get("items"))
        .chain(
            map.get("anyOf")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    children.into_iter().all(strict_allowed)
}

/// Whether the schema's root is an object (what the APIs accept as a response schema).
fn object_root(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object")
}

/// The schema to send: the schema itself when its root is an object, else an object whose
/// one property `value` holds it.
pub fn wire_schema(schema: &Value) -> Value {
    if object_root(schema) {
        schema.clone()
    } else {
        json!({
            "type": "object",
            "properties": {WRAPPED: schema},
            "required": [WRAPPED],
            "additionalProperties": false
        })
    }
}

/// The answer for the caller from what the provider returned for [`wire_schema`]: unwrapped
/// again when it was wrapped. Text that is not JSON is returned as it came (the engine
/// reports it to the model).
pub fn unwrap_reply(schema: &Value, text: String) -> String {
    if object_root(schema) {
        return text;
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut m)) if m.len() == 1 && m.contains_key(WRAPPED) => {
            m.remove(WRAPPED).map(|v| v.to_string()).unwrap_or(text)
        }
        _ => text,
    }
}

/// What the prompt says when the server cannot constrain the reply itself.
pub fn instruction(schema: &Value) -> String {
    format!(
        "Reply with only a JSON document, no prose and no Markdown fence, valid against this JSON Schema:\n{}",
        serde_json::to_string(schema).unwrap_or_default()
    )
}

/// What the prompt says after a reply that did not fit.
pub fn correction(problem: &str) -> String {
    format!(
        "That reply is not valid: {problem}\nReply again with only the corrected JSON document."
    )
}

/// The reply as compact JSON when it is valid against `schema`, else every problem.
pub fn check(schema: &Value, text: &str) -> Result<String, String> {
    let value = crate::engine::reply::json_value(text)?;
    let validator = jsonschema::draft202012::new(schema)
        .map_err(|e| format!("the schema does not compile: {e}"))?;
    crate::schema::problems(&validator, &value).map(|()| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_only_when_every_object_is_closed_and_fully_required() {
        let closed = json!({
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "array", "items": {
                "type": "object", "properties": {"c": {"type": "integer"}},
                "required": ["c"], "additionalProperties": false}}},
            "required": ["a", "b"],
            "additionalProperties": false
        });
        assert!(strict_allowed(&closed));
        let mut optional = closed.clone();
        optional["required"] = json!(["a"]);
        assert!(!strict_allowed(&optional));
        let mut open_inner = closed.clone();
        open_inner["properties"]["b"]["items"]
            .as_object_mut()
            .unwrap()
            .remove("additionalProperties");
        assert!(!strict_allowed(&open_inner));
        let mut one_of = closed;
        one_of["properties"]["a"] = json!({"oneOf": [{"type": "string"}, {"type": "null"}]});
        assert!(!strict_allowed(&one_of));
        assert!(strict_allowed(&json!({"type": "string"})));
    }

    #[test]
    fn non_object_roots_are_wrapped_and_unwrapped() {
        let schema = json!({"type": "array", "items": {"type": "integer"}});
        assert_eq!(
            wire_schema(&schema),
            json!({"type": "object", "properties": {"value": schema}, "required": ["value"], "additionalProperties": false})
        );
        assert_eq!(
            unwrap_reply(&schema, r#"{"value": [1, 2]}"#.into()),
            "[1,2]"
        );
        assert_eq!(unwrap_reply(&schema, "oops".into()), "oops");
        let obj = json!({"type": "object"});
        assert_eq!(wire_schema(&obj), obj);
    }

    #[test]
    fn replies_are_checked_against_the_schema_with_every_problem() {
        let schema = json!({
            "type": "object",
            "properties": {"n": {"type": "integer"}, "s": {"type": "string"}},
            "required": ["n", "s"]
        });
        assert_eq!(
            check(&schema, "```json\n{\"n\": 1, \"s\": \"x\"}\n```"),
            Ok(r#"{"n":1,"s":"x"}"#.to_string())
        );
        assert_eq!(
            check(&schema, r#"{"n": "one"}"#),
            Err(r#""s" is a required property; at /n: "one" is not of type "integer""#.to_string())
        );
        assert_eq!(
            check(&schema, "no idea"),
            Err("the reply is not JSON (expected ident at line 1 column 2): `no idea`".to_string())
        );
    }
}
