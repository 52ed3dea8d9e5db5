//! The replanner: shown the task, the plan with every result so far and what triggered it,
//! it decides `finish`, `continue`, `revise` (new remaining steps) or `abort`. A reply that
//! does not parse, or a revision that does not validate, is re-asked with the problem (at
//! most `plan.max_attempts` calls). A revision beyond `replan.max_replans` ends the run.
//! `revise` and `finish` accept every failure the replanner was shown (it planned around
//! them, or decided the answer does not need them); `continue` accepts none.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::engine::Stop;
use crate::engine::call::{CallError, call_model};
use crate::engine::context::Ctx;
use crate::engine::control::Trigger;
use crate::engine::direct;
use crate::engine::prompts::Prompts;
use crate::engine::reply::json_object;
use crate::engine::validate::{PlanTools, Rules, parse_steps, steps_schema_for, validate};
use crate::model::{Message, ModelRequest, ResponseFormat};
use crate::run::event::{Decision, EndCause, EventKind};
use crate::run::state::RunState;
use crate::spec::{Role, StepSpec, StepStatus};
use crate::tool::carried;

/// Asks the replanner and records its decision (the run's state machine acts on it).
pub async fn replan(ctx: &Ctx, trigger: &Trigger) -> Result<(), Stop> {
    let spec = &ctx.workflow.file;
    let (vars, kept, failed, replans) = ctx.recorder.with_state(|state| {
        let failed: Vec<String> = state
            .steps
            .values()
            .filter(|s| s.failed_unaccepted())
            .map(|s| s.spec.id.clone())
            .collect();
        (
            vars_for(&ctx.prompts, state, trigger, spec.replan.max_replans),
            state.succeeded_ids(),
            failed,
            state.replans,
        )
    });
    let messages = ctx
        .prompts
        .messages(Role::Replanner, &ctx.vars(vars))
        .map_err(|e| {
            Stop::failed(
                EndCause::Fatal,
                format!("cannot render the replanner prompt: {e}"),
            )
        })?;
    let tools: Vec<&str> = ctx.tool_defs.iter().map(|t| t.name.as_str()).collect();
    let check = ctx.args_check();
    let rules = Rules {
        args: Some(&check),
        kept: &kept,
        max_steps: spec.plan.max_steps,
        step_args: spec.plan.step_args,
        tools: &tools,
    };
    let mut request = ModelRequest {
        messages,
        response_format: ResponseFormat::Json {
            name: "decision".into(),
            schema: decision_schema(&ctx.plan_tools(), spec.plan.max_steps),
        },
        ..ModelRequest::default()
    };
    let attempts = spec.plan.max_attempts.max(1);
    let mut problem = Problem::None;
    for _ in 0..attempts {
        let response = match call_model(ctx, Role::Replanner, None, &mut request).await {
            Ok(r) => r,
            Err(CallError::Model(e)) if !e.is_fatal() => {
                let mut message = e.to_string();
                carried::cut(&mut message, carried::MAX_FEEDBACK_BYTES);
                problem = Problem::Model(message);
                continue;
            }
            Err(e) => return Err(Stop::from_call(e)),
        };
        let parsed = parse_decision(&response.text).and_then(|mut d| {
            if let Some(steps) = &mut d.steps {
                direct::link(steps);
                validate(steps, &rules)?;
            }
            Ok(d)
        });
        match parsed {
            Ok(d) => {
                if d.decision == Decision::Revise && replans >= spec.replan.max_replans {
                    return Err(Stop::failed(
                        EndCause::MaxReplans,
                        format!(
                            "replan.max_replans ({}) reached: the replanner asked for another revision",
                            spec.replan.max_replans
                        ),
                    ));
                }
                let accepted = match d.decision {
                    Decision::Revise | Decision::Finish => failed,
                    Decision::Abort | Decision::Continue => Vec::new(),
                };
                ctx.recorder
                    .emit(EventKind::Replanned {
                        accepted,
                        decision: d.decision,
                        reason: d.reason.clone(),
                        steps: d.steps.clone().unwrap_or_default(),
                        trigger: trigger.kind(),
                    })
                    .map_err(Stop::Journal)?;
                return Ok(());
            }
            Err(p) => {
                // A quote of the rejected reply, never the whole of it: re-asks must not
                // grow with what the model sent.
                let mut p = p;
                carried::cut(&mut p, carried::MAX_FEEDBACK_BYTES);
                request.messages.push(Message::assistant(
                    carried::excerpt(&response.text),
                    Vec::new(),
                ));
                request.messages.push(Message::user(format!(
                    "Your decision was rejected: {p}\nReply again with one JSON object."
                )));
                problem = Problem::Reply(p);
            }
        }
    }
    Err(match problem {
        Problem::Model(e) => Stop::failed(
            EndCause::ModelFailed,
            format!("the replanner's model failed: {e}"),
        ),
        Problem::Reply(p) => Stop::failed(
            EndCause::ReplannerInvalid,
            format!(
                "the replanner gave no valid decision in {attempts} attempt{}; last problem: {p}",
                if attempts == 1 { "" } else { "s" }
            ),
        ),
        Problem::None => Stop::failed(
            EndCause::ReplannerInvalid,
            "the replanner was not asked (plan.max_attempts is 0)".to_string(),
        ),
    })
}

/// What went wrong with the latest attempt of a call that is re-asked.
pub(crate) enum Problem {
    None,
    /// The model call itself failed (after the provider's retries).
    Model(String),
    /// The model answered, but not with something valid.
    Reply(String),
}

struct Parsed {
    decision: Decision,
    reason: Option<String>,
    steps: Option<Vec<StepSpec>>,
}

fn parse_decision(text: &str) -> Result<Parsed, String> {
    let obj = json_object(text)?;
    let decision = match obj.get("decision").and_then(Value::as_str) {
        Some("abort") => Decision::Abort,
        Some("continue") => Decision::Continue,
        Some("finish") => Decision::Finish,
        Some("revise") => Decision::Revise,
        Some(other) => {
            return Err(format!(
                "unknown decision `{other}`; expected `finish`, `continue`, `revise` or `abort`"
            ));
        }
        None => {
            return Err(
                "the reply has no `decision` (`finish`, `continue`, `revise` or `abort`)".into(),
            );
        }
    };
    let reason = obj
        .get("reason")
        .and_then(Value::as_str)
        .map(str::to_string);
    let steps = match decision {
        Decision::Revise => Some(parse_steps(obj.get("steps"))?),
        _ => None,
    };
    Ok(Parsed {
        decision,
        reason,
        steps,
    })
}

fn decision_schema(tools: &PlanTools, max_steps: u32) -> Value {
    json!({
        "type": "object",
        "properties": {
            "decision": {"enum": ["finish", "continue", "revise", "abort"]},
            "reason": {"type": "string"},
            "steps": steps_schema_for(tools, max_steps)
        },
        "required": ["decision"],
        "additionalProperties": false
    })
}

/// Characters of a finished step's result (or error) in the replanner's compact view.
pub(crate) const DONE_RESULT_CHARS: usize = 200;

/// One finished step in the compact view: its result on one line, cut short.
#[derive(Serialize)]
struct DoneLine<'a> {
    id: &'a str,
    result: String,
    status: &'static str,
}

/// One step that has not finished, by id and description.
#[derive(Serialize)]
struct PendingLine<'a> {
    description: &'a str,
    id: &'a str,
}

/// The replanner's own variables, only those its templates read: `done`, `pending`,
/// `failed_step` and `replans_left` for the built-in prompt; `plan` (every step with every
/// field) and `results` for workflows' own prompts that use them.
fn vars_for(
    prompts: &Prompts,
    state: &RunState,
    trigger: &Trigger,
    max_replans: u32,
) -> minijinja::Value {
    let uses = |name: &str| prompts.uses(Role::Replanner, name);
    let failed_id = match trigger {
        Trigger::OnFailure { step, .. } => Some(step.as_str()),
        _ => None,
    };
    let mut vars: BTreeMap<&str, minijinja::Value> = BTreeMap::new();
    if uses("plan") {
        let plan: Vec<Value> = state
            .steps
            .values()
            .map(|s| {
                json!({
                    "attempts": s.attempts,
                    "depends_on": s.spec.depends_on,
                    "description": s.spec.description,
                    "error": s.error,
                    "expected": s.spec.expected,
                    "id": s.spec.id,
                    "result": s.result,
                    "status": s.status.as_str(),
                    "tool": s.spec.tool,
                })
            })
            .collect();
        vars.insert("plan", crate::engine::context::template_value(plan));
    }
    if uses("results") {
        vars.insert(
            "results",
            crate::engine::context::template_value(results(state)),
        );
    }
    if uses("done") {
        let done: Vec<DoneLine> = state
            .steps
            .values()
            .filter(|s| Some(s.spec.id.as_str()) != failed_id)
            .filter_map(|s| {
                let text = match s.status {
                    StepStatus::Succeeded => s.result.as_deref(),
                    StepStatus::Failed | StepStatus::Skipped => s.error.as_deref(),
                    StepStatus::Pending | StepStatus::Running => return None,
                };
                Some(DoneLine {
                    id: &s.spec.id,
                    result: one_line(text.unwrap_or_default(), DONE_RESULT_CHARS),
                    status: s.status.as_str(),
                })
            })
            .collect();
        vars.insert("done", crate::engine::context::template_value(done));
    }
    if uses("pending") {
        let pending: Vec<PendingLine> = state
            .steps
            .values()
            .filter(|s| matches!(s.status, StepStatus::Pending | StepStatus::Running))
            .map(|s| PendingLine {
                description: &s.spec.description,
                id: &s.spec.id,
            })
            .collect();
        vars.insert("pending", crate::engine::context::template_value(pending));
    }
    let failed_step = match trigger {
        Trigger::OnFailure { error, step } => {
            let s = state.step(step);
            json!({
                "attempts": s.map(|s| s.attempts),
                "description": s.map(|s| s.spec.description.clone()),
                "error": error,
                "id": step,
            })
        }
        _ => Value::Null,
    };
    vars.insert(
        "failed_step",
        crate::engine::context::template_value(failed_step),
    );
    vars.insert(
        "replans_left",
        minijinja::Value::from(max_replans.saturating_sub(state.replans)),
    );
    minijinja::Value::from(vars)
}

/// `text` on one line (line breaks and tabs become spaces), cut after `max` characters with
/// `…`.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 4 + 3));
    for (i, c) in text.trim().chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// Finished steps as `{id, description, status, result}` (a failure's error as its result).
pub fn results(state: &RunState) -> Vec<Value> {
    state
        .steps
        .values()
        .filter_map(|s| {
            let text = match s.status {
                StepStatus::Succeeded => s.result.clone().unwrap_or_default(),
                StepStatus::Failed | StepStatus::Skipped => s.error.clone().unwrap_or_default(),
                _ => return None,
            };
            Some(json!({
                "description": s.spec.description,
                "id": s.spec.id,
                "result": text,
                "status": s.status.as_str(),
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_parse_or_explain_why_not() {
        let d = parse_decision(r#"{"decision": "revise", "reason": "fix", "steps": [{"id": "fix", "description": "x"}]}"#).unwrap();
        assert_eq!(d.decision, Decision::Revise);
        assert_eq!(d.steps.map(|s| s.len()), Some(1));
        let e = parse_decision(r#"{"decision": "retry"}"#).err();
        assert_eq!(
            e.as_deref(),
            Some("unknown decision `retry`; expected `finish`, `continue`, `revise` or `abort`")
        );
        let e = parse_decision(r#"{"decision": "revise"}"#).err();
        assert_eq!(e.as_deref(), Some("the reply has no `steps` list"));
    }

    #[test]
    fn compact_results_are_one_line_and_cut_by_characters() {
        assert_eq!(one_line("  a\nb\tc  ", 10), "a b c");
        assert_eq!(one_line("ééééé", 3), "ééé…");
        assert_eq!(one_line("abc", 3), "abc");
        assert_eq!(one_line("", 3), "");
    }
}
