//! Models: the [`Model`] trait the engine talks to, and its implementations (`scripted`
//! now; OpenAI-compatible, Anthropic, Ollama and the embedded local model behind the same
//! trait). The engine knows only the trait.
//!
//! The request and response types follow the chat APIs every provider speaks: messages with
//! roles, native tool calls with JSON arguments, and a response format that is plain text or
//! JSON constrained by a schema (structured output).

pub mod anthropic;
pub mod connect;
pub mod http_client;
pub mod local;
pub mod ollama;
pub mod openai;
mod openai_wire;
pub(crate) mod redacting;
pub mod resolve;
pub mod retry;
pub mod scripted;
pub mod scripted_replies;
pub mod structured;
pub mod structured_mode;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spec::Role;

pub use crate::tool::ToolDefinition;
pub use resolve::{Choices, ModelSet, apply_overrides, connect_all};

/// A chat model. Implementations must be usable from concurrent steps.
#[async_trait::async_trait]
pub trait Model: Send + Sync {
    /// `provider/model`, as users write it (recorded in `llm_call` events).
    fn reference(&self) -> &str;

    /// An upper bound of what `request` will cost, checked against budgets before the call.
    /// Providers cap the reply with `request.max_output_tokens`, so input plus that cap is
    /// safe; the scripted provider knows its reply exactly.
    fn estimate(&self, request: &ModelRequest) -> Usage {
        Usage {
            input_tokens: request.input_estimate(),
            output_tokens: request.max_output_tokens.unwrap_or(0),
            ..Usage::default()
        }
    }

    /// The output cap sent when the workflow sets no `max_tokens` for the role.
    fn default_output_cap(&self, role: Role) -> u64 {
        default_output_cap(role)
    }

    /// The most requests one call may make (a provider that re-asks inside a call, such as
    /// prompt-mode structured output, makes more than one); budgets reserve for all of them.
    fn max_requests(&self, request: &ModelRequest) -> u32 {
        let _ = request;
        1
    }

    /// One model turn.
    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError>;

    /// One model turn, telling `observer` about every failed attempt that is retried, as it
    /// happens (so the engine can journal it). Models that never retry keep this default.
    async fn complete_observed(
        &self,
        request: &ModelRequest,
        observer: &dyn retry::AttemptObserver,
    ) -> Result<ModelResponse, ModelError> {
        let _ = observer;
        self.complete(request).await
    }
}

/// One call to a model.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ModelRequest {
    /// Cap on generated tokens (from the model settings and the remaining token budget).
    pub max_output_tokens: Option<u64>,
    pub messages: Vec<Message>,
    pub response_format: ResponseFormat,
    /// Which pipeline role asks (the scripted provider keeps one reply list per role).
    pub role: Option<Role>,
    pub seed: Option<u64>,
    /// The step an executor call works on (cassettes name it; not sent to providers).
    #[serde(skip)]
    pub step: Option<String>,
    pub temperature: Option<f64>,
    /// Whether the model must call a tool, when `tools` is not empty (not recorded in
    /// cassettes when `auto`).
    #[serde(default, skip_serializing_if = "ToolChoice::is_auto")]
    pub tool_choice: ToolChoice,
    /// Tools the model may call natively; empty when it may not call any.
    pub tools: Vec<ToolDefinition>,
    pub top_p: Option<f64>,
}

/// Tokens a chat format adds around each message (role markers, separators).
const MESSAGE_OVERHEAD_TOKENS: u64 = 4;

impl ModelRequest {
    /// Input tokens the request is estimated to cost before it is sent: everything a
    /// provider counts — each message and its tool calls, the tool definitions, the response
    /// schema — at four characters per token, plus a few tokens per message.
    pub fn input_estimate(&self) -> u64 {
        let mut chars = 0usize;
        for m in &self.messages {
            chars += m.content.chars().count();
            for call in &m.tool_calls {
                chars += call.name.len() + call.id.len() + call.arguments.to_string().len();
            }
        }
        for t in &self.tools {
            chars += t.name.len() + t.description.chars().count() + t.parameters.to_string().len();
        }
        if let ResponseFormat::Json { schema, .. } = &self.response_format {
            chars += schema.to_string().len();
        }
        (chars as u64).div_ceil(4) + MESSAGE_OVERHEAD_TOKENS * self.messages.len() as u64
    }

    /// The whole conversation as one text (what the scripted provider's `when` matches).
    pub fn prompt_text(&self) -> String {
        let mut text = String::new();
        for m in &self.messages {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&m.content);
        }
        text
    }
}

/// What the reply must look like.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// A JSON document valid against `schema` (structured output).
    Json { name: String, schema: Value },
    #[default]
    Text,
}

/// Whether a turn with tools must call one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides: call tools or answer.
    #[default]
    Auto,
    /// The model must call some tool.
    Required,
    /// The model must call this tool.
    Tool(String),
}

impl ToolChoice {
    pub fn is_auto(&self) -> bool {
        *self == ToolChoice::Auto
    }
}

/// One chat message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub content: String,
    pub role: MessageRole,
    /// For `tool` messages: the id of the call this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For `assistant` messages: the tool calls it made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Message {
        Message::plain(MessageRole::System, content)
    }

    pub fn user(content: impl Into<String>) -> Message {
        Message::plain(MessageRole::User, content)
    }

    pub fn assistant(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Message {
        Message {
            tool_calls,
            ..Message::plain(MessageRole::Assistant, content)
        }
    }

    pub fn tool(call_id: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            tool_call_id: Some(call_id.into()),
            ..Message::plain(MessageRole::Tool, content)
        }
    }

    fn plain(role: MessageRole, content: impl Into<String>) -> Message {
        Message {
            content: content.into(),
            role,
            tool_call_id: None,
            tool_calls: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageRole {
    Assistant,
    System,
    Tool,
    User,
}

/// A tool call the model asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The arguments object. Text a server sent that is not a JSON object is kept as a JSON
    /// string holding that text verbatim: the toolbox refuses it with a message the model
    /// sees, and providers send it back exactly as the model wrote it.
    pub arguments: Value,
    /// Provider-assigned id, echoed in the tool message that answers it.
    pub id: String,
    pub name: String,
}

/// One model turn's answer: text (plain, or JSON for a `Json` response format) and/or
/// tool calls.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelResponse {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    /// The reply was cut at `max_output_tokens`.
    pub truncated: bool,
    pub usage: Usage,
}

/// Tokens one call consumed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Of `input_tokens`, those the provider read from its prompt cache (OpenAI's
    /// `prompt_tokens_details.cached_tokens`, Anthropic's `cache_read_input_tokens`); priced
    /// at `price.cached_input_per_mtok`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached_input_tokens: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    pub fn total(self) -> u64 {
        // Saturating: the counts come from servers.
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// Output caps per role when a workflow sets no `max_tokens` (a model may lower them): a
/// plan, a decision or a step's turn needs far less than a model's context, and the cap is
/// what budgets reserve before a call, so it is never the remaining budget.
pub fn default_output_cap(role: Role) -> u64 {
    match role {
        Role::Executor | Role::Replanner => 1024,
        Role::Planner | Role::Synthesizer => 2048,
    }
}

/// A rough token count (about four characters per token), used where no tokenizer is known.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Why a model call failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ModelError {
    /// Occurs when a scripted replies file has no unused reply left for a role (or none whose
    /// `when` matches the prompt).
    #[error(
        "the scripted replies in {file} have no {role} reply left{}",
        if *.matched_when { " whose `when` matches the prompt" } else { "" }
    )]
    NoReplyLeft {
        file: String,
        matched_when: bool,
        role: &'static str,
    },
    /// Occurs when the provider answered with an error (for `scripted`: an `error:` reply).
    #[error("{model} failed: {message}")]
    Provider { message: String, model: String },
    /// Occurs when `--replay` (or a test's `cassette:`) gets a request the recording does
    /// not have: the workflow drifted from the cassette.
    #[error("replaying {cassette}: {drift}")]
    Replay { cassette: String, drift: String },
    /// Occurs when an HTTP provider could not be reached, refused a request or gave no
    /// usable answer (boxed: it names the provider, URL, status and server message).
    #[error("{0}")]
    Http(Box<http_client::ProviderError>),
}

impl From<http_client::ProviderError> for ModelError {
    fn from(e: http_client::ProviderError) -> ModelError {
        ModelError::Http(Box::new(e))
    }
}

impl ModelError {
    /// Whether retrying the step or asking again cannot help (the run should stop): a
    /// replies file that ran out is a broken test setup, not a model having a bad day.
    pub fn is_fatal(&self) -> bool {
        match self {
            ModelError::NoReplyLeft { .. } | ModelError::Replay { .. } => true,
            // A refused request (bad key, unknown model) fails the same way when asked again.
            ModelError::Http(e) => e.is_fatal(),
            ModelError::Provider { .. } => false,
        }
    }
}
