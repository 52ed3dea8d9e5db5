//! `pe resume RUN`: continue a run from its journal. The journal is read (a torn last
//! event is dropped and removed), folded, and handed to the engine, which skips what the
//! events show as done. The workflow file is read and checked again; a file whose content
//! changed since `run_started` is refused unless `--force`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;

use crate::check::load_workflow;
use crate::cli::ResumeArgs;
use crate::commands::children::{Children, ModelPool};
use crate::commands::durable::{approver, print_result, run_journaled, sha256, take_lease};
use crate::commands::exec::{open_run, redactor, store_dir};
use crate::engine::approval::{Approver, PlanProposal, Review};
use crate::engine::{self, RunConfig};
use crate::error::Error;
use crate::model::{apply_overrides, connect_all};
use crate::run::inputs;
use crate::run::lease::Holder;
use crate::run::state::RunState;
use crate::spec::RunStatus;
use crate::tool::Toolbox;

/// Answers with a rejection (`pe resume --reject`).
struct Rejector;

#[async_trait::async_trait]
impl Approver for Rejector {
    async fn review(&self, _proposal: PlanProposal) -> Review {
        Review::Reject(Some("rejected with pe resume --reject".into()))
    }
}

pub fn run(args: &ResumeArgs) -> Result<u8, Error> {
    let store = store_dir(args.store.as_deref());
    let (mut journal, id, _) = open_run(&store, &args.run)?;
    // One process at a time drives a run: take it (or be told who has it) before reading
    // where it stands, so the state checked below is not changing under us.
    take_lease(&mut journal, &id, &Holder::me())?;
    let read = journal
        .events(&id)
        .map_err(|source| Error::Store { source })?;
    if let Some(seq) = read.dropped_torn {
        let _ = writeln!(
            std::io::stderr().lock(),
            "warning: the last event of run {id} (#{seq}) was incompletely written; it is dropped and the run continues before it"
        );
        journal
            .remove_event(&id, seq)
            .map_err(|source| Error::Store { source })?;
    }
    let state = RunState::from_events(&read.events);
    let awaiting = state.status() == Some(RunStatus::AwaitingApproval);
    if let Some(status) = state.status()
        && !awaiting
    {
        return Err(Error::NotResumable {
            run: id,
            status: status.as_str().to_string(),
        });
    }
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if awaiting && !args.approve && !args.reject && !interactive {
        return Err(Error::AwaitingApproval { run: id });
    }

    let path = PathBuf::from(&state.path);
    let workflow = Arc::new(load_workflow(&path)?);
    // Only a plan someone must decide on can be rejected: one the run stopped to wait for,
    // or a revision of a workflow that approves plans.
    let decision_due =
        state.approval_pending && (state.approval_requested || workflow.file.plan.approve);
    if args.reject && !decision_due {
        return Err(Error::NothingToReject { run: id });
    }
    let now = std::fs::read(&path).ok().map(|b| sha256(&b));
    if !args.force
        && let Some(then) = &state.workflow_sha256
        && now.as_ref() != Some(then)
    {
        return Err(Error::WorkflowChanged {
            path: state.path.clone(),
            run: id,
        });
    }
    let given: IndexMap<String, Value> = match &state.inputs {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => IndexMap::new(),
    };
    let inputs = inputs::resolve(&workflow, &given)?;
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let overrides = recorded_overrides(&workflow, &state, &args.models);
    let choices = apply_overrides(&workflow, &overrides, &cwd)?;
    let bases = choices.bases.clone();
    let models =
        connect_all(choices, &engine::roles_used(&workflow))?.redacted(&redactor(&workflow));
    // An unfinished child of a workflow tool is resumed when the parent makes its call again
    // (the child's id comes from the call's idempotency key); a finished one is reused.
    let children = Children::journaled(
        &store,
        overrides,
        ModelPool::of(&models, &bases),
        args.approve,
    );
    let approver: Arc<dyn Approver> = if args.reject {
        Arc::new(Rejector)
    } else {
        approver()
    };
    let config = RunConfig {
        approve: args.approve,
        approver,
        inputs,
        models,
        parent: None,
        plan_only: false,
        prior: read.events.clone(),
        redactor: redactor(&workflow),
        run_id: id,
        toolbox: Arc::new(Toolbox::new(&workflow.tools).with_child_runs(children)),
        workflow,
        workflow_sha256: now,
    };
    let state = run_journaled(config, journal, &read.events)?;
    Ok(print_result(&state, args.json, false))
}

/// The models the run started with, as `--model ROLE=REF` overrides where they differ from
/// the workflow's own choice (the run was started with `--model`), then the ones given now.
fn recorded_overrides(
    workflow: &crate::workflow::Workflow,
    state: &RunState,
    given: &[String],
) -> Vec<String> {
    let mut overrides: Vec<String> = state
        .models
        .iter()
        .filter(|(role, reference)| {
            workflow
                .models
                .get(*role)
                .is_none_or(|c| &c.reference() != *reference)
        })
        .map(|(role, reference)| format!("{}={reference}", role.as_str()))
        .collect();
    overrides.extend(given.iter().cloned());
    overrides
}
