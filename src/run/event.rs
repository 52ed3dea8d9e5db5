//! Journal events (SPEC §5). Names and fields are part of the product contract: `pe show
//! RUN --json` prints them as JSON lines, one object per event with `seq`, `at`, `type`.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spec::{ReplanTrigger, Role, RunStatus, StepSpec, StepStatus};

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
        limit: Limit,
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
        /// Of `input_tokens`, those read from the provider's prompt cache (absent when 0).
        #[serde(default, skip_serializing_if = "is_zero")]
        cached_input_tokens: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// The tokens are an estimate (the call was cut off, or the server reported none).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        estimated: bool,
        input_tokens: u64,
        latency_ms: f64,
        /// `provider/model`.
        model: String,
        output_tokens: u64,
        /// Requests the model answered for this call (absent when 1; prompt-mode re-asks of a
        /// structured answer make more). Budgets count each.
        #[serde(default = "one", skip_serializing_if = "is_one")]
        requests: u32,
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
        /// Failed steps whose failure this decision accepts (`revise` and `finish` accept
        /// every failure the replanner was shown; `continue` accepts none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        accepted: Vec<String>,
        /// `finish`, `continue`, `revise` or `abort`.
        decision: Decision,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// For `revise`: the new remaining steps.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        steps: Vec<StepSpec>,
        /// Why the replanner was asked: `on_failure`, `after_each_step` or `after_plan`.
        trigger: ReplanTrigger,
    },
    RunFinished {
        /// Why the run ended, as a stable code (the `reason` says it in words).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<EndCause>,
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
        /// For a child run (a workflow tool's call): the run, step and tool that started it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<ParentRef>,
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
        /// For a failed attempt: what the failure policy does next (absent when the run is
        /// ending anyway: a budget, the run's timeout, an interruption).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        then: Option<FailureThen>,
    },
    StepStarted {
        /// 1 for the first try, 2 for the first retry, …
        attempt: u32,
        step: String,
    },
    /// A tool is about to run: committed before it runs, so a resumed run knows which side
    /// effects may have happened (a `tool_started` without its `tool_call`).
    ToolStarted {
        arguments: Value,
        /// The attempt of the step the call belongs to.
        attempt: u32,
        /// 1 for the step attempt's first tool call, 2 for the next, …
        call: u32,
        /// Passed to the tool (`PE_IDEMPOTENCY_KEY`, `Idempotency-Key`): the same for the
        /// same call of the same attempt when a resumed run makes it again.
        idempotency_key: String,
        name: String,
        step: String,
    },
    ToolCall {
        arguments: Value,
        /// For a workflow tool: the child run the call started (or resumed, or reused).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        child_run: Option<String>,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// The key of the `tool_started` event this ends (absent for a rejected call: nothing
        /// started).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<String>,
        name: String,
        /// `ok`, `error` (the tool failed) or `rejected` (unknown tool or invalid arguments;
        /// nothing ran).
        outcome: ToolOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
        step: String,
        /// For a workflow tool: what its child run spent (its model calls count against
        /// this run's budgets and totals).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<UsageTotals>,
    },
    /// An MCP server's process (or connection) was closed at the end of the run.
    McpClosed {
        /// `exited with code 1`, … when the server had exited by itself before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exited: Option<String>,
        /// The end of its stderr (at most 8 KiB).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        stderr: String,
        /// The `mcp` entry.
        tool: String,
    },
    /// An MCP server was started and initialized, and its tools listed.
    McpConnected {
        duration_ms: u64,
        /// `name version` as the server introduced itself.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        server: String,
        /// Listed tools left out, with why.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skipped: Vec<String>,
        /// The `mcp` entry.
        tool: String,
        /// The tools it added, as the run names them.
        tools: Vec<String>,
        /// `stdio` or `http`.
        transport: String,
    },
    /// An MCP server could not be started: the run ends `failed`.
    McpFailed {
        error: String,
        /// The `mcp` entry.
        tool: String,
    },
}

/// The run that started a child run, and where.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParentRef {
    pub run: String,
    pub step: String,
    /// The workflow tool.
    pub tool: String,
}

impl EventKind {
    /// The `type` name of the event.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::BudgetExhausted { .. } => "budget_exhausted",
            EventKind::LlmCall { .. } => "llm_call",
            EventKind::LlmRetry { .. } => "llm_retry",
            EventKind::McpClosed { .. } => "mcp_closed",
            EventKind::McpConnected { .. } => "mcp_connected",
            EventKind::McpFailed { .. } => "mcp_failed",
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
            EventKind::ToolStarted { .. } => "tool_started",
        }
    }
}

fn one() -> u32 {
    1
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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

/// A budget limit (`budget.*`, `budget.per_role.ROLE.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    MaxCostUsd,
    /// Counts requests the models answered.
    MaxLlmCalls,
    MaxTokens,
    Timeout,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MaxCostUsd => "max_cost_usd",
            Limit::MaxLlmCalls => "max_llm_calls",
            Limit::MaxTokens => "max_tokens",
            Limit::Timeout => "timeout",
        }
    }

    /// The limit reached, in words: `budget.max_tokens (100) reached: 90 used, the next call
    /// needs 20`. One wording for the error, the journal's fold and the run's reason.
    pub fn describe(self, role: Option<Role>, max: f64, used: f64, needed: Option<f64>) -> String {
        let scope = match role {
            Some(r) => format!("budget.per_role.{}.{}", r.as_str(), self.as_str()),
            None => format!("budget.{}", self.as_str()),
        };
        match self {
            Limit::Timeout => format!(
                "{scope} ({}) reached",
                crate::duration::Duration(
                    std::time::Duration::try_from_secs_f64(max).unwrap_or_default()
                )
            ),
            Limit::MaxLlmCalls => format!(
                "{scope} ({max}) reached: {used} used, the next call needs {}",
                needed.unwrap_or(1.0)
            ),
            Limit::MaxCostUsd => format!(
                "{scope} (${max}) reached: ${used:.6} spent, the next call needs ${:.6}",
                needed.unwrap_or(0.0)
            ),
            Limit::MaxTokens => format!(
                "{scope} ({max}) reached: {used} used, the next call needs {}",
                needed.unwrap_or(0.0)
            ),
        }
    }
}

/// What happens after a failed step attempt (`step_finished.then`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureThen {
    /// `on_step_failure.then: abort`: the run ends `aborted` once running steps finish.
    Abort,
    /// The policy says `replan` but replanning is off (`replan.when: never`): the run ends
    /// `failed`.
    Fail,
    /// Retrying cannot help (a model refused the request, a scripted replies file ran out, a
    /// prompt did not render): the run ends `failed`.
    Fatal,
    /// The replanner decides (`on_step_failure.then: replan`).
    Replan,
    /// Another attempt follows (`on_step_failure.retries`); the step is pending again.
    Retry,
    /// `on_step_failure.then: skip`: the failure is accepted by policy and the step's
    /// dependents are skipped.
    Skip,
}

impl FailureThen {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureThen::Abort => "abort",
            FailureThen::Fail => "fail",
            FailureThen::Fatal => "fatal",
            FailureThen::Replan => "replan",
            FailureThen::Retry => "retry",
            FailureThen::Skip => "skip",
        }
    }
}

/// Why a run ended (`run_finished.cause`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndCause {
    /// The plan was made and the run waits for a decision on it.
    AwaitingApproval,
    /// A budget limit (`max_llm_calls`, `max_tokens`, `max_cost_usd`) refused a call.
    Budget,
    /// Every step succeeded or its failure was accepted; the synthesizer answered.
    Completed,
    /// Retrying cannot help: a model refused the request (a bad key, an unknown model), a
    /// scripted replies file ran out, a prompt did not render.
    Fatal,
    /// `replan.max_replans` revisions were used and the replanner asked for another.
    MaxReplans,
    /// A model call kept failing after the provider's retries (the server could not be
    /// reached, or kept answering with errors).
    ModelFailed,
    /// No step succeeded: there is nothing to answer from.
    NothingSucceeded,
    /// The planner gave no valid plan in `plan.max_attempts` calls.
    PlanInvalid,
    /// The plan was rejected.
    Rejected,
    /// The replanner aborted the run.
    ReplannerAborted,
    /// The replanner gave no valid decision.
    ReplannerInvalid,
    /// A step failed and `on_step_failure.then: abort` ended the run.
    StepAborted,
    /// A step failed and nothing accepted the failure (no `then: skip`, no `revise` or
    /// `finish` decision after it).
    StepsFailed,
    /// The final answer did not match `output.schema` after the repairs.
    SynthesisInvalid,
    /// `budget.timeout` was reached.
    Timeout,
}

impl EndCause {
    pub fn as_str(self) -> &'static str {
        match self {
            EndCause::AwaitingApproval => "awaiting_approval",
            EndCause::Budget => "budget",
            EndCause::Completed => "completed",
            EndCause::Fatal => "fatal",
            EndCause::MaxReplans => "max_replans",
            EndCause::ModelFailed => "model_failed",
            EndCause::NothingSucceeded => "nothing_succeeded",
            EndCause::PlanInvalid => "plan_invalid",
            EndCause::Rejected => "rejected",
            EndCause::ReplannerAborted => "replanner_aborted",
            EndCause::ReplannerInvalid => "replanner_invalid",
            EndCause::StepAborted => "step_aborted",
            EndCause::StepsFailed => "steps_failed",
            EndCause::SynthesisInvalid => "synthesis_invalid",
            EndCause::Timeout => "timeout",
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

/// Calls, requests, tokens and cost, for the run and per role.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotals {
    /// Of `input_tokens`, those read from providers' prompt caches.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached_input_tokens: u64,
    pub cost_usd: f64,
    pub input_tokens: u64,
    /// Model calls the engine made (a planner attempt, an executor turn, …).
    pub llm_calls: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub per_role: IndexMap<Role, RoleUsage>,
    /// Some call had a price, so `cost_usd` means something (else it is 0 for lack of
    /// prices, not because the run was free).
    #[serde(default)]
    pub priced: bool,
    /// Requests the models answered: at least one per call, more when a provider re-asks
    /// inside a call. `budget.max_llm_calls` counts these.
    #[serde(default)]
    pub requests: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleUsage {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached_input_tokens: u64,
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub llm_calls: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub requests: u64,
}

impl RoleUsage {
    pub fn tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    fn add(&mut self, requests: u32, input_tokens: u64, output_tokens: u64, cost_usd: f64) {
        // Saturating: a server may report absurd counts, and a journal is read back as is.
        self.llm_calls = self.llm_calls.saturating_add(1);
        self.requests = self.requests.saturating_add(u64::from(requests));
        self.input_tokens = self.input_tokens.saturating_add(input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(output_tokens);
        self.cost_usd += cost_usd;
    }
}

impl UsageTotals {
    pub fn tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Adds one call that took `requests` requests.
    pub fn add(
        &mut self,
        role: Role,
        requests: u32,
        input_tokens: u64,
        output_tokens: u64,
        cost_usd: f64,
    ) {
        self.llm_calls = self.llm_calls.saturating_add(1);
        self.requests = self.requests.saturating_add(u64::from(requests));
        self.input_tokens = self.input_tokens.saturating_add(input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(output_tokens);
        self.cost_usd += cost_usd;
        self.per_role
            .entry(role)
            .or_default()
            .add(requests, input_tokens, output_tokens, cost_usd);
    }

    /// Adds input tokens a call of `role` read from the provider's prompt cache.
    pub fn add_cached(&mut self, role: Role, cached: u64) {
        self.cached_input_tokens = self.cached_input_tokens.saturating_add(cached);
        let r = self.per_role.entry(role).or_default();
        r.cached_input_tokens = r.cached_input_tokens.saturating_add(cached);
    }

    pub fn role(&self, role: Role) -> RoleUsage {
        self.per_role.get(&role).copied().unwrap_or_default()
    }

    /// Adds everything `other` counts (a child run's usage).
    pub fn merge(&mut self, other: &UsageTotals) {
        self.cost_usd += other.cost_usd;
        self.input_tokens += other.input_tokens;
        self.llm_calls += other.llm_calls;
        self.output_tokens += other.output_tokens;
        self.priced |= other.priced;
        self.requests += other.requests;
        for (role, usage) in &other.per_role {
            let mine = self.per_role.entry(*role).or_default();
            mine.cost_usd += usage.cost_usd;
            mine.input_tokens += usage.input_tokens;
            mine.llm_calls += usage.llm_calls;
            mine.output_tokens += usage.output_tokens;
            mine.requests += usage.requests;
        }
    }

    /// Takes away what [`UsageTotals::merge`] added (a reservation released).
    pub fn subtract(&mut self, other: &UsageTotals) {
        self.cost_usd = (self.cost_usd - other.cost_usd).max(0.0);
        self.input_tokens = self.input_tokens.saturating_sub(other.input_tokens);
        self.llm_calls = self.llm_calls.saturating_sub(other.llm_calls);
        self.output_tokens = self.output_tokens.saturating_sub(other.output_tokens);
        self.requests = self.requests.saturating_sub(other.requests);
        for (role, usage) in &other.per_role {
            if let Some(mine) = self.per_role.get_mut(role) {
                mine.cost_usd = (mine.cost_usd - usage.cost_usd).max(0.0);
                mine.input_tokens = mine.input_tokens.saturating_sub(usage.input_tokens);
                mine.llm_calls = mine.llm_calls.saturating_sub(usage.llm_calls);
                mine.output_tokens = mine.output_tokens.saturating_sub(usage.output_tokens);
                mine.requests = mine.requests.saturating_sub(usage.requests);
            }
        }
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
