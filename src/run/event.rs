//! Journal events (SPEC §5). Names and fields are part of the product contract: `pe show
//! RUN --json` prints them as JSON lines, one object per event with `seq`, `at`, `type`.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spec::{Role, RunStatus, StepSpec, StepStatus};

/// One entry of a run's journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// 1, 2, 3, … within the run, without gaps.
    pub seq: u64,
    /// When it happened, RFC 3339 UTC with milliseconds.
    pub at: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A limit was reached before a call; the run ends `budget_exhausted`.
    BudgetExhausted {
        /// `max_llm_calls`, `max_tokens`, `max_cost_usd` or `timeout`.
        limit: String,
        /// The limit's value (calls, tokens, dollars or seconds).
        max: f64,
        /// Set for a `budget.per_role` limit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<Role>,
        /// Spent so far, in the limit's unit.
        used: f64,
        /// What the refused call would have needed (absent for `timeout`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        needed: Option<f64>,
    },
    /// One model call, successful or not.
    LlmCall {
        /// HTTP attempts the call took (absent when 1); each failed one has an `llm_retry`.
        #[serde(default = "one", skip_serializing_if = "is_one")]
        attempts: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        input_tokens: u64,
        latency_ms: f64,
        /// `provider/model`.
        model: String,
        output_tokens: u64,
        role: Role,
        /// The step an executor call belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
    },
    /// A failed attempt inside a model call that is retried (rate limit, server error,
    /// timeout, malformed body). It uses no budget; the call's `llm_call` follows.
    LlmRetry {
        /// The attempt that failed (1 for the first).
        attempt: u32,
        /// The wait before the next attempt (the server's `Retry-After` when it sent one).
        delay_ms: u64,
        error: String,
        /// `provider/model`.
        model: String,
        role: Role,
        /// The HTTP status, when the server answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
    },
    PlanApproved {
        /// `policy` (the workflow does not ask), `flag` (`--yes`, `pe resume --approve`) or
        /// `user` (answered at the terminal).
        by: String,
        /// The plan as the user edited it before approving: it replaces the steps that have
        /// not started (absent when the plan was approved as proposed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        steps: Option<Vec<StepSpec>>,
    },
    PlanCreated {
        /// Planner calls it took (0 for a fixed plan).
        attempts: u32,
        /// `fixed` or `planner`.
        source: String,
        steps: Vec<StepSpec>,
    },
    /// A replanner decision.
    Replanned {
        /// `finish`, `continue`, `revise` or `abort`.
        decision: Decision,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// For `revise`: the new remaining steps.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        steps: Vec<StepSpec>,
        /// Why the replanner was asked: `on_failure`, `after_each_step` or `after_plan`.
        trigger: String,
    },
    RunFinished {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
        /// Why the run did not complete.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        status: RunStatus,
        usage: UsageTotals,
    },
    RunStarted {
        inputs: Value,
        /// `provider/model` per role.
        models: IndexMap<Role, String>,
        path: String,
        run_id: String,
        task: String,
        workflow: String,
        /// SHA-256 of the workflow file as run: `pe resume` refuses a changed file unless
        /// forced.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflow_sha256: Option<String>,
    },
    /// `pe resume` continued the run (after a crash, or with an approval decision).
    RunResumed {
        /// Steps that were running when the process stopped: they start again.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        retried: Vec<String>,
    },
    /// A provider moved to another structured-output mode for the rest of the run because
    /// its server refused one (`structured_output: auto`). Changes no state.
    StructuredOutputFallback {
        /// The refused mode: `json_schema` or `json_object`.
        from: String,
        /// `provider/model` of the call that was refused.
        model: String,
        /// The provider name as written (`openai`, or a key of `providers:`).
        provider: String,
        /// The server's message.
        reason: String,
        role: Role,
        /// The HTTP status of the refusal.
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        /// The mode used from now on: `json_object` or `prompt`.
        to: String,
    },
    StepFinished {
        attempt: u32,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<String>,
        status: StepStatus,
        step: String,
    },
    StepStarted {
        /// 1 for the first try, 2 for the first retry, …
        attempt: u32,
        step: String,
    },
    ToolCall {
        arguments: Value,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        name: String,
        /// `ok`, `error` (the tool failed) or `rejected` (unknown tool or invalid arguments;
        /// nothing ran).
        outcome: ToolOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
        step: String,
    },
}

impl EventKind {
    /// The `type` name of the event.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::BudgetExhausted { .. } => "budget_exhausted",
            EventKind::LlmCall { .. } => "llm_call",
            EventKind::LlmRetry { .. } => "llm_retry",
            EventKind::PlanApproved { .. } => "plan_approved",
            EventKind::PlanCreated { .. } => "plan_created",
            EventKind::Replanned { .. } => "replanned",
            EventKind::RunFinished { .. } => "run_finished",
            EventKind::RunResumed { .. } => "run_resumed",
            EventKind::RunStarted { .. } => "run_started",
            EventKind::StepFinished { .. } => "step_finished",
            EventKind::StructuredOutputFallback { .. } => "structured_output_fallback",
            EventKind::StepStarted { .. } => "step_started",
            EventKind::ToolCall { .. } => "tool_call",
        }
    }
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Abort,
    Continue,
    Finish,
    Revise,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Abort => "abort",
            Decision::Continue => "continue",
            Decision::Finish => "finish",
            Decision::Revise => "revise",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolOutcome {
    Error,
    Ok,
    Rejected,
}

/// Calls, tokens and cost, for the run and per role.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotals {
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub llm_calls: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub per_role: IndexMap<Role, RoleUsage>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleUsage {
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub llm_calls: u64,
    pub output_tokens: u64,
}

impl RoleUsage {
    pub fn tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

impl UsageTotals {
    pub fn tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    /// Adds one call.
    pub fn add(&mut self, role: Role, input_tokens: u64, output_tokens: u64, cost_usd: f64) {
        self.llm_calls += 1;
        self.input_tokens += input_tokens;
        self.output_tokens += output_tokens;
        self.cost_usd += cost_usd;
        let r = self.per_role.entry(role).or_default();
        r.llm_calls += 1;
        r.input_tokens += input_tokens;
        r.output_tokens += output_tokens;
        r.cost_usd += cost_usd;
    }

    pub fn role(&self, role: Role) -> RoleUsage {
        self.per_role.get(&role).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_serialize_flat_with_their_type() {
        let e = Event {
            at: "2026-11-03T12:00:00.000Z".into(),
            kind: EventKind::StepStarted {
                attempt: 1,
                step: "ci".into(),
            },
            seq: 4,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            json!({"seq": 4, "at": "2026-11-03T12:00:00.000Z", "type": "step_started", "attempt": 1, "step": "ci"})
        );
        assert_eq!(serde_json::from_value::<Event>(v).unwrap(), e);
    }
}
