//! `workflow` tools: another workflow run as a child run per call. The child's `inputs` are
//! the tool's parameters, its final output (valid against its `output.schema`) the result,
//! and any other ending a tool error naming the child run.
//!
//! Running a workflow needs a journal store, models and the parent's budget: the
//! [`ChildRuns`] host the command gives the toolbox provides the first two, the call's
//! [`ToolContext`] the last. The child's run id is derived from the parent's and the call's
//! idempotency key, so a resumed parent that makes the same call finds the same child —
//! finished (its result is reused, nothing runs again) or unfinished (it is resumed).

use std::sync::Arc;

use serde_json::Value;

use super::truncate::truncate_text;
use super::{ToolContext, ToolError, ToolOutput, ToolRunner};
use crate::engine::BudgetGate;
use crate::run::event::ParentRef;
use crate::run::state::RunState;
use crate::spec::RunStatus;
use crate::workflow::Workflow;

/// One call of a workflow tool, as the host runs it.
pub struct ChildCall {
    /// The parent's budget, which the child's model calls count against.
    pub budget: Option<BudgetGate>,
    /// The call's idempotency key in the parent (the child's usage is settled under it).
    pub key: String,
    /// The tool's arguments: the child's inputs.
    pub inputs: Value,
    pub parent: ParentRef,
    /// Derived from the parent's run id and the call's key ([`child_run_id`]).
    pub run_id: String,
    pub workflow: Arc<Workflow>,
}

/// Why a child could not be run at all (its own failures are in its state).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ChildRunError {
    pub message: String,
}

/// Runs child workflows for the process that runs the parent.
#[async_trait::async_trait]
pub trait ChildRuns: Send + Sync {
    /// Runs (or resumes, or looks up the finished) child run and returns its final state.
    async fn run(&self, call: ChildCall) -> Result<RunState, ChildRunError>;

    /// Whether this host ran (or resumed, or found finished) the child run `run_id`: a
    /// parent's `tool_call` names only a child that exists (not one a replayed or stubbed
    /// call never started).
    fn started(&self, run_id: &str) -> bool;
}

/// The run id of the child a call starts: the parent's id, a dot, 8 hex digits of the
/// call's idempotency key. Sorts right after its parent; `pe runs` shows it under it.
pub fn child_run_id(parent: &str, key: &str) -> String {
    let hex = crate::digest::sha256_hex(key.as_bytes());
    format!("{parent}.{}", &hex[..8])
}

/// A `workflow` tool, ready to run.
pub(crate) struct WorkflowRunner {
    child: Arc<Workflow>,
    host: Option<Arc<dyn ChildRuns>>,
    max_output_bytes: usize,
    tool: String,
}

impl WorkflowRunner {
    pub(crate) fn new(
        tool: String,
        child: Arc<Workflow>,
        host: Option<Arc<dyn ChildRuns>>,
        max_output_bytes: usize,
    ) -> WorkflowRunner {
        WorkflowRunner {
            child,
            host,
            max_output_bytes,
            tool,
        }
    }

    fn failed(&self, detail: impl std::fmt::Display) -> ToolError {
        ToolError::failed(format!("`{}`: {detail}", self.tool))
    }
}

#[async_trait::async_trait]
impl ToolRunner for WorkflowRunner {
    async fn call(&self, args: &Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let Some(host) = &self.host else {
            return Err(self.failed(
                "a workflow tool runs only inside a run (pe exec, pe resume, or pe test with the tool `live`)",
            ));
        };
        let (Some(parent), Some(key)) = (&ctx.run_id, &ctx.idempotency_key) else {
            return Err(self.failed("a workflow tool needs the run and the call it belongs to"));
        };
        let run_id = child_run_id(parent, key);
        let call = ChildCall {
            budget: ctx.budget.clone(),
            key: key.clone(),
            inputs: args.clone(),
            parent: ParentRef {
                run: parent.clone(),
                step: ctx.step.clone().unwrap_or_default(),
                tool: self.tool.clone(),
            },
            run_id: run_id.clone(),
            workflow: Arc::clone(&self.child),
        };
        let state = host.run(call).await.map_err(|e| {
            self.failed(format!(
                "cannot run workflow `{}`: {e}",
                self.child.file.name
            ))
        })?;
        let finished = state.finished.as_ref();
        match (state.status(), finished.and_then(|f| f.output.as_ref())) {
            (Some(RunStatus::Completed), Some(output)) => {
                let text = match output {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Ok(truncate_text(&text, self.max_output_bytes))
            }
            (status, _) => {
                let status = status.map_or("unfinished", RunStatus::as_str);
                let reason = finished
                    .and_then(|f| f.reason.clone())
                    .unwrap_or_else(|| "no reason recorded".into());
                Err(self.failed(format!(
                    "workflow `{}` (run {run_id}) ended {status}: {reason}",
                    self.child.file.name
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_ids_follow_their_parent_and_depend_on_the_call() {
        let a = child_run_id("20261202-070000-000-abcd", "pe-1");
        let b = child_run_id("20261202-070000-000-abcd", "pe-2");
        assert_eq!(a.len(), "20261202-070000-000-abcd".len() + 9);
        assert!(a.starts_with("20261202-070000-000-abcd."), "{a}");
        assert_ne!(a, b);
        assert_eq!(a, child_run_id("20261202-070000-000-abcd", "pe-1"));
    }
}
