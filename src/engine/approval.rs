//! Plan approval (`plan.approve: true`). The engine asks an [`Approver`] and records the
//! answer; how the question is put to a person (a terminal prompt, `$EDITOR`) belongs to
//! the command layer, which implements the trait. The first plan is always followed by a
//! `plan_approved` event (`by: policy` when the workflow does not ask); a revision from the
//! replanner is asked about only when the workflow asks for approval.

use crate::engine::Stop;
use crate::engine::context::Ctx;
use crate::engine::validate::{Rules, validate};
use crate::run::event::{EndCause, EventKind};
use crate::spec::{StepArgs, StepSpec};

/// What a person is asked to approve.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanProposal {
    /// The steps that have not started: what approval lets run, and what an edit replaces.
    pub editable: Vec<StepSpec>,
    /// Ids of steps that already succeeded: an edit may depend on them, not reuse them.
    pub kept: Vec<String>,
    pub max_steps: u32,
    /// The whole plan as it would run (finished steps included).
    pub plan: Vec<StepSpec>,
    /// For a revision: the whole plan before it (show the revision as a diff).
    pub previous: Option<Vec<StepSpec>>,
    /// The run, so a deferred approval can say how to continue it.
    pub run_id: String,
    /// Whether steps may carry `args` (`plan.step_args`).
    pub step_args: StepArgs,
    pub tools: Vec<String>,
}

impl PlanProposal {
    /// Checks an edited plan with the validation planner output goes through.
    pub fn validate(&self, steps: &[StepSpec]) -> Result<(), String> {
        let tools: Vec<&str> = self.tools.iter().map(String::as_str).collect();
        validate(
            steps,
            &Rules {
                args: None,
                kept: &self.kept,
                step_args: self.step_args,
                max_steps: self.max_steps,
                tools: &tools,
            },
        )
    }
}

/// A person's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Review {
    Approve,
    /// Nobody can answer now: the run stops `awaiting_approval` (`pe resume RUN --approve`).
    Defer,
    /// Approve these steps instead of the proposed ones (already validated by the approver
    /// with [`PlanProposal::validate`]; the engine checks again).
    Edit(Vec<StepSpec>),
    Reject(Option<String>),
}

/// Puts a plan to a person.
#[async_trait::async_trait]
pub trait Approver: Send + Sync {
    async fn review(&self, proposal: PlanProposal) -> Review;
}

/// Nobody to ask (no terminal, no `--yes`): every plan that needs approval waits.
pub struct Headless;

#[async_trait::async_trait]
impl Approver for Headless {
    async fn review(&self, _proposal: PlanProposal) -> Review {
        Review::Defer
    }
}

/// Records the approval the run's state machine asks for: by policy when nobody needs to
/// be asked, by the flag (`--yes`, `pe resume --approve`), or by the approver's answer.
pub async fn approve(ctx: &Ctx, ask: bool) -> Result<(), Stop> {
    let by = if !ask {
        "policy"
    } else if ctx.approve {
        "flag"
    } else {
        return review(ctx).await;
    };
    ctx.recorder
        .emit(EventKind::PlanApproved {
            by: by.into(),
            steps: None,
        })
        .map_err(Stop::Journal)?;
    Ok(())
}

async fn review(ctx: &Ctx) -> Result<(), Stop> {
    let previous = ctx.recorder.with_state(|s| {
        (s.approved_by.is_some() && !s.previous_plan.is_empty()).then(|| s.previous_plan.clone())
    });
    let proposal = ctx.recorder.with_state(|s| PlanProposal {
        editable: s.pending().map(|r| r.spec.clone()).collect(),
        kept: s.succeeded_ids(),
        max_steps: ctx.workflow.file.plan.max_steps,
        plan: s.steps.values().map(|r| r.spec.clone()).collect(),
        previous,
        run_id: s.run_id.clone(),
        step_args: ctx.workflow.file.plan.step_args,
        tools: ctx.tool_defs.iter().map(|t| t.name.clone()).collect(),
    });
    let run_id = proposal.run_id.clone();
    let checked = proposal.clone();
    let emit = |steps: Option<Vec<StepSpec>>| {
        ctx.recorder
            .emit(EventKind::PlanApproved {
                by: "user".into(),
                steps,
            })
            .map(|_| ())
            .map_err(Stop::Journal)
    };
    match ctx.approver.review(proposal).await {
        Review::Approve => emit(None),
        Review::Edit(mut steps) => {
            crate::engine::direct::link(&mut steps);
            checked.validate(&steps).map_err(|p| {
                Stop::failed(
                    EndCause::PlanInvalid,
                    format!("the edited plan is not valid: {p}"),
                )
            })?;
            emit(Some(steps))
        }
        Review::Reject(reason) => Err(Stop::Rejected(
            reason.unwrap_or_else(|| "the plan was rejected".into()),
        )),
        Review::Defer => Err(Stop::AwaitingApproval(format!(
            "the plan needs approval: continue with `pe resume {run_id} --approve` (or --reject), or run again with --yes"
        ))),
    }
}
