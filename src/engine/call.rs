//! One model call as the engine makes it: settings applied, the output cap chosen, the
//! budget checked and reserved before (input estimate plus the cap, for every request the
//! provider may make), an `llm_retry` event for each failed attempt the provider retries, an
//! `llm_call` event after with every answered request's usage — or, for a call cut off by a
//! timeout, its reservation as an estimate. A `budget_exhausted` event instead when it does
//! not fit; once a budget ran out no call is made at all.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::time::Instant;

use crate::engine::budget::{self, Exhausted, Need};
use crate::engine::context::{Ctx, JournalHalt};
use crate::model::retry::{AttemptObserver, FallbackNote, RetryNote};
use crate::model::{Model, ModelError, ModelRequest, ModelResponse, Usage};
use crate::run::event::EventKind;
use crate::spec::{Price, Role};

/// An output cap smaller than this leaves no room for a useful answer: when the token budget
/// cannot grant it, the call is refused as over budget rather than sent to be cut off.
pub const MIN_OUTPUT_TOKENS: u64 = 32;

/// Why a call gave no response.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// Occurs when a budget limit refused the call (or an earlier one ran out): the run must
    /// end `budget_exhausted`.
    #[error("{0}")]
    Budget(Exhausted),
    /// Occurs when the run store failed: nothing may happen unrecorded.
    #[error("{0}")]
    Journal(JournalHalt),
    /// Occurs when the model failed (after the provider's own retries).
    #[error("{0}")]
    Model(ModelError),
}

/// Calls the model of `role` (for an executor call, on behalf of `step`). The request's
/// settings fields are filled in from the role's model settings and the budget.
pub async fn call_model(
    ctx: &Ctx,
    role: Role,
    step: Option<&str>,
    request: &mut ModelRequest,
) -> Result<ModelResponse, CallError> {
    if let Some(halt) = ctx.recorder.halted() {
        return Err(CallError::Journal(halt));
    }
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
    request.max_output_tokens = Some(
        settings
            .max_tokens
            .map_or_else(|| model.default_output_cap(role), u64::from),
    );
    let need = reserve(ctx, model.as_ref(), settings.price, role, request)?;
    // A step timeout can drop this future while the provider is still answering (or waiting
    // to retry): the guard then records the call with its reservation as an estimate.
    let mut guard = InFlight {
        ctx,
        model: choice.reference(),
        need,
        price: settings.price,
        role,
        step,
        held: true,
    };
    let t0 = Instant::now();
    let journal = RetryJournal {
        ctx,
        model: choice.reference(),
        retries: AtomicU32::new(0),
        role,
        spent: Mutex::new(Spent::default()),
        step,
    };
    // Bounded before anything reads it: a huge reply must not balloon prompts or the journal.
    let result = model
        .complete_observed(request, &journal)
        .await
        .map(crate::tool::carried::reply);
    let latency = t0.elapsed();
    let spent = journal
        .spent
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    let (usage, requests, estimated) = if spent.requests > 0 {
        (spent.usage, spent.requests, spent.estimated)
    } else {
        match &result {
            Ok(r) => (r.usage, 1, false),
            Err(_) => (Usage::default(), 0, false),
        }
    };
    let mut ledger = ctx.recorder.ledger();
    ledger.reserved.release(role, &need);
    guard.held = false;
    if let Some(up) = &ctx.parent_budget {
        up.gate.release(role, &need);
        up.gate.spent(
            &up.key,
            role,
            requests,
            usage,
            budget::cost(settings.price, usage),
        );
    }
    let kind = EventKind::LlmCall {
        attempts: journal.retries.load(Ordering::Relaxed) + 1,
        cached_input_tokens: usage.cached_input_tokens,
        cost_usd: budget::cost(settings.price, usage),
        error: result.as_ref().err().map(ToString::to_string),
        estimated,
        input_tokens: usage.input_tokens,
        latency_ms: (latency.as_secs_f64() * 1e6).round() / 1e3,
        model: choice.reference(),
        output_tokens: usage.output_tokens,
        requests,
        role,
        step: step.map(str::to_string),
    };
    ctx.recorder
        .emit_with(&mut ledger, kind)
        .map_err(CallError::Journal)?;
    result.map_err(CallError::Model)
}

/// Sizes the call to the budget (lowering the output cap when a token limit leaves less
/// room) and reserves the most it can use; records `budget_exhausted` when it does not fit.
fn reserve(
    ctx: &Ctx,
    model: &dyn Model,
    price: Option<Price>,
    role: Role,
    request: &mut ModelRequest,
) -> Result<Need, CallError> {
    let requests = model.max_requests(request).max(1);
    let mut ledger = ctx.recorder.ledger();
    if let Some(hit) = &ledger.state.budget_exhausted {
        // The run is ending: no more calls, even small ones.
        return Err(CallError::Budget(Exhausted {
            limit: hit.limit,
            max: hit.max,
            needed: None,
            role: hit.role,
            used: hit.used,
        }));
    }
    let spec = &ctx.workflow.file.budget;
    let mut estimate = model.estimate(request);
    let here = budget::tokens_left(spec, &ledger.state.usage, &ledger.reserved.totals, role);
    let above = ctx
        .parent_budget
        .as_ref()
        .and_then(|up| up.gate.tokens_left(role));
    let left = match (here, above) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if let Some(left) = left {
        let room = left / u64::from(requests);
        let cap = request.max_output_tokens.unwrap_or(0);
        let fits = room.saturating_sub(estimate.input_tokens);
        if estimate.total() > room && fits >= MIN_OUTPUT_TOKENS && fits < cap {
            request.max_output_tokens = Some(fits);
            estimate = model.estimate(request);
        }
    }
    let usage = Usage {
        input_tokens: estimate.input_tokens.saturating_mul(u64::from(requests)),
        output_tokens: estimate.output_tokens.saturating_mul(u64::from(requests)),
        ..Usage::default()
    };
    let need = Need {
        cost: budget::cost(price, usage).unwrap_or(0.0),
        requests,
        usage,
    };
    let checked = budget::check(
        spec,
        &ledger.state.usage,
        &ledger.reserved.totals,
        role,
        &need,
        ctx.started.elapsed(),
    );
    // A child run's call must fit its parent's budget too (reserved there as well).
    let checked = checked.and_then(|()| match &ctx.parent_budget {
        Some(up) => up.gate.reserve(role, &need),
        None => Ok(()),
    });
    if let Err(hit) = checked {
        let kind = EventKind::BudgetExhausted {
            limit: hit.limit,
            max: hit.max,
            needed: hit.needed,
            role: hit.role,
            used: hit.used,
        };
        ctx.recorder
            .emit_with(&mut ledger, kind)
            .map_err(CallError::Journal)?;
        return Err(CallError::Budget(hit));
    }
    ledger.reserved.reserve(role, &need);
    Ok(need)
}

/// What the provider reported spending, request by request.
#[derive(Default)]
struct Spent {
    estimated: bool,
    requests: u32,
    usage: Usage,
}

/// Journals the retries inside one call as `llm_retry` events, counts them, and adds up the
/// usage of every request the provider reports.
struct RetryJournal<'a> {
    ctx: &'a Ctx,
    model: String,
    retries: AtomicU32,
    role: Role,
    spent: Mutex<Spent>,
    step: Option<&'a str>,
}

impl AttemptObserver for RetryJournal<'_> {
    fn retrying(&self, note: &RetryNote) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        // A store failure is latched by the recorder; the caller stops at its next event.
        let _ = self.ctx.recorder.emit(EventKind::LlmRetry {
            attempt: note.attempt,
            delay_ms: u64::try_from(note.delay.as_millis()).unwrap_or(u64::MAX),
            error: note.error.clone(),
            model: self.model.clone(),
            role: self.role,
            status: note.status,
            step: self.step.map(str::to_string),
        });
    }

    fn structured_output_fell_back(&self, note: &FallbackNote) {
        // A store failure is latched by the recorder; the caller stops at its next event.
        let _ = self.ctx.recorder.emit(EventKind::StructuredOutputFallback {
            from: note.from.to_string(),
            model: self.model.clone(),
            provider: note.provider.clone(),
            reason: note.reason.clone(),
            role: self.role,
            status: note.status,
            step: self.step.map(str::to_string),
            to: note.to.to_string(),
        });
    }

    fn spent(&self, usage: Usage, estimated: bool) {
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        spent.requests = spent.requests.saturating_add(1);
        spent.usage.input_tokens = spent.usage.input_tokens.saturating_add(usage.input_tokens);
        spent.usage.cached_input_tokens = spent
            .usage
            .cached_input_tokens
            .saturating_add(usage.cached_input_tokens);
        spent.usage.output_tokens = spent
            .usage
            .output_tokens
            .saturating_add(usage.output_tokens);
        spent.estimated |= estimated;
    }
}

/// A call in flight. Dropped before it ends (a step timeout, the run's timeout), it records
/// the call with its reservation as the estimated usage — the tokens may have been spent —
/// and releases the reservation.
struct InFlight<'a> {
    ctx: &'a Ctx,
    held: bool,
    model: String,
    need: Need,
    price: Option<Price>,
    role: Role,
    step: Option<&'a str>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let mut ledger = self.ctx.recorder.ledger();
        ledger.reserved.release(self.role, &self.need);
        if let Some(up) = &self.ctx.parent_budget {
            up.gate.release(self.role, &self.need);
            up.gate.spent(
                &up.key,
                self.role,
                self.need.requests,
                self.need.usage,
                budget::cost(self.price, self.need.usage),
            );
        }
        let kind = EventKind::LlmCall {
            attempts: 1,
            cached_input_tokens: 0,
            cost_usd: budget::cost(self.price, self.need.usage),
            error: Some("cancelled before the model answered (a timeout); usage estimated".into()),
            estimated: true,
            input_tokens: self.need.usage.input_tokens,
            latency_ms: 0.0,
            model: self.model.clone(),
            output_tokens: self.need.usage.output_tokens,
            requests: self.need.requests,
            role: self.role,
            step: self.step.map(str::to_string),
        };
        // A store failure is latched by the recorder; nothing more to do in a destructor.
        let _ = self.ctx.recorder.emit_with(&mut ledger, kind);
    }
}
