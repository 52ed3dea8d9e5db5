//! The scheduler: runs the plan's steps in dependency order — concurrently up to
//! `plan.max_concurrency` with `plan.parallel`, one at a time otherwise — and applies the
//! failure and replan policies as steps end.
//!
//! - A failed step is retried (`on_step_failure.retries`), then `abort` ends the run, `skip`
//!   tolerates it, `replan` asks the replanner (unless `replan.when: never`, which fails the
//!   run instead).
//! - Dependents of a failed or skipped step never start: they end `skipped`, unless a
//!   replanner revision replaces them first.
//! - Before the replanner is asked, launching stops and running steps finish, so it sees a
//!   settled plan; a revision replaces every step that has not started.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::engine::Stop;
use crate::engine::context::Ctx;
use crate::engine::replan::{Trigger, Verdict, replan};
use crate::engine::resume::Resumption;
use crate::engine::step::{StepEnd, run_step};
use crate::run::event::EventKind;
use crate::run::state::RunState;
use crate::spec::{FailureAction, ReplanTrigger, StepSpec, StepStatus};

/// How execution ended when nothing stopped the run.
#[derive(Debug, PartialEq)]
pub enum Flow {
    /// Every step ran (or was skipped by policy); synthesize.
    Done,
    /// The replanner decided to answer now; synthesize.
    Finish,
}

/// Runs the plan until no step is left, starting with what a resumed run left undone.
pub async fn execute(ctx: &Arc<Ctx>, resumption: Resumption) -> Result<Flow, Stop> {
    let when = &ctx.workflow.file.replan.when;
    let mut first = Some(resumption);
    loop {
        let start = first.take().unwrap_or_default();
        if run_until_settled(ctx, start).await? == Flow::Finish {
            return Ok(Flow::Finish);
        }
        if !when.contains(ReplanTrigger::AfterPlan) || when.contains(ReplanTrigger::Never) {
            return Ok(Flow::Done);
        }
        match replan(ctx, &Trigger::AfterPlan).await? {
            Verdict::Continue | Verdict::Finish => return Ok(Flow::Done),
            Verdict::Abort(reason) => return Err(Stop::Aborted(reason)),
            // New steps to run: go round again.
            Verdict::Revise => {}
        }
    }
}

async fn run_until_settled(ctx: &Arc<Ctx>, start: Resumption) -> Result<Flow, Stop> {
    let file = &ctx.workflow.file;
    let limit = if file.plan.parallel {
        file.plan.max_concurrency.max(1) as usize
    } else {
        1
    };
    let policy = &file.replan.on_step_failure;
    let replanner_on = !file.replan.when.contains(ReplanTrigger::Never);
    let review_each = replanner_on && file.replan.when.contains(ReplanTrigger::AfterEachStep);

    let mut running: JoinSet<(String, StepEnd)> = JoinSet::new();
    let mut running_ids: HashSet<String> = HashSet::new();
    let mut due: Option<Trigger> = start.due;
    let mut stop: Option<Stop> = start.stop;
    for (step, attempt) in start.retry {
        running_ids.insert(step.id.clone());
        running.spawn(run_step(Arc::clone(ctx), step, attempt));
    }
    loop {
        if running.is_empty()
            && stop.is_none()
            && let Some(trigger) = due.take()
        {
            match replan(ctx, &trigger).await? {
                Verdict::Continue | Verdict::Revise => {}
                Verdict::Finish => {
                    skip_all_pending(ctx, "the replanner finished the run before this step");
                    return Ok(Flow::Finish);
                }
                Verdict::Abort(reason) => return Err(Stop::Aborted(reason)),
            }
        }
        if stop.is_none() && due.is_none() {
            skip_blocked(ctx);
            while running.len() < limit {
                let Some((step, attempt)) = next_ready(ctx, &running_ids) else {
                    break;
                };
                running_ids.insert(step.id.clone());
                running.spawn(run_step(Arc::clone(ctx), step, attempt));
            }
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (id, end) = match joined {
            Ok(done) => done,
            Err(e) => {
                stop.get_or_insert(Stop::Failed(format!("a step task failed: {e}")));
                continue;
            }
        };
        running_ids.remove(&id);
        match end {
            StepEnd::Succeeded(_) => {
                if review_each && due.is_none() {
                    due = Some(Trigger::AfterEachStep);
                }
            }
            StepEnd::Budget(reason) => {
                stop.get_or_insert(Stop::Budget(reason));
            }
            StepEnd::Fatal(reason) => {
                stop.get_or_insert(Stop::Failed(reason));
            }
            StepEnd::Failed(error) => {
                let (spec, attempts) = ctx
                    .recorder
                    .with_state(|s| s.step(&id).map(|r| (r.spec.clone(), r.attempts)).unzip());
                if let (Some(spec), Some(attempts)) = (spec, attempts)
                    && attempts <= policy.retries
                    && stop.is_none()
                {
                    running_ids.insert(id.clone());
                    running.spawn(run_step(Arc::clone(ctx), spec, attempts + 1));
                    continue;
                }
                let failure = format!("step `{id}` failed: {error}");
                match policy.then {
                    FailureAction::Abort => {
                        stop.get_or_insert(Stop::Aborted(failure));
                    }
                    FailureAction::Skip => {}
                    FailureAction::Replan if replanner_on => {
                        // A failure outranks a routine review.
                        if !matches!(due, Some(Trigger::OnFailure { .. })) {
                            due = Some(Trigger::OnFailure { error, step: id });
                        }
                    }
                    FailureAction::Replan => {
                        stop.get_or_insert(Stop::Failed(failure));
                    }
                }
            }
        }
    }
    if let Some(stop) = stop {
        return Err(stop);
    }
    // Nothing runs and nothing can start: whatever is still pending never became ready.
    skip_all_pending(ctx, "its dependencies never succeeded");
    Ok(Flow::Done)
}

/// The first pending step (in plan order) whose dependencies all succeeded.
fn next_ready(ctx: &Ctx, running: &HashSet<String>) -> Option<(StepSpec, u32)> {
    ctx.recorder.with_state(|state| {
        state
            .pending()
            .find(|s| {
                !running.contains(&s.spec.id)
                    && s.spec.depends_on.iter().all(|d| {
                        state
                            .step(d)
                            .is_some_and(|d| d.status == StepStatus::Succeeded)
                    })
            })
            .map(|s| (s.spec.clone(), s.attempts + 1))
    })
}

/// Marks pending steps whose dependencies failed or were skipped as skipped, transitively.
fn skip_blocked(ctx: &Ctx) {
    loop {
        let blocked = ctx.recorder.with_state(|state| {
            state
                .pending()
                .find_map(|s| blocker(state, &s.spec).map(|why| (s.spec.id.clone(), why)))
        });
        let Some((step, why)) = blocked else { return };
        skip(ctx, step, why);
    }
}

fn blocker(state: &RunState, step: &StepSpec) -> Option<String> {
    step.depends_on
        .iter()
        .find_map(|d| match state.step(d).map(|s| s.status) {
            Some(StepStatus::Failed) => Some(format!("dependency `{d}` failed")),
            Some(StepStatus::Skipped) => Some(format!("dependency `{d}` was skipped")),
            None => Some(format!("dependency `{d}` is not in the plan")),
            _ => None,
        })
}

/// Marks every pending step skipped.
pub fn skip_all_pending(ctx: &Ctx, why: &str) {
    let ids: Vec<String> = ctx
        .recorder
        .with_state(|s| s.pending().map(|s| s.spec.id.clone()).collect());
    for id in ids {
        skip(ctx, id, why.to_string());
    }
}

fn skip(ctx: &Ctx, step: String, why: String) {
    ctx.recorder.emit(EventKind::StepFinished {
        attempt: 0,
        duration_ms: 0,
        error: Some(why),
        result: None,
        status: StepStatus::Skipped,
        step,
    });
}
