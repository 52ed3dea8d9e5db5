//! One model call as the engine makes it: settings applied, the budget checked and reserved
//! before, an `llm_retry` event for each failed attempt the provider retries, an `llm_call`
//! event after (a `budget_exhausted` event instead when it does not fit).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use crate::engine::budget::{self, Exhausted};
use crate::engine::context::Ctx;
use crate::model::retry::{AttemptObserver, RetryNote};
use crate::model::{ModelError, ModelRequest, ModelResponse, Usage};
use crate::run::event::EventKind;
use crate::spec::Role;

/// Why a call gave no response.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// A budget limit refused the call; the run must end `budget_exhausted`.
    Budget(Exhausted),
    Model(ModelError),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Budget(e) => write!(f, "budget exhausted: {e}"),
            CallError::Model(e) => e.fmt(f),
        }
    }
}

/// Calls the model of `role` (for an executor call, on behalf of `step`). The request's
/// settings fields are filled in from the role's model settings and the budget.
pub async fn call_model(
    ctx: &Ctx,
    role: Role,
    step: Option<&str>,
    request: &mut ModelRequest,
) -> Result<ModelResponse, CallError> {
    let (Some(model), Some(choice)) = (ctx.models.get(role), ctx.models.choices.get(&role)) else {
        return Err(CallError::Model(ModelError::Provider {
            message: format!("no model is connected for the {} role", role.as_str()),
            model: String::new(),
        }));
    };
    let settings = &choice.settings;
    request.role = Some(role);
    request.step = step.map(str::to_string);
    request.temperature = settings.temperature;
    request.top_p = settings.top_p;
    request.seed = settings.seed;
    request.max_output_tokens = settings.max_tokens.map(u64::from);
    let need = model.estimate(request);
    let need_cost = budget::cost(settings.price, need).unwrap_or(0.0);
    {
        let mut ledger = ctx.recorder.ledger();
        let spec = &ctx.workflow.file.budget;
        let checked = budget::check(
            spec,
            &ledger.state.usage,
            &ledger.reserved.totals,
            role,
            need,
            need_cost,
            ctx.started.elapsed(),
        );
        if let Err(hit) = checked {
            if ledger.state.budget_exhausted.is_none() {
                let kind = EventKind::BudgetExhausted {
                    limit: hit.limit.to_string(),
                    max: hit.max,
                    role: hit.role,
                    used: hit.used,
                    needed: hit.needed,
                };
                ctx.recorder.emit_with(&mut ledger, kind);
            }
            return Err(CallError::Budget(hit));
        }
        if let Some(left) =
            budget::tokens_left(spec, &ledger.state.usage, &ledger.reserved.totals, role)
        {
            let cap = left.saturating_sub(need.input_tokens);
            request.max_output_tokens = Some(request.max_output_tokens.map_or(cap, |m| m.min(cap)));
        }
        ledger.reserved.reserve(role, need, need_cost);
    }
    // A step timeout can drop this future while the provider is still answering (or waiting
    // to retry); the reservation must not outlive it.
    let mut reservation = Reservation {
        ctx,
        need,
        need_cost,
        role,
        held: true,
    };
    let t0 = Instant::now();
    let journal = RetryJournal {
        ctx,
        model: choice.reference(),
        retries: AtomicU32::new(0),
        role,
        step,
    };
    // Bounded before anything reads it: a huge reply must not balloon prompts or the journal.
    let result = model
        .complete_observed(request, &journal)
        .await
        .map(crate::tool::carried::reply);
    let latency = t0.elapsed();
    let usage = match &result {
        Ok(r) => r.usage,
        Err(_) => Usage::default(),
    };
    let mut ledger = ctx.recorder.ledger();
    ledger.reserved.release(role, need, need_cost);
    reservation.held = false;
    let kind = EventKind::LlmCall {
        attempts: journal.retries.load(Ordering::Relaxed) + 1,
        cost_usd: budget::cost(settings.price, usage),
        error: result.as_ref().err().map(ToString::to_string),
        input_tokens: usage.input_tokens,
        latency_ms: (latency.as_secs_f64() * 1e6).round() / 1e3,
        model: choice.reference(),
        output_tokens: usage.output_tokens,
        role,
        step: step.map(str::to_string),
    };
    ctx.recorder.emit_with(&mut ledger, kind);
    result.map_err(CallError::Model)
}

/// Journals the retries inside one call as `llm_retry` events, and counts them.
struct RetryJournal<'a> {
    ctx: &'a Ctx,
    model: String,
    retries: AtomicU32,
    role: Role,
    step: Option<&'a str>,
}

impl AttemptObserver for RetryJournal<'_> {
    fn retrying(&self, note: &RetryNote) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.ctx.recorder.emit(EventKind::LlmRetry {
            attempt: note.attempt,
            delay_ms: u64::try_from(note.delay.as_millis()).unwrap_or(u64::MAX),
            error: note.error.clone(),
            model: self.model.clone(),
            role: self.role,
            status: note.status,
            step: self.step.map(str::to_string),
        });
    }
}

/// A budget reservation of a call in flight, released if the call is dropped before it
/// ends (on the normal path it is released with the `llm_call` event, under one lock).
struct Reservation<'a> {
    ctx: &'a Ctx,
    held: bool,
    need: Usage,
    need_cost: f64,
    role: Role,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.held {
            let mut ledger = self.ctx.recorder.ledger();
            ledger
                .reserved
                .release(self.role, self.need, self.need_cost);
        }
    }
}
