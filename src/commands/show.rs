//! `pe show RUN`: one run's journal as a story — the task, the plan, each step's result or
//! error, each tool call's arguments and (truncated) output, model calls, replans with their
//! reasons, the ending and the final answer — or (`--json`) the journal as JSON lines.
//! Cost appears only where the run's models declared prices (an `llm_call` with `cost_usd`).

use std::io::Write;
use std::path::PathBuf;

use crate::cli::ShowArgs;
use crate::commands::exec::{DEFAULT_STORE, open_run};
use crate::error::{Error, exit};
use crate::render::progress::{duration, line};
use crate::render::result::output_text;
use crate::render::text::one_line;
use crate::run::event::{Event, EventKind, ToolOutcome};
use crate::run::state::RunState;

/// How many characters of a tool call's arguments and output the timeline shows.
const TOOL_CHARS: usize = 200;

/// How many of an MCP server's last stderr lines the timeline shows.
const STDERR_LINES: usize = 10;

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
    if args.json {
        for event in &read.events {
            let _ = writeln!(out, "{}", serde_json::to_string(event).unwrap_or_default());
        }
        return Ok(exit::COMPLETED);
    }
    let _ = out.write_all(story(&read.events).as_bytes());
    Ok(exit::COMPLETED)
}

/// The timeline of a run: the time of day, then what happened; the answer at the end.
pub fn story(events: &[Event]) -> String {
    let mut text = String::new();
    let mut state = RunState::default();
    for event in events {
        let time = event.at.get(11..23).unwrap_or(&event.at);
        if let Some(said) = told(&state, event) {
            for (i, l) in said.lines().enumerate() {
                let stamp = if i == 0 { time } else { "" };
                text.push_str(&format!("{stamp:<12} {l}\n"));
            }
        }
        state.apply(event);
    }
    if let Some(finished) = &state.finished {
        match &finished.output {
            Some(output) => {
                text.push_str("\nanswer:\n");
                text.push_str(output_text(output).trim_end());
                text.push('\n');
            }
            None => text.push_str("\nno answer\n"),
        }
    } else {
        text.push_str("\nthe run has not finished (pe resume continues it)\n");
    }
    text
}

/// What the story says about one event (`None`: nothing).
fn told(state: &RunState, event: &Event) -> Option<String> {
    match &event.kind {
        EventKind::RunStarted { parent, task, .. } => {
            let head = line(state, event)?;
            let child = parent
                .as_ref()
                .map(|p| {
                    format!(
                        "\nchild of run {} (step `{}`, workflow tool `{}`)",
                        p.run, p.step, p.tool
                    )
                })
                .unwrap_or_default();
            Some(format!("{head}{child}\ntask: {}", one_line(task, 300)))
        }
        EventKind::McpClosed {
            exited,
            stderr,
            tool,
        } => {
            let how = match exited {
                Some(exit) => format!("mcp {tool}: the server had {exit}"),
                None => format!("mcp {tool}: closed"),
            };
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            if lines.is_empty() {
                return Some(how);
            }
            let start = lines.len().saturating_sub(STDERR_LINES);
            let tail: Vec<String> = lines[start..]
                .iter()
                .map(|l| format!("    {}", one_line(l, TOOL_CHARS)))
                .collect();
            Some(format!(
                "{how}; the end of its stderr:\n{}",
                tail.join("\n")
            ))
        }
        EventKind::LlmCall {
            attempts,
            cached_input_tokens,
            cost_usd,
            error,
            estimated,
            input_tokens,
            latency_ms,
            model,
            output_tokens,
            requests,
            role,
            step,
        } => {
            let step = step
                .as_deref()
                .map(|s| format!(" [{s}]"))
                .unwrap_or_default();
            let mut tries = if *attempts > 1 {
                format!(" · {attempts} attempts")
            } else {
                String::new()
            };
            if *requests > 1 {
                tries.push_str(&format!(" · {requests} requests"));
            }
            // `~`: the server reported no usage, so the tokens are estimated.
            let about = if *estimated { "~" } else { "" };
            let cost = match cost_usd {
                Some(c) => format!(" · ${c:.4}"),
                None => String::new(),
            };
            let cached = if *cached_input_tokens > 0 {
                format!(" ({cached_input_tokens} cached)")
            } else {
                String::new()
            };
            let failed = error
                .as_deref()
                .map(|e| format!(" · error: {}", one_line(e, TOOL_CHARS)))
                .unwrap_or_default();
            Some(format!(
                "  {} call{step} · {model} · {about}{input_tokens}{cached}+{output_tokens} tokens · {}{tries}{cost}{failed}",
                role.as_str(),
                duration(*latency_ms as u64)
            ))
        }
        EventKind::ToolCall {
            arguments,
            child_run,
            duration_ms,
            error,
            name,
            outcome,
            output,
            step,
            ..
        } => {
            let args = one_line(&arguments.to_string(), TOOL_CHARS);
            let took = duration(*duration_ms);
            let said = match outcome {
                ToolOutcome::Ok => format!(
                    "→ ok ({took}): {}",
                    one_line(output.as_deref().unwrap_or(""), TOOL_CHARS)
                ),
                ToolOutcome::Error => format!(
                    "→ error ({took}): {}",
                    one_line(error.as_deref().unwrap_or("failed"), TOOL_CHARS)
                ),
                ToolOutcome::Rejected => format!(
                    "→ refused: {}",
                    one_line(error.as_deref().unwrap_or(""), TOOL_CHARS)
                ),
            };
            let child = child_run
                .as_deref()
                .map(|c| format!("\n    child run {c} (pe show {c})"))
                .unwrap_or_default();
            Some(format!("  {step} · {name} {args} {said}{child}"))
        }
        EventKind::BudgetExhausted {
            limit, used, max, ..
        } => Some(format!(
            "budget exhausted: {} ({used} of {max})",
            limit.as_str()
        )),
        _ => line(state, event),
    }
}
