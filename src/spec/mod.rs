//! The workflow file format, version 1, as serde types.
//!
//! These mirror `schemas/workflow.schema.json` field for field (a test fails if they drift).
//! They are only ever built from a document that already passed the schema, and only the
//! checker turns them into a [`crate::workflow::Workflow`], the type the engine accepts.
//! Every struct denies unknown fields: a typo must never be silently ignored.

mod plan;
mod status;
mod testing;
mod tools;

pub use plan::{ContextMode, DirectFallback, ExecuteSpec, PlanSpec, StepArgs, StepSpec};
pub use status::{RunStatus, StepStatus};
pub use tools::{HttpSpec, McpSpec, MockCase, MockCases, MockSpec, OnError, ToolSpec};

pub use testing::{
    Expectation, LiveTools, RepliesSource, ScriptedReplies, ScriptedReply, ScriptedToolCall,
    ScriptedUsage, TestCase,
};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::duration::Duration;

/// A whole workflow file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowFile {
    #[serde(default)]
    pub budget: BudgetSpec,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub execute: ExecuteSpec,
    /// Typed parameters; each is a JSON Schema with optional `default` and `description`.
    #[serde(default)]
    pub inputs: IndexMap<String, Value>,
    #[serde(default)]
    pub models: ModelsSpec,
    pub name: String,
    #[serde(default)]
    pub output: OutputSpec,
    #[serde(default)]
    pub plan: PlanSpec,
    #[serde(default)]
    pub prompts: PromptsSpec,
    #[serde(default)]
    pub providers: IndexMap<String, ProviderSpec>,
    #[serde(default)]
    pub replan: ReplanSpec,
    pub task: String,
    #[serde(default)]
    pub tests: Vec<TestCase>,
    #[serde(default)]
    pub tools: IndexMap<String, ToolSpec>,
    pub version: u32,
}

/// The four model roles of the pipeline.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Executor,
    Planner,
    Replanner,
    Synthesizer,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Planner,
        Role::Executor,
        Role::Replanner,
        Role::Synthesizer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Executor => "executor",
            Role::Planner => "planner",
            Role::Replanner => "replanner",
            Role::Synthesizer => "synthesizer",
        }
    }
}

/// A named model endpoint.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// Name of the environment variable holding the API key. Keys never live in files.
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub base_url: Option<String>,
    /// Extra HTTP headers sent with every request.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    pub kind: ProviderKind,
    /// Response bodies larger than this are refused unread (HTTP kinds; default 4 MiB).
    #[serde(default)]
    pub max_response_bytes: Option<u64>,
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// For `scripted`: the replies file; for `local`: the GGUF file or models directory.
    #[serde(default)]
    pub path: Option<String>,
    /// For `openai` and `ollama`: how JSON answers are asked for.
    #[serde(default)]
    pub structured_output: Option<StructuredOutput>,
    #[serde(default)]
    pub timeout: Option<Duration>,
}

/// How an OpenAI-compatible provider is asked for JSON answers (plans, replan decisions,
/// answers with an `output.schema`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StructuredOutput {
    /// Start with `json_schema`; on the first refusal (any status whose message names
    /// `response_format`, `json_schema` or `json_object`) move down to `json_object`, then
    /// `prompt`, for the rest of the run. `native` (its earlier name) is an alias.
    #[default]
    #[serde(alias = "native")]
    Auto,
    /// `response_format: {type: json_object, schema}` (llama.cpp server, llama-cpp-python
    /// constrain the reply to the schema; others to JSON), with the schema in the prompt
    /// and the reply checked and re-asked like `prompt`.
    JsonObject,
    /// `response_format: {type: json_schema}` (OpenAI, vLLM, llama.cpp server, LM Studio,
    /// Ollama); a refusal is an error.
    JsonSchema,
    /// The schema in the prompt, the reply checked and re-asked (servers without support).
    Prompt,
}

impl StructuredOutput {
    pub fn as_str(self) -> &'static str {
        match self {
            StructuredOutput::Auto => "auto",
            StructuredOutput::JsonObject => "json_object",
            StructuredOutput::JsonSchema => "json_schema",
            StructuredOutput::Prompt => "prompt",
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Anthropic,
    Local,
    Ollama,
    Openai,
    Scripted,
}

impl ProviderKind {
    pub const NAMES: [&'static str; 5] = ["anthropic", "local", "ollama", "openai", "scripted"];

    pub fn from_name(name: &str) -> Option<ProviderKind> {
        Some(match name {
            "anthropic" => ProviderKind::Anthropic,
            "local" => ProviderKind::Local,
            "ollama" => ProviderKind::Ollama,
            "openai" => ProviderKind::Openai,
            "scripted" => ProviderKind::Scripted,
            _ => return None,
        })
    }
}

/// `default` plus optional per-role overrides.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsSpec {
    #[serde(default)]
    pub default: Option<ModelRef>,
    #[serde(default)]
    pub executor: Option<ModelRef>,
    #[serde(default)]
    pub planner: Option<ModelRef>,
    #[serde(default)]
    pub replanner: Option<ModelRef>,
    #[serde(default)]
    pub synthesizer: Option<ModelRef>,
}

impl ModelsSpec {
    pub fn role(&self, role: Role) -> Option<&ModelRef> {
        match role {
            Role::Executor => self.executor.as_ref(),
            Role::Planner => self.planner.as_ref(),
            Role::Replanner => self.replanner.as_ref(),
            Role::Synthesizer => self.synthesizer.as_ref(),
        }
    }
}

/// `provider/model`, or a mapping with settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ModelRef {
    Name(String),
    Settings(ModelSettings),
}

impl ModelRef {
    pub fn name(&self) -> &str {
        match self {
            ModelRef::Name(n) => n,
            ModelRef::Settings(s) => &s.model,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// `provider/model`.
    pub model: String,
    #[serde(default)]
    pub price: Option<Price>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
}

/// Prices in US dollars per million tokens, for `budget.max_cost_usd`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Input tokens read from the provider's prompt cache (`input_per_mtok` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

/// Per-role prompt templates; a missing one uses the built-in default.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PromptsSpec {
    #[serde(default)]
    pub executor: Option<String>,
    #[serde(default)]
    pub planner: Option<String>,
    #[serde(default)]
    pub replanner: Option<String>,
    #[serde(default)]
    pub synthesizer: Option<String>,
}

impl PromptsSpec {
    pub fn role(&self, role: Role) -> Option<&String> {
        match role {
            Role::Executor => self.executor.as_ref(),
            Role::Planner => self.planner.as_ref(),
            Role::Replanner => self.replanner.as_ref(),
            Role::Synthesizer => self.synthesizer.as_ref(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReplanSpec {
    #[serde(default = "default_max_replans")]
    pub max_replans: u32,
    #[serde(default)]
    pub on_step_failure: StepFailurePolicy,
    #[serde(default)]
    pub when: ReplanWhen,
}

impl Default for ReplanSpec {
    fn default() -> Self {
        ReplanSpec {
            max_replans: default_max_replans(),
            on_step_failure: StepFailurePolicy::default(),
            when: ReplanWhen::default(),
        }
    }
}

fn default_max_replans() -> u32 {
    2
}

/// One trigger or a list of them.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ReplanWhen {
    One(ReplanTrigger),
    Many(Vec<ReplanTrigger>),
}

impl Default for ReplanWhen {
    fn default() -> Self {
        ReplanWhen::One(ReplanTrigger::OnFailure)
    }
}

impl ReplanWhen {
    pub fn contains(&self, trigger: ReplanTrigger) -> bool {
        match self {
            ReplanWhen::One(t) => *t == trigger,
            ReplanWhen::Many(ts) => ts.contains(&trigger),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReplanTrigger {
    AfterEachStep,
    AfterPlan,
    Never,
    OnFailure,
}

impl ReplanTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplanTrigger::AfterEachStep => "after_each_step",
            ReplanTrigger::AfterPlan => "after_plan",
            ReplanTrigger::Never => "never",
            ReplanTrigger::OnFailure => "on_failure",
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StepFailurePolicy {
    #[serde(default)]
    pub retries: u32,
    #[serde(default)]
    pub then: FailureAction,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    Abort,
    #[default]
    Replan,
    Skip,
}

/// Hard limits; hitting one ends the run with `budget_exhausted`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    #[serde(default)]
    pub max_cost_usd: Option<f64>,
    #[serde(default)]
    pub max_llm_calls: Option<u64>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub per_role: IndexMap<Role, RoleBudget>,
    #[serde(default)]
    pub timeout: Option<Duration>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBudget {
    #[serde(default)]
    pub max_cost_usd: Option<f64>,
    #[serde(default)]
    pub max_llm_calls: Option<u64>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// How often an answer that fails `schema` is sent back for repair.
    #[serde(default = "default_repairs")]
    pub max_repairs: u32,
    #[serde(default)]
    pub schema: Option<Value>,
    /// The answer rendered from `inputs` and `steps` instead of asking the synthesizer.
    #[serde(default)]
    pub template: Option<String>,
}

impl Default for OutputSpec {
    fn default() -> Self {
        OutputSpec {
            max_repairs: default_repairs(),
            schema: None,
            template: None,
        }
    }
}

fn default_repairs() -> u32 {
    2
}
