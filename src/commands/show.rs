//! `pe show RUN`: one run's journal, as a readable timeline or (`--json`) as JSON lines.

use std::io::Write;
use std::path::PathBuf;

use crate::cli::ShowArgs;
use crate::commands::exec::{DEFAULT_STORE, open_run};
use crate::error::{Error, exit};
use crate::render::progress::line;
use crate::run::state::RunState;

pub fn run(args: &ShowArgs) -> Result<u8, Error> {
    let store = args
        .store
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE));
    let (_journal, id, read) = open_run(&store, &args.run)?;
    if let Some(seq) = read.dropped_torn {
        let _ = writeln!(
            std::io::stderr().lock(),
            "warning: the last event of run {id} (#{seq}) was incompletely written and is ignored"
        );
    }
    let mut out = std::io::stdout().lock();
    let mut state = RunState::default();
    for event in &read.events {
        if args.json {
            let _ = writeln!(out, "{}", serde_json::to_string(event).unwrap_or_default());
        } else {
            // Timeline: the time of day, then the progress line (or the bare event type).
            let time = event.at.get(11..23).unwrap_or(&event.at);
            let text = line(&state, event).unwrap_or_else(|| detail(event));
            for (i, l) in text.lines().enumerate() {
                let stamp = if i == 0 { time } else { "" };
                let _ = writeln!(out, "{stamp:<12} {l}");
            }
        }
        state.apply(event);
    }
    Ok(exit::COMPLETED)
}

/// A line for events the progress view does not show.
fn detail(event: &crate::run::event::Event) -> String {
    use crate::run::event::EventKind;
    match &event.kind {
        EventKind::LlmCall {
            attempts,
            input_tokens,
            latency_ms,
            model,
            output_tokens,
            role,
            step,
            ..
        } => {
            let step = step
                .as_deref()
                .map(|s| format!(" [{s}]"))
                .unwrap_or_default();
            let tries = if *attempts > 1 {
                format!(" · {attempts} attempts")
            } else {
                String::new()
            };
            format!(
                "  {} call{step} · {model} · {input_tokens}+{output_tokens} tokens · {latency_ms}ms{tries}",
                role.as_str()
            )
        }
        EventKind::ToolCall {
            name,
            step,
            duration_ms,
            ..
        } => format!("  {step} · {name}: ok ({duration_ms}ms)"),
        EventKind::BudgetExhausted {
            limit, used, max, ..
        } => format!("budget exhausted: {} ({used} of {max})", limit.as_str()),
        other => other.name().to_string(),
    }
}
