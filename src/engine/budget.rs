//! Budgets: checked before every model call against what was spent plus what calls in
//! flight have reserved plus what this call is estimated to need, so a limit is never
//! exceeded — the call that would cross it is not made.

use std::time::Duration;

use crate::model::Usage;
use crate::run::event::UsageTotals;
use crate::spec::{BudgetSpec, Price, Role};

/// Estimates of calls in flight (released when their `llm_call` event is recorded).
#[derive(Clone, Debug, Default)]
pub struct Reservations {
    pub totals: UsageTotals,
}

impl Reservations {
    pub fn reserve(&mut self, role: Role, usage: Usage, cost: f64) {
        self.totals
            .add(role, usage.input_tokens, usage.output_tokens, cost);
    }

    pub fn release(&mut self, role: Role, usage: Usage, cost: f64) {
        let t = &mut self.totals;
        t.llm_calls = t.llm_calls.saturating_sub(1);
        t.input_tokens = t.input_tokens.saturating_sub(usage.input_tokens);
        t.output_tokens = t.output_tokens.saturating_sub(usage.output_tokens);
        t.cost_usd = (t.cost_usd - cost).max(0.0);
        if let Some(r) = t.per_role.get_mut(&role) {
            r.llm_calls = r.llm_calls.saturating_sub(1);
            r.input_tokens = r.input_tokens.saturating_sub(usage.input_tokens);
            r.output_tokens = r.output_tokens.saturating_sub(usage.output_tokens);
            r.cost_usd = (r.cost_usd - cost).max(0.0);
        }
    }
}

/// A limit that stops the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Exhausted {
    /// `max_llm_calls`, `max_tokens`, `max_cost_usd` or `timeout`.
    pub limit: &'static str,
    pub max: f64,
    /// What the refused call would have needed.
    pub needed: Option<f64>,
    pub role: Option<Role>,
    pub used: f64,
}

impl std::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scope = match self.role {
            Some(r) => format!("budget.per_role.{}.{}", r.as_str(), self.limit),
            None => format!("budget.{}", self.limit),
        };
        match self.limit {
            "timeout" => write!(f, "{scope} ({}s) reached", self.max),
            "max_llm_calls" => write!(f, "{scope} ({}) reached", self.max),
            "max_cost_usd" => write!(
                f,
                "{scope} (${}) reached: ${:.6} spent, the next call needs ${:.6}",
                self.max,
                self.used,
                self.needed.unwrap_or(0.0)
            ),
            _ => write!(
                f,
                "{scope} ({}) reached: {} used, the next call needs {}",
                self.max,
                self.used,
                self.needed.unwrap_or(0.0)
            ),
        }
    }
}

/// The cost of a usage at a price (dollars per million tokens).
pub fn cost(price: Option<Price>, usage: Usage) -> Option<f64> {
    price.map(|p| {
        (usage.input_tokens as f64 * p.input_per_mtok
            + usage.output_tokens as f64 * p.output_per_mtok)
            / 1_000_000.0
    })
}

/// Whether a call of `role` estimated at `need` (costing `need_cost`) fits every limit.
pub fn check(
    spec: &BudgetSpec,
    used: &UsageTotals,
    reserved: &UsageTotals,
    role: Role,
    need: Usage,
    need_cost: f64,
    elapsed: Duration,
) -> Result<(), Exhausted> {
    if let Some(timeout) = spec.timeout
        && elapsed >= timeout.0
    {
        return Err(Exhausted {
            limit: "timeout",
            max: timeout.0.as_secs_f64(),
            needed: None,
            role: None,
            used: elapsed.as_secs_f64(),
        });
    }
    let global = Limits {
        calls: spec.max_llm_calls,
        cost: spec.max_cost_usd,
        tokens: spec.max_tokens,
    };
    let spent = Spent {
        calls: used.llm_calls + reserved.llm_calls,
        cost: used.cost_usd + reserved.cost_usd,
        tokens: used.tokens() + reserved.tokens(),
    };
    global.check(&spent, need, need_cost, None)?;
    if let Some(rb) = spec.per_role.get(&role) {
        let (u, r) = (used.role(role), reserved.role(role));
        let limits = Limits {
            calls: rb.max_llm_calls,
            cost: rb.max_cost_usd,
            tokens: rb.max_tokens,
        };
        let spent = Spent {
            calls: u.llm_calls + r.llm_calls,
            cost: u.cost_usd + r.cost_usd,
            tokens: u.tokens() + r.tokens(),
        };
        limits.check(&spent, need, need_cost, Some(role))?;
    }
    Ok(())
}

/// Tokens left for `role` under every token limit (`None` when none applies).
pub fn tokens_left(
    spec: &BudgetSpec,
    used: &UsageTotals,
    reserved: &UsageTotals,
    role: Role,
) -> Option<u64> {
    let global = spec
        .max_tokens
        .map(|m| m.saturating_sub(used.tokens() + reserved.tokens()));
    let per_role = spec
        .per_role
        .get(&role)
        .and_then(|rb| rb.max_tokens)
        .map(|m| m.saturating_sub(used.role(role).tokens() + reserved.role(role).tokens()));
    match (global, per_role) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

struct Limits {
    calls: Option<u64>,
    cost: Option<f64>,
    tokens: Option<u64>,
}

struct Spent {
    calls: u64,
    cost: f64,
    tokens: u64,
}

impl Limits {
    fn check(
        &self,
        spent: &Spent,
        need: Usage,
        need_cost: f64,
        role: Option<Role>,
    ) -> Result<(), Exhausted> {
        if let Some(max) = self.calls
            && spent.calls + 1 > max
        {
            return Err(Exhausted {
                limit: "max_llm_calls",
                max: max as f64,
                needed: Some(1.0),
                role,
                used: spent.calls as f64,
            });
        }
        if let Some(max) = self.tokens
            && spent.tokens + need.total() > max
        {
            return Err(Exhausted {
                limit: "max_tokens",
                max: max as f64,
                needed: Some(need.total() as f64),
                role,
                used: spent.tokens as f64,
            });
        }
        if let Some(max) = self.cost
            && spent.cost + need_cost > max
        {
            return Err(Exhausted {
                limit: "max_cost_usd",
                max,
                needed: Some(need_cost),
                role,
                used: spent.cost,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::RoleBudget;

    fn usage(i: u64, o: u64) -> Usage {
        Usage {
            input_tokens: i,
            output_tokens: o,
        }
    }

    #[test]
    fn each_limit_refuses_the_call_that_would_cross_it() {
        let mut used = UsageTotals::default();
        used.add(Role::Executor, 40, 10, 0.4);
        let none = UsageTotals::default();
        let zero = Duration::ZERO;
        let spec = |f: fn(&mut BudgetSpec)| {
            let mut s = BudgetSpec::default();
            f(&mut s);
            s
        };
        let cases: Vec<(BudgetSpec, Usage, f64, Option<&str>)> = vec![
            (spec(|s| s.max_llm_calls = Some(2)), usage(1, 1), 0.0, None),
            (
                spec(|s| s.max_llm_calls = Some(1)),
                usage(1, 1),
                0.0,
                Some("max_llm_calls"),
            ),
            (spec(|s| s.max_tokens = Some(100)), usage(30, 20), 0.0, None),
            (
                spec(|s| s.max_tokens = Some(100)),
                usage(30, 21),
                0.0,
                Some("max_tokens"),
            ),
            (spec(|s| s.max_cost_usd = Some(1.0)), usage(0, 0), 0.6, None),
            (
                spec(|s| s.max_cost_usd = Some(1.0)),
                usage(0, 0),
                0.61,
                Some("max_cost_usd"),
            ),
        ];
        for (i, (spec, need, need_cost, want)) in cases.into_iter().enumerate() {
            let got = check(&spec, &used, &none, Role::Executor, need, need_cost, zero);
            assert_eq!(got.err().map(|e| e.limit), want, "case {i}");
        }
    }

    #[test]
    fn per_role_limits_apply_to_their_role_only_and_reservations_count() {
        let mut s = BudgetSpec::default();
        s.per_role.insert(
            Role::Planner,
            RoleBudget {
                max_llm_calls: Some(1),
                ..RoleBudget::default()
            },
        );
        let mut reserved = Reservations::default();
        reserved.reserve(Role::Planner, usage(1, 1), 0.0);
        let used = UsageTotals::default();
        let e = check(
            &s,
            &used,
            &reserved.totals,
            Role::Planner,
            usage(1, 1),
            0.0,
            Duration::ZERO,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "budget.per_role.planner.max_llm_calls (1) reached"
        );
        assert!(
            check(
                &s,
                &used,
                &reserved.totals,
                Role::Executor,
                usage(1, 1),
                0.0,
                Duration::ZERO
            )
            .is_ok()
        );
        reserved.release(Role::Planner, usage(1, 1), 0.0);
        assert!(
            check(
                &s,
                &used,
                &reserved.totals,
                Role::Planner,
                usage(1, 1),
                0.0,
                Duration::ZERO
            )
            .is_ok()
        );
    }

    #[test]
    fn the_timeout_is_checked_first() {
        let s = BudgetSpec {
            timeout: Some(crate::duration::Duration(Duration::from_secs(1))),
            ..BudgetSpec::default()
        };
        let e = check(
            &s,
            &UsageTotals::default(),
            &UsageTotals::default(),
            Role::Planner,
            usage(0, 0),
            0.0,
            Duration::from_secs(2),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "budget.timeout (1s) reached");
    }
}
