//! Model references: `provider/model` resolved against declared and built-in providers.
//! Used by the checker and by `--model` overrides, so both accept exactly the same references.

use indexmap::IndexMap;

use crate::diagnostic::{Diagnostic, Kind, suggestion};
use crate::source::Span;
use crate::spec::{ModelRef, ModelSettings, ProviderKind};
use crate::workflow::ModelChoice;

/// A model reference that cannot be resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelProblem {
    /// Occurs when the reference is not `provider/model`.
    Malformed { reference: String },
    /// Occurs when the provider is neither built in nor declared.
    UnknownProvider {
        provider: String,
        known: Vec<String>,
    },
}

impl ModelProblem {
    pub(super) fn into_diagnostic(self, span: Span) -> Diagnostic {
        match self {
            ModelProblem::Malformed { reference } => {
                Diagnostic::new(Kind::InvalidModelRef, span, format!("`{reference}` is not a model reference"))
                    .label("expected `provider/model`")
                    .help("write the provider and the model, e.g. `openai/gpt-4o-mini` or `local/smollm2-135m`")
            }
            ModelProblem::UnknownProvider { provider, known } => {
                let known: Vec<&str> = known.iter().map(String::as_str).collect();
                Diagnostic::new(Kind::UnknownProvider, span, format!("unknown provider `{provider}`"))
                    .label("neither built in nor declared under `providers:`")
                    .help(suggestion(&provider, &known))
            }
        }
    }
}

impl std::fmt::Display for ModelProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelProblem::Malformed { reference } => write!(
                f,
                "`{reference}` is not a model reference (expected `provider/model`)"
            ),
            ModelProblem::UnknownProvider { provider, known } => {
                write!(
                    f,
                    "unknown provider `{provider}` (known: {})",
                    known.join(", ")
                )
            }
        }
    }
}

/// Resolves `provider/model` against declared and built-in providers. Used by the checker
/// and by `--model` overrides, so both accept exactly the same references.
pub fn resolve_model(
    reference: &ModelRef,
    providers: &IndexMap<String, crate::spec::ProviderSpec>,
) -> Result<ModelChoice, ModelProblem> {
    let name = reference.name();
    let (provider, model) = match name.split_once('/') {
        Some((p, m)) if !p.is_empty() && !m.is_empty() => (p, m),
        _ => {
            return Err(ModelProblem::Malformed {
                reference: name.to_string(),
            });
        }
    };
    let settings = match reference {
        ModelRef::Name(n) => ModelSettings {
            model: n.clone(),
            ..ModelSettings::default()
        },
        ModelRef::Settings(s) => s.clone(),
    };
    let (kind, provider_spec) = match providers.get(provider) {
        Some(spec) => (spec.kind, Some(spec.clone())),
        None => match ProviderKind::from_name(provider) {
            Some(kind) => (kind, None),
            None => {
                let mut known: Vec<String> = providers.keys().cloned().collect();
                known.extend(ProviderKind::NAMES.iter().map(|s| s.to_string()));
                return Err(ModelProblem::UnknownProvider {
                    provider: provider.to_string(),
                    known,
                });
            }
        },
    };
    Ok(ModelChoice {
        kind,
        model: model.to_string(),
        provider: provider.to_string(),
        provider_spec,
        settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_builtin_and_declared_providers() {
        let providers = IndexMap::new();
        let c = resolve_model(&ModelRef::Name("openai/gpt-4o".into()), &providers).unwrap();
        assert_eq!((c.kind, c.model.as_str()), (ProviderKind::Openai, "gpt-4o"));
        let c = resolve_model(
            &ModelRef::Name("scripted/replies/a.yaml".into()),
            &providers,
        )
        .unwrap();
        assert_eq!(c.model, "replies/a.yaml");
        assert!(matches!(
            resolve_model(&ModelRef::Name("opneai/gpt-4o".into()), &providers),
            Err(ModelProblem::UnknownProvider { .. })
        ));
        assert!(matches!(
            resolve_model(&ModelRef::Name("gpt-4o".into()), &providers),
            Err(ModelProblem::Malformed { .. })
        ));
    }
}
