//! What `pe exec` and `pe resume` share: choosing who approves plans, running the engine
//! with the journal writer and progress view attached, and printing the result.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use crate::engine::approval::{Approver, Headless};
use crate::engine::{self, RunConfig};
use crate::error::{Error, exit};
use crate::render::approval::TerminalApprover;
use crate::render::progress::Progress;
use crate::render::result::{document, output_text, plan_text};
use crate::run::event::Event;
use crate::run::journal::Journal;
use crate::run::lease::{Holder, LeaseError};
use crate::run::state::RunState;
use crate::run::writer::Writer;
use crate::spec::RunStatus;

/// A test hook, not a feature, compiled into debug builds only (the ones `cargo test`
/// runs; a release binary ignores the variable): after the journal holds the event with
/// this sequence number, the process kills itself with SIGKILL. The crash tests use it to
/// stop a run at an exact point of its journal, which killing from outside cannot do
/// deterministically.
#[cfg(debug_assertions)]
const CRASH_AFTER_EVENT: &str = "PE_TEST_CRASH_AFTER_EVENT";

/// The event after which the process must die (debug builds, [`CRASH_AFTER_EVENT`]).
fn crash_point() -> Option<u64> {
    #[cfg(debug_assertions)]
    {
        std::env::var(CRASH_AFTER_EVENT)
            .ok()
            .and_then(|v| v.parse().ok())
    }
    #[cfg(not(debug_assertions))]
    {
        None
    }
}

/// `sha256:<hex>` of a file's bytes (recorded in `run_started`).
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::digest::sha256_hex(bytes))
}

/// Who approves plans: the terminal when stdin and stderr are one, else nobody (the run
/// waits with status `awaiting_approval`).
pub fn approver() -> Arc<dyn Approver> {
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        Arc::new(TerminalApprover)
    } else {
        Arc::new(Headless)
    }
}

/// Runs the engine with events going to the journal (then the progress view), and waits
/// until every event is written. `prior` are the events already in the journal.
pub fn run_journaled(
    config: RunConfig,
    mut journal: Journal,
    prior: &[Event],
) -> Result<RunState, Error> {
    let me = Holder::me();
    take_lease(&mut journal, &config.run_id, &me)?;
    let run_id = config.run_id.clone();
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    for event in prior {
        progress.remember(event);
    }
    let crash_after = crash_point();
    let writer = Writer::spawn(
        journal,
        config.run_id.clone(),
        Box::new(move |e| {
            progress.observe(e);
            if crash_after == Some(e.seq) {
                // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
                unsafe {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
            }
        }),
        crash_after,
    );
    // One thread runs the engine: its work between awaits is short (models and tools run
    // elsewhere: servers, processes, the inference thread, the journal writer), and a
    // multi-threaded runtime woke several idle workers for every model call.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage {
            message: format!("cannot start the async runtime: {e}"),
        })?;
    let result = runtime.block_on(engine::run(config, Arc::new(writer.handle())));
    // Dropping the runtime drops every task that could still hold the event sink.
    drop(runtime);
    let written = writer.finish();
    let state = result?;
    match written {
        Ok(mut journal) => {
            // A lease left behind is taken over once this process is gone; giving it back
            // now only saves the next process the check.
            let _ = journal.release_lease(&run_id, &me);
            Ok(state)
        }
        Err(source) => Err(Error::Store { source }),
    }
}

/// Takes the lease of a run for this process, or names the live process that holds it.
pub fn take_lease(journal: &mut Journal, run: &str, me: &Holder) -> Result<(), Error> {
    journal.acquire_lease(run, me).map_err(|e| match e {
        LeaseError::Busy { .. } => Error::RunBusy {
            holder: e.to_string(),
            run: run.to_string(),
        },
        LeaseError::Store(source) => Error::Store { source },
    })
}

/// Prints the result on stdout and returns the exit code of the run's status.
pub fn print_result(state: &RunState, json: bool, plan_only: bool) -> u8 {
    let status = state.status().unwrap_or(RunStatus::Failed);
    let mut stdout = std::io::stdout().lock();
    if json {
        let text = serde_json::to_string_pretty(&document(state)).unwrap_or_default();
        let _ = writeln!(stdout, "{text}");
    } else if plan_only {
        let _ = write!(stdout, "{}", plan_text(state));
    } else if let Some(output) = state.finished.as_ref().and_then(|f| f.output.as_ref()) {
        let _ = writeln!(stdout, "{}", output_text(output));
    }
    if plan_only && status == RunStatus::AwaitingApproval {
        exit::COMPLETED
    } else {
        status.exit_code()
    }
}
