//! From a role's model choice to a live HTTP model: endpoint URL, key, headers, timeout and
//! retry policy from the provider entry and the environment. Everything that can be known
//! before the run — a missing key, a malformed URL or header — fails here, before anything
//! runs.
//!
//! Keys: a provider's `api_key_env` names its variable. Without one, the kind's standard
//! variable (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`) is used — but only when the provider has
//! no `base_url` of its own, so an OpenAI key is never sent to some other server by accident.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::model::Model;
use crate::model::anthropic::{self, API_VERSION, AnthropicModel};
use crate::model::http_client::{DEFAULT_MAX_RESPONSE_BYTES, Endpoint, EndpointConfig};
use crate::model::ollama;
use crate::model::openai::{self, OpenAiModel};
use crate::model::retry::RetryPolicy;
use crate::model::structured_mode::ServerState;
use crate::spec::{ProviderKind, Role, StructuredOutput};
use crate::workflow::ModelChoice;

/// OpenAI's API, when neither the provider nor `OPENAI_BASE_URL` names another.
pub const OPENAI_URL: &str = "https://api.openai.com/v1";

/// Anthropic's API, when neither the provider nor `ANTHROPIC_BASE_URL` names another.
pub const ANTHROPIC_URL: &str = "https://api.anthropic.com";

/// Per-request timeout when the provider sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Ollama's default timeout is longer: the first request loads the model from disk.
pub const OLLAMA_TIMEOUT: Duration = Duration::from_secs(300);

/// What pe learns about each server during a run, by provider name: shared by every role
/// and model on that provider.
pub type Servers = HashMap<String, Arc<ServerState>>;

/// Connects one role's model (`openai`, `anthropic` or `ollama` kinds).
pub fn connect(
    choice: &ModelChoice,
    role: Role,
    servers: &mut Servers,
) -> Result<Arc<dyn Model>, Error> {
    let spec = choice.provider_spec.as_ref();
    let own_url = spec.and_then(|s| s.base_url.clone());
    let declared_key = spec.and_then(|s| s.api_key_env.clone());
    let (url, standard_key, timeout) = match choice.kind {
        ProviderKind::Anthropic => (
            own_url
                .clone()
                .or_else(|| env("ANTHROPIC_BASE_URL"))
                .unwrap_or_else(|| ANTHROPIC_URL.into()),
            Some("ANTHROPIC_API_KEY"),
            DEFAULT_TIMEOUT,
        ),
        ProviderKind::Ollama => (
            ollama::base_url(
                &own_url
                    .clone()
                    .or_else(|| env("OLLAMA_HOST"))
                    .unwrap_or_default(),
            ),
            None,
            OLLAMA_TIMEOUT,
        ),
        _ => (
            own_url
                .clone()
                .or_else(|| env("OPENAI_BASE_URL"))
                .unwrap_or_else(|| OPENAI_URL.into()),
            Some("OPENAI_API_KEY"),
            DEFAULT_TIMEOUT,
        ),
    };
    let setup = |reason: String| Error::ProviderSetup {
        reference: choice.reference(),
        reason,
    };
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        _ => return Err(setup(format!("`{url}` is not an http(s) URL"))),
    }
    let key_var = declared_key.or_else(|| {
        standard_key
            .filter(|_| own_url.is_none())
            .map(str::to_string)
    });
    let key_required = spec.is_some_and(|s| s.api_key_env.is_some())
        || choice.kind == ProviderKind::Anthropic && key_var.is_some()
        || url.trim_end_matches('/') == OPENAI_URL;
    let key = key_var.as_deref().and_then(env);
    if key.is_none()
        && key_required
        && let Some(var) = &key_var
    {
        return Err(Error::MissingApiKey {
            reference: choice.reference(),
            role: role.as_str().to_string(),
            var: var.clone(),
        });
    }
    let (auth, mut headers) = match choice.kind {
        ProviderKind::Anthropic => (
            key.map(|k| ("x-api-key", k)),
            vec![("anthropic-version".to_string(), API_VERSION.to_string())],
        ),
        _ => (
            key.map(|k| ("authorization", format!("Bearer {k}"))),
            Vec::new(),
        ),
    };
    if let Some(s) = spec {
        headers.extend(s.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let endpoint = Endpoint::new(EndpointConfig {
        auth,
        headers,
        key_var,
        max_response_bytes: spec
            .and_then(|s| s.max_response_bytes)
            .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
        model: choice.model.clone(),
        policy: RetryPolicy::new(spec.and_then(|s| s.max_retries)),
        provider: choice.provider.clone(),
        timeout: spec.and_then(|s| s.timeout).map_or(timeout, |t| t.0),
        url: match choice.kind {
            ProviderKind::Anthropic => anthropic::url(&url),
            _ => openai::url(&url),
        },
    })
    .map_err(setup)?;
    Ok(match choice.kind {
        ProviderKind::Anthropic => Arc::new(AnthropicModel::new(endpoint, choice.reference())),
        _ => {
            let setting = spec
                .and_then(|s| s.structured_output)
                .unwrap_or(StructuredOutput::Auto);
            let server = servers
                .entry(choice.provider.clone())
                .or_insert_with(|| {
                    Arc::new(ServerState::new(
                        setting,
                        openai::wants_completion_tokens_from_start(&url),
                    ))
                })
                .clone();
            Arc::new(OpenAiModel::new(endpoint, choice.reference(), server))
        }
    })
}

/// An environment variable's value; empty counts as unset.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
