//! `pe exec FILE`: check the workflow, resolve inputs and models, run the engine with the
//! journal writer and progress view attached, print the result, return the exit code.
//! `--record` wraps models and tools in recording decorators; `--replay` replaces them by
//! the cassette.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::check::load_workflow;
use crate::cli::ExecArgs;
use crate::commands::children::{Children, ModelPool};
use crate::commands::durable::{approver, print_result, run_journaled, sha256};
use crate::engine::{self, RunConfig};
use crate::error::Error;
use crate::model::{Model, ModelSet, apply_overrides, connect_all};
use crate::run::cassette::{
    Recording, RecordingModel, RecordingTool, Replay, ReplayModel, ReplayTool,
};
use crate::run::cassette_mcp::{RecordingConnector, ReplayConnector};
use crate::run::id::new_run_id;
use crate::run::inputs;
use crate::run::journal::Journal;
use crate::run::redact::Redactor;
use crate::tool::{ToolRunner, Toolbox};
use crate::workflow::Workflow;

/// The store used when neither `--store` nor `PE_HOME` is set.
pub const DEFAULT_STORE: &str = ".pe";

/// Runs a workflow; the exit code follows the run's status (SPEC §4).
pub fn run(args: &ExecArgs) -> Result<u8, Error> {
    let workflow = Arc::new(load_workflow(&args.file)?);
    let workflow_sha256 = std::fs::read(&args.file).ok().map(|b| sha256(&b));
    let given = inputs::from_command_line(&workflow, &args.inputs, args.inputs_file.as_deref())?;
    let inputs = inputs::resolve(&workflow, &given)?;
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let choices = apply_overrides(&workflow, &args.models, &cwd)?;
    let bases = choices.bases.clone();
    let roles = engine::roles_used(&workflow);
    let redactor = redactor(&workflow);
    let mut toolbox = Toolbox::new(&workflow.tools);
    let store = store_dir(args.store.as_deref());
    let replay = args
        .replay
        .as_deref()
        .map(Replay::load)
        .transpose()
        .map_err(|source| Error::Cassette { source })?;
    let recording = args
        .record
        .as_ref()
        .map(|_| Recording::new(redactor.clone()));
    let models = match &replay {
        // Nothing is connected: the cassette answers every role.
        Some(replay) => replay_models(choices.choices, &roles, replay),
        None => connect_all(choices, &roles)?,
    };
    // Children (workflow tools) share the models connected here, before any recording
    // decorator: a replayed parent never runs its children, so their calls are not recorded.
    let children = Children::journaled(
        &store,
        args.models.clone(),
        ModelPool::of(&models, &bases),
        args.yes,
    );
    toolbox = toolbox.with_child_runs(children);
    let models = match &recording {
        Some(recording) => record_models(models, recording),
        None => models,
    }
    // Outside the recording: the cassette holds what the model was actually sent.
    .redacted(&redactor);
    if let Some(replay) = &replay {
        toolbox = replaying(toolbox, replay);
    }
    if let Some(recording) = &recording {
        let tools = Arc::clone(recording);
        toolbox = toolbox
            .map_runners(move |name, inner| {
                Arc::new(RecordingTool {
                    inner,
                    name: name.to_string(),
                    recording: Arc::clone(&tools),
                }) as Arc<dyn ToolRunner>
            })
            .map_connectors(|_, inner| {
                Arc::new(RecordingConnector {
                    inner,
                    recording: Arc::clone(recording),
                })
            });
    }
    let journal = Journal::open(&store).map_err(|source| Error::Store { source })?;
    let config = RunConfig {
        approve: args.yes,
        approver: approver(),
        inputs,
        models,
        parent: None,
        plan_only: args.plan_only,
        prior: Vec::new(),
        redactor,
        run_id: new_run_id(),
        toolbox: Arc::new(toolbox),
        workflow,
        workflow_sha256,
    };
    let state = run_journaled(config, journal, &[])?;
    if let (Some(path), Some(recording)) = (&args.record, &recording) {
        recording
            .save(path)
            .map_err(|source| Error::Cassette { source })?;
    }
    let code = print_result(&state, args.json, args.plan_only);
    if let Some(replay) = &replay
        && let Some(detail) = replay.verdict()
    {
        return Err(Error::Drift {
            cassette: replay.label().to_string(),
            detail,
        });
    }
    Ok(code)
}

/// The run store directory (`--store`, `PE_HOME`, else `.pe`).
pub fn store_dir(given: Option<&Path>) -> PathBuf {
    given.map_or_else(|| PathBuf::from(DEFAULT_STORE), Path::to_path_buf)
}

/// Opens an existing store and reads one run (an id, a unique prefix, or `latest`): what
/// `pe show` and `pe resume` both start from. Never creates a store.
pub fn open_run(
    store: &Path,
    run: &str,
) -> Result<(Journal, String, crate::run::journal::Read), Error> {
    let journal = Journal::open_existing(store)
        .map_err(|source| Error::Store { source })?
        .ok_or_else(|| Error::Store {
            source: crate::run::journal::JournalError::NoSuchRun {
                message: format!("no run `{run}`: there are no runs in {}", store.display()),
            },
        })?;
    let id = journal
        .find_run(run)
        .map_err(|source| Error::Store { source })?;
    let read = journal
        .events(&id)
        .map_err(|source| Error::Store { source })?;
    Ok((journal, id, read))
}

/// A toolbox whose every tool (and MCP server listing) is answered from the cassette.
pub fn replaying(toolbox: Toolbox, replay: &Arc<Replay>) -> Toolbox {
    let tools = Arc::clone(replay);
    toolbox
        .map_runners(move |name, _| {
            Arc::new(ReplayTool {
                name: name.to_string(),
                replay: Arc::clone(&tools),
            })
        })
        .map_connectors(|_, _| {
            Arc::new(ReplayConnector {
                replay: Arc::clone(replay),
            })
        })
}

/// Keeps secrets out of journals and cassettes: the values of the workflow's API-key
/// variables, and of the variables its MCP servers get from pe's environment
/// (`inherit_env`, `headers_from_env`).
pub fn redactor(workflow: &Workflow) -> Redactor {
    let mut names: Vec<&str> = workflow
        .file
        .providers
        .values()
        .filter_map(|p| p.api_key_env.as_deref())
        .collect();
    for tool in workflow.file.tools.values() {
        if let Some(mcp) = &tool.mcp {
            names.extend(mcp.inherit_env.iter().map(String::as_str));
            names.extend(mcp.headers_from_env.values().map(String::as_str));
        }
    }
    Redactor::from_env(names)
}

/// A model set whose every role answers from the cassette.
pub fn replay_models(
    choices: indexmap::IndexMap<crate::spec::Role, crate::workflow::ModelChoice>,
    roles: &[crate::spec::Role],
    replay: &Arc<Replay>,
) -> ModelSet {
    let models = roles
        .iter()
        .filter_map(|role| {
            let choice = choices.get(role)?;
            let model: Arc<dyn Model> = Arc::new(ReplayModel {
                reference: choice.reference(),
                replay: Arc::clone(replay),
            });
            Some((*role, model))
        })
        .collect();
    ModelSet { choices, models }
}

fn record_models(set: ModelSet, recording: &Arc<Recording>) -> ModelSet {
    let models = set
        .models
        .into_iter()
        .map(|(role, inner)| {
            let model: Arc<dyn Model> = Arc::new(RecordingModel {
                inner,
                recording: Arc::clone(recording),
            });
            (role, model)
        })
        .collect();
    ModelSet {
        choices: set.choices,
        models,
    }
}
