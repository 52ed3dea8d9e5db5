//! The offline-testing parts of the format: `tests:` cases and the `scripted` provider's
//! replies (also the format of replies files).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{MockSpec, RunStatus, StepStatus};
use crate::duration::Duration;

/// An offline case for `pe test`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// A cassette recorded with `pe exec --record`, relative to the workflow.
    #[serde(default)]
    pub cassette: Option<String>,
    #[serde(default)]
    pub expect: Expectation,
    #[serde(default)]
    pub inputs: IndexMap<String, Value>,
    /// Tools this case lets run for real (`true`: all of them). Without it, a case must stub
    /// every tool that reaches outside pe (`command`, `http`, `write_file`).
    #[serde(default)]
    pub live: LiveTools,
    pub name: String,
    /// Scripted model replies: a file path, or the replies inline.
    #[serde(default)]
    pub replies: Option<RepliesSource>,
    /// Stubbed tool results replacing the tools' own behaviour in this case.
    #[serde(default)]
    pub tools: IndexMap<String, MockSpec>,
}

/// `live:` of a test case: which unstubbed tools may run for real.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum LiveTools {
    /// `true`: every tool; `false` (the default): none.
    All(bool),
    /// These tools by name.
    Tools(Vec<String>),
}

impl Default for LiveTools {
    fn default() -> Self {
        LiveTools::All(false)
    }
}

impl LiveTools {
    /// Whether `tool` may run for real in this case.
    pub fn allows(&self, tool: &str) -> bool {
        match self {
            LiveTools::All(all) => *all,
            LiveTools::Tools(names) => names.iter().any(|n| n == tool),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum RepliesSource {
    File(String),
    Inline(ScriptedReplies),
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// Values the final output must contain (a subset match on objects).
    #[serde(default)]
    pub output: Option<Value>,
    /// A substring the final output (as text) must contain.
    #[serde(default)]
    pub output_contains: Option<String>,
    #[serde(default)]
    pub replans: Option<u32>,
    #[serde(default)]
    pub status: Option<RunStatus>,
    /// Final state of named steps.
    #[serde(default)]
    pub steps: IndexMap<String, StepStatus>,
    /// How many times each named tool was called.
    #[serde(default)]
    pub tool_calls: IndexMap<String, u32>,
}

/// Replies of the `scripted` provider, per role. Each role's list is consumed in order;
/// a reply with `when` is used only for a prompt containing that text.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedReplies {
    #[serde(default)]
    pub executor: Vec<ScriptedReply>,
    #[serde(default)]
    pub planner: Vec<ScriptedReply>,
    #[serde(default)]
    pub replanner: Vec<ScriptedReply>,
    #[serde(default)]
    pub synthesizer: Vec<ScriptedReply>,
}

/// One scripted model turn: exactly one of `text`, `json`, `tool_calls`, `error`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScriptedReply {
    /// Simulated model latency: the reply arrives this long after the call (benchmarks,
    /// timeout and concurrency tests).
    #[serde(default)]
    pub delay: Option<Duration>,
    /// Simulates a provider failure with this message.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub json: Option<Value>,
    /// May be used any number of times (it is not consumed).
    #[serde(default)]
    pub repeat: bool,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ScriptedToolCall>>,
    /// Token counts to report; estimated from the text when absent.
    #[serde(default)]
    pub usage: Option<ScriptedUsage>,
    /// Only used for a prompt that contains this text.
    #[serde(default)]
    pub when: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScriptedToolCall {
    #[serde(default)]
    pub arguments: Value,
    pub name: String,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScriptedUsage {
    /// Of `input_tokens`, those a provider would have read from its prompt cache.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached_input_tokens: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
