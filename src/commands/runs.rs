//! `pe runs`: the runs in the store, oldest first, each summarized from its own journal.

use std::io::Write;
use std::path::PathBuf;

use serde_json::json;

use crate::cli::RunsArgs;
use crate::commands::exec::DEFAULT_STORE;
use crate::error::{Error, exit};
use crate::render::progress::duration;
use crate::run::id::parse_rfc3339_ms;
use crate::run::journal::Journal;
use crate::run::state::RunState;

pub fn run(args: &RunsArgs) -> Result<u8, Error> {
    let store = args
        .store
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE));
    let journal = Journal::open_existing(&store).map_err(|source| Error::Store { source })?;
    let listed = match &journal {
        Some(j) => j.runs().map_err(|source| Error::Store { source })?,
        None => Vec::new(),
    };
    let mut rows = Vec::new();
    for row in listed {
        let Some(journal) = &journal else { break };
        let read = journal
            .events(&row.id)
            .map_err(|source| Error::Store { source })?;
        let state = RunState::from_events(&read.events);
        let duration_ms = match (
            parse_rfc3339_ms(&row.started_at),
            state.finished_at.as_deref().and_then(parse_rfc3339_ms),
        ) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        rows.push(json!({
            "id": row.id,
            // A child run of a workflow tool names the run that started it.
            "parent": state.parent.as_ref().map(|p| p.run.clone()),
            "workflow": row.workflow,
            // A run without `run_finished` is still running or was killed: `pe resume` it.
            "status": state.status().map_or("unfinished", |s| s.as_str()),
            "cause": state.finished.as_ref().and_then(|f| f.cause.map(|c| c.as_str())),
            "reason": state.finished.as_ref().and_then(|f| f.reason.clone()),
            "step_counts": state.counts(),
            "started_at": row.started_at,
            "duration_ms": duration_ms,
            // Only where some model had a price: no prices is not "free".
            "cost_usd": state.usage.priced.then_some(state.usage.cost_usd),
            "llm_calls": state.usage.llm_calls,
        }));
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let text = serde_json::to_string_pretty(&json!({"runs": rows})).unwrap_or_default();
        let _ = writeln!(out, "{text}");
        return Ok(exit::COMPLETED);
    }
    if rows.is_empty() {
        let _ = writeln!(out, "no runs in {}", store.display());
        return Ok(exit::COMPLETED);
    }
    let _ = writeln!(
        out,
        "{:<26} {:<24} {:<18} {:>7} {:<24} {:>9} {:>9}",
        "RUN", "WORKFLOW", "STATUS", "FAILED", "STARTED", "DURATION", "COST"
    );
    for r in &rows {
        let text = |k: &str| r[k].as_str().unwrap_or("").to_string();
        let dur = r["duration_ms"].as_i64().map_or("-".to_string(), |ms| {
            duration(u64::try_from(ms).unwrap_or(0))
        });
        let cost = r["cost_usd"]
            .as_f64()
            .map_or_else(|| "-".to_string(), |c| format!("${c:.4}"));
        let counts = &r["step_counts"];
        // Failed steps of all steps; a failure a policy or the replanner accepted is counted.
        let failed = format!(
            "{}/{}",
            counts["failed"].as_u64().unwrap_or(0),
            counts["total"].as_u64().unwrap_or(0)
        );
        // A child run follows its parent (ids sort that way), shown as `↳ .<suffix>`.
        let id = match r["parent"].as_str() {
            Some(parent) => format!("  ↳ {}", text("id").strip_prefix(parent).unwrap_or("")),
            None => text("id"),
        };
        let _ = writeln!(
            out,
            "{:<26} {:<24} {:<18} {:>7} {:<24} {:>9} {:>9}",
            id,
            text("workflow"),
            text("status"),
            failed,
            text("started_at"),
            dur,
            cost
        );
    }
    Ok(exit::COMPLETED)
}
