//! [`LocalModel`]: the [`Model`] trait over the shared inference [`Engine`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::engine::{Engine, GenRequest};
use super::format::{self, Limits};
use crate::model::{Model, ModelError, ModelRequest, ModelResponse, Usage};
use crate::spec::Role;

/// Sampling temperature when the workflow sets none: low, so a small model stays on the
/// instructions, but above zero so `seed` varies runs.
pub const DEFAULT_TEMPERATURE: f64 = 0.3;
/// Seed when the workflow sets none: runs are reproducible by default.
pub const DEFAULT_SEED: u64 = 0;

/// Output caps per role. The schemas bound every string, so these only stop free text
/// (and are lowered further by `max_tokens` and the token budget).
fn output_cap(role: Option<Role>) -> u64 {
    match role {
        Some(Role::Planner | Role::Replanner) => 768,
        Some(Role::Executor) => 256,
        Some(Role::Synthesizer) | None => 512,
    }
}

/// One role's view of a loaded local model.
pub struct LocalModel {
    calls: AtomicU64,
    engine: Arc<Engine>,
    reference: String,
}

impl LocalModel {
    pub fn new(engine: Arc<Engine>, reference: String) -> LocalModel {
        LocalModel {
            calls: AtomicU64::new(0),
            engine,
            reference,
        }
    }
}

#[async_trait::async_trait]
impl Model for LocalModel {
    fn reference(&self) -> &str {
        &self.reference
    }

    fn default_output_cap(&self, role: Role) -> u64 {
        output_cap(Some(role))
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let constraint = format::constraint(request, Limits::default());
        let cap = output_cap(request.role);
        let max_tokens = request.max_output_tokens.map_or(cap, |m| m.min(cap));
        let job = GenRequest {
            ignore_eos: false,
            max_tokens: u32::try_from(max_tokens).unwrap_or(u32::MAX),
            reuse_cache: true,
            schema: constraint.as_ref().map(|c| c.schema.clone()),
            seed: (request.seed.unwrap_or(DEFAULT_SEED) & u64::from(u32::MAX)) as u32,
            temperature: request.temperature.unwrap_or(DEFAULT_TEMPERATURE) as f32,
            top_p: request.top_p.unwrap_or(0.95) as f32,
            turns: format::chat_turns(request),
        };
        let out = self
            .engine
            .generate(job)
            .await
            .map_err(|message| ModelError::Provider {
                message,
                model: self.reference.clone(),
            })?;
        let number = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let tool_calls_allowed = constraint.as_ref().is_some_and(|c| c.tool_calls);
        let (text, tool_calls) = format::reply(&out.text, tool_calls_allowed, number);
        Ok(ModelResponse {
            text,
            tool_calls,
            truncated: out.truncated,
            usage: Usage {
                input_tokens: out.prompt_tokens,
                output_tokens: out.output_tokens,
                ..Usage::default()
            },
        })
    }
}
