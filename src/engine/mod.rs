//! The plan-and-execute engine: planner → approval → scheduler (executor steps, replanner)
//! → synthesizer, under the run's budgets. It never prints: it emits events (folded into
//! the run state and handed to an [`EventSink`]) and returns the final [`RunState`].

pub mod approval;
pub mod budget;
pub(crate) mod budget_gate;
pub mod call;
pub mod context;
pub(crate) mod control;
pub mod direct;
mod drive;
pub mod plan;
pub mod prompts;
pub mod replan;
pub mod reply;
pub mod resume;
mod servers;
pub mod step;
pub mod synthesize;
pub mod validate;

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use budget_gate::{BudgetGate, ParentBudget};
pub use context::{EventSink, JournalHalt, MemorySink, SinkFailed};

use crate::engine::call::CallError;
use crate::engine::context::{Ctx, Recorder};
use crate::engine::control::Policy;
use crate::engine::prompts::Prompts;
use crate::engine::step::StepEnd;
use crate::error::Error;
use crate::model::ModelSet;
use crate::run::event::{EndCause, Event, EventKind, Limit, ParentRef, ToolOutcome};
use crate::run::redact::Redactor;
use crate::run::state::{Ending, RunState};
use crate::spec::{ReplanTrigger, Role, RunStatus, StepStatus};
use crate::tool::{ToolContext, Toolbox};
use crate::workflow::Workflow;

/// Why a run ends before completing.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    /// A plan needs approval nobody can give now.
    AwaitingApproval(String),
    /// The run ends with this status and cause (a policy, the replanner, a budget, a
    /// failure nothing accepted).
    Ending(Ending),
    /// The run store failed: nothing more can be recorded.
    Journal(JournalHalt),
    Rejected(String),
}

impl Stop {
    /// The run ends `failed`.
    pub fn failed(cause: EndCause, reason: String) -> Stop {
        Stop::Ending(Ending {
            cause,
            reason,
            status: RunStatus::Failed,
        })
    }

    /// A model call that could not be made or answered, where the caller has nothing
    /// better to do than end the run.
    pub fn from_call(e: CallError) -> Stop {
        match e {
            CallError::Budget(hit) => Stop::Ending(Ending {
                cause: if hit.limit == Limit::Timeout {
                    EndCause::Timeout
                } else {
                    EndCause::Budget
                },
                reason: hit.to_string(),
                status: RunStatus::BudgetExhausted,
            }),
            CallError::Journal(halt) => Stop::Journal(halt),
            CallError::Model(e) if e.is_fatal() => Stop::failed(EndCause::Fatal, e.to_string()),
            CallError::Model(e) => Stop::failed(EndCause::ModelFailed, e.to_string()),
        }
    }
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
    /// For a child run (a workflow tool's call): who started it, and the budget it counts
    /// against besides its own.
    pub parent: Option<ChildOf>,
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

/// What makes a run a child run.
pub struct ChildOf {
    /// The parent's budget and the call's key there (absent: the child counts only against
    /// its own budget, as in `pe test`).
    pub budget: Option<ParentBudget>,
    /// Journaled in the child's `run_started`.
    pub link: ParentRef,
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

/// How the driver ended when nothing stopped the run.
pub(crate) enum Outcome {
    Completed(Value),
    PlanOnly,
}

/// Runs a workflow to its end and returns the final state (the fold of every event sent to
/// `sink`). Fails before the run starts when the task does not render, and at any point when
/// the sink can record nothing more (the run is then left unfinished in the store). With a
/// `prior` journal the run continues where it stopped: the plan, finished steps and spent
/// budgets come from those events, and new events follow them.
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
    let tool_ctx = ToolContext {
        budget: None,
        idempotency_key: None,
        inputs: config.inputs.clone(),
        run_id: Some(config.run_id.clone()),
        step: None,
        workflow_dir: workflow.dir.clone(),
    };
    // MCP servers are started before anything else: the planner must see their tools.
    let servers = config.toolbox.connect(&tool_ctx).await;
    let tool_defs = config.toolbox.definitions();
    let base_vars = json!({
        "inputs": config.inputs,
        "task": task,
        "tools": tool_defs,
        "workflow": {"description": file.description, "name": file.name},
    });
    let base_vars = crate::engine::context::template_value(&base_vars);
    let models: indexmap::IndexMap<Role, String> = config
        .models
        .choices
        .iter()
        .map(|(r, c)| (*r, c.reference()))
        .collect();
    let prior = RunState::from_events(&config.prior);
    let resumed = !config.prior.is_empty();
    // Budget time already spent keeps counting: the clock starts that far in the past.
    let spent = resume::active_time(&config.prior);
    let now = Instant::now();
    let started = now.checked_sub(spent).unwrap_or(now);
    let (parent_link, parent_budget) = match config.parent {
        Some(child) => (Some(child.link), child.budget),
        None => (None, None),
    };
    let ctx = Arc::new_cyclic(|me| Ctx {
        approve: config.approve,
        approver: config.approver,
        base_vars,
        models: config.models,
        parent_budget,
        policy: Policy::of(file),
        prompts,
        recorder: Recorder::resumed(sink, config.redactor, prior),
        run_id: config.run_id.clone(),
        started,
        task: task.clone(),
        tool_ctx: ToolContext {
            budget: Some(BudgetGate::new(me.clone())),
            ..tool_ctx
        },
        tool_defs,
        toolbox: config.toolbox,
        workflow: Arc::clone(&workflow),
    });
    let opened = if resumed {
        let retried = ctx
            .recorder
            .with_state(|s| s.running().map(|r| r.spec.id.clone()).collect());
        ctx.recorder.emit(EventKind::RunResumed { retried })
    } else {
        ctx.recorder.emit(EventKind::RunStarted {
            inputs: config.inputs,
            models,
            parent: parent_link,
            path: workflow.path.display().to_string(),
            run_id: config.run_id,
            task,
            workflow: file.name.clone(),
            workflow_sha256: config.workflow_sha256,
        })
    };
    if let Err(halt) = opened {
        ctx.toolbox.close().await;
        return Err(Error::JournalFailed {
            run: ctx.run_id.clone(),
            source: halt,
        });
    }
    let mut steps = JoinSet::new();
    let started_servers = servers::record_connected(&ctx, servers);
    let body = async {
        started_servers?;
        drive::drive(&ctx, &mut steps, config.plan_only).await
    };
    let result = match file.budget.timeout {
        Some(limit) => {
            let deadline = ctx.started + limit.0;
            tokio::select! {
                // A deadline that passed wins over work that became ready in the same
                // instant (a busy machine wakes both late): the run's time is up.
                biased;
                () = tokio::time::sleep_until(deadline) => Err(timed_out(&ctx, limit.0)),
                r = body => r,
            }
        }
        None => body.await,
    };
    // Every step task ends (cancelled, recording what it cut short) before the run's last
    // events, so nothing is journaled after `run_finished`.
    steps.shutdown().await;
    let result = servers::record_closed(&ctx, result).await;
    finish(&ctx, result)
}

/// `budget.timeout` ran out: recorded like any other budget.
fn timed_out(ctx: &Ctx, limit: std::time::Duration) -> Stop {
    let mut ledger = ctx.recorder.ledger();
    if ledger.state.budget_exhausted.is_none() {
        let kind = EventKind::BudgetExhausted {
            limit: Limit::Timeout,
            max: limit.as_secs_f64(),
            needed: None,
            role: None,
            used: ctx.started.elapsed().as_secs_f64(),
        };
        if let Err(halt) = ctx.recorder.emit_with(&mut ledger, kind) {
            return Stop::Journal(halt);
        }
    }
    Stop::Ending(Ending {
        cause: EndCause::Timeout,
        reason: Limit::Timeout.describe(None, limit.as_secs_f64(), 0.0, None),
        status: RunStatus::BudgetExhausted,
    })
}

/// Records how the run ended; steps that were running are failed, tools that were running
/// ended, and pending steps skipped (except when the run waits for approval: then nothing
/// has started).
fn finish(ctx: &Ctx, result: Result<Outcome, Stop>) -> Result<RunState, Error> {
    let journal_failed = |halt: JournalHalt| Error::JournalFailed {
        run: ctx.run_id.clone(),
        source: halt,
    };
    // The first reason to stop that the journal shows wins over later ones.
    let recorded = ctx.recorder.with_state(|s| s.stopping.clone());
    let (status, cause, output, reason) = match result {
        Ok(Outcome::Completed(output)) => (
            RunStatus::Completed,
            EndCause::Completed,
            Some(output),
            None,
        ),
        Ok(Outcome::PlanOnly) => (
            RunStatus::AwaitingApproval,
            EndCause::AwaitingApproval,
            None,
            Some("--plan-only: the plan was made and not executed".to_string()),
        ),
        Err(Stop::AwaitingApproval(r)) => (
            RunStatus::AwaitingApproval,
            EndCause::AwaitingApproval,
            None,
            Some(r),
        ),
        Err(Stop::Rejected(r)) => (RunStatus::Rejected, EndCause::Rejected, None, Some(r)),
        Err(Stop::Journal(halt)) => return Err(journal_failed(halt)),
        Err(Stop::Ending(ending)) => {
            let e = recorded.unwrap_or(ending);
            (e.status, e.cause, None, Some(e.reason))
        }
    };
    if status != RunStatus::AwaitingApproval && status != RunStatus::Completed {
        close_unfinished(ctx, status).map_err(journal_failed)?;
    }
    let mut ledger = ctx.recorder.ledger();
    let usage = ledger.state.usage.clone();
    ctx.recorder
        .emit_with(
            &mut ledger,
            EventKind::RunFinished {
                cause: Some(cause),
                output,
                reason,
                status,
                usage,
            },
        )
        .map_err(journal_failed)?;
    Ok(ledger.state.clone())
}

/// Ends what the run leaves unfinished: tools that were running end in error, running steps
/// fail, pending steps are skipped.
fn close_unfinished(ctx: &Ctx, status: RunStatus) -> Result<(), JournalHalt> {
    let why = format!("interrupted: the run ended {}", status.as_str());
    let tools = ctx.recorder.with_state(|s| s.tools_in_flight.clone());
    for (key, tool) in tools {
        ctx.recorder.emit(EventKind::ToolCall {
            arguments: tool.arguments,
            child_run: None,
            duration_ms: 0,
            error: Some(why.clone()),
            idempotency_key: Some(key),
            name: tool.name,
            outcome: ToolOutcome::Error,
            output: None,
            step: tool.step,
            usage: None,
        })?;
    }
    let running: Vec<(String, u32)> = ctx.recorder.with_state(|s| {
        s.running()
            .map(|r| (r.spec.id.clone(), r.attempts))
            .collect()
    });
    for (step, attempt) in running {
        ctx.recorder.emit(EventKind::StepFinished {
            attempt,
            duration_ms: 0,
            error: Some(why.clone()),
            result: None,
            status: StepStatus::Failed,
            step,
            then: None,
        })?;
    }
    let pending: Vec<String> = ctx
        .recorder
        .with_state(|s| s.pending().map(|r| r.spec.id.clone()).collect());
    for step in pending {
        ctx.recorder.emit(EventKind::StepFinished {
            attempt: 0,
            duration_ms: 0,
            error: Some(format!("the run ended {}", status.as_str())),
            result: None,
            status: StepStatus::Skipped,
            step,
            then: None,
        })?;
    }
    Ok(())
}

/// A step task's result, as the driver sees it.
pub(crate) type StepTask = (String, StepEnd);
