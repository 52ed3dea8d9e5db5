//! What the local provider sends a small model and how its reply maps back: the pure part
//! of the provider, testable without a model file.
//!
//! A 135M-parameter model has no native tool calling and will happily loop inside a JSON
//! string, so every structured reply is generated under a JSON Schema (llguidance), and the
//! schemas are tightened first: strings get a `maxLength`, arrays a `maxItems`, objects
//! with declared properties refuse extra keys, and whitespace is fixed. Tool calling is a
//! schema too: the reply is one of `{"tool": <name>, "arguments": <its parameters>}` or the
//! executor's step result `{"status": ..., "result": ...}`.

use serde_json::{Map, Value, json};

use crate::model::{Message, MessageRole, ModelRequest, ResponseFormat, ToolCall};
use crate::spec::Role;

/// Bounds added to schemas sent to a small model.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_items: u64,
    pub max_string: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_items: 8,
            max_string: 200,
        }
    }
}

/// A clone of `schema` that a small model cannot loop in (see the module doc), with the
/// whitespace llguidance allows fixed to one space after `,` and `:`.
pub fn bounded(schema: &Value, limits: Limits) -> Value {
    let mut out = schema.clone();
    tighten(&mut out, limits);
    if let Value::Object(root) = &mut out {
        root.insert(
            "x-guidance".into(),
            json!({"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "}),
        );
    }
    out
}

fn tighten(schema: &mut Value, limits: Limits) {
    let Value::Object(obj) = schema else {
        return;
    };
    // llguidance supports `anyOf` fully and `oneOf` only approximately.
    if let Some(one_of) = obj.remove("oneOf") {
        obj.insert("anyOf".into(), one_of);
    }
    let constrained = ["enum", "const", "pattern", "format"]
        .iter()
        .any(|k| obj.contains_key(*k));
    if has_type(obj, "string") && !constrained && !obj.contains_key("maxLength") {
        obj.insert("maxLength".into(), limits.max_string.into());
    }
    if has_type(obj, "array") && !obj.contains_key("maxItems") {
        obj.insert("maxItems".into(), limits.max_items.into());
    }
    if obj.contains_key("properties") && !obj.contains_key("additionalProperties") {
        obj.insert("additionalProperties".into(), false.into());
    }
    for key in ["properties", "$defs", "definitions", "patternProperties"] {
        if let Some(Value::Object(children)) = obj.get_mut(key) {
            for child in children.values_mut() {
                tighten(child, limits);
            }
        }
    }
    for key in ["anyOf", "allOf", "prefixItems"] {
        if let Some(Value::Array(children)) = obj.get_mut(key) {
            for child in children {
                tighten(child, limits);
            }
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child @ Value::Object(_)) = obj.get_mut(key) {
            tighten(child, limits);
        }
    }
}

fn has_type(obj: &Map<String, Value>, name: &str) -> bool {
    match obj.get("type") {
        Some(Value::String(t)) => t == name,
        Some(Value::Array(ts)) => ts.iter().any(|t| t == name),
        _ => false,
    }
}

/// The executor's final reply (the step-result protocol of `engine::step`).
pub fn step_result_schema(max_string: u64) -> Value {
    json!({
        "type": "object",
        "properties": {
            "status": {"enum": ["succeeded", "failed"]},
            "result": {"type": "string", "maxLength": max_string}
        },
        "required": ["status", "result"],
        "additionalProperties": false
    })
}

/// What the model must produce for one request, if anything: the schema and whether a
/// reply may be a tool call.
#[derive(Clone, Debug, PartialEq)]
pub struct Constraint {
    pub schema: Value,
    pub tool_calls: bool,
}

/// The constraint of a request: its JSON format, or for the executor (or any request with
/// tools) a choice of tool calls and the step result. Plain text (the synthesizer without
/// an output schema) is unconstrained.
///
/// A step's first executor turn must call a tool when there are tools: a small model
/// otherwise copies the prompt's step-result example and "succeeds" without acting. Once
/// a tool has answered, the model may finish.
pub fn constraint(request: &ModelRequest, limits: Limits) -> Option<Constraint> {
    let is_executor = request.role == Some(Role::Executor);
    let own = match &request.response_format {
        ResponseFormat::Json { schema, .. } => Some(schema.clone()),
        ResponseFormat::Text if is_executor || !request.tools.is_empty() => {
            Some(step_result_schema(300))
        }
        ResponseFormat::Text => None,
    };
    let own = own?;
    if request.tools.is_empty() {
        return Some(Constraint {
            schema: bounded(&own, limits),
            tool_calls: false,
        });
    }
    let mut choices: Vec<Value> = request
        .tools
        .iter()
        .map(|t| {
            json!({
                "type": "object",
                "properties": {
                    "tool": {"const": t.name},
                    "arguments": t.parameters
                },
                "required": ["tool", "arguments"],
                "additionalProperties": false
            })
        })
        .collect();
    let acted = request.messages.iter().any(|m| m.role == MessageRole::Tool);
    if acted || !is_executor {
        choices.push(own);
    }
    Some(Constraint {
        schema: bounded(&json!({"anyOf": choices}), limits),
        tool_calls: true,
    })
}

/// The instructions a small model needs to call tools through plain JSON (a system
/// message; an API model gets the same through native tool definitions).
pub fn tool_instructions(request: &ModelRequest) -> Option<String> {
    if request.tools.is_empty() {
        return None;
    }
    let mut text = String::from(
        "You can call tools. To call one, reply with only this JSON: \
         {\"tool\": \"<tool name>\", \"arguments\": {...}}\nTools:\n",
    );
    for t in &request.tools {
        text.push_str(&format!(
            "- {}: {} Arguments: {}\n",
            t.name,
            t.description,
            serde_json::to_string(&t.parameters).unwrap_or_default()
        ));
    }
    text.push_str(
        "When the step is done, reply with only: {\"status\": \"succeeded\", \"result\": \"...\"} \
         or, if it cannot be done, {\"status\": \"failed\", \"result\": \"...\"}",
    );
    Some(text)
}

/// The conversation as (role, content) pairs for a chat template. Assistant tool calls are
/// written as the JSON the model itself produces for them; tool results become user turns
/// that name the tool and say what to do next.
pub fn chat_turns(request: &ModelRequest) -> Vec<(String, String)> {
    let mut turns = Vec::new();
    if let Some(system) = tool_instructions(request) {
        turns.push(("system".to_string(), system));
    }
    let mut calls: Vec<&ToolCall> = Vec::new();
    for m in &request.messages {
        let (role, content) = match m.role {
            MessageRole::System => ("system", m.content.clone()),
            MessageRole::User => ("user", m.content.clone()),
            MessageRole::Assistant => ("assistant", assistant_text(m, &mut calls)),
            MessageRole::Tool => {
                let name = m
                    .tool_call_id
                    .as_deref()
                    .and_then(|id| calls.iter().find(|c| c.id == id))
                    .map_or("the tool", |c| c.name.as_str());
                (
                    "user",
                    format!(
                        "Tool `{name}` returned: {}\nReply with the next tool call, or with the step result JSON if the step is done.",
                        m.content
                    ),
                )
            }
        };
        turns.push((role.to_string(), content));
    }
    turns
}

fn assistant_text<'a>(m: &'a Message, calls: &mut Vec<&'a ToolCall>) -> String {
    if m.tool_calls.is_empty() {
        return m.content.clone();
    }
    calls.extend(m.tool_calls.iter());
    m.tool_calls
        .iter()
        .map(|c| json!({"tool": c.name, "arguments": c.arguments}).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Splits a constrained reply into a tool call or the text the engine reads.
pub fn reply(text: &str, tool_calls_allowed: bool, call_number: u64) -> (String, Vec<ToolCall>) {
    if tool_calls_allowed
        && let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text.trim())
        && let Some(Value::String(name)) = obj.get("tool")
    {
        let arguments = obj.get("arguments").cloned().unwrap_or_else(|| json!({}));
        let call = ToolCall {
            arguments,
            id: format!("call_{call_number}"),
            name: name.clone(),
        };
        return (String::new(), vec![call]);
    }
    (text.to_string(), Vec::new())
}

/// A ChatML rendering (the fallback when a GGUF file carries no chat template, or one
/// llama.cpp does not know).
pub fn chatml(turns: &[(String, String)]) -> String {
    let mut out = String::new();
    for (role, content) in turns {
        out.push_str(&format!("<|im_start|>{role}\n{content}<|im_end|>\n"));
    }
    out.push_str("<|im_start|>assistant\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ToolDefinition;

    #[test]
    fn bounds_strings_arrays_and_extra_keys_but_not_enums() {
        let schema = json!({
            "type": "object",
            "properties": {
                "steps": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "kind": {"enum": ["a"]}}}},
                "pick": {"oneOf": [{"type": "string"}, {"type": "string", "pattern": "x+"}]}
            }
        });
        let got = bounded(
            &schema,
            Limits {
                max_items: 3,
                max_string: 9,
            },
        );
        assert_eq!(
            got,
            json!({
                "type": "object",
                "properties": {
                    "steps": {"type": "array", "maxItems": 3, "items": {"type": "object", "properties": {
                        "id": {"type": "string", "maxLength": 9}, "kind": {"enum": ["a"]}},
                        "additionalProperties": false}},
                    "pick": {"anyOf": [{"type": "string", "maxLength": 9}, {"type": "string", "pattern": "x+"}]}
                },
                "additionalProperties": false,
                "x-guidance": {"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "}
            })
        );
    }

    #[test]
    fn a_first_executor_turn_must_call_a_tool() {
        let mut request = executor_request();
        request.messages.truncate(1);
        let c = constraint(&request, Limits::default()).unwrap();
        assert_eq!(c.schema["anyOf"].as_array().unwrap().len(), 1);
        assert_eq!(
            c.schema["anyOf"][0]["properties"]["tool"],
            json!({"const": "run_ci"})
        );
    }

    fn executor_request() -> ModelRequest {
        ModelRequest {
            messages: vec![
                Message::user("Step `ci`: run CI"),
                Message::assistant(
                    "",
                    vec![ToolCall {
                        arguments: json!({"version": "1.4.2"}),
                        id: "call_1".into(),
                        name: "run_ci".into(),
                    }],
                ),
                Message::tool("call_1", "CI passed"),
            ],
            role: Some(Role::Executor),
            tools: vec![ToolDefinition {
                description: "Run CI.".into(),
                name: "run_ci".into(),
                parameters: json!({"type": "object", "properties": {"version": {"type": "string"}}, "required": ["version"]}),
            }],
            ..ModelRequest::default()
        }
    }

    #[test]
    fn executor_replies_are_a_tool_call_or_a_step_result() {
        let c = constraint(&executor_request(), Limits::default()).unwrap();
        assert!(c.tool_calls);
        let choices = c.schema["anyOf"].as_array().unwrap();
        assert_eq!(choices.len(), 2);
        assert_eq!(choices[0]["properties"]["tool"], json!({"const": "run_ci"}));
        assert_eq!(
            choices[0]["properties"]["arguments"]["properties"]["version"]["maxLength"],
            json!(200)
        );
        assert_eq!(
            choices[1]["properties"]["status"],
            json!({"enum": ["succeeded", "failed"]})
        );
        let (text, calls) = reply(
            r#"{"tool": "run_ci", "arguments": {"version": "1.4.2"}}"#,
            true,
            7,
        );
        assert_eq!(text, "");
        assert_eq!(calls[0].id, "call_7");
        assert_eq!(calls[0].arguments, json!({"version": "1.4.2"}));
        let done = r#"{"status": "succeeded", "result": "CI passed"}"#;
        assert_eq!(reply(done, true, 8), (done.to_string(), Vec::new()));
    }

    #[test]
    fn turns_show_calls_as_json_and_results_as_user_turns() {
        let turns = chat_turns(&executor_request());
        let roles: Vec<&str> = turns.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!(
            turns[2].1,
            r#"{"tool":"run_ci","arguments":{"version":"1.4.2"}}"#
        );
        assert!(
            turns[3]
                .1
                .starts_with("Tool `run_ci` returned: CI passed\n")
        );
        assert_eq!(
            chatml(&turns[1..2]),
            "<|im_start|>user\nStep `ci`: run CI<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn plain_text_stays_unconstrained() {
        let request = ModelRequest {
            role: Some(Role::Synthesizer),
            ..ModelRequest::default()
        };
        assert_eq!(constraint(&request, Limits::default()), None);
    }
}
