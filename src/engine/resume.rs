//! Continuing a run from its journal (`pe resume`). The engine folds the journal into the
//! run state it starts from, so succeeded steps keep their results, the plan and its
//! revisions stand, and budgets count what was already spent. What the events leave
//! unfinished is worked out here: a replanner decision not acted on yet, a failed step
//! whose retry or replan never started. Running steps were reset to pending by the fold of
//! `run_resumed`.

use std::time::Duration;

use crate::engine::Stop;
use crate::engine::context::Ctx;
use crate::engine::replan::Trigger;
use crate::run::event::{Decision, Event, EventKind};
use crate::run::id::parse_rfc3339_ms;
use crate::run::state::ReplanDue;
use crate::spec::{FailureAction, ReplanTrigger, StepSpec, StepStatus};

/// What the scheduler must do first when the run continues.
#[derive(Debug, Default)]
pub struct Resumption {
    /// Ask the replanner before launching anything.
    pub due: Option<Trigger>,
    /// Failed steps whose next attempt never started: `(step, attempt)`.
    pub retry: Vec<(StepSpec, u32)>,
    /// The run was already bound to end this way.
    pub stop: Option<Stop>,
}

/// What a resumed run does after the plan is approved.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Run the steps (from [`pending_work`]).
    Schedule,
    /// The replanner already decided to answer now.
    Synthesize,
    /// The replanner already aborted the run.
    Abort(String),
}

/// Acts on a replanner decision that no step followed yet.
pub fn next(ctx: &Ctx) -> Next {
    let open = ctx.recorder.with_state(|s| s.open_decision.clone());
    let Some(open) = open else {
        return Next::Schedule;
    };
    match open.decision {
        Decision::Abort => Next::Abort(
            open.reason
                .unwrap_or_else(|| "the replanner aborted the run".into()),
        ),
        Decision::Finish => Next::Synthesize,
        Decision::Continue if open.trigger == Trigger::AfterPlan.name() => Next::Synthesize,
        Decision::Continue | Decision::Revise => Next::Schedule,
    }
}

/// The failure handling and replanner call the events show were due but never happened.
/// A fresh run has none of these.
pub fn pending_work(ctx: &Ctx) -> Resumption {
    let replan = &ctx.workflow.file.replan;
    let replanner_on = !replan.when.contains(ReplanTrigger::Never);
    ctx.recorder.with_state(|state| {
        let mut work = Resumption::default();
        match &state.replan_due {
            Some(ReplanDue::OnFailure { error, step }) => {
                let Some(record) = state.step(step) else {
                    return work;
                };
                if record.status != StepStatus::Failed {
                    return work;
                }
                if record.attempts <= replan.on_step_failure.retries {
                    work.retry.push((record.spec.clone(), record.attempts + 1));
                    return work;
                }
                let failure = format!("step `{step}` failed: {error}");
                match replan.on_step_failure.then {
                    FailureAction::Abort => work.stop = Some(Stop::Aborted(failure)),
                    FailureAction::Skip => {}
                    FailureAction::Replan if replanner_on => {
                        work.due = Some(Trigger::OnFailure {
                            error: error.clone(),
                            step: step.clone(),
                        });
                    }
                    FailureAction::Replan => work.stop = Some(Stop::Failed(failure)),
                }
            }
            Some(ReplanDue::AfterEachStep)
                if replanner_on && replan.when.contains(ReplanTrigger::AfterEachStep) =>
            {
                work.due = Some(Trigger::AfterEachStep);
            }
            _ => {}
        }
        work
    })
}

/// Wall time the run was active before: from each start (`run_started`, `run_resumed`) to
/// the last event before the next one. Time spent dead or waiting for approval is not
/// counted against `budget.timeout`.
pub fn active_time(events: &[Event]) -> Duration {
    let mut total: i64 = 0;
    let mut segment_start: Option<i64> = None;
    let mut last: Option<i64> = None;
    for event in events {
        let at = parse_rfc3339_ms(&event.at);
        if matches!(
            event.kind,
            EventKind::RunStarted { .. } | EventKind::RunResumed { .. }
        ) {
            if let (Some(a), Some(b)) = (segment_start, last) {
                total += (b - a).max(0);
            }
            segment_start = at;
        }
        last = at.or(last);
    }
    if let (Some(a), Some(b)) = (segment_start, last) {
        total += (b - a).max(0);
    }
    Duration::from_millis(u64::try_from(total).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(seq: u64, at: &str, kind: EventKind) -> Event {
        Event {
            at: at.into(),
            kind,
            seq,
        }
    }

    #[test]
    fn active_time_skips_the_gaps_between_sessions() {
        let started = EventKind::RunStarted {
            inputs: json!({}),
            models: Default::default(),
            path: "w.yaml".into(),
            run_id: "r".into(),
            task: "t".into(),
            workflow: "w".into(),
            workflow_sha256: None,
        };
        let step = |s: &str| EventKind::StepStarted {
            attempt: 1,
            step: s.into(),
        };
        let events = [
            ev(1, "2026-11-03T12:00:00.000Z", started),
            ev(2, "2026-11-03T12:00:02.500Z", step("a")),
            // Dead for an hour.
            ev(
                3,
                "2026-11-03T13:00:00.000Z",
                EventKind::RunResumed { retried: vec![] },
            ),
            ev(4, "2026-11-03T13:00:01.000Z", step("b")),
        ];
        assert_eq!(active_time(&events), Duration::from_millis(3500));
    }
}
