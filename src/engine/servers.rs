//! MCP servers in the journal: how each started (`mcp_connected`, or `mcp_failed`, which
//! ends the run `failed` before anything else happens) and how each ended (`mcp_closed`,
//! with the end of its stderr for diagnosis).

use crate::engine::context::Ctx;
use crate::engine::{Outcome, Stop};
use crate::run::event::{EndCause, EventKind};
use crate::tool::mcp::{STDERR_TAIL_BYTES, ServerReport};

/// Journals what connecting the servers gave; the first server that failed stops the run.
pub(crate) fn record_connected(ctx: &Ctx, reports: Vec<ServerReport>) -> Result<(), Stop> {
    let mut failed = None;
    for report in reports {
        let kind = match report.tools {
            Ok(tools) => EventKind::McpConnected {
                duration_ms: report.duration_ms,
                server: format!("{} {}", report.identity.name, report.identity.version)
                    .trim()
                    .to_string(),
                skipped: report.skipped,
                tool: report.entry,
                tools: tools.into_iter().map(|t| t.name).collect(),
                transport: report.transport.to_string(),
            },
            Err(e) => {
                let error = e.to_string();
                failed.get_or_insert_with(|| error.clone());
                EventKind::McpFailed {
                    error,
                    tool: report.entry,
                }
            }
        };
        ctx.recorder.emit(kind).map_err(Stop::Journal)?;
    }
    match failed {
        Some(reason) => Err(Stop::failed(EndCause::Fatal, reason)),
        None => Ok(()),
    }
}

/// Closes the servers (their process groups die) and journals how each ended.
pub(crate) async fn record_closed(
    ctx: &Ctx,
    result: Result<Outcome, Stop>,
) -> Result<Outcome, Stop> {
    for (tool, diagnostics) in ctx.toolbox.close().await {
        let mut stderr = diagnostics.stderr;
        if stderr.len() > STDERR_TAIL_BYTES {
            let cut = stderr.len() - STDERR_TAIL_BYTES;
            let at = (cut..stderr.len())
                .find(|i| stderr.is_char_boundary(*i))
                .unwrap_or(stderr.len());
            stderr.drain(..at);
        }
        let kind = EventKind::McpClosed {
            exited: diagnostics.exit,
            stderr,
            tool,
        };
        if let Err(halt) = ctx.recorder.emit(kind) {
            return Err(Stop::Journal(halt));
        }
    }
    result
}
