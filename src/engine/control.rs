//! The run's state machine: from the folded state of a run (fresh, live or resumed from its
//! journal) and the workflow's policy, what happens next. This is the one place the
//! run-control rules live — the live scheduler asks it after every event, and a resumed run
//! asks it about the state its journal folds to, so a run continues after a crash exactly
//! as it would have without one. `docs/semantics.md` states the same rules in prose; the
//! simulation test (`tests/simulation/`) checks the engine against an independent model of
//! them.
//!
//! Nothing here does I/O or waits: [`next`] is a pure function, [`after_failure`] too.

use crate::run::event::{Decision, EndCause, FailureThen};
use crate::run::state::{Ending, RunState, StepRecord};
use crate::spec::{FailureAction, ReplanTrigger, RunStatus, StepSpec, StepStatus, WorkflowFile};

/// The parts of a workflow that steer a run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Policy {
    /// `plan.approve`: plans and revisions need someone's approval.
    pub approve: bool,
    /// Steps running at once (1 unless `plan.parallel`).
    pub concurrency: usize,
    /// `replan.when` includes `after_each_step` (and not `never`).
    pub review_each_step: bool,
    /// `replan.when` includes `after_plan` (and not `never`).
    pub review_plan: bool,
    /// `replan.when` is not `never`.
    pub replanner_on: bool,
    /// `on_step_failure.retries`.
    pub retries: u32,
    /// `on_step_failure.then`.
    pub then: FailureAction,
}

impl Policy {
    pub(crate) fn of(file: &WorkflowFile) -> Policy {
        let when = &file.replan.when;
        let replanner_on = !when.contains(ReplanTrigger::Never);
        Policy {
            approve: file.plan.approve,
            concurrency: if file.plan.parallel {
                file.plan.max_concurrency.max(1) as usize
            } else {
                1
            },
            review_each_step: replanner_on && when.contains(ReplanTrigger::AfterEachStep),
            review_plan: replanner_on && when.contains(ReplanTrigger::AfterPlan),
            replanner_on,
            retries: file.replan.on_step_failure.retries,
            then: file.replan.on_step_failure.then,
        }
    }
}

/// Why the replanner is asked.
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    AfterEachStep,
    AfterPlan,
    /// A step failed (after its retries) and `then: replan`.
    OnFailure {
        error: String,
        step: String,
    },
}

impl Trigger {
    /// The trigger as the workflow's `replan.when` names it (and the journal records it).
    pub fn kind(&self) -> ReplanTrigger {
        match self {
            Trigger::AfterEachStep => ReplanTrigger::AfterEachStep,
            Trigger::AfterPlan => ReplanTrigger::AfterPlan,
            Trigger::OnFailure { .. } => ReplanTrigger::OnFailure,
        }
    }
}

/// What the run does next.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Next {
    /// Ask the planner (or take the fixed plan).
    MakePlan,
    /// The plan, or its latest revision, needs a `plan_approved` event: `ask` a person (or
    /// the `--yes` flag), or approve it by policy.
    Approve {
        ask: bool,
    },
    /// Mark these pending steps skipped, with why.
    Skip(Vec<(String, String)>),
    /// Start these steps, each as the given attempt.
    Start(Vec<(StepSpec, u32)>),
    AskReplanner(Trigger),
    /// Wait for a running step to finish.
    Wait,
    /// Every step is settled and the run can complete: ask for the final answer.
    Synthesize,
    /// The run ends (once nothing runs).
    Finish(Ending),
}

/// What a failed attempt leads to (`step_finished.then`). `fatal`: retrying cannot help.
/// `None` never happens here: an attempt cut short because the run is ending gets no `then`.
pub(crate) fn after_failure(policy: &Policy, attempt: u32, fatal: bool) -> FailureThen {
    if fatal {
        FailureThen::Fatal
    } else if attempt <= policy.retries {
        FailureThen::Retry
    } else {
        match policy.then {
            FailureAction::Abort => FailureThen::Abort,
            FailureAction::Skip => FailureThen::Skip,
            FailureAction::Replan if policy.replanner_on => FailureThen::Replan,
            FailureAction::Replan => FailureThen::Fail,
        }
    }
}

/// The next thing the run does, from its state.
pub(crate) fn next(state: &RunState, policy: &Policy) -> Next {
    if state.plan_source.is_none() {
        return Next::MakePlan;
    }
    if state.approval_pending {
        let first = state.approved_by.is_none();
        let ask = policy.approve || state.approval_requested;
        // A revision needs a decision only where plans do; the first plan is always
        // recorded as approved (`by: policy` when nobody is asked).
        if first || ask {
            return Next::Approve { ask };
        }
    }
    let running = state.running().count();
    if let Some(ending) = &state.stopping {
        return if running > 0 {
            Next::Wait
        } else {
            Next::Finish(ending.clone())
        };
    }
    let finishing = state
        .open_decision
        .as_ref()
        .is_some_and(|d| d.decision == Decision::Finish);
    if finishing {
        let pending: Vec<(String, String)> = state
            .pending()
            .map(|s| {
                let why = "the replanner finished the run before this step";
                (s.spec.id.clone(), why.to_string())
            })
            .collect();
        return if !pending.is_empty() {
            Next::Skip(pending)
        } else if running > 0 {
            Next::Wait
        } else {
            verdict(state)
        };
    }
    let free = policy.concurrency.saturating_sub(running);
    // A retry follows its failure at once (it is the same step, its dependencies have
    // succeeded), ahead of reviews and of steps that have not started.
    let retries: Vec<(StepSpec, u32)> = state
        .pending()
        .filter(|s| s.attempts > 0)
        .take(free)
        .map(|s| (s.spec.clone(), s.attempts + 1))
        .collect();
    if !retries.is_empty() {
        return Next::Start(retries);
    }
    if state.pending().any(|s| s.attempts > 0) {
        return Next::Wait;
    }
    let trigger = if let Some(due) = &state.due_failure {
        Some(Trigger::OnFailure {
            error: due.error.clone(),
            step: due.step.clone(),
        })
    } else if policy.review_each_step && state.succeeded_since_decision {
        Some(Trigger::AfterEachStep)
    } else {
        None
    };
    if let Some(trigger) = trigger {
        // The replanner sees a settled plan: running steps finish, nothing new starts.
        return if running > 0 {
            Next::Wait
        } else {
            Next::AskReplanner(trigger)
        };
    }
    let blocked: Vec<(String, String)> = state
        .pending()
        .filter_map(|s| blocker(state, s).map(|why| (s.spec.id.clone(), why)))
        .collect();
    if !blocked.is_empty() {
        return Next::Skip(blocked);
    }
    let ready: Vec<(StepSpec, u32)> = state
        .pending()
        .filter(|s| {
            s.spec.depends_on.iter().all(|d| {
                state
                    .step(d)
                    .is_some_and(|d| d.status == StepStatus::Succeeded)
            })
        })
        .take(free)
        .map(|s| (s.spec.clone(), s.attempts + 1))
        .collect();
    if !ready.is_empty() {
        return Next::Start(ready);
    }
    if running > 0 {
        return Next::Wait;
    }
    // Settled: nothing runs and nothing can start.
    if let Some(stuck) = state.pending().next() {
        return Next::Finish(Ending {
            cause: EndCause::StepsFailed,
            reason: format!(
                "step `{}` can never start: its dependencies neither succeeded nor failed",
                stuck.spec.id
            ),
            status: RunStatus::Failed,
        });
    }
    let reviewed = state
        .open_decision
        .as_ref()
        .is_some_and(|d| d.trigger == ReplanTrigger::AfterPlan);
    if policy.review_plan && !reviewed {
        return Next::AskReplanner(Trigger::AfterPlan);
    }
    verdict(state)
}

/// Why a pending step can never run: a dependency failed, was skipped or is not in the plan.
fn blocker(state: &RunState, step: &StepRecord) -> Option<String> {
    step.spec
        .depends_on
        .iter()
        .find_map(|d| match state.step(d).map(|s| s.status) {
            Some(StepStatus::Failed) => Some(format!("dependency `{d}` failed")),
            Some(StepStatus::Skipped) => Some(format!("dependency `{d}` was skipped")),
            None => Some(format!("dependency `{d}` is not in the plan")),
            _ => None,
        })
}

/// How a settled run ends: `completed` (after the synthesizer) only when no failure stands
/// unaccepted and at least one step succeeded; `failed` otherwise.
fn verdict(state: &RunState) -> Next {
    let failed: Vec<&StepRecord> = state
        .steps
        .values()
        .filter(|s| s.failed_unaccepted())
        .collect();
    if let [one] = failed.as_slice() {
        return Next::Finish(Ending {
            cause: EndCause::StepsFailed,
            reason: format!(
                "step `{}` failed: {}",
                one.spec.id,
                one.error.as_deref().unwrap_or("no reason given")
            ),
            status: RunStatus::Failed,
        });
    }
    if !failed.is_empty() {
        let ids: Vec<String> = failed.iter().map(|s| format!("`{}`", s.spec.id)).collect();
        return Next::Finish(Ending {
            cause: EndCause::StepsFailed,
            reason: format!(
                "{} steps failed: {}; first error: {}",
                failed.len(),
                ids.join(", "),
                failed[0].error.as_deref().unwrap_or("no reason given")
            ),
            status: RunStatus::Failed,
        });
    }
    if !state
        .steps
        .values()
        .any(|s| s.status == StepStatus::Succeeded)
    {
        return Next::Finish(Ending {
            cause: EndCause::NothingSucceeded,
            reason: "no step succeeded: there is nothing to answer from".into(),
            status: RunStatus::Failed,
        });
    }
    Next::Synthesize
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
