//! Budgets: checked before every model call against what was spent plus what calls in
//! flight have reserved plus the most this call can use — its input estimate and the output
//! cap sent with it, times the requests the provider may make for it — so a limit is never
//! exceeded: the call that could cross it is not made.

use std::time::Duration;

use crate::model::Usage;
use crate::run::event::{Limit, UsageTotals};
use crate::spec::{BudgetSpec, Price, Role};

/// Estimates of calls in flight (released when their `llm_call` event is recorded).
#[derive(Clone, Debug, Default)]
pub struct Reservations {
    pub totals: UsageTotals,
}

/// The most one call can use.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Need {
    pub cost: f64,
    /// Requests the provider may make for it (prompt-mode re-asks).
    pub requests: u32,
    /// Tokens over all those requests.
    pub usage: Usage,
}

impl Reservations {
    pub fn reserve(&mut self, role: Role, need: &Need) {
        self.totals.add(
            role,
            need.requests,
            need.usage.input_tokens,
            need.usage.output_tokens,
            need.cost,
        );
    }

    pub fn release(&mut self, role: Role, need: &Need) {
        let t = &mut self.totals;
        let requests = u64::from(need.requests);
        t.llm_calls = t.llm_calls.saturating_sub(1);
        t.requests = t.requests.saturating_sub(requests);
        t.input_tokens = t.input_tokens.saturating_sub(need.usage.input_tokens);
        t.output_tokens = t.output_tokens.saturating_sub(need.usage.output_tokens);
        t.cost_usd = (t.cost_usd - need.cost).max(0.0);
        if let Some(r) = t.per_role.get_mut(&role) {
            r.llm_calls = r.llm_calls.saturating_sub(1);
            r.requests = r.requests.saturating_sub(requests);
            r.input_tokens = r.input_tokens.saturating_sub(need.usage.input_tokens);
            r.output_tokens = r.output_tokens.saturating_sub(need.usage.output_tokens);
            r.cost_usd = (r.cost_usd - need.cost).max(0.0);
        }
    }
}

/// A limit that stops the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Exhausted {
    pub limit: Limit,
    pub max: f64,
    /// What the refused call would have needed.
    pub needed: Option<f64>,
    pub role: Option<Role>,
    pub used: f64,
}

impl std::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            &self
                .limit
                .describe(self.role, self.max, self.used, self.needed),
        )
    }
}

/// The cost of a usage at a price (dollars per million tokens).
/// Cached input tokens are priced at `cached_input_per_mtok` (the input price when unset).
pub fn cost(price: Option<Price>, usage: Usage) -> Option<f64> {
    price.map(|p| {
        let cached = usage.cached_input_tokens.min(usage.input_tokens);
        let fresh = usage.input_tokens - cached;
        (fresh as f64 * p.input_per_mtok
            + cached as f64 * p.cached_input_per_mtok.unwrap_or(p.input_per_mtok)
            + usage.output_tokens as f64 * p.output_per_mtok)
            / 1_000_000.0
    })
}

/// Whether a call of `role` that may use `need` fits every limit.
pub fn check(
    spec: &BudgetSpec,
    used: &UsageTotals,
    reserved: &UsageTotals,
    role: Role,
    need: &Need,
    elapsed: Duration,
) -> Result<(), Exhausted> {
    if let Some(timeout) = spec.timeout
        && elapsed >= timeout.0
    {
        return Err(Exhausted {
            limit: Limit::Timeout,
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
        calls: used.requests.saturating_add(reserved.requests),
        cost: used.cost_usd + reserved.cost_usd,
        tokens: used.tokens().saturating_add(reserved.tokens()),
    };
    global.check(&spent, need, None)?;
    if let Some(rb) = spec.per_role.get(&role) {
        let (u, r) = (used.role(role), reserved.role(role));
        let limits = Limits {
            calls: rb.max_llm_calls,
            cost: rb.max_cost_usd,
            tokens: rb.max_tokens,
        };
        let spent = Spent {
            calls: u.requests.saturating_add(r.requests),
            cost: u.cost_usd + r.cost_usd,
            tokens: u.tokens().saturating_add(r.tokens()),
        };
        limits.check(&spent, need, Some(role))?;
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
        .map(|m| m.saturating_sub(used.tokens().saturating_add(reserved.tokens())));
    let per_role = spec
        .per_role
        .get(&role)
        .and_then(|rb| rb.max_tokens)
        .map(|m| {
            m.saturating_sub(
                used.role(role)
                    .tokens()
                    .saturating_add(reserved.role(role).tokens()),
            )
        });
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
    fn check(&self, spent: &Spent, need: &Need, role: Option<Role>) -> Result<(), Exhausted> {
        let requests = u64::from(need.requests);
        if let Some(max) = self.calls
            && spent.calls.saturating_add(requests) > max
        {
            return Err(Exhausted {
                limit: Limit::MaxLlmCalls,
                max: max as f64,
                needed: Some(requests as f64),
                role,
                used: spent.calls as f64,
            });
        }
        if let Some(max) = self.tokens
            && spent.tokens.saturating_add(need.usage.total()) > max
        {
            return Err(Exhausted {
                limit: Limit::MaxTokens,
                max: max as f64,
                needed: Some(need.usage.total() as f64),
                role,
                used: spent.tokens as f64,
            });
        }
        if let Some(max) = self.cost
            && spent.cost + need.cost > max
        {
            return Err(Exhausted {
                limit: Limit::MaxCostUsd,
                max,
                needed: Some(need.cost),
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
            ..Usage::default()
        }
    }

    #[test]
    fn cached_input_is_priced_at_its_own_price_or_the_input_price() {
        let used = Usage {
            cached_input_tokens: 600_000,
            ..usage(1_000_000, 100_000)
        };
        let price = |cached| Price {
            cached_input_per_mtok: cached,
            input_per_mtok: 2.0,
            output_per_mtok: 10.0,
        };
        // 400k fresh × $2 + 600k cached × $0.5 + 100k out × $10.
        assert_eq!(cost(Some(price(Some(0.5))), used), Some(2.1));
        assert_eq!(cost(Some(price(None)), used), Some(3.0));
        // A count of cached tokens above the input is capped at the input.
        let odd = Usage {
            cached_input_tokens: 5_000_000,
            ..usage(1_000_000, 0)
        };
        assert_eq!(cost(Some(price(Some(0.5))), odd), Some(0.5));
        assert_eq!(cost(None, used), None);
    }

    #[test]
    fn each_limit_refuses_the_call_that_would_cross_it() {
        let mut used = UsageTotals::default();
        used.add(Role::Executor, 1, 40, 10, 0.4);
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
            let need = Need {
                cost: need_cost,
                requests: 1,
                usage: need,
            };
            let got = check(&spec, &used, &none, Role::Executor, &need, zero);
            assert_eq!(got.err().map(|e| e.limit.as_str()), want, "case {i}");
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
        let one = Need {
            cost: 0.0,
            requests: 1,
            usage: usage(1, 1),
        };
        let mut reserved = Reservations::default();
        reserved.reserve(Role::Planner, &one);
        let used = UsageTotals::default();
        let e = check(
            &s,
            &used,
            &reserved.totals,
            Role::Planner,
            &one,
            Duration::ZERO,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "budget.per_role.planner.max_llm_calls (1) reached: 1 used, the next call needs 1"
        );
        assert!(
            check(
                &s,
                &used,
                &reserved.totals,
                Role::Executor,
                &one,
                Duration::ZERO
            )
            .is_ok()
        );
        reserved.release(Role::Planner, &one);
        assert!(
            check(
                &s,
                &used,
                &reserved.totals,
                Role::Planner,
                &one,
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
            &Need::default(),
            Duration::from_secs(2),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "budget.timeout (1s) reached");
    }
}
