//! The workflow file format, version 1, as serde types.
//!
//! These mirror `schemas/workflow.schema.json` field for field (a test fails if they drift).
//! They are only ever built from a document that already passed the schema, and only the
//! checker turns them into a [`crate::workflow::Workflow`], the type the engine accepts.
//! Every struct denies unknown fields: a typo must never be silently ignored.

mod status;
mod testing;

pub use status::{RunStatus, StepStatus};

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

/// A tool the executor may call. Exactly one of `builtin`, `command`, `http`, `mock`, `mcp`,
/// `workflow` is set (the checker turns it into [`crate::workflow::ToolKind`]).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    #[serde(default)]
    pub builtin: Option<String>,
    /// argv; each element is a template over `args`, `inputs`, `env` is never consulted.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Working directory for `command`, relative to the workflow file.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Required for every kind but `mcp` (each server tool has its own) and `workflow`
    /// (the child's `description` is the default).
    #[serde(default)]
    pub description: String,
    /// Environment variables set for `command` (templated like argv).
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// `mcp`: server tools left out (by their name on the server).
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub http: Option<HttpSpec>,
    /// `mcp`: only these server tools (by their name on the server); all when absent.
    #[serde(default)]
    pub include: Option<Vec<String>>,
    /// An MCP server whose tools become tools of the workflow (`<entry>__<tool>`).
    #[serde(default)]
    pub mcp: Option<McpSpec>,
    /// Variables of pe's own environment a `command` also gets (besides the minimal set).
    #[serde(default)]
    pub inherit_env: Vec<String>,
    /// Bytes of output kept; the rest is cut with a marker.
    #[serde(default)]
    pub max_output_bytes: Option<u64>,
    #[serde(default)]
    pub mock: Option<MockSpec>,
    #[serde(default)]
    pub on_error: OnError,
    /// JSON Schema of the arguments object.
    #[serde(default)]
    pub parameters: Option<Value>,
    /// Arguments that are paths inside the workflow's directory: resolved and confined
    /// like the file builtins' before the tool sees them.
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub timeout: Option<Duration>,
    /// Another workflow file, run as a child run per call (relative to this file).
    #[serde(default)]
    pub workflow: Option<String>,
}

/// How to reach an MCP server: a program speaking MCP on stdin/stdout, or a streamable-HTTP
/// endpoint. Exactly one of `command`, `url`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct McpSpec {
    /// argv of a stdio server; each element a template over `inputs`. Never a shell.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Working directory of the server process, relative to the workflow file.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Variables set for the server process (templates over `inputs`).
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// HTTP headers sent with every request (templates over `inputs`; no secrets here).
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// HTTP headers whose values are read from pe's environment: header → variable name.
    /// The values are secrets: redacted wherever pe shows or journals anything.
    #[serde(default)]
    pub headers_from_env: IndexMap<String, String>,
    /// Variables of pe's environment the server process also gets (secrets such as a
    /// token the server needs); nothing else is inherited beyond the minimal set.
    #[serde(default)]
    pub inherit_env: Vec<String>,
    /// How long starting and initializing the server may take (default 60s).
    #[serde(default)]
    pub startup_timeout: Option<Duration>,
    /// Streamable-HTTP endpoint, e.g. `http://127.0.0.1:3001/mcp` (a template over `inputs`).
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The model sees the error and may try again.
    #[default]
    Continue,
    /// The step fails at once.
    FailStep,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// A JSON value whose strings are templates, or one template string.
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
}

fn default_method() -> String {
    "GET".to_string()
}

/// A mock tool: one fixed result, or cases matched on the arguments.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum MockSpec {
    Fixed(String),
    Cases(MockCases),
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MockCases {
    #[serde(default)]
    pub cases: Vec<MockCase>,
    /// Error text when no case matches (makes the call fail).
    #[serde(default)]
    pub error: Option<String>,
    /// Result when no case matches; a string is a template over `args` and `inputs`.
    #[serde(default)]
    pub result: Option<Value>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MockCase {
    /// The call fails with this text.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub result: Option<Value>,
    /// Matches only the first N calls that fit `when` (e.g. fail once, then succeed).
    #[serde(default)]
    pub times: Option<u32>,
    /// Argument values that must all be equal for the case to apply.
    #[serde(default)]
    pub when: IndexMap<String, Value>,
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
pub struct PlanSpec {
    #[serde(default)]
    pub approve: bool,
    /// How often an invalid plan is re-asked before the run fails.
    #[serde(default = "default_plan_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_concurrency")]
    pub max_concurrency: u32,
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    #[serde(default)]
    pub parallel: bool,
    /// Whether the planner writes each step's tool arguments (direct tool steps).
    #[serde(default)]
    pub step_args: StepArgs,
    /// A fixed plan: the planner is not called.
    #[serde(default)]
    pub steps: Option<Vec<StepSpec>>,
}

impl Default for PlanSpec {
    fn default() -> Self {
        PlanSpec {
            approve: false,
            max_attempts: default_plan_attempts(),
            max_concurrency: default_concurrency(),
            max_steps: default_max_steps(),
            parallel: false,
            step_args: StepArgs::default(),
            steps: None,
        }
    }
}

/// Whether the planner (and the replanner's revisions) give steps `args`: a step with `args`
/// runs its tool directly, without an executor call.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StepArgs {
    /// Steps have no `args`: the executor runs every step.
    #[default]
    None,
    /// A step may name a tool with its `args`, or leave them out for the executor.
    Optional,
    /// Every step names a tool and its `args`.
    Required,
}

fn default_plan_attempts() -> u32 {
    3
}
fn default_concurrency() -> u32 {
    4
}
fn default_max_steps() -> u32 {
    7
}

/// One step of a plan (fixed in the file, or written by the planner).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// The tool's arguments: the step runs `tool` with them directly (no executor call).
    /// String values are templates over `inputs` and `steps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    pub description: String,
    #[serde(default)]
    pub expected: Option<String>,
    pub id: String,
    #[serde(default)]
    pub tool: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExecuteSpec {
    #[serde(default)]
    pub context: ContextMode,
    /// What a failed direct step (one with `args`) does.
    #[serde(default)]
    pub direct_fallback: DirectFallback,
    #[serde(default = "default_iterations")]
    pub max_iterations: u32,
    #[serde(default)]
    pub step_timeout: Option<Duration>,
    /// Timeout of every tool call whose tool sets no `timeout` (default 10 minutes).
    #[serde(default)]
    pub tool_timeout: Option<Duration>,
}

impl Default for ExecuteSpec {
    fn default() -> Self {
        ExecuteSpec {
            context: ContextMode::default(),
            direct_fallback: DirectFallback::default(),
            max_iterations: default_iterations(),
            step_timeout: None,
            tool_timeout: None,
        }
    }
}

fn default_iterations() -> u32 {
    5
}

/// When a step with `args` fails: its arguments do not render or validate, or the tool fails.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DirectFallback {
    /// The step runs as a tool-calling loop with the executor instead.
    Executor,
    /// The attempt fails and `replan.on_step_failure` applies.
    #[default]
    Policy,
}

/// Which earlier results a step's prompt includes.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ContextMode {
    All,
    #[default]
    Dependencies,
    None,
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
