//! From resolved model choices to live [`Model`]s: applies `--model` overrides and connects
//! each role to its provider. Roles that share a scripted replies file share one model, so
//! its replies are consumed once across roles.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use crate::analyze::resolve_model;
use crate::error::Error;
use crate::model::Model;
use crate::model::scripted::{ScriptedLoadError, ScriptedModel, replies_path};
use crate::spec::{ModelRef, ProviderKind, Role};
use crate::workflow::{ModelChoice, Workflow};

/// The model of each role the run may call.
#[derive(Clone)]
pub struct ModelSet {
    pub choices: IndexMap<Role, ModelChoice>,
    pub models: IndexMap<Role, Arc<dyn Model>>,
}

impl ModelSet {
    /// The model of a role that was connected (the engine only asks for those).
    pub fn get(&self, role: Role) -> Option<&Arc<dyn Model>> {
        self.models.get(&role)
    }
}

/// Each role's model choice, and the directory its relative paths (scripted replies files)
/// resolve against: the workflow's for choices from the file, the current directory for
/// `--model` overrides.
#[derive(Clone, Debug)]
pub struct Choices {
    pub bases: IndexMap<Role, PathBuf>,
    pub choices: IndexMap<Role, ModelChoice>,
}

/// Applies `--model [ROLE=]PROVIDER/MODEL` values, in order, to the workflow's choices.
pub fn apply_overrides(
    workflow: &Workflow,
    overrides: &[String],
    cwd: &Path,
) -> Result<Choices, Error> {
    let mut choices = workflow.models.clone();
    let mut bases: IndexMap<Role, PathBuf> =
        choices.keys().map(|r| (*r, workflow.dir.clone())).collect();
    for value in overrides {
        let (roles, reference): (Vec<Role>, &str) = match value.split_once('=') {
            Some((role, rest)) if role_named(role).is_some() => {
                (role_named(role).into_iter().collect(), rest)
            }
            Some((role, _)) if !role.contains('/') => {
                return Err(Error::ModelOverride {
                    value: value.clone(),
                    reason: format!(
                        "`{role}` is not a role; {}",
                        crate::diagnostic::suggestion(role, &Role::ALL.map(Role::as_str))
                    ),
                });
            }
            _ => (Role::ALL.to_vec(), value.as_str()),
        };
        for role in roles {
            let mut settings = choices
                .get(&role)
                .map(|c| c.settings.clone())
                .unwrap_or_default();
            settings.model = reference.to_string();
            // A price belongs to the model it was declared for.
            settings.price = None;
            let choice = resolve_model(&ModelRef::Settings(settings), &workflow.file.providers)
                .map_err(|p| Error::ModelOverride {
                    value: value.clone(),
                    reason: p.to_string(),
                })?;
            // A declared provider's `path` is relative to the workflow; a path typed on the
            // command line is relative to where it was typed.
            let base = if choice.provider_spec.is_some() {
                workflow.dir.clone()
            } else {
                cwd.to_path_buf()
            };
            bases.insert(role, base);
            choices.insert(role, choice);
        }
    }
    Ok(Choices { bases, choices })
}

fn role_named(name: &str) -> Option<Role> {
    Role::ALL.into_iter().find(|r| r.as_str() == name)
}

/// Connects the `roles` the run may use. Providers that are not built yet fail here, before
/// anything runs.
pub fn connect_all(resolved: Choices, roles: &[Role]) -> Result<ModelSet, Error> {
    let Choices { bases, choices } = resolved;
    let mut models: IndexMap<Role, Arc<dyn Model>> = IndexMap::new();
    let mut scripted: HashMap<PathBuf, Arc<dyn Model>> = HashMap::new();
    // Roles on the same provider and model share one client; every model of a provider
    // shares what pe learned about its server (a refused `response_format`); settings
    // travel with each request.
    let mut http: HashMap<String, Arc<dyn Model>> = HashMap::new();
    let mut servers = crate::model::connect::Servers::new();
    for &role in roles {
        let Some(choice) = choices.get(&role) else {
            continue;
        };
        let model: Arc<dyn Model> = match choice.kind {
            ProviderKind::Scripted => {
                let base = bases
                    .get(&role)
                    .map(PathBuf::as_path)
                    .unwrap_or(Path::new("."));
                let path = replies_path(
                    base,
                    choice
                        .provider_spec
                        .as_ref()
                        .and_then(|p| p.path.as_deref()),
                    &choice.model,
                );
                match scripted.get(&path) {
                    Some(m) => Arc::clone(m),
                    None => {
                        let m: Arc<dyn Model> = Arc::new(
                            ScriptedModel::load(&path, choice.reference())
                                .map_err(scripted_error)?,
                        );
                        scripted.insert(path, Arc::clone(&m));
                        m
                    }
                }
            }
            ProviderKind::Anthropic | ProviderKind::Ollama | ProviderKind::Openai => {
                let key = choice.reference();
                match http.get(&key) {
                    Some(m) => Arc::clone(m),
                    None => {
                        let m = crate::model::connect::connect(choice, role, &mut servers)?;
                        http.insert(key, Arc::clone(&m));
                        m
                    }
                }
            }
            ProviderKind::Local => {
                let base = bases.get(&role).map_or(Path::new("."), PathBuf::as_path);
                crate::model::local::connect(choice, base, role.as_str())?
            }
        };
        models.insert(role, model);
    }
    Ok(ModelSet { choices, models })
}

fn scripted_error(source: ScriptedLoadError) -> Error {
    Error::ScriptedReplies { source }
}
