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
    /// Occurs when a file or directory named on the command line cannot be written.
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    /// Occurs when arguments or inputs are wrong (unknown input, bad `--model`, ...).
    #[error("{message}")]
    Usage { message: String },
    /// Occurs when an input value does not match the input's JSON Schema (or its type).
    #[error("input `{name}`: {problem}")]
    InvalidInput { name: String, problem: String },
    /// Occurs when an input has no default and no value was given.
    #[error("missing input `{name}`: set it with `--input {name}=VALUE`{}", describe(.description))]
    MissingInput {
        description: Option<String>,
        name: String,
    },
    /// Occurs when `--input` or `--inputs-file` sets an input the workflow does not declare.
    #[error("unknown input `{name}`: {help}")]
    UnknownInput { help: String, name: String },
    /// Occurs when a `--model` value is not `[ROLE=]PROVIDER/MODEL` with a known provider.
    #[error("--model {value}: {reason}")]
    ModelOverride { reason: String, value: String },
    /// Occurs when a provider needs an API key and its environment variable is unset or empty.
    #[error("the {role} model `{reference}` needs an API key: set the environment variable {var}")]
    MissingApiKey {
        reference: String,
        role: String,
        var: String,
    },
    /// Occurs when a provider entry cannot be turned into a client (a `base_url` that is not
    /// an http(s) URL, a header that is not valid HTTP).
    #[error("cannot connect to `{reference}`: {reason}")]
    ProviderSetup { reason: String, reference: String },
    /// Occurs when a role resolves to a provider this build leaves out (the embedded `local`
    /// model in a `--no-default-features` build).
    #[error(
        "the {role} model `{reference}` needs the `{provider}` provider, which this build of pe leaves out (built with --no-default-features): build it with `cargo build --locked`, or pick another model with `--model PROVIDER/MODEL` (`scripted/<replies.yaml>` runs offline)"
    )]
    ProviderUnavailable {
        provider: String,
        reference: String,
        role: String,
    },
    /// Occurs when a `local` model is not installed, not found, or does not load.
    #[error("{source}")]
    LocalModel {
        source: crate::models_cache::ModelsError,
    },
    /// Occurs when a scripted replies file cannot be read or is malformed.
    #[error("{source}")]
    ScriptedReplies {
        source: crate::model::scripted::ScriptedLoadError,
    },
    /// Occurs when the run store cannot be opened, read or written, or names no such run.
    #[error("{source}")]
    Store {
        source: crate::run::journal::JournalError,
    },
    /// Occurs when the run store fails while a run is going: the run stops at once, before
    /// anything else happens unrecorded, and stays unfinished in the store.
    #[error(
        "run {run} stopped: {source}; nothing ran after that. Fix the run store, then `pe resume {run}`"
    )]
    JournalFailed {
        run: String,
        source: crate::engine::JournalHalt,
    },
    /// Occurs when `pe resume` (or a second `pe exec` of the same run) names a run that
    /// another live process is running.
    #[error("run {run} is being run by {holder}; wait for it to end (or stop it) before resuming")]
    RunBusy { holder: String, run: String },
    /// Occurs when `pe resume` is asked to continue a run that awaits approval, with
    /// neither `--approve` nor `--reject` and no terminal to ask on.
    #[error(
        "run {run} awaits approval of its plan: continue it with `pe resume {run} --approve` or end it with `--reject`"
    )]
    AwaitingApproval { run: String },
    /// Occurs when a cassette cannot be read or written, or holds a line that is not an
    /// exchange.
    #[error("{source}")]
    Cassette {
        source: crate::run::cassette::CassetteError,
    },
    /// Occurs when `pe exec --replay` met a request the cassette does not have (the
    /// workflow, its inputs or its prompts changed since the recording).
    #[error("the run drifted from the cassette {cassette}: {detail}")]
    Drift { cassette: String, detail: String },
    /// Occurs when `pe resume` names a run that already ended (completed, failed, aborted,
    /// rejected or out of budget).
    #[error(
        "run {run} already ended {status}; only an interrupted run or one awaiting approval can be resumed"
    )]
    NotResumable { run: String, status: String },
    /// Occurs when `pe resume --reject` names a run that is not waiting for approval.
    #[error("run {run} is not awaiting approval: there is no plan to reject")]
    NothingToReject { run: String },
    /// Occurs when the workflow file changed since the run started and `--force` was not
    /// given (the remaining steps would run under different rules than the finished ones).
    #[error(
        "{path} changed since run {run} started; resume with --force to continue under the changed file"
    )]
    WorkflowChanged { path: String, run: String },
    /// Occurs when rendering the task or a prompt fails at run time (a filter error on
    /// an input value; undefined variables are caught by `pe check`).
    #[error("cannot render {what}: {message}")]
    Template { message: String, what: String },
}

fn describe(description: &Option<String>) -> String {
    match description {
        Some(d) => format!(" ({d})"),
        None => String::new(),
    }
}

impl Error {
    pub fn code(&self) -> u8 {
        match self {
            Error::InvalidWorkflow { .. } => exit::INVALID_WORKFLOW,
            Error::Read { .. }
            | Error::Write { .. }
            | Error::Usage { .. }
            | Error::InvalidInput { .. }
            | Error::MissingInput { .. }
            | Error::UnknownInput { .. }
            | Error::ModelOverride { .. }
            | Error::MissingApiKey { .. }
            | Error::ProviderSetup { .. }
            | Error::ProviderUnavailable { .. }
            | Error::LocalModel { .. }
            | Error::ScriptedReplies { .. }
            | Error::Store { .. }
            | Error::Template { .. }
            | Error::Cassette { .. }
            | Error::NotResumable { .. }
            | Error::NothingToReject { .. }
            | Error::WorkflowChanged { .. } => exit::USAGE,
            Error::AwaitingApproval { .. } => exit::APPROVAL,
            Error::Drift { .. } | Error::JournalFailed { .. } => exit::RUN_FAILED,
            Error::RunBusy { .. } => exit::USAGE,
        }
    }
}
