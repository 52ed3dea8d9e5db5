//! The OpenAI chat-completions wire format: request bodies and what comes back, in the
//! forms the servers people run accept (checked against OpenAI, llama.cpp's server,
//! llama-cpp-python, vLLM and Ollama).
//!
//! - An assistant turn that called tools carries `"content": ""` when it said nothing:
//!   llama-cpp-python refuses `null` ("Input should be a valid string"), and every other
//!   server accepts an empty string.
//! - Tool-call `arguments` go back exactly as the model wrote them: a JSON object is
//!   re-serialised, text that was not a JSON object is sent verbatim (never encoded twice),
//!   and the tool message answering such a call says why it failed to parse.
//! - `tool_choice` is sent whenever tools are: llama-cpp-python ignores `tools` without it,
//!   and OpenAI's default is `auto` anyway.

use serde_json::{Map, Value, json};

use crate::model::{
    Message, MessageRole, ModelRequest, ModelResponse, ToolCall, ToolChoice, Usage, estimate_tokens,
};

/// What a request carries besides the conversation, as this server needs it.
pub struct BodyOptions {
    /// Send the cap as `max_completion_tokens` rather than `max_tokens`.
    pub completion_tokens: bool,
    /// The `response_format` value, if any.
    pub format: Option<Value>,
    /// Send `tool_choice` with tools (false once a server refused it).
    pub tool_choice: bool,
}

/// The request body for `model` with `messages` (the request's, or a prompt-mode variant).
pub fn body(
    model: &str,
    request: &ModelRequest,
    messages: &[Message],
    options: BodyOptions,
) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(wire_messages(messages)));
    if !request.tools.is_empty() {
        let tools = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters
                }})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        if options.tool_choice {
            body.insert("tool_choice".into(), tool_choice(&request.tool_choice));
        }
    }
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = request.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(s) = request.seed {
        body.insert("seed".into(), json!(s));
    }
    if let Some(m) = request.max_output_tokens {
        let field = if options.completion_tokens {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body.insert(field.into(), json!(m));
    }
    if let Some(f) = options.format {
        body.insert("response_format".into(), f);
    }
    Value::Object(body)
}

fn tool_choice(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
    }
}

/// The conversation on the wire. A tool result answering a call whose arguments did not
/// parse says so, with the parse error, so the model can fix what it wrote.
fn wire_messages(messages: &[Message]) -> Vec<Value> {
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let value = match m.role {
            MessageRole::System => json!({"role": "system", "content": m.content}),
            MessageRole::User => json!({"role": "user", "content": m.content}),
            MessageRole::Tool => {
                let id = m.tool_call_id.clone().unwrap_or_default();
                let mut content = m.content.clone();
                if let Some(problem) = unparsed_arguments(&messages[..i], &id) {
                    content.push_str(&format!(
                        "\n(The arguments of this call are not a JSON object: {problem}.)"
                    ));
                }
                json!({"role": "tool", "tool_call_id": id, "content": content})
            }
            MessageRole::Assistant if m.tool_calls.is_empty() => {
                json!({"role": "assistant", "content": m.content})
            }
            MessageRole::Assistant => {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        json!({"id": c.id, "type": "function", "function": {
                            "name": c.name, "arguments": arguments_text(&c.arguments)
                        }})
                    })
                    .collect();
                json!({"role": "assistant", "content": m.content, "tool_calls": calls})
            }
        };
        out.push(value);
    }
    out
}

/// Arguments as the wire's string: an object serialised, text sent back verbatim.
fn arguments_text(arguments: &Value) -> String {
    match arguments {
        Value::String(raw) => raw.clone(),
        other => other.to_string(),
    }
}

/// The parse error of the call `id` among the assistant turns before a tool message, when
/// its arguments were text that is not a JSON object.
fn unparsed_arguments(before: &[Message], id: &str) -> Option<String> {
    let call = before
        .iter()
        .rev()
        .filter(|m| m.role == MessageRole::Assistant)
        .flat_map(|m| m.tool_calls.iter())
        .find(|c| c.id == id)?;
    let Value::String(raw) = &call.arguments else {
        return None;
    };
    Some(match serde_json::from_str::<Value>(raw) {
        Err(e) => format!("{e}"),
        Ok(_) => "it is JSON, but not an object".to_string(),
    })
}

/// A tool call's arguments: a JSON string holding an object (usually), an object (some
/// servers), or nothing. Anything else is kept verbatim as a string (see [`ToolCall`]).
pub fn arguments(raw: Option<&Value>) -> Value {
    match raw {
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v,
            _ => json!(s),
        },
        Some(Value::Null) | None => json!({}),
        Some(other @ Value::Object(_)) => other.clone(),
        Some(other) => json!(other.to_string()),
    }
}

/// A chat completion, and whether its usage is estimated (the server reported none).
/// `next_id` names tool calls a server sends without an id.
pub fn decode(
    body: Value,
    request_text: &str,
    next_id: &dyn Fn() -> String,
) -> Result<(ModelResponse, bool), String> {
    let choice = body
        .pointer("/choices/0")
        .ok_or("the answer has no `choices`")?;
    let message = choice
        .get("message")
        .ok_or("the answer's choice has no `message`")?;
    let text = message
        .get("content")
        .and_then(Value::as_str)
        .or_else(|| message.get("refusal").and_then(Value::as_str))
        .unwrap_or_default()
        .to_string();
    let mut tool_calls = Vec::new();
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .ok_or("a tool call has no function name")?;
        let id = match call.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => next_id(),
        };
        tool_calls.push(ToolCall {
            arguments: arguments(call.pointer("/function/arguments")),
            id,
            name: name.to_string(),
        });
    }
    let reported = body.get("usage").and_then(|u| {
        let input_tokens = u.get("prompt_tokens")?.as_u64()?;
        Some(Usage {
            // A server claiming more cached tokens than input tokens is not believed.
            cached_input_tokens: u
                .pointer("/prompt_tokens_details/cached_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .min(input_tokens),
            input_tokens,
            output_tokens: u
                .get("completion_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        })
    });
    let estimated = reported.is_none();
    // Some servers report no usage; an estimate keeps token budgets meaningful.
    let usage = reported.unwrap_or_else(|| Usage {
        input_tokens: estimate_tokens(request_text),
        output_tokens: estimate_tokens(&text)
            + tool_calls
                .iter()
                .map(|c| estimate_tokens(&arguments_text(&c.arguments)))
                .sum::<u64>(),
        ..Usage::default()
    });
    let response = ModelResponse {
        text,
        tool_calls,
        truncated: choice.get("finish_reason").and_then(Value::as_str) == Some("length"),
        usage,
    };
    Ok((response, estimated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_call_arguments_are_read_leniently_and_kept_verbatim_when_broken() {
        let cases = [
            (Some(json!(r#"{"a": 1}"#)), json!({"a": 1})),
            (Some(json!("")), json!({})),
            (None, json!({})),
            (Some(json!({"a": 2})), json!({"a": 2})),
            (Some(json!("{oops")), json!("{oops")),
            (Some(json!("[1, 2]")), json!("[1, 2]")),
            (Some(json!(7)), json!("7")),
        ];
        for (raw, want) in cases {
            assert_eq!(arguments(raw.as_ref()), want, "{raw:?}");
        }
    }

    fn call(arguments: Value) -> ToolCall {
        ToolCall {
            arguments,
            id: "call_9".into(),
            name: "search".into(),
        }
    }

    #[test]
    fn assistant_tool_calls_and_tool_results_use_the_shapes_servers_accept() {
        let messages = [
            Message::assistant("", vec![call(json!({"q": "x"}))]),
            Message::tool("call_9", "found"),
        ];
        assert_eq!(
            wire_messages(&messages),
            [
                json!({"role": "assistant", "content": "", "tool_calls": [
                    {"id": "call_9", "type": "function", "function": {"name": "search", "arguments": "{\"q\":\"x\"}"}}
                ]}),
                json!({"role": "tool", "tool_call_id": "call_9", "content": "found"}),
            ]
        );
    }

    #[test]
    fn malformed_arguments_go_back_verbatim_with_the_parse_error() {
        let messages = [
            Message::assistant("", vec![call(json!("{\"q\": \"x\""))]),
            Message::tool("call_9", "error: invalid arguments for `search`"),
        ];
        assert_eq!(
            wire_messages(&messages),
            [
                json!({"role": "assistant", "content": "", "tool_calls": [
                    {"id": "call_9", "type": "function", "function": {"name": "search", "arguments": "{\"q\": \"x\""}}
                ]}),
                json!({"role": "tool", "tool_call_id": "call_9", "content":
                    "error: invalid arguments for `search`\n(The arguments of this call are not a JSON object: EOF while parsing an object at line 1 column 9.)"}),
            ]
        );
    }

    #[test]
    fn tool_choice_is_sent_with_tools_in_each_form() {
        let mut request = ModelRequest {
            tools: vec![crate::model::ToolDefinition {
                description: "d".into(),
                name: "search".into(),
                parameters: json!({"type": "object"}),
            }],
            ..ModelRequest::default()
        };
        let options = || BodyOptions {
            completion_tokens: false,
            format: None,
            tool_choice: true,
        };
        let cases = [
            (ToolChoice::Auto, json!("auto")),
            (ToolChoice::Required, json!("required")),
            (
                ToolChoice::Tool("search".into()),
                json!({"type": "function", "function": {"name": "search"}}),
            ),
        ];
        for (choice, want) in cases {
            request.tool_choice = choice;
            assert_eq!(body("m", &request, &[], options())["tool_choice"], want);
        }
        let without = body(
            "m",
            &request,
            &[],
            BodyOptions {
                tool_choice: false,
                ..options()
            },
        );
        assert_eq!(without.get("tool_choice"), None);
        request.tools.clear();
        assert_eq!(body("m", &request, &[], options()).get("tool_choice"), None);
    }

    #[test]
    fn usage_is_read_or_estimated_and_a_cut_reply_is_marked() {
        let answer = |usage: Value, finish: &str| json!({"choices": [{"message": {"content": "abcdefgh"}, "finish_reason": finish}], "usage": usage});
        let id = || "x".to_string();
        let (r, estimated) = decode(
            answer(json!({"prompt_tokens": 7, "completion_tokens": 3}), "stop"),
            "",
            &id,
        )
        .unwrap();
        assert_eq!(
            (r.usage, estimated, r.truncated),
            (
                Usage {
                    input_tokens: 7,
                    output_tokens: 3,
                    ..Usage::default()
                },
                false,
                false
            )
        );
        let cached = |n: u64| {
            let body = answer(
                json!({"prompt_tokens": 7, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": n}}),
                "stop",
            );
            decode(body, "", &id).unwrap().0.usage.cached_input_tokens
        };
        assert_eq!(cached(5), 5);
        // More cached tokens than input tokens is not believed.
        assert_eq!(cached(70), 7);
        let (r, estimated) = decode(answer(Value::Null, "length"), "abcd", &id).unwrap();
        assert_eq!(
            (r.usage, estimated, r.truncated),
            (
                Usage {
                    input_tokens: 1,
                    output_tokens: 2,
                    ..Usage::default()
                },
                true,
                true
            )
        );
    }
}
