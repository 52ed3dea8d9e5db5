//! [`RunState`]: a run as a fold over its events. The engine folds the events it emits, the
//! progress view and `pe show` fold the ones they read, so they all see the same run.

use indexmap::IndexMap;
use serde_json::Value;

use crate::run::event::{
    Decision, EndCause, Event, EventKind, FailureThen, Limit, ParentRef, ToolOutcome, UsageTotals,
};
use crate::spec::{ReplanTrigger, Role, RunStatus, StepSpec, StepStatus};

/// Everything known about a run after some prefix of its events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunState {
    /// The plan (or its latest revision) was made and not approved yet. Whether a revision
    /// needs approval is the workflow's `plan.approve`; the first plan always gets a
    /// `plan_approved` event (`by: policy` when nobody is asked).
    pub approval_pending: bool,
    /// The run stopped to wait for a decision on its plan (`--plan-only`, or nobody could
    /// approve it): whoever continues it must decide, whatever `plan.approve` says.
    pub approval_requested: bool,
    /// Set once the plan was approved (by policy, `--yes` or the user).
    pub approved_by: Option<String>,
    pub budget_exhausted: Option<BudgetHit>,
    /// Every replanner decision, in order.
    pub decisions: Vec<Decision>,
    /// A step failure the replanner must decide about (`then: replan`) and has not yet.
    pub due_failure: Option<DueFailure>,
    pub finished: Option<Finished>,
    pub finished_at: Option<String>,
    pub inputs: Value,
    /// Sequence number of the last event folded in.
    pub last_seq: u64,
    pub models: IndexMap<Role, String>,
    /// The latest replanner decision while no step has started since (what the run must
    /// act on before scheduling: `finish`, `abort`, an `after_plan` `continue`).
    pub open_decision: Option<OpenDecision>,
    /// For a child run: the run (and step and tool) that started it.
    pub parent: Option<ParentRef>,
    pub path: String,
    /// `fixed` or `planner`, once a plan exists.
    pub plan_source: Option<String>,
    /// Every step of the plan before the latest revision (for showing the revision as a
    /// diff).
    pub previous_plan: Vec<StepSpec>,
    /// Revisions of the plan (`revise` decisions).
    pub replans: u32,
    /// How often `pe resume` continued the run.
    pub resumes: u32,
    pub run_id: String,
    pub started_at: String,
    /// Steps in plan order; steps a revision dropped before they ran are removed.
    pub steps: IndexMap<String, StepRecord>,
    /// The run is bound to end this way once running steps finish (a step's failure policy
    /// said `abort` or `fail`, the replanner aborted, a budget ran out).
    pub stopping: Option<Ending>,
    /// A step succeeded since the replanner was last asked (`replan.when: after_each_step`
    /// reviews it).
    pub succeeded_since_decision: bool,
    pub task: String,
    /// Runs per tool name (calls rejected for an unknown tool or invalid arguments do not
    /// count: nothing ran).
    pub tool_calls: IndexMap<String, u32>,
    /// Tools that were started and whose end is not journaled (by idempotency key): after a
    /// crash, their side effects may or may not have happened.
    pub tools_in_flight: IndexMap<String, ToolInFlight>,
    pub usage: UsageTotals,
    pub workflow: String,
    pub workflow_sha256: Option<String>,
}

/// A replanner decision the run has not acted on yet.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenDecision {
    pub decision: Decision,
    pub reason: Option<String>,
    pub trigger: ReplanTrigger,
}

/// A failed step waiting for the replanner's decision.
#[derive(Clone, Debug, PartialEq)]
pub struct DueFailure {
    pub error: String,
    pub step: String,
}

/// How a run that is stopping will end.
#[derive(Clone, Debug, PartialEq)]
pub struct Ending {
    pub cause: EndCause,
    pub reason: String,
    pub status: RunStatus,
}

/// A tool call journaled as started and not (yet) as ended.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolInFlight {
    pub arguments: Value,
    pub name: String,
    pub step: String,
}

/// Who accepted a step's failure, so the run can still complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acceptance {
    /// `on_step_failure.then: skip`.
    Policy,
    /// A `revise` or `finish` decision made after the failure.
    Replanner,
}

impl Acceptance {
    pub fn as_str(self) -> &'static str {
        match self {
            Acceptance::Policy => "policy",
            Acceptance::Replanner => "replanner",
        }
    }
}

/// One step's current state.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRecord {
    /// For a failed step: whether (and by whom) its failure was accepted.
    pub accepted: Option<Acceptance>,
    /// Attempts started so far (a pending step with attempts > 0 waits for its retry).
    pub attempts: u32,
    pub duration_ms: Option<u64>,
    /// The last attempt's error (kept while the step waits for a retry).
    pub error: Option<String>,
    pub finished_at: Option<String>,
    pub result: Option<String>,
    pub spec: StepSpec,
    pub started_at: Option<String>,
    pub status: StepStatus,
}

impl StepRecord {
    fn pending(spec: StepSpec) -> StepRecord {
        StepRecord {
            accepted: None,
            attempts: 0,
            duration_ms: None,
            error: None,
            finished_at: None,
            result: None,
            spec,
            started_at: None,
            status: StepStatus::Pending,
        }
    }

    /// Failed, and nothing accepted the failure: the run cannot complete.
    pub fn failed_unaccepted(&self) -> bool {
        self.status == StepStatus::Failed && self.accepted.is_none()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct BudgetHit {
    pub limit: Limit,
    pub max: f64,
    pub role: Option<Role>,
    pub used: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    pub cause: Option<EndCause>,
    pub output: Option<Value>,
    pub reason: Option<String>,
    pub status: RunStatus,
}

/// Steps by final state, for summaries (`--json`, `pe runs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StepCounts {
    /// Failed steps whose failure a policy or a replanner decision accepted (included in
    /// `failed`).
    pub accepted: usize,
    pub failed: usize,
    pub pending: usize,
    pub skipped: usize,
    pub succeeded: usize,
    pub total: usize,
}

impl RunState {
    /// Folds a whole journal.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> RunState {
        let mut state = RunState::default();
        for e in events {
            state.apply(e);
        }
        state
    }

    /// The run's status: terminal once finished, else `None` (running or interrupted).
    pub fn status(&self) -> Option<RunStatus> {
        self.finished.as_ref().map(|f| f.status)
    }

    pub fn step(&self, id: &str) -> Option<&StepRecord> {
        self.steps.get(id)
    }

    /// Steps that have not started (or wait for a retry).
    pub fn pending(&self) -> impl Iterator<Item = &StepRecord> {
        self.steps
            .values()
            .filter(|s| s.status == StepStatus::Pending)
    }

    /// Steps running now.
    pub fn running(&self) -> impl Iterator<Item = &StepRecord> {
        self.steps
            .values()
            .filter(|s| s.status == StepStatus::Running)
    }

    /// Ids of the steps that succeeded.
    pub fn succeeded_ids(&self) -> Vec<String> {
        self.steps
            .values()
            .filter(|s| s.status == StepStatus::Succeeded)
            .map(|s| s.spec.id.clone())
            .collect()
    }

    /// Steps by state.
    pub fn counts(&self) -> StepCounts {
        let mut c = StepCounts {
            total: self.steps.len(),
            ..StepCounts::default()
        };
        for s in self.steps.values() {
            match s.status {
                StepStatus::Succeeded => c.succeeded += 1,
                StepStatus::Failed => {
                    c.failed += 1;
                    if s.accepted.is_some() {
                        c.accepted += 1;
                    }
                }
                StepStatus::Skipped => c.skipped += 1,
                StepStatus::Pending | StepStatus::Running => c.pending += 1,
            }
        }
        c
    }

    /// Folds one event in.
    pub fn apply(&mut self, event: &Event) {
        self.last_seq = event.seq;
        match &event.kind {
            EventKind::RunStarted {
                inputs,
                models,
                parent,
                path,
                run_id,
                task,
                workflow,
                workflow_sha256,
            } => {
                self.workflow_sha256 = workflow_sha256.clone();
                self.parent = parent.clone();
                self.inputs = inputs.clone();
                self.models = models.clone();
                self.path = path.clone();
                self.run_id = run_id.clone();
                self.started_at = event.at.clone();
                self.task = task.clone();
                self.workflow = workflow.clone();
            }
            EventKind::PlanCreated { source, steps, .. } => {
                self.plan_source = Some(source.clone());
                self.approval_pending = true;
                self.steps = steps
                    .iter()
                    .map(|s| (s.id.clone(), StepRecord::pending(s.clone())))
                    .collect();
            }
            EventKind::PlanApproved { by, steps } => {
                self.approved_by = Some(by.clone());
                self.approval_pending = false;
                self.approval_requested = false;
                if let Some(edited) = steps {
                    self.replace_pending(edited);
                }
            }
            EventKind::RunResumed { retried } => {
                self.resumes += 1;
                self.finished = None;
                self.finished_at = None;
                for id in retried {
                    if let Some(s) = self.steps.get_mut(id)
                        && s.status == StepStatus::Running
                    {
                        // The interrupted attempt does not count: the retry is the same
                        // attempt again, so retry policies behave as in an uninterrupted run.
                        s.attempts = s.attempts.saturating_sub(1);
                        s.status = StepStatus::Pending;
                        s.started_at = None;
                    }
                }
            }
            EventKind::StepStarted { attempt, step } => {
                self.open_decision = None;
                if let Some(s) = self.steps.get_mut(step) {
                    s.attempts = *attempt;
                    s.status = StepStatus::Running;
                    s.started_at = Some(event.at.clone());
                    s.error = None;
                    s.result = None;
                }
            }
            EventKind::StepFinished {
                duration_ms,
                error,
                result,
                status,
                step,
                then,
                ..
            } => self.step_finished(event, step, *status, *then, result, error, *duration_ms),
            EventKind::LlmCall {
                cached_input_tokens,
                cost_usd,
                input_tokens,
                output_tokens,
                requests,
                role,
                ..
            } => {
                self.usage.add(
                    *role,
                    *requests,
                    *input_tokens,
                    *output_tokens,
                    cost_usd.unwrap_or(0.0),
                );
                if *cached_input_tokens > 0 {
                    self.usage.add_cached(*role, *cached_input_tokens);
                }
                self.usage.priced |= cost_usd.is_some();
            }
            // Retries are visible in the journal; they change no state and use no budget.
            // MCP servers' starts and ends are for diagnosis only.
            EventKind::LlmRetry { .. }
            | EventKind::McpClosed { .. }
            | EventKind::McpConnected { .. }
            | EventKind::McpFailed { .. } => {}
            // A provider's structured-output switch is a note for the user, not run state.
            EventKind::StructuredOutputFallback { .. } => {}
            EventKind::ToolStarted {
                arguments,
                idempotency_key,
                name,
                step,
                ..
            } => {
                self.tools_in_flight.insert(
                    idempotency_key.clone(),
                    ToolInFlight {
                        arguments: arguments.clone(),
                        name: name.clone(),
                        step: step.clone(),
                    },
                );
            }
            EventKind::ToolCall {
                idempotency_key,
                name,
                outcome,
                usage,
                ..
            } => {
                if let Some(key) = idempotency_key {
                    self.tools_in_flight.shift_remove(key);
                }
                if let Some(usage) = usage {
                    self.usage.merge(usage);
                }
                if *outcome != ToolOutcome::Rejected {
                    *self.tool_calls.entry(name.clone()).or_default() += 1;
                }
            }
            EventKind::Replanned {
                accepted,
                decision,
                reason,
                steps,
                trigger,
            } => {
                self.decisions.push(*decision);
                self.due_failure = None;
                self.succeeded_since_decision = false;
                self.open_decision = Some(OpenDecision {
                    decision: *decision,
                    reason: reason.clone(),
                    trigger: *trigger,
                });
                for id in accepted {
                    if let Some(s) = self.steps.get_mut(id)
                        && s.status == StepStatus::Failed
                    {
                        s.accepted.get_or_insert(Acceptance::Replanner);
                    }
                }
                match decision {
                    Decision::Revise => {
                        self.replans += 1;
                        self.previous_plan = self.steps.values().map(|s| s.spec.clone()).collect();
                        self.approval_pending = true;
                        self.replace_pending(steps);
                    }
                    Decision::Abort => {
                        self.stop(Ending {
                            cause: EndCause::ReplannerAborted,
                            reason: reason
                                .clone()
                                .unwrap_or_else(|| "the replanner aborted the run".into()),
                            status: RunStatus::Aborted,
                        });
                    }
                    Decision::Continue | Decision::Finish => {}
                }
            }
            EventKind::BudgetExhausted {
                limit,
                max,
                needed,
                role,
                used,
            } => {
                let cause = if *limit == Limit::Timeout {
                    EndCause::Timeout
                } else {
                    EndCause::Budget
                };
                self.stop(Ending {
                    cause,
                    reason: limit.describe(*role, *max, *used, *needed),
                    status: RunStatus::BudgetExhausted,
                });
                self.budget_exhausted = Some(BudgetHit {
                    limit: *limit,
                    max: *max,
                    role: *role,
                    used: *used,
                });
            }
            EventKind::RunFinished {
                cause,
                output,
                reason,
                status,
                ..
            } => {
                self.finished = Some(Finished {
                    cause: *cause,
                    output: output.clone(),
                    reason: reason.clone(),
                    status: *status,
                });
                self.finished_at = Some(event.at.clone());
                if *status == RunStatus::AwaitingApproval {
                    self.approval_requested = true;
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn step_finished(
        &mut self,
        event: &Event,
        step: &str,
        status: StepStatus,
        then: Option<FailureThen>,
        result: &Option<String>,
        error: &Option<String>,
        duration_ms: u64,
    ) {
        let Some(s) = self.steps.get_mut(step) else {
            return;
        };
        s.duration_ms = Some(duration_ms);
        s.error = error.clone();
        s.finished_at = Some(event.at.clone());
        s.result = result.clone();
        s.status = status;
        let failure = format!(
            "step `{step}` failed: {}",
            error.as_deref().unwrap_or("no reason given")
        );
        match (status, then) {
            (StepStatus::Succeeded, _) => self.succeeded_since_decision = true,
            // Another attempt follows: the step waits for it and blocks nothing.
            (StepStatus::Failed, Some(FailureThen::Retry)) => s.status = StepStatus::Pending,
            (StepStatus::Failed, Some(FailureThen::Skip)) => s.accepted = Some(Acceptance::Policy),
            (StepStatus::Failed, Some(FailureThen::Replan)) => {
                self.due_failure.get_or_insert(DueFailure {
                    error: error.clone().unwrap_or_default(),
                    step: step.to_string(),
                });
            }
            (StepStatus::Failed, Some(FailureThen::Abort)) => self.stop(Ending {
                cause: EndCause::StepAborted,
                reason: failure,
                status: RunStatus::Aborted,
            }),
            (StepStatus::Failed, Some(FailureThen::Fail)) => self.stop(Ending {
                cause: EndCause::StepsFailed,
                reason: failure,
                status: RunStatus::Failed,
            }),
            (StepStatus::Failed, Some(FailureThen::Fatal)) => self.stop(Ending {
                cause: EndCause::Fatal,
                reason: failure,
                status: RunStatus::Failed,
            }),
            _ => {}
        }
    }

    /// The first reason to stop wins.
    fn stop(&mut self, ending: Ending) {
        self.stopping.get_or_insert(ending);
    }

    /// A revision (or a plan edited at approval) replaces the steps that have not run;
    /// finished steps are kept, and a new step that reuses the id of a failed or skipped one
    /// replaces it.
    fn replace_pending(&mut self, steps: &[StepSpec]) {
        self.steps
            .retain(|id, s| s.status != StepStatus::Pending && !steps.iter().any(|n| &n.id == id));
        for s in steps {
            self.steps
                .insert(s.id.clone(), StepRecord::pending(s.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::event::UsageTotals;
    use serde_json::json;

    fn ev(seq: u64, kind: EventKind) -> Event {
        Event {
            at: format!("2026-11-03T12:00:{seq:02}.000Z"),
            kind,
            seq,
        }
    }

    fn step(id: &str) -> StepSpec {
        StepSpec {
            args: None,
            depends_on: vec![],
            description: format!("do {id}"),
            expected: None,
            id: id.into(),
            tool: None,
        }
    }

    #[test]
    fn revise_keeps_finished_steps_and_replaces_the_rest() {
        let events = [
            ev(
                1,
                EventKind::PlanCreated {
                    attempts: 1,
                    source: "planner".into(),
                    steps: vec![step("a"), step("b"), step("c")],
                },
            ),
            ev(
                2,
                EventKind::StepStarted {
                    attempt: 1,
                    step: "a".into(),
                },
            ),
            ev(
                3,
                EventKind::StepFinished {
                    attempt: 1,
                    duration_ms: 5,
                    error: None,
                    result: Some("A".into()),
                    status: StepStatus::Succeeded,
                    step: "a".into(),
                    then: None,
                },
            ),
            ev(
                4,
                EventKind::StepStarted {
                    attempt: 1,
                    step: "b".into(),
                },
            ),
            ev(
                5,
                EventKind::StepFinished {
                    attempt: 1,
                    duration_ms: 5,
                    error: Some("boom".into()),
                    result: None,
                    status: StepStatus::Failed,
                    step: "b".into(),
                    then: Some(FailureThen::Replan),
                },
            ),
            ev(
                6,
                EventKind::Replanned {
                    accepted: vec!["b".into()],
                    decision: Decision::Revise,
                    reason: None,
                    steps: vec![step("fix"), step("c")],
                    trigger: ReplanTrigger::OnFailure,
                },
            ),
            ev(
                7,
                EventKind::LlmCall {
                    attempts: 1,
                    cached_input_tokens: 0,
                    cost_usd: Some(0.5),
                    error: None,
                    estimated: false,
                    input_tokens: 3,
                    latency_ms: 0.0,
                    model: "scripted/x".into(),
                    output_tokens: 4,
                    requests: 1,
                    role: Role::Replanner,
                    step: None,
                },
            ),
            ev(
                8,
                EventKind::RunFinished {
                    cause: Some(EndCause::Completed),
                    output: Some(json!("done")),
                    reason: None,
                    status: RunStatus::Completed,
                    usage: UsageTotals::default(),
                },
            ),
        ];
        let s = RunState::from_events(&events);
        let ids: Vec<_> = s.steps.keys().map(String::as_str).collect();
        assert_eq!(ids, ["a", "b", "fix", "c"]);
        assert_eq!(s.steps["a"].result.as_deref(), Some("A"));
        assert_eq!(s.steps["b"].status, StepStatus::Failed);
        assert_eq!(s.steps["b"].accepted, Some(Acceptance::Replanner));
        assert_eq!(s.steps["c"].status, StepStatus::Pending);
        assert_eq!(s.replans, 1);
        assert_eq!(s.usage.tokens(), 7);
        assert_eq!(s.usage.role(Role::Replanner).llm_calls, 1);
        assert_eq!(s.status(), Some(RunStatus::Completed));
        assert_eq!(s.last_seq, 8);
    }
}
