//! The executor: one step as a bounded tool-calling loop. Each turn the model either calls
//! tools (their results go back into the conversation) or ends the step with a final reply:
//! `{"status": "succeeded" | "failed", "result": "..."}`, or plain text, which is a success
//! with that text as the result. The loop ends after `execute.max_iterations` turns and the
//! attempt after `execute.step_timeout`.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use crate::engine::call::{CallError, call_model};
use crate::engine::context::Ctx;
use crate::engine::reply::json_object;
use crate::model::{Message, ModelRequest, ResponseFormat, ToolCall};
use crate::run::event::{EventKind, ToolOutcome};
use crate::spec::{ContextMode, OnError, Role, StepSpec, StepStatus};
use crate::tool::ToolError;

/// How one attempt of a step ended.
#[derive(Clone, Debug, PartialEq)]
pub enum StepEnd {
    /// A budget refused a call: the run ends `budget_exhausted`.
    Budget(String),
    Failed(String),
    /// Retrying cannot help (a scripted replies file ran out, a prompt does not render):
    /// the run ends `failed`.
    Fatal(String),
    Succeeded(String),
}

/// Runs one attempt of `step`, recording `step_started` and `step_finished`.
pub async fn run_step(ctx: Arc<Ctx>, step: StepSpec, attempt: u32) -> (String, StepEnd) {
    ctx.recorder.emit(EventKind::StepStarted {
        attempt,
        step: step.id.clone(),
    });
    let t0 = Instant::now();
    let work = tool_loop(&ctx, &step, attempt);
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
    let (StepEnd::Succeeded(text)
    | StepEnd::Failed(text)
    | StepEnd::Fatal(text)
    | StepEnd::Budget(text)) = &mut end;
    crate::tool::carried::cut(text, crate::tool::carried::MAX_RESULT_BYTES);
    let (status, result, error) = match &end {
        StepEnd::Succeeded(r) => (StepStatus::Succeeded, Some(r.clone()), None),
        StepEnd::Failed(e) | StepEnd::Fatal(e) | StepEnd::Budget(e) => {
            (StepStatus::Failed, None, Some(e.clone()))
        }
    };
    ctx.recorder.emit(EventKind::StepFinished {
        attempt,
        duration_ms: u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX),
        error,
        result,
        status,
        step: step.id.clone(),
    });
    (step.id, end)
}

async fn tool_loop(ctx: &Ctx, step: &StepSpec, attempt: u32) -> StepEnd {
    let vars = ctx.vars(json!({
        "context": context_for(ctx, step),
        "step": {
            "attempt": attempt,
            "depends_on": step.depends_on,
            "description": step.description,
            "expected": step.expected,
            "id": step.id,
            "tool": step.tool,
        },
    }));
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
    for _ in 0..max {
        let response = match call_model(ctx, Role::Executor, Some(&step.id), &mut request).await {
            Ok(r) => r,
            Err(CallError::Budget(hit)) => {
                return StepEnd::Budget(format!("budget exhausted: {hit}"));
            }
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
        request.messages.push(Message::assistant(
            response.text,
            response.tool_calls.clone(),
        ));
        for call in &response.tool_calls {
            match run_tool(ctx, &step.id, call).await {
                Ok(content) => request.messages.push(Message::tool(&call.id, content)),
                Err(failure) => return StepEnd::Failed(failure),
            }
        }
    }
    StepEnd::Failed(format!(
        "no final result after {max} model turn{} (execute.max_iterations)",
        if max == 1 { "" } else { "s" }
    ))
}

/// Runs one tool call; `Ok` is what the model sees, `Err` fails the step
/// (`on_error: fail_step`). Unknown tools and invalid arguments never run and always go
/// back to the model.
async fn run_tool(ctx: &Ctx, step: &str, call: &ToolCall) -> Result<String, String> {
    let t0 = Instant::now();
    let result = ctx
        .toolbox
        .call(&call.name, &call.arguments, &ctx.tool_ctx)
        .await;
    let duration_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (outcome, output, error) = match &result {
        Ok(out) => (ToolOutcome::Ok, Some(out.content.clone()), None),
        Err(e @ (ToolError::UnknownTool { .. } | ToolError::InvalidArguments { .. })) => {
            (ToolOutcome::Rejected, None, Some(e.to_string()))
        }
        Err(e) => (ToolOutcome::Error, None, Some(e.to_string())),
    };
    ctx.recorder.emit(EventKind::ToolCall {
        arguments: call.arguments.clone(),
        duration_ms,
        error,
        name: call.name.clone(),
        outcome,
        output,
        step: step.to_string(),
    });
    match result {
        Ok(out) => Ok(out.content),
        Err(e) => {
            let fails_step = outcome == ToolOutcome::Error
                && ctx
                    .toolbox
                    .get(&call.name)
                    .is_some_and(|t| t.on_error == OnError::FailStep);
            if fails_step {
                Err(format!("tool `{}` failed: {e}", call.name))
            } else {
                Ok(format!("error: {e}"))
            }
        }
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
