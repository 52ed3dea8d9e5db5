//! What every part of a running workflow shares: the checked workflow, the models and tools,
//! and the [`Recorder`] that turns engine happenings into events. The recorder also folds
//! each event into the run's [`RunState`], so the engine decides on exactly the state the
//! journal will replay — there is no second copy.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde_json::{Map, Value};

use crate::engine::budget::Reservations;
use crate::engine::prompts::Prompts;
use crate::model::ModelSet;
use crate::run::event::{Event, EventKind};
use crate::run::id::now_rfc3339;
use crate::run::redact::Redactor;
use crate::run::state::RunState;
use crate::tool::{ToolContext, ToolDefinition, Toolbox};
use crate::workflow::Workflow;

/// Where events go after the engine folded them (the journal writer, a test's vector).
pub trait EventSink: Send + Sync {
    fn record(&self, event: &Event);
}

/// Collects events in memory (tests, `pe test`).
#[derive(Default)]
pub struct MemorySink {
    pub events: Mutex<Vec<Event>>,
}

impl EventSink for MemorySink {
    fn record(&self, event: &Event) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
    }
}

impl EventSink for crate::run::writer::WriterHandle {
    fn record(&self, event: &Event) {
        self.send(event);
    }
}

/// The run's state, reservations of calls in flight, and the next sequence number, under
/// one lock so that checking a budget and reserving it is atomic across concurrent steps.
pub struct Ledger {
    pub reserved: Reservations,
    pub state: RunState,
    next_seq: u64,
}

/// Emits events: assigns sequence numbers and times, redacts secrets, folds, forwards.
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

    /// Records one event.
    pub fn emit(&self, kind: EventKind) {
        let mut ledger = self.ledger();
        Self::emit_locked(&mut ledger, &self.redactor, &*self.sink, kind);
    }

    /// Records one event while the caller holds the ledger (to pair it with a reservation
    /// change atomically).
    pub fn emit_with(&self, ledger: &mut Ledger, kind: EventKind) {
        Self::emit_locked(ledger, &self.redactor, &*self.sink, kind);
    }

    fn emit_locked(
        ledger: &mut Ledger,
        redactor: &Redactor,
        sink: &dyn EventSink,
        kind: EventKind,
    ) {
        let event = redactor.event(Event {
            at: now_rfc3339(),
            kind,
            seq: ledger.next_seq,
        });
        ledger.next_seq += 1;
        ledger.state.apply(&event);
        sink.record(&event);
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
    /// Variables every prompt sees: `inputs`, `task`, `tools`, `workflow`.
    pub base_vars: Map<String, Value>,
    pub models: ModelSet,
    pub prompts: Prompts,
    pub recorder: Recorder,
    pub started: Instant,
    /// The rendered task.
    pub task: String,
    pub tool_ctx: ToolContext,
    pub tool_defs: Vec<ToolDefinition>,
    pub toolbox: Arc<Toolbox>,
    pub workflow: Arc<Workflow>,
}

impl Ctx {
    /// The common prompt variables plus a role's own.
    pub fn vars(&self, extra: Value) -> Value {
        let mut vars = self.base_vars.clone();
        if let Value::Object(extra) = extra {
            vars.extend(extra);
        }
        Value::Object(vars)
    }
}
