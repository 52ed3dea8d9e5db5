//! The Anthropic Messages API (`POST {base}/v1/messages`, `x-api-key`, `anthropic-version`).
//!
//! System messages become the top-level `system`; tool results travel as `tool_result`
//! blocks in a user turn, and consecutive messages of one role are merged (the API wants
//! turns to alternate). Structured output is a forced tool (`tool_choice: {type: tool}`)
//! whose input schema is the wanted schema: the tool's input is the JSON answer. The API has
//! no `seed`; it is not sent.

use serde_json::{Map, Value, json};

use crate::model::http_client::{Endpoint, PostError};
use crate::model::retry::{AttemptObserver, Unobserved};
use crate::model::structured;
use crate::model::{
    Message, MessageRole, Model, ModelError, ModelRequest, ModelResponse, ResponseFormat, ToolCall,
    ToolChoice, Usage,
};

/// The API version sent in `anthropic-version` (a provider's `headers` may override it).
pub const API_VERSION: &str = "2023-06-01";

/// `max_tokens` is required by the API; this is sent when neither the model settings nor the
/// budget set a cap.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// A prompt-cache breakpoint: Anthropic caches the request up to the block carrying it.
fn cache_point() -> Value {
    json!({"type": "ephemeral"})
}

/// A Claude model.
#[derive(Debug)]
pub struct AnthropicModel {
    endpoint: Endpoint,
    reference: String,
}

/// The URL messages are posted to, for a base URL (the part before `/v1/messages`; a
/// trailing `/v1` is accepted).
pub fn url(base_url: &str) -> String {
    let (base, query) = base_url.split_once('?').unwrap_or((base_url, ""));
    let base = base.trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    crate::model::http_client::join_path(&format!("{base}{query}"), "v1/messages")
}

impl AnthropicModel {
    pub fn new(endpoint: Endpoint, reference: String) -> AnthropicModel {
        AnthropicModel {
            endpoint,
            reference,
        }
    }

    fn body(&self, request: &ModelRequest) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), json!(self.endpoint.model));
        body.insert(
            "max_tokens".into(),
            json!(request.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
        );
        let system: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == MessageRole::System)
            .map(|m| m.content.as_str())
            .collect();
        if !system.is_empty() {
            // The system part of a prompt is what stays the same during a run (pe's prompts
            // put it first): a cache breakpoint makes Anthropic cache the tools and it.
            body.insert(
                "system".into(),
                json!([{"type": "text", "text": system.join("\n\n"), "cache_control": cache_point()}]),
            );
        }
        body.insert("messages".into(), Value::Array(turns(&request.messages)));
        let mut tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
        if let ResponseFormat::Json { name, schema } = &request.response_format {
            tools.push(json!({
                "name": name,
                "description": "Give your answer as this tool's input.",
                "input_schema": structured::wire_schema(schema),
            }));
            body.insert("tool_choice".into(), json!({"type": "tool", "name": name}));
        } else if !tools.is_empty() {
            // `auto` is the API's default and is left out.
            let choice = match &request.tool_choice {
                ToolChoice::Auto => None,
                ToolChoice::Required => Some(json!({"type": "any"})),
                ToolChoice::Tool(name) => Some(json!({"type": "tool", "name": name})),
            };
            if let Some(choice) = choice {
                body.insert("tool_choice".into(), choice);
            }
        }
        if let Some(last) = tools.last_mut().and_then(Value::as_object_mut) {
            // Tools come first in Anthropic's cache order and do not change during a run.
            last.insert("cache_control".into(), cache_point());
            body.insert("tools".into(), Value::Array(tools));
        }
        if let Some(t) = request.temperature {
            body.insert("temperature".into(), json!(t));
        }
        if let Some(p) = request.top_p {
            body.insert("top_p".into(), json!(p));
        }
        Value::Object(body)
    }
}

/// The conversation as alternating turns of content blocks (system messages excluded).
fn turns(messages: &[Message]) -> Vec<Value> {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in messages {
        let (role, blocks) = match m.role {
            MessageRole::System => continue,
            MessageRole::User => ("user", text_block(&m.content)),
            MessageRole::Tool => (
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                    "content": m.content
                })],
            ),
            MessageRole::Assistant => {
                let mut blocks = text_block(&m.content);
                blocks.extend(m.tool_calls.iter().map(|c| {
                    json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})
                }));
                ("assistant", blocks)
            }
        };
        match out.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    out.into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

/// A text block, or none for empty text (the API refuses empty text blocks).
fn text_block(text: &str) -> Vec<Value> {
    if text.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "text", "text": text})]
    }
}

/// Reads a Messages API answer; `format` is the structured-output tool's name, if any.
fn decode(body: Value, format: Option<&str>) -> Result<ModelResponse, String> {
    let content = body
        .get("content")
        .and_then(Value::as_array)
        .ok_or("the answer has no `content`")?;
    let mut text = String::new();
    let mut structured = None;
    let mut tool_calls = Vec::new();
    for block in content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => {
                let name = block
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or("a tool_use block has no name")?;
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                if Some(name) == format {
                    structured = Some(input.to_string());
                } else {
                    tool_calls.push(ToolCall {
                        arguments: input,
                        id: block
                            .get("id")
                            .and_then(Value::as_str)
                            .ok_or("a tool_use block has no id")?
                            .to_string(),
                        name: name.to_string(),
                    });
                }
            }
            _ => {}
        }
    }
    let count = |key: &str| {
        body.pointer(&format!("/usage/{key}"))
            .and_then(Value::as_u64)
    };
    // Anthropic counts cache reads and writes apart from `input_tokens`; pe's input is all
    // three, of which the reads are cached (writes are priced as input).
    let usage = Usage {
        cached_input_tokens: count("cache_read_input_tokens").unwrap_or(0),
        input_tokens: count("input_tokens")
            .unwrap_or(0)
            .saturating_add(count("cache_creation_input_tokens").unwrap_or(0))
            .saturating_add(count("cache_read_input_tokens").unwrap_or(0)),
        output_tokens: count("output_tokens").unwrap_or(0),
    };
    Ok(ModelResponse {
        text: structured.unwrap_or(text),
        tool_calls,
        truncated: body.get("stop_reason").and_then(Value::as_str) == Some("max_tokens"),
        usage,
    })
}

#[async_trait::async_trait]
impl Model for AnthropicModel {
    fn reference(&self) -> &str {
        &self.reference
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        self.complete_observed(request, &Unobserved).await
    }

    async fn complete_observed(
        &self,
        request: &ModelRequest,
        observer: &dyn AttemptObserver,
    ) -> Result<ModelResponse, ModelError> {
        let format = match &request.response_format {
            ResponseFormat::Json { name, schema } => Some((name.as_str(), schema)),
            ResponseFormat::Text => None,
        };
        let body = self.body(request);
        let result = self
            .endpoint
            .post(&body, observer, &|_| false, |v| {
                decode(v, format.map(|(n, _)| n))
            })
            .await;
        match result {
            Ok(mut response) => {
                // The API always reports usage.
                observer.spent(response.usage, false);
                if let Some((_, schema)) = format {
                    response.text = structured::unwrap_reply(schema, response.text);
                }
                Ok(response)
            }
            Err(PostError::Refused { status, message }) => {
                Err(ModelError::from(self.endpoint.rejected(status, message)))
            }
            Err(PostError::Failed(e)) => Err(ModelError::from(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_results_merge_into_one_user_turn_and_system_is_left_out() {
        let call = |id: &str| ToolCall {
            arguments: json!({"k": id}),
            id: id.into(),
            name: "look".into(),
        };
        let messages = [
            Message::system("be brief"),
            Message::user("do it"),
            Message::assistant("", vec![call("t1"), call("t2")]),
            Message::tool("t1", "one"),
            Message::tool("t2", "two"),
        ];
        assert_eq!(
            turns(&messages),
            vec![
                json!({"role": "user", "content": [{"type": "text", "text": "do it"}]}),
                json!({"role": "assistant", "content": [
                    {"type": "tool_use", "id": "t1", "name": "look", "input": {"k": "t1"}},
                    {"type": "tool_use", "id": "t2", "name": "look", "input": {"k": "t2"}}
                ]}),
                json!({"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "one"},
                    {"type": "tool_result", "tool_use_id": "t2", "content": "two"}
                ]}),
            ]
        );
    }

    #[test]
    fn the_system_part_and_the_tools_carry_cache_breakpoints() {
        let endpoint = Endpoint::new(crate::model::http_client::EndpointConfig {
            auth: None,
            headers: Vec::new(),
            key_var: None,
            max_response_bytes: 1024,
            model: "claude".into(),
            policy: crate::model::retry::RetryPolicy::new(None),
            provider: "anthropic".into(),
            timeout: std::time::Duration::from_secs(1),
            url: "http://127.0.0.1:9/v1/messages".into(),
        })
        .unwrap();
        let model = AnthropicModel::new(endpoint, "anthropic/claude".into());
        let request = ModelRequest {
            messages: vec![Message::system("stable"), Message::user("changing")],
            tools: vec![
                crate::model::ToolDefinition {
                    description: "a".into(),
                    name: "a".into(),
                    parameters: json!({"type": "object"}),
                },
                crate::model::ToolDefinition {
                    description: "b".into(),
                    name: "b".into(),
                    parameters: json!({"type": "object"}),
                },
            ],
            ..ModelRequest::default()
        };
        let body = model.body(&request);
        assert_eq!(
            body["system"],
            json!([{"type": "text", "text": "stable", "cache_control": {"type": "ephemeral"}}])
        );
        assert_eq!(
            body["tools"],
            json!([
                {"name": "a", "description": "a", "input_schema": {"type": "object"}},
                {"name": "b", "description": "b", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}
            ])
        );
        let plain = model.body(&ModelRequest {
            messages: vec![Message::user("only")],
            ..ModelRequest::default()
        });
        assert_eq!(plain.get("system"), None);
        assert_eq!(plain.get("tools"), None);
    }

    #[test]
    fn the_forced_tool_input_is_the_structured_answer() {
        let body = json!({
            "content": [{"type": "tool_use", "id": "x", "name": "plan", "input": {"steps": []}}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 7}
        });
        let r = decode(body, Some("plan")).unwrap();
        assert_eq!(r.text, r#"{"steps":[]}"#);
        assert!(r.tool_calls.is_empty());
        assert_eq!(
            r.usage,
            Usage {
                cached_input_tokens: 5,
                input_tokens: 15,
                output_tokens: 7
            }
        );
    }
}
