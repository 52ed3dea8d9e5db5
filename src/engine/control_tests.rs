//! The state machine on hand-written journals: each case is a run's events so far and what
//! must happen next. (The simulation test in `tests/simulation/` drives whole runs.)

use super::*;
use crate::run::event::{Event, EventKind};

fn policy() -> Policy {
    Policy {
        approve: false,
        concurrency: 4,
        review_each_step: false,
        review_plan: false,
        replanner_on: true,
        retries: 0,
        then: FailureAction::Replan,
    }
}

fn step(id: &str, deps: &[&str]) -> StepSpec {
    StepSpec {
        args: None,
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        description: format!("do {id}"),
        expected: None,
        id: id.into(),
        tool: None,
    }
}

fn fold(kinds: Vec<EventKind>) -> RunState {
    let events: Vec<Event> = kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| Event {
            at: "2026-12-02T12:00:00.000Z".into(),
            kind,
            seq: i as u64 + 1,
        })
        .collect();
    RunState::from_events(&events)
}

fn planned(steps: Vec<StepSpec>) -> Vec<EventKind> {
    vec![
        EventKind::PlanCreated {
            attempts: 1,
            source: "planner".into(),
            steps,
        },
        EventKind::PlanApproved {
            by: "policy".into(),
            steps: None,
        },
    ]
}

fn started(id: &str, attempt: u32) -> EventKind {
    EventKind::StepStarted {
        attempt,
        step: id.into(),
    }
}

fn ok(id: &str, attempt: u32) -> EventKind {
    EventKind::StepFinished {
        attempt,
        duration_ms: 1,
        error: None,
        result: Some(format!("{id} done")),
        status: StepStatus::Succeeded,
        step: id.into(),
        then: None,
    }
}

fn failed(id: &str, attempt: u32, then: FailureThen) -> EventKind {
    EventKind::StepFinished {
        attempt,
        duration_ms: 1,
        error: Some(format!("{id} broke")),
        result: None,
        status: StepStatus::Failed,
        step: id.into(),
        then: Some(then),
    }
}

fn decided(decision: Decision, accepted: &[&str], steps: Vec<StepSpec>) -> EventKind {
    EventKind::Replanned {
        accepted: accepted.iter().map(|s| s.to_string()).collect(),
        decision,
        reason: Some("because".into()),
        steps,
        trigger: ReplanTrigger::OnFailure,
    }
}

fn ids(next: &Next) -> Vec<String> {
    match next {
        Next::Start(s) => s.iter().map(|(s, a)| format!("{}#{a}", s.id)).collect(),
        Next::Skip(s) => s.iter().map(|(id, _)| id.clone()).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn a_retried_step_blocks_nothing_and_runs_before_anything_else() {
    // The bug of issue 9: `b` failed once with a retry left; its dependent `c` must wait.
    let mut events = planned(vec![step("a", &[]), step("b", &["a"]), step("c", &["b"])]);
    events.extend([
        started("a", 1),
        ok("a", 1),
        started("b", 1),
        failed("b", 1, FailureThen::Retry),
    ]);
    let state = fold(events);
    assert_eq!(state.steps["b"].status, StepStatus::Pending);
    let next = next(&state, &policy());
    assert_eq!(ids(&next), ["b#2"], "{next:?}");
}

#[test]
fn only_a_policy_or_a_revise_or_finish_decision_accepts_a_failure() {
    let base = || {
        let mut e = planned(vec![step("a", &[]), step("b", &[])]);
        e.extend([started("a", 1), ok("a", 1), started("b", 1)]);
        e
    };
    // `then: skip`: accepted, the run can complete.
    let mut e = base();
    e.push(failed("b", 1, FailureThen::Skip));
    assert_eq!(next(&fold(e), &policy()), Next::Synthesize);
    // The replanner said `continue`: the failure stands and the run fails.
    let mut e = base();
    e.extend([
        failed("b", 1, FailureThen::Replan),
        decided(Decision::Continue, &[], vec![]),
    ]);
    let Next::Finish(end) = next(&fold(e), &policy()) else {
        panic!("must finish")
    };
    assert_eq!(
        (end.status, end.cause, end.reason.as_str()),
        (
            RunStatus::Failed,
            EndCause::StepsFailed,
            "step `b` failed: b broke"
        )
    );
    // `finish` accepts it.
    let mut e = base();
    e.extend([
        failed("b", 1, FailureThen::Replan),
        decided(Decision::Finish, &["b"], vec![]),
    ]);
    assert_eq!(next(&fold(e), &policy()), Next::Synthesize);
}

#[test]
fn the_replanner_waits_for_running_steps_and_nothing_new_starts() {
    let mut e = planned(vec![step("a", &[]), step("b", &[]), step("c", &[])]);
    e.extend([
        started("a", 1),
        started("b", 1),
        failed("a", 1, FailureThen::Replan),
    ]);
    let p = Policy {
        concurrency: 2,
        ..policy()
    };
    assert_eq!(next(&fold(e.clone()), &p), Next::Wait);
    e.push(ok("b", 1));
    assert_eq!(
        next(&fold(e), &p),
        Next::AskReplanner(Trigger::OnFailure {
            error: "a broke".into(),
            step: "a".into()
        })
    );
}

#[test]
fn a_stopping_run_starts_nothing_and_ends_once_nothing_runs() {
    let mut e = planned(vec![step("a", &[]), step("b", &[]), step("c", &[])]);
    e.extend([
        started("a", 1),
        started("b", 1),
        failed("a", 1, FailureThen::Abort),
    ]);
    let p = Policy {
        concurrency: 2,
        ..policy()
    };
    assert_eq!(next(&fold(e.clone()), &p), Next::Wait);
    e.push(ok("b", 1));
    let Next::Finish(end) = next(&fold(e), &p) else {
        panic!("must finish")
    };
    assert_eq!(end.status, RunStatus::Aborted);
}

#[test]
fn nothing_succeeded_is_a_failure_even_when_every_failure_was_accepted() {
    let mut e = planned(vec![step("a", &[])]);
    e.extend([started("a", 1), failed("a", 1, FailureThen::Skip)]);
    let Next::Finish(end) = next(&fold(e), &policy()) else {
        panic!("must finish")
    };
    assert_eq!(end.cause, EndCause::NothingSucceeded);
}

#[test]
fn a_plan_that_waited_for_approval_must_be_approved_by_someone() {
    let e = vec![
        EventKind::PlanCreated {
            attempts: 1,
            source: "planner".into(),
            steps: vec![step("a", &[])],
        },
        EventKind::RunFinished {
            cause: Some(EndCause::AwaitingApproval),
            output: None,
            reason: Some("--plan-only".into()),
            status: RunStatus::AwaitingApproval,
            usage: Default::default(),
        },
        EventKind::RunResumed { retried: vec![] },
    ];
    // `plan.approve` is false, yet nobody approved this plan: ask.
    assert_eq!(next(&fold(e), &policy()), Next::Approve { ask: true });
    let fresh = vec![EventKind::PlanCreated {
        attempts: 1,
        source: "planner".into(),
        steps: vec![step("a", &[])],
    }];
    assert_eq!(next(&fold(fresh), &policy()), Next::Approve { ask: false });
}

#[test]
fn failure_policies_map_to_what_happens_next() {
    let p = |retries, then| Policy {
        retries,
        then,
        ..policy()
    };
    let cases = [
        (p(1, FailureAction::Abort), 1, false, FailureThen::Retry),
        (p(1, FailureAction::Abort), 2, false, FailureThen::Abort),
        (p(0, FailureAction::Skip), 1, false, FailureThen::Skip),
        (p(0, FailureAction::Replan), 1, false, FailureThen::Replan),
        (p(3, FailureAction::Replan), 1, true, FailureThen::Fatal),
        (
            Policy {
                replanner_on: false,
                ..p(0, FailureAction::Replan)
            },
            1,
            false,
            FailureThen::Fail,
        ),
    ];
    for (i, (policy, attempt, fatal, want)) in cases.into_iter().enumerate() {
        assert_eq!(after_failure(&policy, attempt, fatal), want, "case {i}");
    }
}
