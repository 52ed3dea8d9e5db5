//! Progress on stderr, drawn from events only. On a terminal: a live view where every
//! finished step stays on screen as a line (✓/✗, duration, a one-line result or error),
//! replans show their decision and reason, running steps have a spinner below them, and the
//! last line is the run's status. Otherwise: one plain line per noteworthy event, for logs
//! and CI. Both print the same lines; the live view only adds the spinners.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::render::color::{Paint, paint};
use crate::render::text::one_line;
use crate::run::event::{Decision, Event, EventKind, FailureThen, ToolOutcome};
use crate::run::state::RunState;
use crate::spec::{RunStatus, StepStatus};

/// How many characters of a step's result or error its line shows.
const RESULT_CHARS: usize = 100;

/// Renders events as they are written.
pub struct Progress {
    color: bool,
    live: Option<Live>,
    state: RunState,
}

struct Live {
    /// The spinner of each running step.
    bars: HashMap<String, ProgressBar>,
    multi: MultiProgress,
    style: ProgressStyle,
}

impl Progress {
    /// `live`: draw the terminal view (stderr is a terminal); else plain lines. Colour
    /// follows `--color` and `NO_COLOR` (see [`crate::render::color`]).
    pub fn new(live: bool) -> Progress {
        let color = crate::render::color::stderr();
        // The elapsed time is dimmed only where colour is allowed.
        let template = if color {
            "{spinner} {msg} {elapsed:.dim}"
        } else {
            "{spinner} {msg} {elapsed}"
        };
        Progress {
            color,
            live: live.then(|| Live {
                bars: HashMap::new(),
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                style: ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            }),
            state: RunState::default(),
        }
    }

    /// Folds in an event that happened before (a resumed run's journal) without showing it.
    pub fn remember(&mut self, event: &Event) {
        self.state.apply(event);
    }

    /// Shows one event.
    pub fn observe(&mut self, event: &Event) {
        let line = line(&self.state, event).map(|l| colorize(&l, self.color));
        self.state.apply(event);
        match &mut self.live {
            None => {
                if let Some(line) = line {
                    let _ = writeln!(std::io::stderr().lock(), "{line}");
                }
            }
            Some(live) => live.observe(event, line),
        }
    }
}

impl Live {
    fn observe(&mut self, event: &Event, line: Option<String>) {
        match &event.kind {
            EventKind::StepStarted { attempt, step } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(self.style.clone());
                let suffix = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                bar.set_message(format!("{step}{suffix}"));
                bar.enable_steady_tick(Duration::from_millis(100));
                if let Some(old) = self.bars.insert(step.clone(), bar) {
                    self.remove(&old);
                }
                // The spinner says it; no `▶ step` line.
            }
            EventKind::StepFinished { step, .. } => {
                if let Some(bar) = self.bars.remove(step) {
                    self.remove(&bar);
                }
                self.print(line);
            }
            EventKind::ToolCall { step, name, .. } => {
                if let Some(bar) = self.bars.get(step) {
                    bar.set_message(format!("{step} · {name}"));
                }
                self.print(line);
            }
            EventKind::RunFinished { .. } => {
                for (_, bar) in self.bars.drain() {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                self.print(line);
            }
            _ => self.print(line),
        }
    }

    /// Prints above the spinners, where it stays.
    fn print(&self, line: Option<String>) {
        if let Some(line) = line {
            let _ = self.multi.println(line);
        }
    }

    fn remove(&self, bar: &ProgressBar) {
        bar.finish_and_clear();
        self.multi.remove(bar);
    }
}

/// Colours a line's leading mark (✓ green, ✗ red, ↻ and - yellow) and a status line.
fn colorize(line: &str, on: bool) -> String {
    if !on {
        return line.to_string();
    }
    let marks = [
        ("✓", Paint::Green),
        ("✗", Paint::Red),
        ("↻", Paint::Yellow),
        ("- ", Paint::Yellow),
    ];
    for (mark, colour) in marks {
        if let Some(rest) = line.strip_prefix(mark) {
            return format!("{}{rest}", paint(mark, colour, true));
        }
    }
    line.to_string()
}

/// The plain line for an event, given the state before it (`None`: nothing to show).
pub fn line(state: &RunState, event: &Event) -> Option<String> {
    Some(match &event.kind {
        EventKind::RunStarted {
            run_id, workflow, ..
        } => format!("run {run_id} · {workflow}"),
        EventKind::PlanCreated {
            attempts,
            source,
            steps,
        } => {
            let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
            let from = match (source.as_str(), attempts) {
                ("fixed", _) => "fixed plan".to_string(),
                (_, 1) => "plan".to_string(),
                (_, n) => format!("plan (after {n} attempts)"),
            };
            format!(
                "{from}: {} step{}: {}",
                steps.len(),
                plural(steps.len()),
                ids.join(", ")
            )
        }
        EventKind::PlanApproved {
            by,
            steps: Some(steps),
        } => {
            let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
            format!("plan edited and approved ({by}): {}", ids.join(", "))
        }
        EventKind::PlanApproved { by, .. } if by != "policy" => format!("plan approved ({by})"),
        EventKind::PlanApproved { .. } => return None,
        EventKind::RunResumed { retried } if retried.is_empty() => {
            format!("resumed run {}", state.run_id)
        }
        EventKind::RunResumed { retried } => format!(
            "resumed run {}; retrying {}",
            state.run_id,
            retried.join(", ")
        ),
        EventKind::StepStarted { attempt, step } if *attempt > 1 => {
            format!("▶ {step} (attempt {attempt})")
        }
        EventKind::StepStarted { step, .. } => format!("▶ {step}"),
        EventKind::StepFinished {
            duration_ms,
            error,
            result,
            status,
            step,
            then,
            ..
        } => {
            let took = duration(*duration_ms);
            let said = |text: Option<&str>| match text.map(|t| one_line(t, RESULT_CHARS)) {
                Some(t) if !t.is_empty() => format!(": {t}"),
                _ => String::new(),
            };
            let next = match then {
                Some(FailureThen::Retry) => " → retrying",
                Some(FailureThen::Skip) => " → accepted (on_step_failure: skip)",
                Some(FailureThen::Replan) => " → asking the replanner",
                Some(FailureThen::Abort) => " → aborting the run",
                Some(FailureThen::Fail | FailureThen::Fatal) => " → the run fails",
                None => "",
            };
            match status {
                StepStatus::Succeeded => format!("✓ {step} ({took}){}", said(result.as_deref())),
                StepStatus::Failed => {
                    format!("✗ {step} ({took}){}{next}", said(error.as_deref()))
                }
                StepStatus::Skipped => format!("- {step} skipped{}", said(error.as_deref())),
                StepStatus::Pending | StepStatus::Running => return None,
            }
        }
        EventKind::ToolStarted { .. } => return None,
        EventKind::McpConnected {
            duration_ms,
            server,
            skipped,
            tool,
            tools,
            ..
        } => {
            let who = if server.is_empty() {
                String::new()
            } else {
                format!(" ({server})")
            };
            let left_out = if skipped.is_empty() {
                String::new()
            } else {
                format!(", {} left out", skipped.len())
            };
            format!(
                "mcp {tool}{who}: {} tool{} in {}{left_out}",
                tools.len(),
                plural(tools.len()),
                duration(*duration_ms)
            )
        }
        EventKind::McpFailed { error, .. } => format!("✗ {error}"),
        EventKind::McpClosed {
            exited: Some(exit),
            tool,
            ..
        } => format!("  mcp {tool}: the server had {exit}"),
        EventKind::McpClosed { .. } => return None,
        EventKind::ToolCall {
            child_run: Some(child),
            name,
            outcome: ToolOutcome::Ok,
            step,
            ..
        } => format!("  {step} · {name} → run {child}"),
        EventKind::ToolCall {
            error,
            name,
            outcome,
            step,
            ..
        } => match outcome {
            ToolOutcome::Ok => return None,
            ToolOutcome::Error => format!(
                "  {step} · {name}: {}",
                error.as_deref().unwrap_or("failed")
            ),
            ToolOutcome::Rejected => format!(
                "  {step} · {name} refused: {}",
                error.as_deref().unwrap_or("")
            ),
        },
        EventKind::LlmCall {
            error: Some(e),
            role,
            ..
        } => format!("  {} model error: {e}", role.as_str()),
        EventKind::LlmCall { .. } => return None,
        EventKind::LlmRetry {
            attempt,
            delay_ms,
            error,
            role,
            step,
            ..
        } => format!(
            "  {} model{}: attempt {attempt} failed: {error}; retrying in {}",
            role.as_str(),
            step.as_deref()
                .map(|s| format!(" [{s}]"))
                .unwrap_or_default(),
            duration(*delay_ms)
        ),
        EventKind::StructuredOutputFallback {
            from,
            provider,
            reason,
            status,
            to,
            ..
        } => format!(
            "  provider `{provider}` refused structured output `{from}` (HTTP {status}: {reason}); using `{to}` for the rest of the run (set `structured_output: {to}` on the provider to start there)"
        ),
        EventKind::Replanned {
            accepted,
            decision,
            reason,
            steps,
            trigger,
        } => {
            let mut text = format!("↻ replanner ({}): {}", trigger.as_str(), decision.as_str());
            if let Some(r) = reason {
                text.push_str(&format!(" — {r}"));
            }
            if *decision == Decision::Revise {
                let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
                text.push_str(&format!("; next: {}", ids.join(", ")));
            }
            if !accepted.is_empty() {
                text.push_str(&format!("; accepts the failure of {}", accepted.join(", ")));
            }
            text
        }
        EventKind::BudgetExhausted { .. } => return None,
        EventKind::RunFinished {
            reason,
            status,
            usage,
            ..
        } => {
            let elapsed = match (
                crate::run::id::parse_rfc3339_ms(&state.started_at),
                crate::run::id::parse_rfc3339_ms(&event.at),
            ) {
                (Some(a), Some(b)) => duration(u64::try_from(b - a).unwrap_or(0)),
                _ => "?".into(),
            };
            let mut text = format!(
                "{} in {elapsed} · {} model call{} · {} tokens",
                status.as_str(),
                usage.llm_calls,
                plural(usage.llm_calls as usize),
                usage.input_tokens + usage.output_tokens
            );
            if usage.cost_usd > 0.0 {
                text.push_str(&format!(" · ${:.4}", usage.cost_usd));
            }
            if let Some(r) = reason
                && *status != RunStatus::Completed
            {
                text.push_str(&format!("\n{}: {r}", status.as_str()));
            }
            text
        }
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `12ms`, `1.2s`, `2m03s`.
pub fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(12), "12ms");
        assert_eq!(duration(1234), "1.2s");
        assert_eq!(duration(123_000), "2m03s");
    }
}
