//! The result of a run on stdout: the output as text, or with `--json` one document built
//! from the run state (itself a fold of the journal), so `pe exec --json` and a fold of
//! `pe show RUN --json` agree by construction.

use serde_json::{Value, json};

use crate::run::id::parse_rfc3339_ms;
use crate::run::state::RunState;

/// The `--json` document: status, output, steps with status/result/timing, usage per role.
pub fn document(state: &RunState) -> Value {
    let finished = state.finished.as_ref();
    let steps: Vec<Value> = state
        .steps
        .values()
        .map(|s| {
            json!({
                "id": s.spec.id,
                "description": s.spec.description,
                "tool": s.spec.tool,
                "depends_on": s.spec.depends_on,
                "status": s.status.as_str(),
                "accepted_by": s.accepted.map(|a| a.as_str()),
                "attempts": s.attempts,
                "result": s.result,
                "error": s.error,
                "started_at": s.started_at,
                "finished_at": s.finished_at,
                "duration_ms": s.duration_ms,
            })
        })
        .collect();
    json!({
        "run_id": state.run_id,
        "workflow": state.workflow,
        "status": finished.map(|f| f.status.as_str()),
        "reason": finished.and_then(|f| f.reason.clone()),
        "cause": finished.and_then(|f| f.cause.map(|c| c.as_str())),
        "step_counts": state.counts(),
        "output": finished.and_then(|f| f.output.clone()),
        "steps": steps,
        "replans": state.replans,
        "tool_calls": state.tool_calls,
        "usage": state.usage,
        "budget_exhausted": state.budget_exhausted.as_ref().map(|b| json!({
            "limit": b.limit,
            "max": b.max,
            "role": b.role,
            "used": b.used,
        })),
        "started_at": state.started_at,
        "finished_at": state.finished_at,
        "duration_ms": duration_ms(state),
    })
}

fn duration_ms(state: &RunState) -> Option<i64> {
    let start = parse_rfc3339_ms(&state.started_at)?;
    let end = parse_rfc3339_ms(state.finished_at.as_deref()?)?;
    Some(end - start)
}

/// The output as text for stdout: a string as written, anything else as pretty JSON.
pub fn output_text(output: &Value) -> String {
    match output {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// The plan as text (`--plan-only`): one numbered line per step with its tool and
/// dependencies.
pub fn plan_text(state: &RunState) -> String {
    let mut out = String::new();
    for (i, s) in state.steps.values().enumerate() {
        out.push_str(&format!(
            "{}. {}\n",
            i + 1,
            crate::render::approval::step_line(&s.spec)
        ));
        if let Some(expected) = &s.spec.expected {
            out.push_str(&format!("   expected: {expected}\n"));
        }
    }
    out
}
