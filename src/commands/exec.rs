//! `pe exec FILE`: check the workflow, resolve inputs and models, run the engine with the
//! journal writer and progress view attached, print the result, return the exit code.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use crate::check::load_workflow;
use crate::cli::ExecArgs;
use crate::engine::{self, RunConfig};
use crate::error::{Error, exit};
use crate::model::{apply_overrides, connect_all};
use crate::render::progress::Progress;
use crate::render::result::{document, output_text, plan_text};
use crate::run::id::new_run_id;
use crate::run::inputs;
use crate::run::journal::Journal;
use crate::run::redact::Redactor;
use crate::run::writer::Writer;
use crate::spec::RunStatus;
use crate::tool::Toolbox;

/// The store used when neither `--store` nor `PE_HOME` is set.
pub const DEFAULT_STORE: &str = ".pe";

/// Runs a workflow; the exit code follows the run's status (SPEC §4).
pub fn run(args: &ExecArgs) -> Result<u8, Error> {
    let workflow = Arc::new(load_workflow(&args.file)?);
    let given = inputs::from_command_line(&workflow, &args.inputs, args.inputs_file.as_deref())?;
    let inputs = inputs::resolve(&workflow, &given)?;
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let choices = apply_overrides(&workflow, &args.models, &cwd)?;
    let models = connect_all(choices, &engine::roles_used(&workflow))?;
    let toolbox = Arc::new(Toolbox::new(&workflow.tools));
    let redactor = Redactor::from_env(
        workflow
            .file
            .providers
            .values()
            .filter_map(|p| p.api_key_env.as_deref()),
    );
    let store = args
        .store
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE));
    let journal = Journal::open(&store).map_err(|source| Error::Store { source })?;
    let run_id = new_run_id();

    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let writer = Writer::spawn(
        journal,
        run_id.clone(),
        Box::new(move |e| progress.observe(e)),
    );
    let config = RunConfig {
        approve: args.yes,
        inputs,
        models,
        plan_only: args.plan_only,
        redactor,
        run_id,
        toolbox,
        workflow,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
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
    if let Err(source) = written {
        return Err(Error::Store { source });
    }

    let status = state.status().unwrap_or(RunStatus::Failed);
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let text = serde_json::to_string_pretty(&document(&state)).unwrap_or_default();
        let _ = writeln!(stdout, "{text}");
    } else if args.plan_only {
        let _ = write!(stdout, "{}", plan_text(&state));
    } else if let Some(output) = state.finished.as_ref().and_then(|f| f.output.as_ref()) {
        let _ = writeln!(stdout, "{}", output_text(output));
    }
    Ok(if args.plan_only && status == RunStatus::AwaitingApproval {
        exit::COMPLETED
    } else {
        status.exit_code()
    })
}
