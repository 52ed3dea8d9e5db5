//! The reference model: the run semantics of `docs/semantics.md`, written again, small,
//! pure and synchronous, independently of the engine's code. It reads a run's journal event
//! by event, refuses any event the semantics do not allow at that point (a step started
//! before its dependencies succeeded, a succeeded step started again, an attempt whose end
//! differs from what the scenario made it do, a skip nothing justified, a replanner asked
//! while steps run, …) and, at `run_finished`, says which status the run must end with.

use std::collections::BTreeSet;

use indexmap::IndexMap;
use pe::run::Event;
use pe::run::event::{Decision, EventKind, FailureThen, Limit};
use pe::spec::{RunStatus, StepStatus};

use crate::scenario::{Approval, DecisionSpec, Outcome, Scenario, Then};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
}

#[derive(Clone, Debug)]
pub struct Step {
    pub accepted: bool,
    pub attempts: u32,
    pub deps: Vec<String>,
    pub status: S,
}

/// What the model knows after some prefix of the journal.
pub struct Model<'a> {
    sc: &'a Scenario,
    /// The current plan approved (the first plan, and each revision when plans are asked
    /// about).
    approved: bool,
    first_approved: bool,
    /// Replanner decisions so far.
    decisions: usize,
    /// The run is closing: what was left running or pending is being ended.
    ending: bool,
    /// A failure the replanner must answer (`then: replan`).
    failure_due: Option<String>,
    pub finished: Option<RunStatus>,
    /// A step succeeded since the replanner last answered.
    fresh_success: bool,
    /// The last decision, while no step has started since.
    last_decision: Option<(Decision, String)>,
    plan_made: bool,
    /// The run stopped and must wait for a decision on its plan (`--plan-only`, deferred).
    requested: bool,
    replans: u32,
    requests: u64,
    /// How the run is bound to end (first reason wins).
    stop: Option<RunStatus>,
    pub steps: IndexMap<String, Step>,
    ever_succeeded: BTreeSet<String>,
    tokens: u64,
    /// `tool_started` events per step attempt without a `tool_call`.
    tools_open: usize,
}

pub type Violation = String;

impl<'a> Model<'a> {
    pub fn new(sc: &'a Scenario) -> Model<'a> {
        Model {
            sc,
            approved: false,
            first_approved: false,
            decisions: 0,
            ending: false,
            failure_due: None,
            finished: None,
            fresh_success: false,
            last_decision: None,
            plan_made: false,
            requested: false,
            replans: 0,
            requests: 0,
            stop: None,
            steps: IndexMap::new(),
            ever_succeeded: BTreeSet::new(),
            tokens: 0,
            tools_open: 0,
        }
    }

    fn running(&self) -> usize {
        self.steps
            .values()
            .filter(|s| s.status == S::Running)
            .count()
    }

    fn limit(&self) -> usize {
        if self.sc.parallel {
            self.sc.concurrency.max(1) as usize
        } else {
            1
        }
    }

    /// What a failed attempt must lead to under the workflow's policy.
    fn then_for(&self, attempt: u32) -> FailureThen {
        if attempt <= self.sc.retries {
            FailureThen::Retry
        } else {
            match self.sc.then {
                Then::Abort => FailureThen::Abort,
                Then::Skip => FailureThen::Skip,
                Then::Replan if self.sc.when.replanner_on() => FailureThen::Replan,
                Then::Replan => FailureThen::Fail,
            }
        }
    }

    fn unaccepted_failures(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|(_, s)| s.status == S::Failed && !s.accepted)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn settled(&self) -> bool {
        self.steps
            .values()
            .all(|s| matches!(s.status, S::Succeeded | S::Failed | S::Skipped))
    }

    /// A pending step every dependency of which succeeded: the run cannot have ended while
    /// one exists (unless it stopped).
    fn ready(&self) -> Option<&String> {
        self.steps.iter().find_map(|(id, s)| {
            (s.status == S::Pending
                && s.deps
                    .iter()
                    .all(|d| self.steps.get(d).is_some_and(|d| d.status == S::Succeeded)))
            .then_some(id)
        })
    }

    /// Why a pending step may be skipped now, if it may.
    fn skip_allowed(&self, step: &Step) -> bool {
        if self.stop.is_some() || self.ending {
            return true;
        }
        if self
            .last_decision
            .as_ref()
            .is_some_and(|(d, _)| *d == Decision::Finish)
        {
            return true;
        }
        // A dependency that finally failed (no retry left) or was skipped — but not while
        // the replanner still has to decide about a failure (a revision may replace it).
        self.failure_due.is_none()
            && step.deps.iter().any(|d| {
                self.steps
                    .get(d)
                    .is_none_or(|d| matches!(d.status, S::Failed | S::Skipped))
            })
    }

    /// Which trigger the replanner may be asked for now, if any.
    fn due_trigger(&self) -> Option<&'static str> {
        let retry_waits = self
            .steps
            .values()
            .any(|s| s.status == S::Pending && s.attempts > 0);
        let finishing = self
            .last_decision
            .as_ref()
            .is_some_and(|(d, _)| *d == Decision::Finish);
        if self.running() > 0 || retry_waits || finishing {
            return None;
        }
        if self.failure_due.is_some() {
            return Some("on_failure");
        }
        if self.sc.when.each_step() && self.fresh_success {
            return Some("after_each_step");
        }
        let answered = self
            .last_decision
            .as_ref()
            .is_some_and(|(_, t)| t == "after_plan");
        if self.sc.when.after_plan() && self.settled() && !answered && self.stop.is_none() {
            return Some("after_plan");
        }
        None
    }

    pub fn apply(&mut self, e: &Event) -> Result<(), Violation> {
        let at = format!("event {} ({})", e.seq, e.kind.name());
        if let Some(status) = self.finished
            && !(status == RunStatus::AwaitingApproval
                && matches!(e.kind, EventKind::RunResumed { .. }))
        {
            return Err(format!("{at}: journaled after run_finished ({status:?})"));
        }
        if self.ending
            && !matches!(
                e.kind,
                EventKind::StepFinished { .. }
                    | EventKind::ToolCall { .. }
                    | EventKind::RunFinished { .. }
                    | EventKind::RunResumed { .. }
            )
        {
            return Err(format!("{at}: the run was closing"));
        }
        match &e.kind {
            EventKind::RunStarted { .. } => {
                if e.seq != 1 {
                    return Err(format!("{at}: run_started is not first"));
                }
            }
            EventKind::RunResumed { retried } => {
                let running: Vec<String> = self
                    .steps
                    .iter()
                    .filter(|(_, s)| s.status == S::Running)
                    .map(|(id, _)| id.clone())
                    .collect();
                if *retried != running {
                    return Err(format!(
                        "{at}: retried {retried:?}, but {running:?} were running"
                    ));
                }
                for s in self.steps.values_mut() {
                    if s.status == S::Running {
                        s.status = S::Pending;
                        s.attempts -= 1;
                    }
                }
                self.finished = None;
                self.ending = false;
                self.tools_open = 0;
            }
            EventKind::PlanCreated { steps, .. } => {
                if self.plan_made {
                    return Err(format!("{at}: a second plan"));
                }
                let want: Vec<(String, Vec<String>)> = self
                    .sc
                    .deps
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (format!("s{i}"), d.iter().map(|d| format!("s{d}")).collect()))
                    .collect();
                let got: Vec<(String, Vec<String>)> = steps
                    .iter()
                    .map(|s| (s.id.clone(), s.depends_on.clone()))
                    .collect();
                if got != want {
                    return Err(format!("{at}: plan {got:?}, the scenario's is {want:?}"));
                }
                self.plan_made = true;
                for (id, deps) in want {
                    self.steps.insert(
                        id,
                        Step {
                            accepted: false,
                            attempts: 0,
                            deps,
                            status: S::Pending,
                        },
                    );
                }
            }
            EventKind::PlanApproved { by, steps } => {
                let asked = self.sc.approval.workflow_asks() || self.requested;
                let first = !self.first_approved;
                match (by.as_str(), asked) {
                    ("policy", false) if first => {}
                    ("user" | "flag", true) => {}
                    _ => {
                        return Err(format!(
                            "{at}: approved by {by}, but approval is {} here",
                            if asked { "asked for" } else { "not asked for" }
                        ));
                    }
                }
                if let Some(edited) = steps {
                    if self.sc.approval != Approval::Edit {
                        return Err(format!("{at}: an edit nobody made"));
                    }
                    let ids: Vec<&String> = edited.iter().map(|s| &s.id).collect();
                    self.steps
                        .retain(|id, s| s.status != S::Pending || ids.contains(&id));
                }
                self.approved = true;
                self.first_approved = true;
                self.requested = false;
            }
            EventKind::StepStarted { attempt, step } => {
                let limit = self.limit();
                let running = self.running();
                if !self.approved {
                    return Err(format!(
                        "{at}: `{step}` started before its plan was approved"
                    ));
                }
                if let Some(stop) = self.stop {
                    return Err(format!(
                        "{at}: `{step}` started while the run stops ({stop:?})"
                    ));
                }
                if self.ever_succeeded.contains(step) {
                    return Err(format!("{at}: `{step}` succeeded before and started again"));
                }
                if running >= limit {
                    return Err(format!(
                        "{at}: `{step}` started with {running} of {limit} running"
                    ));
                }
                let Some(s) = self.steps.get(step) else {
                    return Err(format!("{at}: `{step}` is not in the plan"));
                };
                if s.status != S::Pending {
                    return Err(format!("{at}: `{step}` started while {:?}", s.status));
                }
                if *attempt != s.attempts + 1 {
                    return Err(format!(
                        "{at}: `{step}` started as attempt {attempt} after {} attempts",
                        s.attempts
                    ));
                }
                if let Some(d) = s
                    .deps
                    .iter()
                    .find(|d| self.steps.get(*d).is_none_or(|d| d.status != S::Succeeded))
                {
                    return Err(format!(
                        "{at}: `{step}` started before its dependency `{d}` succeeded"
                    ));
                }
                let retry = s.attempts > 0;
                if !retry && self.failure_due.is_some() {
                    return Err(format!(
                        "{at}: `{step}` started while the replanner must decide"
                    ));
                }
                if !retry && self.sc.when.each_step() && self.fresh_success {
                    return Err(format!(
                        "{at}: `{step}` started before the replanner reviewed"
                    ));
                }
                let s = self.steps.get_mut(step).expect("checked above");
                s.status = S::Running;
                s.attempts = *attempt;
                self.last_decision = None;
            }
            EventKind::StepFinished {
                attempt,
                error,
                status,
                step,
                then,
                ..
            } => {
                let closing = error.as_deref().is_some_and(|e| {
                    e.starts_with("the run ended") || e.starts_with("interrupted: the run ended")
                });
                if closing {
                    self.ending = true;
                }
                self.step_finished(&at, step, *attempt, *status, *then)?
            }
            EventKind::Replanned {
                accepted,
                decision,
                steps,
                trigger,
                ..
            } => {
                let due = self.due_trigger();
                if due != Some(trigger.as_str()) {
                    return Err(format!(
                        "{at}: replanner asked ({}) when {due:?} was due",
                        trigger.as_str()
                    ));
                }
                let want = self.sc.decision(self.decisions);
                let kind = match want.valid() {
                    DecisionSpec::Abort => Decision::Abort,
                    DecisionSpec::Continue => Decision::Continue,
                    DecisionSpec::Finish => Decision::Finish,
                    DecisionSpec::Revise { .. } => Decision::Revise,
                    DecisionSpec::Garbled(_) => unreachable!("valid() unwraps"),
                };
                if *decision != kind {
                    return Err(format!(
                        "{at}: decision {decision:?}, the replanner said {kind:?}"
                    ));
                }
                let mut want_accepted = match kind {
                    Decision::Revise | Decision::Finish => self.unaccepted_failures(),
                    _ => Vec::new(),
                };
                let mut got = accepted.clone();
                want_accepted.sort();
                got.sort();
                if got != want_accepted {
                    return Err(format!(
                        "{at}: accepted {got:?}, should be {want_accepted:?}"
                    ));
                }
                for id in accepted {
                    if let Some(s) = self.steps.get_mut(id) {
                        s.accepted = true;
                    }
                }
                match kind {
                    Decision::Revise => {
                        if self.replans >= self.sc.max_replans {
                            return Err(format!("{at}: a revision beyond max_replans was applied"));
                        }
                        self.replans += 1;
                        let new: Vec<&String> = steps.iter().map(|s| &s.id).collect();
                        self.steps
                            .retain(|id, s| s.status != S::Pending && !new.contains(&id));
                        for s in steps {
                            self.steps.insert(
                                s.id.clone(),
                                Step {
                                    accepted: false,
                                    attempts: 0,
                                    deps: s.depends_on.clone(),
                                    status: S::Pending,
                                },
                            );
                        }
                        if self.sc.approval.workflow_asks() {
                            self.approved = false;
                        }
                    }
                    Decision::Abort => {
                        self.stop.get_or_insert(RunStatus::Aborted);
                    }
                    Decision::Continue | Decision::Finish => {}
                }
                self.decisions += 1;
                self.failure_due = None;
                self.fresh_success = false;
                self.last_decision = Some((kind, trigger.as_str().to_string()));
            }
            EventKind::LlmCall {
                input_tokens,
                output_tokens,
                requests,
                ..
            } => {
                self.requests += u64::from(*requests);
                self.tokens += input_tokens + output_tokens;
                if let Some(max) = self.sc.max_llm_calls
                    && self.requests > max
                {
                    return Err(format!(
                        "{at}: {} requests exceed max_llm_calls {max}",
                        self.requests
                    ));
                }
                if let Some(max) = self.sc.max_tokens
                    && self.tokens > max
                {
                    return Err(format!(
                        "{at}: {} tokens exceed max_tokens {max}",
                        self.tokens
                    ));
                }
            }
            EventKind::LlmRetry { .. } | EventKind::StructuredOutputFallback { .. } => {}
            // The simulated workflows have no MCP servers.
            EventKind::McpClosed { .. }
            | EventKind::McpConnected { .. }
            | EventKind::McpFailed { .. } => {
                return Err(format!("{at}: an MCP event, but no server is declared"));
            }
            EventKind::BudgetExhausted { limit, .. } => {
                if *limit == Limit::Timeout {
                    return Err(format!(
                        "{at}: the simulated workflow has no budget.timeout"
                    ));
                }
                self.stop.get_or_insert(RunStatus::BudgetExhausted);
            }
            EventKind::ToolStarted { step, attempt, .. } => {
                let ok = self
                    .steps
                    .get(step)
                    .is_some_and(|s| s.status == S::Running && s.attempts == *attempt);
                if !ok {
                    return Err(format!(
                        "{at}: a tool started for `{step}` #{attempt}, which is not running"
                    ));
                }
                self.tools_open += 1;
            }
            EventKind::ToolCall { .. } => {}
            EventKind::RunFinished { status, .. } => self.run_finished(&at, *status)?,
        }
        Ok(())
    }

    fn step_finished(
        &mut self,
        at: &str,
        step: &str,
        attempt: u32,
        status: StepStatus,
        then: Option<FailureThen>,
    ) -> Result<(), Violation> {
        let expected_then = self.then_for(attempt);
        let stopping = self.stop.is_some();
        let outcome = self.sc.outcome(step, attempt);
        let Some(s) = self.steps.get(step) else {
            return Err(format!("{at}: `{step}` is not in the plan"));
        };
        match status {
            StepStatus::Skipped => {
                if s.status != S::Pending {
                    return Err(format!("{at}: `{step}` skipped while {:?}", s.status));
                }
                if !self.skip_allowed(s) {
                    return Err(format!("{at}: `{step}` skipped though nothing stops it"));
                }
                self.steps.get_mut(step).expect("present").status = S::Skipped;
            }
            StepStatus::Succeeded | StepStatus::Failed => {
                if s.status != S::Running || s.attempts != attempt {
                    return Err(format!(
                        "{at}: `{step}` #{attempt} finished while {:?} #{}",
                        s.status, s.attempts
                    ));
                }
                let s = self.steps.get_mut(step).expect("present");
                if status == StepStatus::Succeeded {
                    if outcome != Outcome::Succeed {
                        return Err(format!(
                            "{at}: `{step}` #{attempt} succeeded; the scenario made it {outcome:?}"
                        ));
                    }
                    s.status = S::Succeeded;
                    self.ever_succeeded.insert(step.to_string());
                    self.fresh_success = true;
                    return Ok(());
                }
                match then {
                    // Cut short by the run ending (a budget, the run stopping).
                    None if stopping || self.ending => s.status = S::Failed,
                    None => {
                        return Err(format!(
                            "{at}: `{step}` #{attempt} failed without a policy while the run goes on"
                        ));
                    }
                    Some(then) => {
                        if !outcome.fails() {
                            return Err(format!(
                                "{at}: `{step}` #{attempt} failed; the scenario made it succeed"
                            ));
                        }
                        if then != expected_then {
                            return Err(format!(
                                "{at}: `{step}` #{attempt} failed with then {then:?}; the policy says {expected_then:?}"
                            ));
                        }
                        s.status = if then == FailureThen::Retry {
                            S::Pending
                        } else {
                            S::Failed
                        };
                        match then {
                            FailureThen::Skip => s.accepted = true,
                            FailureThen::Replan => {
                                self.failure_due.get_or_insert(step.to_string());
                            }
                            FailureThen::Abort => {
                                self.stop.get_or_insert(RunStatus::Aborted);
                            }
                            FailureThen::Fail => {
                                self.stop.get_or_insert(RunStatus::Failed);
                            }
                            FailureThen::Retry => {}
                            FailureThen::Fatal => {
                                return Err(format!("{at}: nothing in the simulation is fatal"));
                            }
                        }
                    }
                }
            }
            StepStatus::Pending | StepStatus::Running => {
                return Err(format!("{at}: step_finished with status {status:?}"));
            }
        }
        Ok(())
    }

    /// The status the run must end with, given everything before `run_finished`.
    pub fn expected_status(&self) -> Result<RunStatus, Violation> {
        if let Some(stop) = self.stop {
            return Ok(stop);
        }
        if !self.first_approved || !self.approved {
            // Waiting for, or refused, an approval.
            return Err("decided by approval".into());
        }
        if let Some(trigger) = self.due_trigger() {
            // The replanner was due: it must have answered, unless that answer was a
            // revision beyond max_replans (the run fails) or an invalid reply twice.
            let k = self.decisions;
            let spec = self.sc.decision(k);
            if matches!(spec.valid(), DecisionSpec::Revise { .. })
                && self.replans >= self.sc.max_replans
            {
                return Ok(RunStatus::Failed);
            }
            return Err(format!(
                "the run ended while the replanner was due ({trigger})"
            ));
        }
        if let Some(step) = self.ready() {
            return Err(format!("the run ended while `{step}` could still run"));
        }
        if !self.settled() {
            return Err("the run ended with steps neither run nor skipped".into());
        }
        if !self.unaccepted_failures().is_empty() || self.ever_succeeded.is_empty() {
            return Ok(RunStatus::Failed);
        }
        Ok(RunStatus::Completed)
    }

    fn run_finished(&mut self, at: &str, status: RunStatus) -> Result<(), Violation> {
        let expected = match status {
            RunStatus::AwaitingApproval => {
                let plan_only =
                    matches!(self.sc.approval, Approval::PlanOnly(_)) && !self.first_approved;
                let deferred = matches!(self.sc.approval, Approval::Defer(_)) && !self.approved;
                if !(plan_only || deferred) {
                    return Err(format!("{at}: awaiting approval though nobody defers"));
                }
                self.requested = true;
                RunStatus::AwaitingApproval
            }
            RunStatus::Rejected => {
                let rejecting = matches!(
                    self.sc.approval,
                    Approval::Reject | Approval::Defer(false) | Approval::PlanOnly(false)
                );
                if !rejecting || self.approved {
                    return Err(format!("{at}: rejected, but nobody rejected this plan"));
                }
                if self.steps.values().any(|s| s.attempts > 0) && !self.first_approved {
                    return Err(format!("{at}: a rejected first plan ran steps"));
                }
                RunStatus::Rejected
            }
            _ => self
                .expected_status()
                .map_err(|why| format!("{at}: {why}"))?,
        };
        if status != expected {
            return Err(format!(
                "{at}: the run ended {status:?}; the model says {expected:?}"
            ));
        }
        if status != RunStatus::AwaitingApproval && !self.settled() {
            return Err(format!(
                "{at}: the run ended with steps left pending or running"
            ));
        }
        self.finished = Some(status);
        self.ending = false;
        Ok(())
    }

    /// The model's exit code for a status (SPEC §4), written out again.
    pub fn exit_code(status: RunStatus) -> u8 {
        match status {
            RunStatus::Completed => 0,
            RunStatus::Failed | RunStatus::Aborted => 1,
            RunStatus::BudgetExhausted => 4,
            RunStatus::AwaitingApproval | RunStatus::Rejected => 5,
        }
    }
}
