//! OpenAI-compatible chat completions (`POST {base}/chat/completions`): OpenAI itself, and
//! every server that speaks the same API — vLLM, llama.cpp's server, llama-cpp-python, LM
//! Studio, gateways, and Ollama's `/v1` endpoint.
//!
//! Tools are sent as functions with their JSON Schema parameters and a `tool_choice`;
//! several tool calls in one turn become several [`ToolCall`]s. Structured output takes the
//! form the provider's [`Mode`] says (see [`crate::model::structured_mode`]): in `auto` mode
//! a server that refuses one form is moved to the next, once, for the rest of the run, and
//! the switch is reported to the observer. Every request answered with a completion is
//! reported to the observer with its usage (`spent`), re-asks included.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::model::http_client::{Endpoint, PostError, ProviderError};
use crate::model::openai_wire::{self, BodyOptions};
use crate::model::retry::{AttemptObserver, FallbackNote, Unobserved};
use crate::model::structured;
use crate::model::structured_mode::{
    Mode, ServerState, refuses_response_format, refuses_tool_choice, wants_completion_tokens,
};
use crate::model::{
    Message, MessageRole, Model, ModelError, ModelRequest, ModelResponse, ResponseFormat,
};

/// Requests of a structured answer pe checks itself (`json_object` and `prompt` modes): the
/// first ask plus re-asks with the problem.
pub const CHECKED_JSON_ATTEMPTS: u32 = 3;

/// A model behind an OpenAI-compatible endpoint.
#[derive(Debug)]
pub struct OpenAiModel {
    endpoint: Endpoint,
    /// Ids for tool calls a server sends without one.
    next_call_id: AtomicU64,
    reference: String,
    /// What pe learned about the server (shared with the provider's other models).
    server: Arc<ServerState>,
}

/// The URL chat completions are posted to, for a base URL (ending before
/// `/chat/completions`; a query such as Azure's `?api-version=…` is kept after the path).
pub fn url(base_url: &str) -> String {
    crate::model::http_client::join_path(base_url, "chat/completions")
}

/// Whether a base URL is OpenAI's own API, whose newer models refuse `max_tokens` (they
/// want `max_completion_tokens`); other servers know only `max_tokens`, so elsewhere pe
/// switches only after a 400 asking for it (gateways in front of those models).
pub fn wants_completion_tokens_from_start(base_url: &str) -> bool {
    base_url.starts_with("https://api.openai.com")
}

/// How one request ended, for the structured-output ladder.
enum Sent {
    Answer(ModelResponse),
    /// The server refused the request's `response_format`.
    FormatRefused {
        status: u16,
        message: String,
    },
}

impl OpenAiModel {
    pub fn new(endpoint: Endpoint, reference: String, server: Arc<ServerState>) -> Self {
        OpenAiModel {
            endpoint,
            next_call_id: AtomicU64::new(1),
            reference,
            server,
        }
    }

    /// Posts one request and reports its usage. Adapts, for the rest of the run, to a
    /// server that wants `max_completion_tokens` or refuses `tool_choice`; a refusal of
    /// `format` comes back as [`Sent::FormatRefused`].
    async fn send(
        &self,
        request: &ModelRequest,
        messages: &[Message],
        format: Option<Value>,
        observer: &dyn AttemptObserver,
    ) -> Result<Sent, ModelError> {
        let has_format = format.is_some();
        let refuses = |m: &str| has_format && refuses_response_format(m);
        let request_text = request.prompt_text();
        let next_id = || format!("call_{}", self.next_call_id.fetch_add(1, Ordering::Relaxed));
        // At most one adjustment of each kind, then the answer or the error stands.
        for _ in 0..3 {
            let options = BodyOptions {
                completion_tokens: self.server.completion_tokens.load(Ordering::Relaxed),
                format: format.clone(),
                tool_choice: !self.server.no_tool_choice.load(Ordering::Relaxed),
            };
            let body = openai_wire::body(&self.endpoint.model, request, messages, options);
            let result = self
                .endpoint
                .post(&body, observer, &refuses, |v| {
                    openai_wire::decode(v, &request_text, &next_id)
                })
                .await;
            match result {
                Ok((response, estimated)) => {
                    observer.spent(response.usage, estimated);
                    return Ok(Sent::Answer(response));
                }
                Err(PostError::Refused { status, message }) if refuses(&message) => {
                    return Ok(Sent::FormatRefused { status, message });
                }
                Err(PostError::Refused { status, message })
                    if status == 400
                        && body.get("max_tokens").is_some()
                        && wants_completion_tokens(&message) =>
                {
                    self.server.completion_tokens.store(true, Ordering::Relaxed);
                }
                Err(PostError::Refused { status, message })
                    if (400..500).contains(&status)
                        && body.get("tool_choice").is_some()
                        && refuses_tool_choice(&message) =>
                {
                    self.server.no_tool_choice.store(true, Ordering::Relaxed);
                }
                Err(PostError::Refused { status, message }) => {
                    return Err(ModelError::from(self.endpoint.rejected(status, message)));
                }
                Err(PostError::Failed(e)) => return Err(ModelError::from(e)),
            }
        }
        Err(ModelError::from(self.endpoint.rejected_with(
            400,
            "the server kept refusing the request after pe adapted it".into(),
            None,
        )))
    }

    /// A plain turn (text or tool calls).
    async fn plain(
        &self,
        request: &ModelRequest,
        observer: &dyn AttemptObserver,
    ) -> Result<ModelResponse, ModelError> {
        match self
            .send(request, &request.messages, None, observer)
            .await?
        {
            Sent::Answer(r) => Ok(r),
            // Never without a format; kept total rather than unreachable.
            Sent::FormatRefused { status, message } => {
                Err(ModelError::from(self.endpoint.rejected(status, message)))
            }
        }
    }

    /// A structured turn in the provider's current mode, moving down the ladder on a
    /// refusal when the provider is in `auto` mode.
    async fn structured(
        &self,
        request: &ModelRequest,
        name: &str,
        schema: &Value,
        observer: &dyn AttemptObserver,
    ) -> Result<ModelResponse, ModelError> {
        loop {
            let mode = self.server.mode();
            let sent = match mode {
                Mode::JsonSchema => {
                    let wire = structured::wire_schema(schema);
                    let format = json!({"type": "json_schema", "json_schema": {
                        "name": name,
                        "schema": wire,
                        "strict": structured::strict_allowed(&wire),
                    }});
                    match self
                        .send(request, &request.messages, Some(format), observer)
                        .await?
                    {
                        Sent::Answer(mut r) => {
                            self.server.confirm_json_schema();
                            r.text = structured::unwrap_reply(schema, r.text);
                            Sent::Answer(r)
                        }
                        refused => refused,
                    }
                }
                Mode::JsonObject | Mode::Prompt => {
                    self.checked(request, name, schema, mode, observer).await?
                }
            };
            let (status, message) = match sent {
                Sent::Answer(r) => return Ok(r),
                Sent::FormatRefused { status, message } => (status, message),
            };
            if !self.server.can_fall_back(mode) {
                let hint = if self.server.is_confirmed() {
                    "the server accepted structured output `json_schema` earlier in this run, so it refused this schema".to_string()
                } else {
                    format!(
                        "the server does not accept structured output `{}`: set `structured_output: auto` on the provider to let pe find a form it accepts",
                        mode.as_str()
                    )
                };
                return Err(ModelError::from(self.endpoint.rejected_with(
                    status,
                    message,
                    Some(hint),
                )));
            }
            if let Some(to) = self.server.fall_back(mode) {
                observer.structured_output_fell_back(&FallbackNote {
                    from: mode.as_str(),
                    provider: self.endpoint.provider.clone(),
                    reason: message,
                    status,
                    to: to.as_str(),
                });
            }
        }
    }

    /// Structured output checked here (`json_object` and `prompt` modes): the schema in the
    /// prompt, the reply checked against it and re-asked with the problem, at most
    /// [`CHECKED_JSON_ATTEMPTS`] requests. In `json_object` mode the server is also asked
    /// for JSON constrained to the schema (`{type: json_object, schema}`: llama.cpp's
    /// servers honour the schema; others at least return JSON).
    async fn checked(
        &self,
        request: &ModelRequest,
        name: &str,
        schema: &Value,
        mode: Mode,
        observer: &dyn AttemptObserver,
    ) -> Result<Sent, ModelError> {
        // A schema whose root is not an object is sent wrapped where the server sees it.
        let (shown, format) = match mode {
            Mode::JsonObject => {
                let wire = structured::wire_schema(schema);
                let format = json!({"type": "json_object", "schema": wire});
                (wire, Some(format))
            }
            _ => (schema.clone(), None),
        };
        let mut messages = request.messages.clone();
        let instruction = structured::instruction(&shown);
        match messages.last_mut() {
            Some(last) if last.role == MessageRole::User => {
                last.content = format!("{}\n\n{instruction}", last.content);
            }
            _ => messages.push(Message::user(instruction)),
        }
        let mut usage = crate::model::Usage::default();
        let mut problem = String::new();
        for _ in 0..CHECKED_JSON_ATTEMPTS {
            let mut response = match self
                .send(request, &messages, format.clone(), observer)
                .await?
            {
                Sent::Answer(r) => r,
                refused => return Ok(refused),
            };
            // Saturating: the numbers come from the server.
            usage.input_tokens = usage
                .input_tokens
                .saturating_add(response.usage.input_tokens);
            usage.output_tokens = usage
                .output_tokens
                .saturating_add(response.usage.output_tokens);
            if response.truncated || !response.tool_calls.is_empty() {
                response.usage = usage;
                return Ok(Sent::Answer(response));
            }
            match structured::check(&shown, &response.text) {
                Ok(json) => {
                    response.text = if format.is_some() {
                        structured::unwrap_reply(schema, json)
                    } else {
                        json
                    };
                    response.usage = usage;
                    return Ok(Sent::Answer(response));
                }
                Err(p) => {
                    messages.push(Message::assistant(response.text, Vec::new()));
                    messages.push(Message::user(structured::correction(&p)));
                    problem = p;
                }
            }
        }
        Err(ModelError::from(ProviderError::Unstructured {
            attempts: CHECKED_JSON_ATTEMPTS,
            format: name.to_string(),
            mode: mode.as_str(),
            model: self.endpoint.model.clone(),
            problem,
            provider: self.endpoint.provider.clone(),
            url: self.endpoint.shown_url(),
        }))
    }
}

#[async_trait::async_trait]
impl Model for OpenAiModel {
    fn reference(&self) -> &str {
        &self.reference
    }

    fn max_requests(&self, request: &ModelRequest) -> u32 {
        match request.response_format {
            ResponseFormat::Json { .. } => self.server.max_requests(CHECKED_JSON_ATTEMPTS),
            ResponseFormat::Text => 1,
        }
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        self.complete_observed(request, &Unobserved).await
    }

    async fn complete_observed(
        &self,
        request: &ModelRequest,
        observer: &dyn AttemptObserver,
    ) -> Result<ModelResponse, ModelError> {
        match &request.response_format {
            ResponseFormat::Json { name, schema } => {
                self.structured(request, name, schema, observer).await
            }
            ResponseFormat::Text => self.plain(request, observer).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::model::Usage;
    use crate::model::http_client::EndpointConfig;
    use crate::model::retry::{RetryNote, RetryPolicy};
    use crate::spec::StructuredOutput;

    #[derive(Default)]
    struct Recorder {
        fallbacks: Mutex<Vec<FallbackNote>>,
        spent: Mutex<Vec<(Usage, bool)>>,
    }

    impl AttemptObserver for Recorder {
        fn retrying(&self, _: &RetryNote) {}
        fn spent(&self, usage: Usage, estimated: bool) {
            self.spent.lock().unwrap().push((usage, estimated));
        }
        fn structured_output_fell_back(&self, note: &FallbackNote) {
            self.fallbacks.lock().unwrap().push(note.clone());
        }
    }

    fn model(server: &MockServer, setting: StructuredOutput) -> OpenAiModel {
        let endpoint = Endpoint::new(EndpointConfig {
            auth: None,
            headers: Vec::new(),
            key_var: None,
            max_response_bytes: 1 << 20,
            model: "m".into(),
            policy: RetryPolicy {
                base_delay: Duration::from_millis(1),
                max_retries: 2,
            },
            provider: "llama".into(),
            timeout: Duration::from_secs(5),
            url: url(&format!("{}/v1", server.uri())),
        })
        .unwrap();
        OpenAiModel::new(
            endpoint,
            "llama/m".into(),
            Arc::new(ServerState::new(setting, false)),
        )
    }

    fn answer(text: &str, usage: Option<(u64, u64)>) -> ResponseTemplate {
        let mut body = json!({"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]});
        if let Some((i, o)) = usage {
            body["usage"] = json!({"prompt_tokens": i, "completion_tokens": o});
        }
        ResponseTemplate::new(200).set_body_json(body)
    }

    fn structured_request() -> ModelRequest {
        ModelRequest {
            messages: vec![Message::user("plan it")],
            response_format: ResponseFormat::Json {
                name: "plan".into(),
                schema: json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
            },
            ..ModelRequest::default()
        }
    }

    #[tokio::test]
    async fn every_completion_is_reported_even_when_the_call_fails() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(answer("no JSON here", Some((50, 5))))
            .mount(&server)
            .await;
        let model = model(&server, StructuredOutput::Prompt);
        let request = structured_request();
        assert_eq!(model.max_requests(&request), CHECKED_JSON_ATTEMPTS);
        let observer = Recorder::default();
        let result = model.complete_observed(&request, &observer).await;
        let Err(ModelError::Http(e)) = &result else {
            panic!("{result:?}");
        };
        let ProviderError::Unstructured { attempts, mode, .. } = **e else {
            panic!("{e:?}");
        };
        assert_eq!((attempts, mode), (3, "prompt"));
        let one = (
            Usage {
                input_tokens: 50,
                output_tokens: 5,
                ..Usage::default()
            },
            false,
        );
        assert_eq!(*observer.spent.lock().unwrap(), [one, one, one]);
    }

    #[tokio::test]
    async fn a_refusal_moves_down_once_and_only_completions_are_spent() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(wiremock::matchers::body_partial_json(
                json!({"response_format": {"type": "json_schema"}}),
            ))
            .respond_with(ResponseTemplate::new(500).set_body_json(
                json!({"error": {"message": "Input should be 'text' or 'json_object'"}}),
            ))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(answer(r#"{"n": 1}"#, None))
            .mount(&server)
            .await;
        let model = model(&server, StructuredOutput::Auto);
        let observer = Recorder::default();
        for _ in 0..2 {
            let r = model
                .complete_observed(&structured_request(), &observer)
                .await
                .unwrap();
            assert_eq!(r.text, r#"{"n":1}"#);
        }
        assert_eq!(
            *observer.fallbacks.lock().unwrap(),
            [FallbackNote {
                from: "json_schema",
                provider: "llama".into(),
                reason: "Input should be 'text' or 'json_object'".into(),
                status: 500,
                to: "json_object",
            }]
        );
        // Not retried; then two completions, with estimated usage (the server sent none).
        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 3);
        let spent = observer.spent.lock().unwrap();
        assert_eq!(spent.len(), 2);
        assert!(
            spent
                .iter()
                .all(|(u, estimated)| *estimated && u.total() > 0)
        );
    }
}
