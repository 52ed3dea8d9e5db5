//! The `local` provider: a small GGUF model run in-process by llama.cpp (through
//! `llama-cpp-2`), so `pe exec` works offline with no server and no API key.
//!
//! Every structured reply is generated under its JSON Schema by llguidance, so even a 135M
//! model's plans, decisions, tool calls and step results always parse (see [`format`]).
//! The model loads once per process ([`engine::shared`]) and serves all roles and
//! concurrent steps through one worker thread. Built with the `local` cargo feature (on by
//! default); without it, `local/...` references report that the provider is not built in.

pub mod format;

#[cfg(feature = "local")]
pub mod engine;

use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use crate::model::Model;
use crate::workflow::ModelChoice;

/// Connects a `local/...` model choice: finds the GGUF file (a catalog name in the models
/// directory, a path, or a declared provider's `path`) and loads it, once per process.
pub fn connect(choice: &ModelChoice, base: &Path, role: &str) -> Result<Arc<dyn Model>, Error> {
    let provider_path = choice
        .provider_spec
        .as_ref()
        .and_then(|p| p.path.as_deref());
    let file = crate::models_cache::resolve_file(base, provider_path, &choice.model)
        .map_err(|source| Error::LocalModel { source })?;
    load(choice, &file, role)
}

#[cfg(feature = "local")]
fn load(choice: &ModelChoice, file: &Path, _role: &str) -> Result<Arc<dyn Model>, Error> {
    let engine = engine::shared(file).map_err(|reason| Error::LocalModel {
        source: crate::models_cache::ModelsError::Load {
            path: file.display().to_string(),
            reason,
        },
    })?;
    Ok(Arc::new(provider::LocalModel::new(
        engine,
        choice.reference(),
    )))
}

#[cfg(not(feature = "local"))]
fn load(choice: &ModelChoice, _file: &Path, role: &str) -> Result<Arc<dyn Model>, Error> {
    Err(Error::ProviderUnavailable {
        provider: "local".into(),
        reference: choice.reference(),
        role: role.to_string(),
    })
}

#[cfg(feature = "local")]
pub mod provider;
