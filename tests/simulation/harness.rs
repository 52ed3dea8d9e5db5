//! Runs a scenario through the real engine on tokio's paused clock: `pe exec` (a fresh
//! journal), then `pe resume` after every kill, journal failure or wait for approval, until
//! the run has ended. Each process gets fresh models, tools and sink — all it keeps is the
//! journal, as with real processes.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indexmap::IndexMap;
use pe::engine::approval::Approver;
use pe::engine::{self, RunConfig};
use pe::error::Error;
use pe::model::{Model, ModelSet};
use pe::run::redact::Redactor;
use pe::run::{Event, RunState};
use pe::spec::RunStatus;
use pe::tool::{ToolRunner, Toolbox};
use pe::workflow::Workflow;

use crate::scenario::{Approval, Kill, Scenario};
use crate::world::{Execution, Journal, Rejector, SimApprover, SimModel, SimSink, SimTool};

/// How one process ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Exit {
    /// The engine returned the run's state.
    Returned(Box<RunState>),
    /// The store refused an event: the engine stopped with this error.
    JournalFailed(String),
    /// The process vanished.
    Killed,
}

/// Everything that happened to one simulated run.
#[derive(Debug)]
pub struct Trace {
    pub executions: Vec<Execution>,
    pub exits: Vec<Exit>,
    pub journal: Vec<Event>,
}

/// No run needs more processes than this; more means the engine never ends the run.
const MAX_PROCESSES: usize = 8;

pub fn simulate(scenario: &Scenario, dir: &Path) -> Trace {
    let path = dir.join("sim.yaml");
    std::fs::write(&path, scenario.workflow_yaml()).unwrap();
    let workflow = Arc::new(
        pe::check::load_workflow(&path)
            .unwrap_or_else(|e| panic!("the simulated workflow must check: {e:?}")),
    );
    let scenario = Arc::new(scenario.clone());
    let journal: Journal = Arc::new(Mutex::new(Vec::new()));
    let executions = Arc::new(Mutex::new(Vec::new()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let mut exits = Vec::new();
    runtime.block_on(async {
        let mut kills = scenario.kills.iter().copied();
        let mut decided = false;
        for process in 0..MAX_PROCESSES {
            let prior = journal.lock().unwrap().clone();
            let awaiting =
                RunState::from_events(&prior).status() == Some(RunStatus::AwaitingApproval);
            // The answer given on `pe resume` to a run waiting for approval.
            let (approve, approver): (bool, Arc<dyn Approver>) = match scenario.approval {
                Approval::Defer(yes) | Approval::PlanOnly(yes) if awaiting => {
                    decided = true;
                    if yes {
                        (
                            true,
                            Arc::new(SimApprover {
                                approval: Approval::Approve,
                            }),
                        )
                    } else {
                        (false, Arc::new(Rejector))
                    }
                }
                // Once decided, later processes (after a kill) answer the same way.
                Approval::Defer(true) | Approval::PlanOnly(true) if decided => (
                    true,
                    Arc::new(SimApprover {
                        approval: Approval::Approve,
                    }),
                ),
                Approval::Defer(false) | Approval::PlanOnly(false) if decided => {
                    (false, Arc::new(Rejector))
                }
                a => (false, Arc::new(SimApprover { approval: a })),
            };
            let plan_only = process == 0 && matches!(scenario.approval, Approval::PlanOnly(_));
            let kill = kills.next();
            let exit = one_process(
                &workflow,
                &scenario,
                &journal,
                &executions,
                prior,
                approve,
                approver,
                plan_only,
                kill,
            )
            .await;
            let done = match &exit {
                Exit::Returned(state) => {
                    state.status() != Some(RunStatus::AwaitingApproval) || decided
                }
                _ => false,
            };
            exits.push(exit);
            if done {
                break;
            }
            let state = RunState::from_events(journal.lock().unwrap().iter());
            // A run waiting for approval with nobody to decide stays waiting.
            if state.status() == Some(RunStatus::AwaitingApproval)
                && !matches!(
                    scenario.approval,
                    Approval::Defer(_) | Approval::PlanOnly(_)
                )
            {
                break;
            }
        }
    });
    let journal = journal.lock().unwrap().clone();
    let executions = executions.lock().unwrap().clone();
    Trace {
        executions,
        exits,
        journal,
    }
}

#[allow(clippy::too_many_arguments)]
async fn one_process(
    workflow: &Arc<Workflow>,
    scenario: &Arc<Scenario>,
    journal: &Journal,
    executions: &Arc<Mutex<Vec<Execution>>>,
    prior: Vec<Event>,
    approve: bool,
    approver: Arc<dyn Approver>,
    plan_only: bool,
    kill: Option<Kill>,
) -> Exit {
    let model: Arc<dyn Model> = Arc::new(SimModel {
        journal: Arc::clone(journal),
        scenario: Arc::clone(scenario),
    });
    let models = ModelSet {
        choices: workflow.models.clone(),
        models: workflow
            .models
            .keys()
            .map(|role| (*role, Arc::clone(&model)))
            .collect::<IndexMap<_, _>>(),
    };
    let tool: Arc<dyn ToolRunner> = Arc::new(SimTool {
        executions: Arc::clone(executions),
        journal: Arc::clone(journal),
        scenario: Arc::clone(scenario),
    });
    let toolbox = Toolbox::new(&workflow.tools).map_runners(move |_, _| Arc::clone(&tool));
    let sink = Arc::new(SimSink {
        dead: Default::default(),
        fail_at: match kill {
            Some(Kill::AtEvent(n)) => Some(n),
            _ => None,
        },
        journal: Arc::clone(journal),
    });
    let run_id = prior
        .first()
        .map_or_else(|| "sim-run".to_string(), |_| "sim-run".to_string());
    let config = RunConfig {
        approve,
        approver,
        inputs: serde_json::json!({}),
        models,
        parent: None,
        plan_only,
        prior,
        redactor: Redactor::new(Vec::new()),
        run_id,
        toolbox: Arc::new(toolbox),
        workflow: Arc::clone(workflow),
        workflow_sha256: None,
    };
    let run = engine::run(config, sink.clone());
    tokio::pin!(run);
    let deadline = match kill {
        Some(Kill::AtTime(ms)) => Some(Duration::from_millis(ms)),
        _ => None,
    };
    let result = match deadline {
        Some(after) => {
            tokio::select! {
                biased;
                r = &mut run => r,
                () = tokio::time::sleep(after) => {
                    // Dead before anything else happens: nothing more reaches the journal.
                    sink.dead.store(true, Ordering::SeqCst);
                    return Exit::Killed;
                }
            }
        }
        None => run.await,
    };
    match result {
        Ok(state) => Exit::Returned(Box::new(state)),
        Err(Error::JournalFailed { source, .. }) => Exit::JournalFailed(source.to_string()),
        Err(e) => panic!("the engine failed outside the run: {e}"),
    }
}
