//! A run's budget as its child runs (workflow tools) see it. A child's model calls must fit
//! its own budget and every ancestor's: before each call the child reserves it here too
//! (checked against the parent's limits, spent usage and reservations, under the parent's
//! ledger lock, so concurrent steps of parent and children cannot overshoot together), and
//! after it reports what the call spent. The parent holds a child's spending as a
//! reservation under the call's idempotency key until it journals that call's `tool_call`
//! with the child's `usage`, which its fold then counts as spent: the parent's journal alone
//! gives its totals, also after a resume.

use std::sync::Weak;

use crate::engine::budget::{self, Exhausted, Need};
use crate::engine::context::{Ctx, Ledger};
use crate::model::Usage;
use crate::run::event::{EventKind, UsageTotals};
use crate::spec::Role;

/// A handle on a running workflow's budget (weak: it does not keep the run alive).
#[derive(Clone)]
pub struct BudgetGate {
    ctx: Weak<Ctx>,
}

impl std::fmt::Debug for BudgetGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BudgetGate")
    }
}

/// A child run's link to its parent's budget: the gate, and the call's key there.
#[derive(Clone, Debug)]
pub struct ParentBudget {
    pub gate: BudgetGate,
    pub key: String,
}

impl BudgetGate {
    pub(crate) fn new(ctx: Weak<Ctx>) -> BudgetGate {
        BudgetGate { ctx }
    }

    /// Checks a child's call against this run's limits (and its ancestors') and reserves it
    /// in each. A refusal is journaled here as `budget_exhausted` (this run ends too: no
    /// further call of it would fit either).
    pub(crate) fn reserve(&self, role: Role, need: &Need) -> Result<(), Exhausted> {
        let Some(ctx) = self.ctx.upgrade() else {
            return Ok(());
        };
        {
            let mut ledger = ctx.recorder.ledger();
            if let Some(hit) = &ledger.state.budget_exhausted {
                return Err(Exhausted {
                    limit: hit.limit,
                    max: hit.max,
                    needed: None,
                    role: hit.role,
                    used: hit.used,
                });
            }
            let checked = budget::check(
                &ctx.workflow.file.budget,
                &ledger.state.usage,
                &ledger.reserved.totals,
                role,
                need,
                ctx.started.elapsed(),
            );
            if let Err(hit) = checked {
                // A store failure is latched by the recorder; this run stops at its next event.
                let _ = ctx.recorder.emit_with(
                    &mut ledger,
                    EventKind::BudgetExhausted {
                        limit: hit.limit,
                        max: hit.max,
                        needed: hit.needed,
                        role: hit.role,
                        used: hit.used,
                    },
                );
                return Err(hit);
            }
            ledger.reserved.reserve(role, need);
        }
        if let Some(up) = &ctx.parent_budget
            && let Err(hit) = up.gate.reserve(role, need)
        {
            ctx.recorder.ledger().reserved.release(role, need);
            return Err(hit);
        }
        Ok(())
    }

    /// Releases what [`BudgetGate::reserve`] reserved.
    pub(crate) fn release(&self, role: Role, need: &Need) {
        let Some(ctx) = self.ctx.upgrade() else {
            return;
        };
        ctx.recorder.ledger().reserved.release(role, need);
        if let Some(up) = &ctx.parent_budget {
            up.gate.release(role, need);
        }
    }

    /// Counts one model call of the child started by call `key`.
    pub(crate) fn spent(
        &self,
        key: &str,
        role: Role,
        requests: u32,
        usage: Usage,
        cost: Option<f64>,
    ) {
        let mut totals = UsageTotals::default();
        totals.add(
            role,
            requests,
            usage.input_tokens,
            usage.output_tokens,
            cost.unwrap_or(0.0),
        );
        totals.priced = cost.is_some();
        self.carried(key, &totals);
    }

    /// Counts usage a child of call `key` already had (a resumed child, or one that
    /// finished before the parent could journal the call).
    pub(crate) fn carried(&self, key: &str, totals: &UsageTotals) {
        let Some(ctx) = self.ctx.upgrade() else {
            return;
        };
        {
            let mut ledger = ctx.recorder.ledger();
            ledger.reserved.totals.merge(totals);
            ledger
                .children
                .entry(key.to_string())
                .or_default()
                .merge(totals);
        }
        if let Some(up) = &ctx.parent_budget {
            up.gate.carried(&up.key, totals);
        }
    }

    /// Tokens left for `role` under this run's token limits and its ancestors'.
    pub(crate) fn tokens_left(&self, role: Role) -> Option<u64> {
        let ctx = self.ctx.upgrade()?;
        let here = {
            let ledger = ctx.recorder.ledger();
            budget::tokens_left(
                &ctx.workflow.file.budget,
                &ledger.state.usage,
                &ledger.reserved.totals,
                role,
            )
        };
        let above = ctx
            .parent_budget
            .as_ref()
            .and_then(|up| up.gate.tokens_left(role));
        match (here, above) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Takes what the child run of call `key` spent out of the reservations, for the call's
/// `tool_call` event (whose fold counts it as spent). Call with the ledger held, in the
/// same critical section as the event.
pub(crate) fn settle(ledger: &mut Ledger, key: &str) -> Option<UsageTotals> {
    let usage = ledger.children.remove(key)?;
    ledger.reserved.totals.subtract(&usage);
    Some(usage)
}
