//! What every part of a running workflow shares: the checked workflow, the models and tools,
//! and the [`Recorder`] that turns engine happenings into events. The recorder also folds
//! each event into the run's [`RunState`], so the engine decides on exactly the state the
//! journal will replay — there is no second copy.

use std::sync::{Arc, Mutex, MutexGuard};
use tokio::time::Instant;

use serde_json::Value;

use crate::engine::budget::Reservations;
use crate::engine::control::Policy;
use crate::engine::prompts::Prompts;
use crate::model::ModelSet;
use crate::run::event::{Event, EventKind};
use crate::run::id::now_rfc3339;
use crate::run::redact::Redactor;
use crate::run::state::RunState;
use crate::tool::{ToolContext, ToolDefinition, Toolbox};
use crate::workflow::Workflow;

/// Where events go (the journal writer, a test's vector). The engine hands each event over
/// in order, then folds it.
#[async_trait::async_trait]
pub trait EventSink: Send + Sync {
    /// Takes one event. An error means nothing more can be recorded: the run stops.
    fn record(&self, event: &Event) -> Result<(), SinkFailed>;

    /// Whether the sink still records (a writer thread may have failed since the last
    /// event was handed over). Checked before every model call.
    fn healthy(&self) -> Result<(), SinkFailed> {
        Ok(())
    }

    /// Resolves once the event `seq` and every one before it are durable (at once for sinks
    /// that keep events in memory). The engine waits for this before a tool runs.
    async fn durable(&self, seq: u64) -> Result<(), SinkFailed> {
        let _ = seq;
        Ok(())
    }
}

/// A sink could not take an event.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{reason}")]
pub struct SinkFailed {
    pub reason: String,
}

/// Collects events in memory (tests, `pe test`).
#[derive(Default)]
pub struct MemorySink {
    pub events: Mutex<Vec<Event>>,
}

impl EventSink for MemorySink {
    fn record(&self, event: &Event) -> Result<(), SinkFailed> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
        Ok(())
    }
}

#[async_trait::async_trait]
impl EventSink for crate::run::writer::WriterHandle {
    fn record(&self, event: &Event) -> Result<(), SinkFailed> {
        self.send(event)
            .map_err(|e| SinkFailed { reason: e.reason })
    }

    async fn durable(&self, seq: u64) -> Result<(), SinkFailed> {
        crate::run::writer::WriterHandle::durable(self, seq)
            .await
            .map_err(|e| SinkFailed { reason: e.reason })
    }
}

/// The run store failed: nothing more can be recorded, so the run stops at once (it stays
/// unfinished in the store, and can be resumed once the store works again).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("the run store failed: {reason}")]
pub struct JournalHalt {
    pub reason: String,
}

/// The run's state, reservations of calls in flight, and the next sequence number, under
/// one lock so that checking a budget and reserving it is atomic across concurrent steps.
pub struct Ledger {
    /// What child runs spent, by the idempotency key of the call that started them; also
    /// counted in `reserved` until the call's `tool_call` journals it.
    pub children: std::collections::HashMap<String, crate::run::event::UsageTotals>,
    /// Set by the first event the sink refused; every later emit fails with it.
    halted: Option<JournalHalt>,
    pub reserved: Reservations,
    pub state: RunState,
    next_seq: u64,
}

/// Emits events: assigns sequence numbers and times, redacts secrets, hands them to the
/// sink, folds them.
pub struct Recorder {
    ledger: Mutex<Ledger>,
    redactor: Redactor,
    sink: Arc<dyn EventSink>,
}

impl Recorder {
    pub fn new(sink: Arc<dyn EventSink>, redactor: Redactor) -> Recorder {
        Recorder::resumed(sink, redactor, RunState::default())
    }

    /// A recorder that continues a run whose journal folds to `state`: new events follow
    /// the last one.
    pub fn resumed(sink: Arc<dyn EventSink>, redactor: Redactor, state: RunState) -> Recorder {
        Recorder {
            ledger: Mutex::new(Ledger {
                children: std::collections::HashMap::new(),
                halted: None,
                reserved: Reservations::default(),
                next_seq: state.last_seq + 1,
                state,
            }),
            redactor,
            sink,
        }
    }

    /// Locks the ledger (state and reservations).
    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one event; returns its sequence number.
    pub fn emit(&self, kind: EventKind) -> Result<u64, JournalHalt> {
        let mut ledger = self.ledger();
        self.emit_with(&mut ledger, kind)
    }

    /// Records one event while the caller holds the ledger (to pair it with a reservation
    /// change atomically).
    pub fn emit_with(&self, ledger: &mut Ledger, kind: EventKind) -> Result<u64, JournalHalt> {
        if let Some(halt) = &ledger.halted {
            return Err(halt.clone());
        }
        let seq = ledger.next_seq;
        let event = self.redactor.event(Event {
            at: now_rfc3339(),
            kind,
            seq,
        });
        if let Err(e) = self.sink.record(&event) {
            let halt = JournalHalt { reason: e.reason };
            ledger.halted = Some(halt.clone());
            return Err(halt);
        }
        ledger.next_seq += 1;
        ledger.state.apply(&event);
        Ok(seq)
    }

    /// Waits until event `seq` is durable: call before changing the world.
    pub async fn durable(&self, seq: u64) -> Result<(), JournalHalt> {
        if let Err(e) = self.sink.durable(seq).await {
            let mut ledger = self.ledger();
            let halt = ledger
                .halted
                .get_or_insert(JournalHalt { reason: e.reason })
                .clone();
            return Err(halt);
        }
        Ok(())
    }

    /// The store failure that stopped recording, if any (also one the sink reports before
    /// the engine's next event reached it).
    pub fn halted(&self) -> Option<JournalHalt> {
        let mut ledger = self.ledger();
        if ledger.halted.is_none()
            && let Err(e) = self.sink.healthy()
        {
            ledger.halted = Some(JournalHalt { reason: e.reason });
        }
        ledger.halted.clone()
    }

    /// A copy of the current state.
    pub fn snapshot(&self) -> RunState {
        self.ledger().state.clone()
    }

    /// Reads the state without copying it.
    pub fn with_state<T>(&self, f: impl FnOnce(&RunState) -> T) -> T {
        f(&self.ledger().state)
    }
}

/// Everything a running workflow shares.
pub struct Ctx {
    /// Approve plans that need approval without asking (`--yes`, `pe resume --approve`).
    pub approve: bool,
    /// Who is asked otherwise.
    pub approver: Arc<dyn crate::engine::approval::Approver>,
    /// Variables every prompt sees: `inputs`, `task`, `tools`, `workflow` (built once; a
    /// call's own variables are laid over them without copying them).
    pub base_vars: minijinja::Value,
    pub models: ModelSet,
    /// For a child run: its parent's budget, which every model call must fit too.
    pub parent_budget: Option<crate::engine::budget_gate::ParentBudget>,
    /// The workflow's run-control settings, resolved once.
    pub(crate) policy: Policy,
    pub prompts: Prompts,
    pub recorder: Recorder,
    pub run_id: String,
    /// When the run's active time began (earlier than now for a resumed run), on tokio's
    /// clock so tests on a paused clock see budgets exactly.
    pub started: Instant,
    /// The rendered task.
    pub task: String,
    pub tool_ctx: ToolContext,
    pub tool_defs: Vec<ToolDefinition>,
    pub toolbox: Arc<Toolbox>,
    pub workflow: Arc<Workflow>,
}

impl Ctx {
    /// The tools a plan may name, with their parameters, and whether steps carry `args`.
    pub fn plan_tools(&self) -> crate::engine::validate::PlanTools<'_> {
        crate::engine::validate::PlanTools {
            tools: self
                .tool_defs
                .iter()
                .map(|t| (t.name.as_str(), &t.parameters))
                .collect(),
            step_args: self.workflow.file.plan.step_args,
        }
    }

    /// Checks `args` written in a plan against the tool's parameters.
    pub fn args_check(&self) -> impl Fn(&str, &Value, &[String]) -> Result<(), String> + Sync + '_ {
        |tool: &str, args: &Value, templated: &[String]| {
            self.toolbox
                .check_written(tool, args, templated)
                .map_err(|e| e.to_string())
        }
    }

    /// The common prompt variables plus a role's own (which win).
    pub fn vars(&self, extra: minijinja::Value) -> minijinja::Value {
        minijinja::value::merge_maps([extra, self.base_vars.clone()])
    }
}

/// A value as templates see it (one conversion; no JSON copy in between).
pub(crate) fn template_value<S: serde::Serialize>(value: S) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(value))
}
