//! Plans and their execution as a workflow file declares them: the planner's limits, fixed
//! steps (with direct-step `args`), and how the executor runs a step.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::duration::Duration;

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
