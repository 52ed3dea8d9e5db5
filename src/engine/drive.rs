//! The driver: asks the run's state machine ([`control::next`]) what to do, does it — plan,
//! approve, start or skip steps, ask the replanner, synthesize — and asks again after every
//! change. Steps run as tasks (concurrently up to the policy's limit); each records its own
//! `step_finished`, and the driver waits for one whenever the state machine says `Wait`.
//! A fresh run and a resumed one go through the same loop: the state it starts from is the
//! only difference.

use std::sync::Arc;

use tokio::task::JoinSet;

use crate::engine::context::Ctx;
use crate::engine::control::{self, Next};
use crate::engine::step::{StepEnd, run_step};
use crate::engine::{Outcome, StepTask, Stop, approval, plan, replan, synthesize};
use crate::run::event::{EndCause, EventKind};
use crate::spec::StepStatus;

/// Runs the workflow until it completes or stops. Step tasks live in `steps`, owned by the
/// caller, so that whatever ends the drive (a stop, the run's timeout) the caller can wait
/// for them to end before recording how the run ended.
pub(crate) async fn drive(
    ctx: &Arc<Ctx>,
    steps: &mut JoinSet<StepTask>,
    plan_only: bool,
) -> Result<Outcome, Stop> {
    loop {
        if let Some(halt) = ctx.recorder.halted() {
            return Err(Stop::Journal(halt));
        }
        let next = ctx
            .recorder
            .with_state(|state| control::next(state, &ctx.policy));
        match next {
            Next::MakePlan => {
                let plan = plan::make_plan(ctx).await?;
                ctx.recorder
                    .emit(EventKind::PlanCreated {
                        attempts: plan.attempts,
                        source: plan.source.to_string(),
                        steps: plan.steps,
                    })
                    .map_err(Stop::Journal)?;
                if plan_only {
                    return Ok(Outcome::PlanOnly);
                }
            }
            Next::Approve { ask } => approval::approve(ctx, ask).await?,
            Next::Skip(skipped) => {
                for (step, why) in skipped {
                    ctx.recorder
                        .emit(EventKind::StepFinished {
                            attempt: 0,
                            duration_ms: 0,
                            error: Some(why),
                            result: None,
                            status: StepStatus::Skipped,
                            step,
                            then: None,
                        })
                        .map_err(Stop::Journal)?;
                }
            }
            Next::Start(ready) => {
                for (step, attempt) in ready {
                    ctx.recorder
                        .emit(EventKind::StepStarted {
                            attempt,
                            step: step.id.clone(),
                        })
                        .map_err(Stop::Journal)?;
                    steps.spawn(run_step(Arc::clone(ctx), step, attempt));
                }
            }
            Next::AskReplanner(trigger) => replan::replan(ctx, &trigger).await?,
            Next::Wait => match steps.join_next().await {
                Some(Ok((_, StepEnd::Journal(halt)))) => return Err(Stop::Journal(halt)),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    return Err(Stop::failed(
                        EndCause::Fatal,
                        format!("a step task failed: {e}"),
                    ));
                }
                None => {
                    return Err(Stop::failed(
                        EndCause::Fatal,
                        "the run waits for a step that is not running (an engine bug)".into(),
                    ));
                }
            },
            Next::Synthesize => {
                let output = synthesize::synthesize(ctx).await?;
                return Ok(Outcome::Completed(output));
            }
            Next::Finish(ending) => return Err(Stop::Ending(ending)),
        }
    }
}
