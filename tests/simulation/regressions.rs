//! Named regressions: each a scenario the simulation (or a user) found the engine
//! getting wrong, kept as a plain test.

use crate::check;
use crate::scenario::{Approval, DecisionSpec, Kill, Outcome, Scenario, Then, When};

fn base() -> Scenario {
    Scenario {
        approval: Approval::NotAsked,
        concurrency: 1,
        decisions: vec![],
        deps: vec![vec![], vec![0], vec![1]],
        fixed: true,
        garbled_plan: false,
        kills: vec![],
        latencies: vec![10],
        max_llm_calls: None,
        max_replans: 2,
        max_tokens: None,
        output_tokens: 5,
        outcomes: vec![Outcome::Succeed],
        parallel: false,
        retries: 0,
        then: Then::Replan,
        when: When::OnFailure,
    }
}

#[test]
fn every_step_succeeds() {
    check(&base()).unwrap();
}

#[test]
fn steps_that_fail_then_succeed_on_retry_leave_no_dependent_unrun() {
    // Issue 9, case 1: retries: 1, then: abort; attempts alternate failing and succeeding.
    for parallel in [false, true] {
        let s = Scenario {
            outcomes: vec![Outcome::ToolError, Outcome::Succeed],
            parallel,
            concurrency: 3,
            retries: 1,
            then: Then::Abort,
            ..base()
        };
        check(&s).unwrap();
    }
}

#[test]
fn a_failure_the_replanner_continues_past_fails_the_run() {
    let s = Scenario {
        outcomes: vec![Outcome::ModelFails],
        decisions: vec![DecisionSpec::Continue],
        ..base()
    };
    check(&s).unwrap();
}

#[test]
fn revisions_kills_and_approvals_together() {
    let s = Scenario {
        approval: Approval::Defer(true),
        decisions: vec![DecisionSpec::Revise { picks: vec![0, 1] }],
        fixed: false,
        garbled_plan: true,
        kills: vec![Kill::AtEvent(9), Kill::AtTime(35)],
        outcomes: vec![Outcome::Succeed, Outcome::Hang, Outcome::ToolError],
        parallel: true,
        concurrency: 2,
        ..base()
    };
    check(&s).unwrap();
}
