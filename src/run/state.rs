//! [`RunState`]: a run as a fold over its events. The engine folds the events it emits, the
//! progress view and `pe show` fold the ones they read, so they all see the same run.

use indexmap::IndexMap;
use serde_json::Value;

use crate::run::event::{Decision, Event, EventKind, ToolOutcome, UsageTotals};
use crate::spec::{Role, RunStatus, StepSpec, StepStatus};

/// Everything known about a run after some prefix of its events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunState {
    /// The plan (or its latest revision) was made and not approved yet. Whether a revision
    /// needs approval is the workflow's `plan.approve`; the first plan always gets a
    /// `plan_approved` event (`by: policy` when nobody is asked).
    pub approval_pending: bool,
    /// Set once the plan was approved (by policy, `--yes` or the user).
    pub approved_by: Option<String>,
    pub budget_exhausted: Option<BudgetHit>,
    pub finished: Option<Finished>,
    pub finished_at: Option<String>,
    pub inputs: Value,
    /// Sequence number of the last event folded in.
    pub last_seq: u64,
    pub models: IndexMap<Role, String>,
    pub path: String,
    /// `fixed` or `planner`, once a plan exists.
    pub plan_source: Option<String>,
    /// Revisions of the plan (`revise` decisions).
    pub replans: u32,
    /// Every replanner decision, in order.
    pub decisions: Vec<Decision>,
    /// The latest replanner decision while no step has started since (what a resumed run
    /// must act on before scheduling: `finish`, `abort`, an `after_plan` `continue`).
    pub open_decision: Option<OpenDecision>,
    /// Every step of the plan before the latest revision (for showing the revision as a
    /// diff).
    pub previous_plan: Vec<StepSpec>,
    /// A reason to ask the replanner that no decision has answered yet (for a resumed run).
    pub replan_due: Option<ReplanDue>,
    /// How often `pe resume` continued the run.
    pub resumes: u32,
    pub run_id: String,
    pub started_at: String,
    /// Steps in plan order; steps a revision dropped before they ran are removed.
    pub steps: IndexMap<String, StepRecord>,
    pub task: String,
    /// Runs per tool name (calls rejected for an unknown tool or invalid arguments do not
    /// count: nothing ran).
    pub tool_calls: IndexMap<String, u32>,
    pub usage: UsageTotals,
    pub workflow: String,
    pub workflow_sha256: Option<String>,
}

/// A replanner decision the run has not acted on yet.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenDecision {
    pub decision: Decision,
    pub reason: Option<String>,
    /// `on_failure`, `after_each_step` or `after_plan`.
    pub trigger: String,
}

/// Why the replanner would be asked next, as far as the events tell. The workflow's
/// `replan` policy decides whether it actually is.
#[derive(Clone, Debug, PartialEq)]
pub enum ReplanDue {
    /// A step succeeded (relevant with `when: after_each_step`).
    AfterEachStep,
    /// A step attempt failed (relevant once its retries are spent).
    OnFailure { error: String, step: String },
}

/// One step's current state.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRecord {
    pub attempts: u32,
    pub duration_ms: Option<u64>,
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
}

#[derive(Clone, Debug, PartialEq)]
pub struct BudgetHit {
    pub limit: String,
    pub max: f64,
    pub role: Option<Role>,
    pub used: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    pub output: Option<Value>,
    pub reason: Option<String>,
    pub status: RunStatus,
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

    /// Ids of steps that have not started.
    pub fn pending(&self) -> impl Iterator<Item = &StepRecord> {
        self.steps
            .values()
            .filter(|s| s.status == StepStatus::Pending)
    }

    /// Folds one event in.
    pub fn apply(&mut self, event: &Event) {
        self.last_seq = event.seq;
        match &event.kind {
            EventKind::RunStarted {
                inputs,
                models,
                path,
                run_id,
                task,
                workflow,
                workflow_sha256,
            } => {
                self.workflow_sha256 = workflow_sha256.clone();
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
                if matches!(&self.replan_due, Some(ReplanDue::OnFailure { step: s, .. }) if s == step)
                {
                    self.replan_due = None;
                }
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
                ..
            } => {
                match status {
                    StepStatus::Succeeded if self.replan_due.is_none() => {
                        self.replan_due = Some(ReplanDue::AfterEachStep);
                    }
                    StepStatus::Failed
                        if !matches!(self.replan_due, Some(ReplanDue::OnFailure { .. })) =>
                    {
                        self.replan_due = Some(ReplanDue::OnFailure {
                            error: error.clone().unwrap_or_default(),
                            step: step.clone(),
                        });
                    }
                    _ => {}
                }
                if let Some(s) = self.steps.get_mut(step) {
                    s.duration_ms = Some(*duration_ms);
                    s.error = error.clone();
                    s.finished_at = Some(event.at.clone());
                    s.result = result.clone();
                    s.status = *status;
                }
            }
            EventKind::LlmCall {
                cost_usd,
                input_tokens,
                output_tokens,
                role,
                ..
            } => {
                self.usage.add(
                    *role,
                    *input_tokens,
                    *output_tokens,
                    cost_usd.unwrap_or(0.0),
                );
            }
            // Retries are visible in the journal; they change no state and use no budget.
            EventKind::LlmRetry { .. } => {}
            // A provider's structured-output switch is a note for the user, not run state.
            EventKind::StructuredOutputFallback { .. } => {}
            EventKind::ToolCall { name, outcome, .. } => {
                if *outcome != ToolOutcome::Rejected {
                    *self.tool_calls.entry(name.clone()).or_default() += 1;
                }
            }
            EventKind::Replanned {
                decision,
                reason,
                steps,
                trigger,
            } => {
                self.decisions.push(*decision);
                self.replan_due = None;
                self.open_decision = Some(OpenDecision {
                    decision: *decision,
                    reason: reason.clone(),
                    trigger: trigger.clone(),
                });
                if *decision == Decision::Revise {
                    self.replans += 1;
                    self.previous_plan = self.steps.values().map(|s| s.spec.clone()).collect();
                    self.approval_pending = true;
                    self.replace_pending(steps);
                }
            }
            EventKind::BudgetExhausted {
                limit,
                max,
                role,
                used,
                ..
            } => {
                self.budget_exhausted = Some(BudgetHit {
                    limit: limit.clone(),
                    max: *max,
                    role: *role,
                    used: *used,
                });
            }
            EventKind::RunFinished {
                output,
                reason,
                status,
                ..
            } => {
                self.finished = Some(Finished {
                    output: output.clone(),
                    reason: reason.clone(),
                    status: *status,
                });
                self.finished_at = Some(event.at.clone());
            }
        }
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
                },
            ),
            ev(
                6,
                EventKind::Replanned {
                    decision: Decision::Revise,
                    reason: None,
                    steps: vec![step("fix"), step("c")],
                    trigger: "on_failure".into(),
                },
            ),
            ev(
                7,
                EventKind::LlmCall {
                    attempts: 1,
                    cost_usd: Some(0.5),
                    error: None,
                    input_tokens: 3,
                    latency_ms: 0.0,
                    model: "scripted/x".into(),
                    output_tokens: 4,
                    role: Role::Replanner,
                    step: None,
                },
            ),
            ev(
                8,
                EventKind::RunFinished {
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
        assert_eq!(s.steps["c"].status, StepStatus::Pending);
        assert_eq!(s.replans, 1);
        assert_eq!(s.usage.tokens(), 7);
        assert_eq!(s.usage.role(Role::Replanner).llm_calls, 1);
        assert_eq!(s.status(), Some(RunStatus::Completed));
        assert_eq!(s.last_seq, 8);
    }
}
