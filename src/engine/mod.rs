//! The plan-and-execute engine: planner → approval → scheduler (executor steps, replanner)
//! → synthesizer, under the run's budgets. It never prints: it emits events (folded into
//! the run state and handed to an [`EventSink`]) and returns the final [`RunState`].

pub mod approval;
pub mod budget;
pub mod call;
pub mod context;
pub mod plan;
pub mod prompts;
pub mod replan;
pub mod reply;
pub mod resume;
pub mod schedule;
pub mod step;
pub mod synthesize;
pub mod validate;

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

pub use context::{EventSink, MemorySink};

use crate::engine::context::{Ctx, Recorder};
use crate::engine::prompts::Prompts;
use crate::error::Error;
use crate::model::ModelSet;
use crate::run::event::{Event, EventKind};
use crate::run::redact::Redactor;
use crate::run::state::RunState;
use crate::spec::{ReplanTrigger, Role, RunStatus, StepStatus};
use crate::tool::{ToolContext, Toolbox};
use crate::workflow::Workflow;

/// Why a run ends before completing (the reason is recorded in `run_finished`).
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    Aborted(String),
    /// A plan needs approval nobody can give now.
    AwaitingApproval(String),
    Budget(String),
    Failed(String),
    Rejected(String),
}

/// What the engine needs for one run; everything is already checked and resolved.
pub struct RunConfig {
    /// Approve a plan that needs approval (`--yes`).
    pub approve: bool,
    /// Asked when a plan needs approval and `approve` is not set.
    pub approver: Arc<dyn approval::Approver>,
    /// Validated inputs, defaults applied (a JSON object).
    pub inputs: Value,
    pub models: ModelSet,
    /// Stop after the plan (`--plan-only`).
    pub plan_only: bool,
    /// The journal so far when continuing a run (`pe resume`); empty for a new run.
    pub prior: Vec<Event>,
    pub redactor: Redactor,
    pub run_id: String,
    pub toolbox: Arc<Toolbox>,
    pub workflow: Arc<Workflow>,
    /// SHA-256 of the workflow file, recorded so `pe resume` notices a changed file.
    pub workflow_sha256: Option<String>,
}

/// The roles a workflow can call, so only their models must be available.
pub fn roles_used(workflow: &Workflow) -> Vec<Role> {
    let file = &workflow.file;
    let mut roles = Vec::new();
    if file.plan.steps.is_none() {
        roles.push(Role::Planner);
    }
    roles.push(Role::Executor);
    if !file.replan.when.contains(ReplanTrigger::Never) {
        roles.push(Role::Replanner);
    }
    roles.push(Role::Synthesizer);
    roles
}

enum Outcome {
    Completed(Value),
    PlanOnly,
}

/// Runs a workflow to its end and returns the final state (the fold of every event sent to
/// `sink`). Fails only before the run starts (the task does not render). With a `prior`
/// journal the run continues where it stopped: the plan, finished steps and spent budgets
/// come from those events, and new events follow them.
pub async fn run(config: RunConfig, sink: Arc<dyn EventSink>) -> Result<RunState, Error> {
    let workflow = config.workflow;
    let file = &workflow.file;
    let task =
        crate::template::render(&file.task, &json!({"inputs": config.inputs})).map_err(|e| {
            Error::Template {
                message: e.to_string(),
                what: "the task".into(),
            }
        })?;
    let prompts = Prompts::new(file).map_err(|e| Error::Template {
        message: e.to_string(),
        what: "the prompts".into(),
    })?;
    let tool_defs = config.toolbox.definitions();
    let base_vars = json!({
        "inputs": config.inputs,
        "task": task,
        "tools": tool_defs,
        "workflow": {"description": file.description, "name": file.name},
    });
    let Value::Object(base_vars) = base_vars else {
        unreachable!("json! of an object literal is an object")
    };
    let models: indexmap::IndexMap<Role, String> = config
        .models
        .choices
        .iter()
        .map(|(r, c)| (*r, c.reference()))
        .collect();
    let prior = RunState::from_events(&config.prior);
    let resumed = !config.prior.is_empty();
    // Budget time already spent keeps counting: the clock starts that far in the past.
    let started = Instant::now()
        .checked_sub(resume::active_time(&config.prior))
        .unwrap_or_else(Instant::now);
    let ctx = Arc::new(Ctx {
        approve: config.approve,
        approver: config.approver,
        base_vars,
        models: config.models,
        prompts,
        recorder: Recorder::resumed(sink, config.redactor, prior),
        started,
        task: task.clone(),
        tool_ctx: ToolContext {
            inputs: config.inputs.clone(),
            workflow_dir: workflow.dir.clone(),
        },
        tool_defs,
        toolbox: config.toolbox,
        workflow: Arc::clone(&workflow),
    });
    if resumed {
        let retried = ctx.recorder.with_state(|s| {
            s.steps
                .values()
                .filter(|r| r.status == StepStatus::Running)
                .map(|r| r.spec.id.clone())
                .collect()
        });
        ctx.recorder.emit(EventKind::RunResumed { retried });
    } else {
        ctx.recorder.emit(EventKind::RunStarted {
            inputs: config.inputs,
            models,
            path: workflow.path.display().to_string(),
            run_id: config.run_id,
            task,
            workflow: file.name.clone(),
            workflow_sha256: config.workflow_sha256,
        });
    }
    let body = drive(&ctx, config.plan_only);
    let result = match file.budget.timeout {
        Some(limit) => match tokio::time::timeout(limit.0, body).await {
            Ok(r) => r,
            Err(_) => {
                let mut ledger = ctx.recorder.ledger();
                if ledger.state.budget_exhausted.is_none() {
                    let used = ctx.started.elapsed().as_secs_f64();
                    let kind = EventKind::BudgetExhausted {
                        limit: "timeout".into(),
                        max: limit.0.as_secs_f64(),
                        needed: None,
                        role: None,
                        used,
                    };
                    ctx.recorder.emit_with(&mut ledger, kind);
                }
                Err(Stop::Budget(format!("budget.timeout ({limit}) reached")))
            }
        },
        None => body.await,
    };
    Ok(finish(&ctx, result))
}

/// Plan, approve, execute, synthesize — each phase only if the state (fresh, or folded
/// from the journal of a resumed run) shows it still has to happen.
async fn drive(ctx: &Arc<Ctx>, plan_only: bool) -> Result<Outcome, Stop> {
    if ctx.recorder.with_state(|s| s.plan_source.is_none()) {
        let plan = plan::make_plan(ctx).await?;
        ctx.recorder.emit(EventKind::PlanCreated {
            attempts: plan.attempts,
            source: plan.source.to_string(),
            steps: plan.steps,
        });
    }
    if plan_only {
        return Ok(Outcome::PlanOnly);
    }
    approval::first_plan(ctx).await?;
    approval::revision(ctx).await?;
    match resume::next(ctx) {
        resume::Next::Abort(reason) => return Err(Stop::Aborted(reason)),
        resume::Next::Synthesize => {
            schedule::skip_all_pending(ctx, "the replanner finished the run before this step");
        }
        resume::Next::Schedule => {
            schedule::execute(ctx, resume::pending_work(ctx)).await?;
        }
    }
    let output = synthesize::synthesize(ctx).await?;
    Ok(Outcome::Completed(output))
}

/// Records how the run ended; steps that were running are failed and pending ones skipped
/// (except when the run waits for approval: then nothing has started).
fn finish(ctx: &Ctx, result: Result<Outcome, Stop>) -> RunState {
    let (status, output, reason) = match result {
        Ok(Outcome::Completed(output)) => (RunStatus::Completed, Some(output), None),
        Err(Stop::AwaitingApproval(r)) => (RunStatus::AwaitingApproval, None, Some(r)),
        Err(Stop::Rejected(r)) => (RunStatus::Rejected, None, Some(r)),
        Ok(Outcome::PlanOnly) => (
            RunStatus::AwaitingApproval,
            None,
            Some("--plan-only: the plan was made and not executed".to_string()),
        ),
        Err(Stop::Aborted(r)) => (RunStatus::Aborted, None, Some(r)),
        Err(Stop::Budget(r)) => (RunStatus::BudgetExhausted, None, Some(r)),
        Err(Stop::Failed(r)) => (RunStatus::Failed, None, Some(r)),
    };
    if status != RunStatus::AwaitingApproval && status != RunStatus::Completed {
        let running: Vec<(String, u32)> = ctx.recorder.with_state(|s| {
            s.steps
                .values()
                .filter(|r| r.status == StepStatus::Running)
                .map(|r| (r.spec.id.clone(), r.attempts))
                .collect()
        });
        for (step, attempt) in running {
            ctx.recorder.emit(EventKind::StepFinished {
                attempt,
                duration_ms: 0,
                error: Some(format!("interrupted: the run ended {}", status.as_str())),
                result: None,
                status: StepStatus::Failed,
                step,
            });
        }
        schedule::skip_all_pending(ctx, &format!("the run ended {}", status.as_str()));
    }
    let mut ledger = ctx.recorder.ledger();
    let usage = ledger.state.usage.clone();
    ctx.recorder.emit_with(
        &mut ledger,
        EventKind::RunFinished {
            output,
            reason,
            status,
            usage,
        },
    );
    ledger.state.clone()
}
