//! Child runs of workflow tools, for `pe exec` / `pe resume` (journaled in the same store,
//! each a run of its own linked to its parent) and for `pe test` (in memory).
//!
//! A child's models are its own workflow's, with the same `--model` overrides the parent
//! got; a model the parent already connected (same reference, same base directory) is
//! shared, so a scripted replies file serves parent and children in one sequence and the
//! embedded model is loaded once. A child runs headless: a plan that needs approval is
//! approved only when the parent was (`--yes`), else the child ends `awaiting_approval`
//! and the call fails.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use indexmap::IndexMap;
use serde_json::Value;

use crate::commands::durable::sha256;
use crate::commands::exec::redactor;
use crate::engine::approval::Headless;
use crate::engine::{self, ChildOf, MemorySink, ParentBudget, RunConfig};
use crate::error::Error;
use crate::model::{Choices, Model, ModelSet, apply_overrides, connect_all};
use crate::run::inputs;
use crate::run::journal::Journal;
use crate::run::lease::Holder;
use crate::run::redact::Redactor;
use crate::run::state::RunState;
use crate::run::writer::Writer;
use crate::spec::{Role, RunStatus};
use crate::tool::{ChildCall, ChildRunError, ChildRuns, Toolbox};
use crate::workflow::Workflow;

/// Models a parent connected, which its children reuse: (reference, base directory, model).
#[derive(Clone, Default)]
pub struct ModelPool {
    models: Vec<(String, PathBuf, Arc<dyn Model>)>,
}

impl ModelPool {
    /// The pool of a connected set; `bases` are the directories its references resolved in.
    pub fn of(set: &ModelSet, bases: &IndexMap<Role, PathBuf>) -> ModelPool {
        let models = set
            .models
            .iter()
            .filter_map(|(role, model)| {
                let choice = set.choices.get(role)?;
                let base = bases.get(role)?.clone();
                Some((choice.reference(), base, Arc::clone(model)))
            })
            .collect();
        ModelPool { models }
    }

    /// Connects a child's roles: shared models where the pool has them, the rest anew.
    fn connect(&self, choices: Choices, roles: &[Role]) -> Result<ModelSet, Error> {
        let mut shared = IndexMap::new();
        let mut missing = Vec::new();
        for role in roles {
            let found = choices.choices.get(role).and_then(|c| {
                let base = choices.bases.get(role)?;
                self.models
                    .iter()
                    .find(|(r, b, _)| *r == c.reference() && b == base)
                    .map(|(_, _, m)| Arc::clone(m))
            });
            match found {
                Some(model) => {
                    shared.insert(*role, model);
                }
                None => missing.push(*role),
            }
        }
        let mut set = connect_all(choices, &missing)?;
        set.models.extend(shared);
        Ok(set)
    }
}

/// How child runs are recorded.
enum Store {
    Journal(PathBuf),
    /// In memory, every role on the test case's model for that role.
    Memory(IndexMap<Role, Arc<dyn Model>>),
}

/// Runs children for one `pe exec`, `pe resume` or `pe test` process.
pub struct Children {
    approve: bool,
    cwd: PathBuf,
    me: Weak<Children>,
    overrides: Vec<String>,
    pool: ModelPool,
    /// Child runs this process ran, resumed or found finished.
    started: Mutex<HashSet<String>>,
    store: Store,
}

impl Children {
    /// Children journaled in `store` (`pe exec`, `pe resume`).
    pub fn journaled(
        store: &Path,
        overrides: Vec<String>,
        pool: ModelPool,
        approve: bool,
    ) -> Arc<Children> {
        Children::new(
            Store::Journal(store.to_path_buf()),
            overrides,
            pool,
            approve,
        )
    }

    /// Children in memory (`pe test`): every role on the case's model for that role.
    pub fn in_memory(models: &ModelSet) -> Arc<Children> {
        Children::new(
            Store::Memory(models.models.clone()),
            Vec::new(),
            ModelPool::default(),
            true,
        )
    }

    fn new(store: Store, overrides: Vec<String>, pool: ModelPool, approve: bool) -> Arc<Children> {
        Arc::new_cyclic(|me| Children {
            approve,
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            me: me.clone(),
            overrides,
            pool,
            started: Mutex::new(HashSet::new()),
            store,
        })
    }

    fn toolbox(&self, workflow: &Workflow) -> Toolbox {
        let toolbox = Toolbox::new(&workflow.tools);
        match self.me.upgrade() {
            Some(me) => toolbox.with_child_runs(me),
            None => toolbox,
        }
    }

    /// Everything the engine needs, except the sink.
    fn config(
        &self,
        call: &ChildCall,
        prior: Vec<crate::run::event::Event>,
    ) -> Result<RunConfig, Error> {
        let workflow = Arc::clone(&call.workflow);
        let given: IndexMap<String, Value> = match &call.inputs {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => IndexMap::new(),
        };
        let inputs = inputs::resolve(&workflow, &given)?;
        let choices = apply_overrides(&workflow, &self.overrides, &self.cwd)?;
        let models = match &self.store {
            Store::Memory(models) => ModelSet {
                choices: choices.choices,
                models: models.clone(),
            },
            Store::Journal(_) => self.pool.connect(choices, &engine::roles_used(&workflow))?,
        };
        let workflow_sha256 = std::fs::read(&workflow.path).ok().map(|b| sha256(&b));
        let redactor = match self.store {
            Store::Journal(_) => redactor(&workflow),
            Store::Memory(_) => Redactor::default(),
        };
        Ok(RunConfig {
            approve: self.approve,
            approver: Arc::new(Headless),
            inputs,
            models,
            parent: Some(ChildOf {
                budget: call.budget.clone().map(|gate| ParentBudget {
                    gate,
                    key: call.key.clone(),
                }),
                link: call.parent.clone(),
            }),
            plan_only: false,
            prior,
            redactor,
            run_id: call.run_id.clone(),
            toolbox: Arc::new(self.toolbox(&workflow)),
            workflow,
            workflow_sha256,
        })
    }

    async fn journaled_run(&self, store: &Path, call: ChildCall) -> Result<RunState, Error> {
        let (journal, read) = blocking({
            let store = store.to_path_buf();
            let id = call.run_id.clone();
            move || {
                let mut journal =
                    Journal::open(&store).map_err(|source| Error::Store { source })?;
                crate::commands::durable::take_lease(&mut journal, &id, &Holder::me())?;
                let read = journal
                    .events(&id)
                    .map_err(|source| Error::Store { source })?;
                if let Some(seq) = read.dropped_torn {
                    journal
                        .remove_event(&id, seq)
                        .map_err(|source| Error::Store { source })?;
                }
                Ok((journal, read))
            }
        })
        .await?;
        let prior = RunState::from_events(&read.events);
        let done = prior
            .status()
            .is_some_and(|s| s != RunStatus::AwaitingApproval);
        if let Some(gate) = &call.budget {
            // What the child spent before (a resumed parent) counts for the parent now.
            gate.carried(&call.key, &prior.usage);
        }
        if done || !read.events.is_empty() {
            self.mark_started(&call.run_id);
        }
        if done {
            // A resumed parent making the same call again: the child's result stands.
            release(journal, call.run_id.clone()).await;
            return Ok(prior);
        }
        let config = self.config(&call, read.events)?;
        self.mark_started(&call.run_id);
        let writer = Writer::spawn(journal, call.run_id.clone(), Box::new(|_| {}), None);
        let result = engine::run(config, Arc::new(writer.handle())).await;
        let written =
            blocking(move || writer.finish().map_err(|source| Error::Store { source })).await;
        let state = result?;
        release(written?, call.run_id.clone()).await;
        Ok(state)
    }

    fn mark_started(&self, run_id: &str) {
        if let Ok(mut started) = self.started.lock() {
            started.insert(run_id.to_string());
        }
    }
}

#[async_trait::async_trait]
impl ChildRuns for Children {
    fn started(&self, run_id: &str) -> bool {
        self.started.lock().is_ok_and(|s| s.contains(run_id))
    }

    async fn run(&self, call: ChildCall) -> Result<RunState, ChildRunError> {
        let failed = |e: Error| ChildRunError {
            message: e.to_string(),
        };
        match &self.store {
            Store::Journal(store) => self.journaled_run(store, call).await.map_err(failed),
            Store::Memory(_) => {
                let config = self.config(&call, Vec::new()).map_err(failed)?;
                self.mark_started(&call.run_id);
                engine::run(config, Arc::new(MemorySink::default()))
                    .await
                    .map_err(failed)
            }
        }
    }
}

/// Gives the child's lease back (a lease left behind is taken over anyway once this
/// process is gone).
async fn release(mut journal: Journal, id: String) {
    let _ = tokio::task::spawn_blocking(move || journal.release_lease(&id, &Holder::me())).await;
}

/// Runs blocking store work off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(Error::Usage {
            message: format!("a background task failed: {e}"),
        })
    })
}
