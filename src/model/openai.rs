//! OpenAI-compatible chat completions (`POST {base}/chat/completions`): OpenAI itself, and
//! every server that speaks the same API — vLLM, llama.cpp server, LM Studio, gateways, and
//! Ollama's `/v1` endpoint.
//!
//! Tools are sent as functions with their JSON Schema parameters; several tool calls in one
//! turn become several [`ToolCall`]s. Structured output uses `response_format: json_schema`
//! (strict where the schema allows it). A server that refuses `response_format` (a 400
//! about it) is switched, for the rest of the run, to the schema in the prompt with a local
//! check and bounded re-asks; a provider can also start there (`structured_output: prompt`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{Map, Value, json};

use crate::model::http_client::{Endpoint, PostError, ProviderError};
use crate::model::retry::{AttemptObserver, Unobserved};
use crate::model::structured;
use crate::model::{
    Message, MessageRole, Model, ModelError, ModelRequest, ModelResponse, ResponseFormat, ToolCall,
    Usage, estimate_tokens,
};

/// Calls of a prompt-side structured answer (the first ask plus re-asks with the problem).
const PROMPT_JSON_ATTEMPTS: u32 = 3;

/// A model behind an OpenAI-compatible endpoint.
#[derive(Debug)]
pub struct OpenAiModel {
    endpoint: Endpoint,
    /// Ids for tool calls a server sends without one.
    next_call_id: AtomicU64,
    /// Structured output is asked for in the prompt, not with `response_format`.
    prompt_json: AtomicBool,
    reference: String,
    /// Send the output cap as `max_completion_tokens`: from the start for api.openai.com
    /// (its newer models refuse `max_tokens`), after a 400 asking for it elsewhere (gateways
    /// in front of those models); other servers know only `max_tokens`.
    completion_tokens: AtomicBool,
    url: String,
}

impl OpenAiModel {
    /// A model at `base_url` (ending before `/chat/completions`).
    pub fn new(endpoint: Endpoint, base_url: &str, reference: String, prompt_json: bool) -> Self {
        let base = base_url.trim_end_matches('/');
        OpenAiModel {
            endpoint,
            next_call_id: AtomicU64::new(1),
            prompt_json: AtomicBool::new(prompt_json),
            reference,
            completion_tokens: AtomicBool::new(base.starts_with("https://api.openai.com")),
            url: format!("{base}/chat/completions"),
        }
    }

    /// The request body; `format` is the `response_format` value, if any.
    fn body(&self, request: &ModelRequest, messages: &[Message], format: Option<Value>) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), json!(self.endpoint.model));
        body.insert(
            "messages".into(),
            Value::Array(messages.iter().map(wire_message).collect()),
        );
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
            let field = if self.completion_tokens.load(Ordering::Relaxed) {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            body.insert(field.into(), json!(m));
        }
        if let Some(f) = format {
            body.insert("response_format".into(), f);
        }
        Value::Object(body)
    }

    async fn send(
        &self,
        request: &ModelRequest,
        messages: &[Message],
        format: Option<Value>,
        observer: &dyn AttemptObserver,
    ) -> Result<ModelResponse, PostError> {
        let body = self.body(request, messages, format.clone());
        let result = self
            .endpoint
            .post(&self.url, &body, observer, |v| self.decode(v, request))
            .await;
        match result {
            Err(PostError::Rejected {
                status: 400,
                message,
            }) if body.get("max_tokens").is_some() && message.contains("max_completion_tokens") => {
                self.completion_tokens.store(true, Ordering::Relaxed);
                let body = self.body(request, messages, format);
                self.endpoint
                    .post(&self.url, &body, observer, |v| self.decode(v, request))
                    .await
            }
            other => other,
        }
    }

    fn decode(&self, body: Value, request: &ModelRequest) -> Result<ModelResponse, String> {
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
                _ => format!("call_{}", self.next_call_id.fetch_add(1, Ordering::Relaxed)),
            };
            tool_calls.push(ToolCall {
                arguments: arguments(call.pointer("/function/arguments")),
                id,
                name: name.to_string(),
            });
        }
        let usage = match body.get("usage") {
            Some(u) if u.get("prompt_tokens").is_some() => Usage {
                input_tokens: u["prompt_tokens"].as_u64().unwrap_or(0),
                output_tokens: u
                    .get("completion_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            },
            // Some servers report no usage; an estimate keeps token budgets meaningful.
            _ => Usage {
                input_tokens: estimate_tokens(&request.prompt_text()),
                output_tokens: estimate_tokens(&text)
                    + tool_calls
                        .iter()
                        .map(|c| estimate_tokens(&c.arguments.to_string()))
                        .sum::<u64>(),
            },
        };
        Ok(ModelResponse {
            text,
            tool_calls,
            truncated: choice.get("finish_reason").and_then(Value::as_str) == Some("length"),
            usage,
        })
    }

    fn failed(&self, e: PostError) -> ModelError {
        match e {
            PostError::Rejected { status, message } => {
                ModelError::Http(self.endpoint.rejected(status, message))
            }
            PostError::Failed(e) => ModelError::Http(e),
        }
    }

    /// Structured output without `response_format`: the schema in the prompt, the reply
    /// checked here, re-asked with the problem (at most [`PROMPT_JSON_ATTEMPTS`] calls).
    async fn prompt_json(
        &self,
        request: &ModelRequest,
        name: &str,
        schema: &Value,
        observer: &dyn AttemptObserver,
    ) -> Result<ModelResponse, ModelError> {
        let mut messages = request.messages.clone();
        let instruction = structured::instruction(schema);
        match messages.last_mut() {
            Some(last) if last.role == MessageRole::User => {
                last.content = format!("{}\n\n{instruction}", last.content);
            }
            _ => messages.push(Message::user(instruction)),
        }
        let mut usage = Usage::default();
        let mut problem = String::new();
        for _ in 0..PROMPT_JSON_ATTEMPTS {
            let mut response = self
                .send(request, &messages, None, observer)
                .await
                .map_err(|e| self.failed(e))?;
            usage.input_tokens += response.usage.input_tokens;
            usage.output_tokens += response.usage.output_tokens;
            if response.truncated || !response.tool_calls.is_empty() {
                response.usage = usage;
                return Ok(response);
            }
            match structured::check(schema, &response.text) {
                Ok(json) => {
                    response.text = json;
                    response.usage = usage;
                    return Ok(response);
                }
                Err(p) => {
                    messages.push(Message::assistant(response.text, Vec::new()));
                    messages.push(Message::user(structured::correction(&p)));
                    problem = p;
                }
            }
        }
        Err(ModelError::Http(ProviderError::Unstructured {
            attempts: PROMPT_JSON_ATTEMPTS,
            format: name.to_string(),
            model: self.endpoint.model.clone(),
            problem,
            provider: self.endpoint.provider.clone(),
        }))
    }
}

/// Whether a 400 is about structured output (the server does not support it).
fn refuses_response_format(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["response_format", "response format", "json_schema"]
        .iter()
        .any(|k| m.contains(k))
}

/// A tool call's arguments: a JSON string (usually), an object (some servers), or nothing.
/// Text that is not JSON is passed on as a string, which the toolbox refuses with a message
/// the model sees.
fn arguments(raw: Option<&Value>) -> Value {
    match raw {
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_else(|_| json!(s)),
        Some(Value::Null) | None => json!({}),
        Some(other) => other.clone(),
    }
}

fn wire_message(m: &Message) -> Value {
    match m.role {
        MessageRole::System => json!({"role": "system", "content": m.content}),
        MessageRole::User => json!({"role": "user", "content": m.content}),
        MessageRole::Tool => json!({
            "role": "tool",
            "tool_call_id": m.tool_call_id.clone().unwrap_or_default(),
            "content": m.content
        }),
        MessageRole::Assistant if m.tool_calls.is_empty() => {
            json!({"role": "assistant", "content": m.content})
        }
        MessageRole::Assistant => {
            let calls: Vec<Value> = m
                .tool_calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function", "function": {
                        "name": c.name, "arguments": c.arguments.to_string()
                    }})
                })
                .collect();
            let content = if m.content.is_empty() {
                Value::Null
            } else {
                json!(m.content)
            };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
    }
}

#[async_trait::async_trait]
impl Model for OpenAiModel {
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
        let ResponseFormat::Json { name, schema } = &request.response_format else {
            return self
                .send(request, &request.messages, None, observer)
                .await
                .map_err(|e| self.failed(e));
        };
        if self.prompt_json.load(Ordering::Relaxed) {
            return self.prompt_json(request, name, schema, observer).await;
        }
        let format = json!({"type": "json_schema", "json_schema": {
            "name": name,
            "schema": structured::wire_schema(schema),
            "strict": structured::strict_allowed(&structured::wire_schema(schema)),
        }});
        match self
            .send(request, &request.messages, Some(format), observer)
            .await
        {
            Ok(mut response) => {
                response.text = structured::unwrap_reply(schema, response.text);
                Ok(response)
            }
            Err(PostError::Rejected {
                status: 400,
                message,
            }) if refuses_response_format(&message) => {
                self.prompt_json.store(true, Ordering::Relaxed);
                self.prompt_json(request, name, schema, observer).await
            }
            Err(e) => Err(self.failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_call_arguments_are_read_leniently() {
        let cases = [
            (Some(json!(r#"{"a": 1}"#)), json!({"a": 1})),
            (Some(json!("")), json!({})),
            (None, json!({})),
            (Some(json!({"a": 2})), json!({"a": 2})),
            (Some(json!("{oops")), json!("{oops")),
        ];
        for (raw, want) in cases {
            assert_eq!(arguments(raw.as_ref()), want);
        }
    }

    #[test]
    fn assistant_tool_calls_and_tool_results_use_the_wire_shapes() {
        let call = ToolCall {
            arguments: json!({"q": "x"}),
            id: "call_9".into(),
            name: "search".into(),
        };
        assert_eq!(
            wire_message(&Message::assistant("", vec![call])),
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_9", "type": "function", "function": {"name": "search", "arguments": "{\"q\":\"x\"}"}}
            ]})
        );
        assert_eq!(
            wire_message(&Message::tool("call_9", "found")),
            json!({"role": "tool", "tool_call_id": "call_9", "content": "found"})
        );
    }
}
