//! Simulation: the real engine driven through thousands of random runs — random plans,
//! policies, outcomes, replanner decisions, latencies, budgets, approvals, and kills
//! followed by `pe resume` — on tokio's paused clock, each checked against the reference
//! model ([`model`]) and the invariants below. `cargo test` runs 2,000 cases;
//! `PE_SIM_CASES=100000 cargo test --release --test simulation` runs more (README).
//!
//! Invariants, after every run:
//! 1. every journaled event is one the semantics allow at that point (the model accepts
//!    the journal), and the run's status and exit code are the model's;
//! 2. a step starts only after all its dependencies succeeded, and dependents of a step
//!    that finally failed never start (part of 1);
//! 3. no step whose success is journaled runs again — checked against the tool's own log
//!    of executions, not the journal;
//! 4. no budget is exceeded, counting output caps (part of 1);
//! 5. a rejected plan runs no tool;
//! 6. the fold of the journal equals the state the engine returned, and step states are
//!    the model's;
//! 7. nothing is journaled after `run_finished`, and every run ends.

mod harness;
mod model;
mod regressions;
mod scenario;
mod world;

use pe::run::RunState;
use pe::run::event::EventKind;
use pe::spec::{RunStatus, StepStatus};
use proptest::prelude::*;

use harness::{Exit, Trace, simulate};
use model::{Model, S};
use scenario::Scenario;

/// Checks one simulated run; `Err` names the first broken invariant.
pub fn check(scenario: &Scenario) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let trace = simulate(scenario, dir.path());
    check_trace(scenario, &trace).map_err(|e| format!("{e}\n\njournal:\n{}", show(&trace)))
}

fn check_trace(scenario: &Scenario, trace: &Trace) -> Result<(), String> {
    let mut model = Model::new(scenario);
    for event in &trace.journal {
        model.apply(event)?;
    }
    // 7: the run ended, in the last process.
    let Some(Exit::Returned(state)) = trace.exits.last() else {
        return Err(format!(
            "the last process did not return: {:?}",
            trace.exits.last()
        ));
    };
    let Some(status) = state.status() else {
        return Err("the engine returned an unfinished run".into());
    };
    let Some(finished) = model.finished else {
        return Err("the journal has no run_finished".into());
    };
    let last = trace.journal.last().map(|e| e.kind.name());
    if last != Some("run_finished") {
        return Err(format!("the journal ends with {last:?}"));
    }
    // 1: status and exit code.
    if status != finished {
        return Err(format!(
            "the engine says {status:?}, the journal {finished:?}"
        ));
    }
    if status.exit_code() != Model::exit_code(status) {
        return Err(format!("exit code {} for {status:?}", status.exit_code()));
    }
    // 6: the fold of the journal is what the engine returned; step states agree.
    let folded = RunState::from_events(&trace.journal);
    if folded != **state {
        return Err("the fold of the journal differs from the state the engine returned".into());
    }
    for (id, step) in &model.steps {
        let engine = state.step(id).map(|s| s.status);
        let want = match step.status {
            S::Pending => StepStatus::Pending,
            S::Running => StepStatus::Running,
            S::Succeeded => StepStatus::Succeeded,
            S::Failed => StepStatus::Failed,
            S::Skipped => StepStatus::Skipped,
        };
        if engine != Some(want) && status != RunStatus::AwaitingApproval {
            return Err(format!(
                "step `{id}`: the engine says {engine:?}, the model {want:?}"
            ));
        }
    }
    // 3: no tool ran for a step after that step's success was journaled.
    for x in &trace.executions {
        let before =
            RunState::from_events(&trace.journal[..x.journal_len.min(trace.journal.len())]);
        if before
            .step(&x.step)
            .is_some_and(|s| s.status == StepStatus::Succeeded)
        {
            return Err(format!(
                "the tool ran for `{}` #{} after its success was journaled",
                x.step, x.attempt
            ));
        }
        // A tool runs only after its start is journaled with the key it is given.
        let journaled = trace.journal[..x.journal_len.min(trace.journal.len())]
            .iter()
            .any(|e| matches!(&e.kind, EventKind::ToolStarted { idempotency_key, step, .. } if Some(idempotency_key) == x.key.as_ref() && *step == x.step));
        if !journaled {
            return Err(format!(
                "the tool ran for `{}` #{} before its start was journaled",
                x.step, x.attempt
            ));
        }
    }
    // 5: a rejected plan runs nothing.
    if status == RunStatus::Rejected && state.approved_by.is_none() && !trace.executions.is_empty()
    {
        return Err("a tool ran though the first plan was rejected".into());
    }
    Ok(())
}

fn show(trace: &Trace) -> String {
    let mut out = String::new();
    for e in &trace.journal {
        out.push_str(&serde_json::to_string(e).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("exits: {:?}\n", trace.exits));
    out
}

fn cases() -> u32 {
    std::env::var("PE_SIM_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_engine_follows_the_reference_model(scenario in any::<Scenario>()) {
        if let Err(e) = check(&scenario) {
            return Err(TestCaseError::fail(e));
        }
    }
}
