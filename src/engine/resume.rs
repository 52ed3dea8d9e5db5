//! Continuing a run from its journal (`pe resume`). The engine folds the journal into the
//! state it starts from — succeeded steps keep their results, the plan and its revisions
//! stand, budgets count what was spent, steps that were running are pending again — and the
//! run's state machine ([`crate::engine::control`]) decides what happens next exactly as it
//! would have in the interrupted process. What is left here is time: `budget.timeout`
//! counts only the time the run was active.

use std::time::Duration;

use crate::run::event::{Event, EventKind};
use crate::run::id::parse_rfc3339_ms;

/// Wall time the run was active before: from each start (`run_started`, `run_resumed`) to
/// the last event before the next one. Time spent dead or waiting for approval is not
/// counted against `budget.timeout`.
pub fn active_time(events: &[Event]) -> Duration {
    let mut total: i64 = 0;
    let mut segment_start: Option<i64> = None;
    let mut last: Option<i64> = None;
    for event in events {
        let at = parse_rfc3339_ms(&event.at);
        if matches!(
            event.kind,
            EventKind::RunStarted { .. } | EventKind::RunResumed { .. }
        ) {
            if let (Some(a), Some(b)) = (segment_start, last) {
                total += (b - a).max(0);
            }
            segment_start = at;
        }
        last = at.or(last);
    }
    if let (Some(a), Some(b)) = (segment_start, last) {
        total += (b - a).max(0);
    }
    Duration::from_millis(u64::try_from(total).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(seq: u64, at: &str, kind: EventKind) -> Event {
        Event {
            at: at.into(),
            kind,
            seq,
        }
    }

    #[test]
    fn active_time_skips_the_gaps_between_sessions() {
        let started = EventKind::RunStarted {
            inputs: json!({}),
            models: Default::default(),
            parent: None,
            path: "w.yaml".into(),
            run_id: "r".into(),
            task: "t".into(),
            workflow: "w".into(),
            workflow_sha256: None,
        };
        let step = |s: &str| EventKind::StepStarted {
            attempt: 1,
            step: s.into(),
        };
        let events = [
            ev(1, "2026-11-03T12:00:00.000Z", started),
            ev(2, "2026-11-03T12:00:02.500Z", step("a")),
            // Dead for an hour.
            ev(
                3,
                "2026-11-03T13:00:00.000Z",
                EventKind::RunResumed { retried: vec![] },
            ),
            ev(4, "2026-11-03T13:00:01.000Z", step("b")),
        ];
        assert_eq!(active_time(&events), Duration::from_millis(3500));
    }
}
