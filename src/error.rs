//! Errors that end a command, and the one place they map to exit codes (SPEC §4).

use crate::diagnostic::Diagnostic;
use crate::source::Source;

/// Exit codes, fixed by the product contract.
pub mod exit {
    pub const COMPLETED: u8 = 0;
    pub const RUN_FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const INVALID_WORKFLOW: u8 = 3;
    pub const BUDGET: u8 = 4;
    pub const APPROVAL: u8 = 5;
}

/// A command that could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Occurs when a workflow file fails `pe check` (also before `exec` and `test`).
    #[error("{} is not a valid workflow ({} problem{})", .file.name, .diagnostics.len(), if .diagnostics.len() == 1 { "" } else { "s" })]
    InvalidWorkflow {
        diagnostics: Vec<Diagnostic>,
        file: Box<Source>,
    },
    /// Occurs when a file named on the command line cannot be read.
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    /// Occurs when arguments or inputs are wrong (unknown input, bad `--model`, ...).
    #[error("{message}")]
    Usage { message: String },
}

impl Error {
    pub fn code(&self) -> u8 {
        match self {
            Error::InvalidWorkflow { .. } => exit::INVALID_WORKFLOW,
            Error::Read { .. } | Error::Usage { .. } => exit::USAGE,
        }
    }
}
