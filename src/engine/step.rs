//! The executor: one step as a bounded tool-calling loop. Each turn the model either calls
//! tools (their results go back into the conversation) or ends the step with a final reply:
//! `{"status": "succeeded" | "failed", "result": "..."}`, or plain text, which is a success
//! with that text as the result. The loop ends after `execute.max_iterations` turns and the
//! attempt after `execute.step_timeout`.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::engine::budget_gate::settle;
use crate::engine::call::{CallError, call_model};
use crate::engine::context::{Ctx, JournalHalt, Ledger};
use crate::engine::control::after_failure;
use crate::engine::reply::json_object;
use crate::model::{Message, ModelRequest, ResponseFormat, ToolCall, ToolChoice};
use crate::run::event::{EventKind, FailureThen, ToolOutcome, UsageTotals};
use crate::spec::{ContextMode, OnError, Role, StepSpec, StepStatus};
use crate::tool::{ToolContext, ToolError, child_run_id};
use crate::workflow::ToolKind;

/// How one attempt of a step ended.
#[derive(Clone, Debug, PartialEq)]
pub enum StepEnd {
    /// A budget refused a call: the run ends `budget_exhausted`.
    Budget(String),
    Failed(String),
    /// Retrying cannot help (a scripted replies file ran out, a prompt does not render, a
    /// provider refused the request): the run ends `failed`.
    Fatal(String),
    /// The run store failed: the run stops at once.
    Journal(JournalHalt),
    Succeeded(String),
}

/// Runs one attempt of `step` (its `step_started` is already recorded) and records its
/// `step_finished` with what the failure policy does next.
pub async fn run_step(ctx: Arc<Ctx>, step: StepSpec, attempt: u32) -> (String, StepEnd) {
    let t0 = Instant::now();
    let work = async {
        match &step.args {
            Some(_) => crate::engine::direct::run(&ctx, &step, attempt).await,
            None => tool_loop(&ctx, &step, attempt, 0).await,
        }
    };
    let mut end = match ctx.workflow.file.execute.step_timeout {
        Some(limit) => match tokio::time::timeout(limit.0, work).await {
            Ok(end) => end,
            Err(_) => StepEnd::Failed(format!(
                "the step timed out after {limit} (execute.step_timeout)"
            )),
        },
        None => work.await,
    };
    // What later prompts and the journal carry of this step is bounded.
    if let StepEnd::Succeeded(text)
    | StepEnd::Failed(text)
    | StepEnd::Fatal(text)
    | StepEnd::Budget(text) = &mut end
    {
        crate::tool::carried::cut(text, crate::tool::carried::MAX_RESULT_BYTES);
    }
    let (status, result, error, then) = match &end {
        StepEnd::Succeeded(r) => (StepStatus::Succeeded, Some(r.clone()), None, None),
        StepEnd::Failed(e) => (
            StepStatus::Failed,
            None,
            Some(e.clone()),
            Some(after_failure(&ctx.policy, attempt, false)),
        ),
        StepEnd::Fatal(e) => (
            StepStatus::Failed,
            None,
            Some(e.clone()),
            Some(FailureThen::Fatal),
        ),
        // The run is ending: no policy applies.
        StepEnd::Budget(e) => (StepStatus::Failed, None, Some(e.clone()), None),
        StepEnd::Journal(_) => return (step.id, end),
    };
    let recorded = ctx.recorder.emit(EventKind::StepFinished {
        attempt,
        duration_ms: u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX),
        error,
        result,
        status,
        step: step.id.clone(),
        then,
    });
    match recorded {
        Ok(_) => (step.id, end),
        Err(halt) => (step.id, StepEnd::Journal(halt)),
    }
}

/// The executor's loop for one attempt; `calls_before` tool calls of the attempt were made
/// already (a direct call that failed), so call numbers and idempotency keys stay unique.
pub(crate) async fn tool_loop(
    ctx: &Ctx,
    step: &StepSpec,
    attempt: u32,
    calls_before: u32,
) -> StepEnd {
    let vars = ctx.vars(crate::engine::context::template_value(json!({
        "context": context_for(ctx, step),
        "step": {
            "attempt": attempt,
            "depends_on": step.depends_on,
            "description": step.description,
            "expected": step.expected,
            "id": step.id,
            "tool": step.tool,
        },
    })));
    let prompt = match ctx.prompts.render(Role::Executor, &vars) {
        Ok(p) => p,
        Err(e) => return StepEnd::Fatal(format!("cannot render the executor prompt: {e}")),
    };
    let mut request = ModelRequest {
        messages: vec![Message::user(prompt)],
        response_format: ResponseFormat::Text,
        tools: ctx.tool_defs.clone(),
        ..ModelRequest::default()
    };
    let max = ctx.workflow.file.execute.max_iterations;
    // The plan named the step's tool: the first turn calls it (servers that ignore `tools`
    // under `tool_choice: auto`, and small models, would otherwise answer in prose without
    // acting). Only when a second turn is left to give the result.
    if max >= 2
        && let Some(tool) = &step.tool
        && request.tools.iter().any(|t| &t.name == tool)
    {
        request.tool_choice = ToolChoice::Tool(tool.clone());
    }
    let mut calls = calls_before;
    for _ in 0..max {
        let response = match call_model(ctx, Role::Executor, Some(&step.id), &mut request).await {
            Ok(r) => r,
            Err(CallError::Budget(hit)) => return StepEnd::Budget(hit.to_string()),
            Err(CallError::Journal(halt)) => return StepEnd::Journal(halt),
            Err(CallError::Model(e)) if e.is_fatal() => return StepEnd::Fatal(e.to_string()),
            Err(CallError::Model(e)) => {
                return StepEnd::Failed(format!("the executor model failed: {e}"));
            }
        };
        if response.tool_calls.is_empty() {
            if response.truncated {
                return StepEnd::Failed(
                    "the executor's reply was cut off at the output token limit".into(),
                );
            }
            return final_result(&response.text);
        }
        request.tool_choice = ToolChoice::Auto;
        request.messages.push(Message::assistant(
            response.text,
            response.tool_calls.clone(),
        ));
        for call in &response.tool_calls {
            calls += 1;
            let at = CallSite {
                attempt,
                number: calls,
                step: &step.id,
            };
            match run_tool(ctx, &at, call).await {
                Ok(content) => request.messages.push(Message::tool(&call.id, content)),
                Err(end) => return end,
            }
        }
    }
    StepEnd::Failed(format!(
        "no final result after {max} model turn{} (execute.max_iterations)",
        if max == 1 { "" } else { "s" }
    ))
}

/// Where a tool call happens: the step, its attempt, and the call's number in the attempt.
pub(crate) struct CallSite<'a> {
    pub attempt: u32,
    pub number: u32,
    pub step: &'a str,
}

/// Runs one tool call of the executor's loop; `Ok` is what the model sees, `Err` ends the
/// attempt (`on_error: fail_step`, or the store failed). Unknown tools and invalid arguments
/// never run and always go back to the model.
async fn run_tool(ctx: &Ctx, at: &CallSite<'_>, call: &ToolCall) -> Result<String, StepEnd> {
    match execute_tool(ctx, at, call).await? {
        Ok(content) => Ok(content),
        Err(e) => {
            let fails_step = !matches!(
                e,
                ToolError::UnknownTool { .. } | ToolError::InvalidArguments { .. }
            ) && ctx
                .toolbox
                .get(&call.name)
                .is_some_and(|t| t.on_error == OnError::FailStep);
            if fails_step {
                Err(StepEnd::Failed(format!("tool `{}` failed: {e}", call.name)))
            } else {
                Ok(format!("error: {e}"))
            }
        }
    }
}

/// Checks and runs one tool call and journals it: `tool_started`, durably, before a tool
/// runs, then `tool_call`. The inner result is the tool's output or why it did not give one
/// (unknown tool, invalid arguments: never run); `Err` is the store failing.
pub(crate) async fn execute_tool(
    ctx: &Ctx,
    at: &CallSite<'_>,
    call: &ToolCall,
) -> Result<Result<String, ToolError>, StepEnd> {
    let t0 = Instant::now();
    let key = match ctx.toolbox.check(&call.name, &call.arguments) {
        Ok(()) => {
            let key = idempotency_key(&ctx.run_id, at, call);
            let seq = ctx
                .recorder
                .emit(EventKind::ToolStarted {
                    arguments: call.arguments.clone(),
                    attempt: at.attempt,
                    call: at.number,
                    idempotency_key: key.clone(),
                    name: call.name.clone(),
                    step: at.step.to_string(),
                })
                .map_err(StepEnd::Journal)?;
            ctx.recorder.durable(seq).await.map_err(StepEnd::Journal)?;
            Some(key)
        }
        Err(_) => None,
    };
    let mut guard = ToolGuard {
        arguments: &call.arguments,
        ctx,
        key: key.clone(),
        name: &call.name,
        step: at.step,
    };
    let call_ctx = ToolContext {
        idempotency_key: key.clone(),
        step: Some(at.step.to_string()),
        ..ctx.tool_ctx.clone()
    };
    let result = ctx
        .toolbox
        .call(&call.name, &call.arguments, &call_ctx)
        .await;
    guard.key = None;
    let duration_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (outcome, output, error) = match &result {
        Ok(out) => (ToolOutcome::Ok, Some(out.content.clone()), None),
        Err(e @ (ToolError::UnknownTool { .. } | ToolError::InvalidArguments { .. })) => {
            (ToolOutcome::Rejected, None, Some(e.to_string()))
        }
        Err(e) => (ToolOutcome::Error, None, Some(e.to_string())),
    };
    let mut ledger = ctx.recorder.ledger();
    let (child_run, usage) = child_of(ctx, &mut ledger, &call.name, key.as_deref());
    ctx.recorder
        .emit_with(
            &mut ledger,
            EventKind::ToolCall {
                arguments: call.arguments.clone(),
                child_run,
                duration_ms,
                error,
                idempotency_key: key,
                name: call.name.clone(),
                outcome,
                output,
                step: at.step.to_string(),
                usage,
            },
        )
        .map_err(StepEnd::Journal)?;
    drop(ledger);
    Ok(result.map(|out| out.content))
}

/// For a call of a workflow tool: the child run it started, and what that spent (taken out
/// of the reservations, to be journaled with the call).
fn child_of(
    ctx: &Ctx,
    ledger: &mut Ledger,
    name: &str,
    key: Option<&str>,
) -> (Option<String>, Option<UsageTotals>) {
    let Some(key) = key else {
        return (None, None);
    };
    let usage = settle(ledger, key);
    let is_workflow = ctx
        .toolbox
        .get(name)
        .is_some_and(|t| matches!(t.kind, ToolKind::Workflow { .. }));
    let child = is_workflow
        .then(|| child_run_id(&ctx.run_id, key))
        .filter(|id| ctx.toolbox.child_started(id));
    (child, usage)
}

/// The same for the same call (run, step, attempt, call number, tool, arguments), so a
/// resumed run that makes a call again passes the key its first try had.
fn idempotency_key(run_id: &str, at: &CallSite<'_>, call: &ToolCall) -> String {
    let text = format!(
        "{run_id}\n{}\n{}\n{}\n{}\n{}",
        at.step, at.attempt, at.number, call.name, call.arguments
    );
    let hex = crate::digest::sha256_hex(text.as_bytes());
    format!("pe-{}", &hex[..32])
}

/// A started tool call. Dropped before it ends (a step timeout, the run ending), it records
/// the call as ended in error, so the journal never leaves a tool that was cancelled looking
/// as if it might still be running.
struct ToolGuard<'a> {
    arguments: &'a Value,
    ctx: &'a Ctx,
    key: Option<String>,
    name: &'a str,
    step: &'a str,
}

impl Drop for ToolGuard<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut ledger = self.ctx.recorder.ledger();
        let (child_run, usage) = child_of(self.ctx, &mut ledger, self.name, Some(&key));
        // A store failure is latched by the recorder; nothing more to do in a destructor.
        let _ = self.ctx.recorder.emit_with(
            &mut ledger,
            EventKind::ToolCall {
                arguments: self.arguments.clone(),
                child_run,
                duration_ms: 0,
                error: Some("cancelled before it finished (a timeout, or the run ended)".into()),
                idempotency_key: Some(key),
                name: self.name.to_string(),
                outcome: ToolOutcome::Error,
                output: None,
                step: self.step.to_string(),
                usage,
            },
        );
    }
}

/// The earlier results a step's prompt includes (`execute.context`).
fn context_for(ctx: &Ctx, step: &StepSpec) -> Value {
    let mode = ctx.workflow.file.execute.context;
    ctx.recorder.with_state(|state| {
        let entry = |id: &str| {
            state.step(id).and_then(|s| {
                let text = match s.status {
                    StepStatus::Succeeded => s.result.clone(),
                    StepStatus::Failed => s.error.clone(),
                    _ => None,
                }?;
                Some(json!({
                    "description": s.spec.description,
                    "id": s.spec.id,
                    "result": text,
                    "status": s.status.as_str(),
                }))
            })
        };
        let items: Vec<Value> = match mode {
            ContextMode::None => Vec::new(),
            ContextMode::Dependencies => step.depends_on.iter().filter_map(|d| entry(d)).collect(),
            ContextMode::All => state
                .steps
                .keys()
                .filter(|id| **id != step.id)
                .filter_map(|id| entry(id))
                .collect(),
        };
        Value::Array(items)
    })
}

/// Reads the model's final reply of a step.
pub fn final_result(text: &str) -> StepEnd {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return StepEnd::Failed("the executor gave an empty reply".into());
    }
    let Ok(obj) = json_object(trimmed) else {
        return StepEnd::Succeeded(trimmed.to_string());
    };
    let Some(status) = obj.get("status").and_then(Value::as_str) else {
        return StepEnd::Succeeded(trimmed.to_string());
    };
    let text_of = |key: &str| match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    match status {
        "succeeded" => StepEnd::Succeeded(text_of("result").unwrap_or_default()),
        "failed" => StepEnd::Failed(
            text_of("error")
                .or_else(|| text_of("result"))
                .unwrap_or_else(|| "the executor reported failure".into()),
        ),
        other => StepEnd::Failed(format!(
            "the executor replied with status `{other}`; expected `succeeded` or `failed`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_replies_follow_the_protocol() {
        let cases = [
            (
                r#"{"status": "succeeded", "result": "CI green"}"#,
                StepEnd::Succeeded("CI green".into()),
            ),
            (
                r#"{"status": "failed", "result": "smoke red"}"#,
                StepEnd::Failed("smoke red".into()),
            ),
            (
                r#"{"status": "succeeded", "result": {"n": 1}}"#,
                StepEnd::Succeeded(r#"{"n":1}"#.into()),
            ),
            (
                "All good, deployed.",
                StepEnd::Succeeded("All good, deployed.".into()),
            ),
            (
                r#"{"answer": 42}"#,
                StepEnd::Succeeded(r#"{"answer": 42}"#.into()),
            ),
            (
                "",
                StepEnd::Failed("the executor gave an empty reply".into()),
            ),
            (
                r#"{"status": "done"}"#,
                StepEnd::Failed(
                    "the executor replied with status `done`; expected `succeeded` or `failed`"
                        .into(),
                ),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(final_result(text), want, "{text}");
        }
    }
}
