//! A [`Model`] decorator that keeps secrets away from models: every byte of a request —
//! messages (tool results and the model's own earlier replies included), tool calls,
//! tool definitions and the response schema — has the run's secrets replaced by
//! `[redacted]` before the wrapped model sees it, and so does the reply.
//!
//! A tool can print a key (a command that inherited it, a file that contains it) and a
//! model can be handed one in a reply; the journal redacts what it stores, but the model
//! must not receive it either. It wraps the connected (or replaying) model *inside* the
//! recording decorator, so a cassette holds exactly what was sent.

use std::sync::Arc;

use indexmap::IndexMap;

use crate::model::retry::AttemptObserver;
use crate::model::{Model, ModelError, ModelRequest, ModelResponse, ModelSet, Usage};
use crate::run::redact::Redactor;
use crate::spec::Role;

/// A model whose requests and replies never carry the run's secrets.
pub struct RedactingModel {
    inner: Arc<dyn Model>,
    redactor: Redactor,
}

impl RedactingModel {
    /// Wraps `inner`; with no secrets to hide, `inner` itself is returned.
    pub fn wrap(inner: Arc<dyn Model>, redactor: &Redactor) -> Arc<dyn Model> {
        if redactor.is_empty() {
            return inner;
        }
        Arc::new(RedactingModel {
            inner,
            redactor: redactor.clone(),
        })
    }

    fn request(&self, request: &ModelRequest) -> ModelRequest {
        let mut request = request.clone();
        for message in &mut request.messages {
            self.redactor.string(&mut message.content);
            for call in &mut message.tool_calls {
                self.redactor.value(&mut call.arguments);
                self.redactor.string(&mut call.name);
            }
        }
        for tool in &mut request.tools {
            self.redactor.string(&mut tool.description);
            self.redactor.value(&mut tool.parameters);
        }
        if let crate::model::ResponseFormat::Json { schema, .. } = &mut request.response_format {
            self.redactor.value(schema);
        }
        request
    }

    fn response(&self, mut response: ModelResponse) -> ModelResponse {
        self.redactor.string(&mut response.text);
        for call in &mut response.tool_calls {
            self.redactor.value(&mut call.arguments);
        }
        response
    }
}

#[async_trait::async_trait]
impl Model for RedactingModel {
    fn reference(&self) -> &str {
        self.inner.reference()
    }

    fn estimate(&self, request: &ModelRequest) -> Usage {
        self.inner.estimate(&self.request(request))
    }

    fn default_output_cap(&self, role: Role) -> u64 {
        self.inner.default_output_cap(role)
    }

    fn max_requests(&self, request: &ModelRequest) -> u32 {
        self.inner.max_requests(request)
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let request = self.request(request);
        self.inner
            .complete(&request)
            .await
            .map(|r| self.response(r))
    }

    async fn complete_observed(
        &self,
        request: &ModelRequest,
        observer: &dyn AttemptObserver,
    ) -> Result<ModelResponse, ModelError> {
        let request = self.request(request);
        self.inner
            .complete_observed(&request, observer)
            .await
            .map(|r| self.response(r))
    }
}

impl ModelSet {
    /// Every role's model behind a [`RedactingModel`] (one wrapper per shared model, so
    /// roles that share a model keep sharing it).
    pub fn redacted(self, redactor: &Redactor) -> ModelSet {
        if redactor.is_empty() {
            return self;
        }
        let mut wrapped: Vec<(Arc<dyn Model>, Arc<dyn Model>)> = Vec::new();
        let models: IndexMap<Role, Arc<dyn Model>> = self
            .models
            .into_iter()
            .map(|(role, inner)| {
                let model = match wrapped.iter().find(|(raw, _)| Arc::ptr_eq(raw, &inner)) {
                    Some((_, model)) => Arc::clone(model),
                    None => {
                        let model = RedactingModel::wrap(Arc::clone(&inner), redactor);
                        wrapped.push((inner, Arc::clone(&model)));
                        model
                    }
                };
                (role, model)
            })
            .collect();
        ModelSet {
            choices: self.choices,
            models,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Message, ResponseFormat, ToolCall, ToolDefinition};
    use serde_json::json;
    use std::sync::Mutex;

    /// Keeps what it was sent and echoes the key back.
    struct Spy {
        seen: Mutex<Vec<ModelRequest>>,
    }

    #[async_trait::async_trait]
    impl Model for Spy {
        fn reference(&self) -> &str {
            "spy/model"
        }
        async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
            self.seen.lock().unwrap().push(request.clone());
            Ok(ModelResponse {
                text: "echo sk-live-123456".into(),
                tool_calls: vec![ToolCall {
                    arguments: json!({"k": "sk-live-123456"}),
                    id: "c1".into(),
                    name: "t".into(),
                }],
                ..ModelResponse::default()
            })
        }
    }

    #[tokio::test]
    async fn no_secret_reaches_the_model_or_comes_back() {
        let spy = Arc::new(Spy {
            seen: Mutex::new(Vec::new()),
        });
        let redactor = Redactor::new(vec!["sk-live-123456".into()]);
        let model = RedactingModel::wrap(spy.clone(), &redactor);
        let request = ModelRequest {
            messages: vec![
                Message::user("task with sk-live-123456"),
                Message::assistant(
                    "",
                    vec![ToolCall {
                        arguments: json!({"q": ["sk-live-123456"]}),
                        id: "c0".into(),
                        name: "t".into(),
                    }],
                ),
                Message::tool("c0", "KEY=sk-live-123456\n"),
            ],
            response_format: ResponseFormat::Json {
                name: "x".into(),
                schema: json!({"const": "sk-live-123456"}),
            },
            tools: vec![ToolDefinition {
                description: "uses sk-live-123456".into(),
                name: "t".into(),
                parameters: json!({"default": "sk-live-123456"}),
            }],
            ..ModelRequest::default()
        };
        let response = model.complete(&request).await.unwrap();
        let seen = serde_json::to_string(&spy.seen.lock().unwrap()[0]).unwrap();
        assert!(!seen.contains("sk-live"), "{seen}");
        assert_eq!(seen.matches("[redacted]").count(), 6, "{seen}");
        assert_eq!(response.text, "echo [redacted]");
        assert_eq!(response.tool_calls[0].arguments, json!({"k": "[redacted]"}));
    }

    #[test]
    fn without_secrets_the_model_is_not_wrapped() {
        let spy: Arc<dyn Model> = Arc::new(Spy {
            seen: Mutex::new(Vec::new()),
        });
        let same = RedactingModel::wrap(Arc::clone(&spy), &Redactor::default());
        assert!(Arc::ptr_eq(&spy, &same));
    }
}
