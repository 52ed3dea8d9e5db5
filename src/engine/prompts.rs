//! Prompt templates: the built-in default of each role, the workflow's own when it has one,
//! compiled once per run. The variables each role's template sees are exactly
//! [`crate::analyze::vars`], which `pe check` enforces on user templates.

use std::collections::HashSet;

use minijinja::Environment;

use crate::model::Message;

use crate::spec::{Role, WorkflowFile};
use crate::template::TemplateError;

/// The planner's default prompt.
pub const PLANNER: &str = r#"You are the planner of a plan-and-execute workflow{% if workflow.description %}: {{ workflow.description }}{% endif %}

Task: {{ task }}

Tools the executor can call:
{% for t in tools %}
- {{ t.name }}: {{ t.description }}
{% else %}
(none)
{% endfor %}

Break the task into at most {{ max_steps }} concrete steps, in the order the task gives
them. A step usually uses one tool; do not add steps the task does not ask for. Each step has:
- "id": a short unique identifier, like "run_ci"
- "description": what to do, specific enough to carry out on its own, with the values
  (names, versions, places) from the task
{% if step_args == "none" %}
- "tool": optional, the tool the step should use
{% else %}
- "tool": {% if step_args == "optional" %}optional, {% endif %}the tool the step runs
- "args": {% if step_args == "optional" %}with "tool", {% endif %}the tool's arguments, with the values from the task; the step then
  runs the tool with them directly. A value may use an earlier step's result: {% raw %}"{{ steps.ID.result }}"{% endraw %}
{% endif %}
- "depends_on": optional, ids of earlier steps whose results this step needs
- "expected": what a successful result looks like

Reply with only a JSON object:
{"steps": [{"id": "...", "description": "...", "tool": "...", {% if step_args != "none" %}"args": {}, {% endif %}"depends_on": [], "expected": "..."}]}
{% if feedback %}

Your previous plan was rejected: {{ feedback }}
Reply with a corrected plan.
{% endif %}
"#;

/// The executor's default prompt. The part that stays the same during a run (role, task)
/// comes first; the instructions stay after the step, where small models follow them.
pub const EXECUTOR: &str = r#"You carry out one step of a plan.

Task: {{ task }}

Step `{{ step.id }}`: {{ step.description }}
{% if step.expected %}
Expected outcome: {{ step.expected }}
{% endif %}
{% if step.tool %}
Suggested tool: {{ step.tool }}
{% endif %}
{% if context %}

Results of earlier steps:
{% for r in context %}
- {{ r.id }} ({{ r.status }}): {{ r.result }}
{% endfor %}
{% endif %}

Do only this step. Call tools as needed, with argument values taken from the task and
the step. A tool that reports an error means the step failed.
When the step is done, reply with only a JSON object:
{"status": "succeeded", "result": "<what was achieved, with the facts later steps need>"}
or, when the step cannot be done:
{"status": "failed", "result": "<why>"}
"#;

/// The replanner's default instructions: the same for every call of a run, sent as a system
/// message before [`REPLANNER`] so a provider's prompt cache holds them.
pub const REPLANNER_SYSTEM: &str = r#"You review a plan in progress and decide what happens next.

Task: {{ task }}
{% if tools %}

Tools:
{% for t in tools %}
- {{ t.name }}: {{ t.description }}
{% endfor %}
{% endif %}

Decide:
- a check failed and a tool can fix the cause: "revise" with a fix step, then the failed
  step again and the steps after it;
- the task says to stop or abort in this situation, or no tool can fix it: "abort";
- every step succeeded: "finish".

Reply with only one JSON object:
- {"decision": "continue"} to keep the pending steps
- {"decision": "revise", "reason": "...", "steps": [...]} to replace every step that has not succeeded; done steps are kept and new steps may depend on them; steps have the plan's fields (id, description, tool, depends_on, expected)
- {"decision": "finish", "reason": "..."} to answer now with the results so far
- {"decision": "abort", "reason": "..."} when the task cannot be achieved
"#;

/// The replanner's default prompt: the state of the plan, compact (finished steps one line
/// each with results cut short, the failed step in full, pending steps by id and
/// description).
pub const REPLANNER: &str = r#"{% if done %}
Done:
{% for s in done %}
- {{ s.id }}{% if s.status != "succeeded" %} ({{ s.status }}){% endif %}: {{ s.result }}
{% endfor %}
{% endif %}
{% if failed_step %}
Step `{{ failed_step.id }}` failed: {{ failed_step.error }}
(step: {{ failed_step.description }}; attempts: {{ failed_step.attempts }})
{% endif %}
{% if pending %}
Pending:
{% for s in pending %}
- {{ s.id }}: {{ s.description }}
{% endfor %}
{% endif %}
You may revise the plan {{ replans_left }} more time(s). Reply with only one JSON object.
"#;

/// The synthesizer's default prompt.
pub const SYNTHESIZER: &str = r#"Task: {{ task }}

Results of the plan's steps:
{% for r in results %}
- {{ r.id }} ({{ r.status }}): {{ r.result }}
{% endfor %}

{% if output_schema %}
Reply with only a JSON document that matches this JSON Schema:
{{ output_schema }}
{% else %}
Write the final answer to the task from these results.
{% endif %}
"#;

/// The default template of a role.
pub fn default_for(role: Role) -> &'static str {
    match role {
        Role::Executor => EXECUTOR,
        Role::Planner => PLANNER,
        Role::Replanner => REPLANNER,
        Role::Synthesizer => SYNTHESIZER,
    }
}

/// The default system part of a role: instructions that stay the same during a run.
pub fn default_system_for(role: Role) -> Option<&'static str> {
    match role {
        Role::Replanner => Some(REPLANNER_SYSTEM),
        _ => None,
    }
}

/// The template name of a role's system part.
fn system_name(role: Role) -> String {
    format!("{}.system", role.as_str())
}

/// The four role templates of a run, compiled, with the variables each one reads (the
/// engine builds only those).
pub struct Prompts {
    env: Environment<'static>,
    /// Roles rendered as a system message (stable during the run) and a user message.
    split: Vec<Role>,
    /// Top-level variables each role's templates read.
    used: Vec<(Role, HashSet<String>)>,
}

impl Prompts {
    pub fn new(file: &WorkflowFile) -> Result<Prompts, TemplateError> {
        let mut env = crate::template::environment();
        let syntax = |e: minijinja::Error| TemplateError::Syntax {
            message: e.to_string(),
            range: e.range(),
            line: e.line(),
        };
        let mut split = Vec::new();
        for role in Role::ALL {
            let own = file.prompts.role(role).cloned();
            // A workflow's own prompt is one message, as written.
            if own.is_none()
                && let Some(system) = default_system_for(role)
            {
                env.add_template_owned(system_name(role), system.to_string())
                    .map_err(syntax)?;
                split.push(role);
            }
            let text = own.unwrap_or_else(|| default_for(role).to_string());
            env.add_template_owned(role.as_str(), text)
                .map_err(syntax)?;
        }
        let mut used = Vec::new();
        for role in Role::ALL {
            let mut names = HashSet::new();
            for name in [role.as_str().to_string(), system_name(role)] {
                if let Ok(t) = env.get_template(&name) {
                    names.extend(t.undeclared_variables(false));
                }
            }
            used.push((role, names));
        }
        Ok(Prompts { env, split, used })
    }

    /// Whether a role's templates read the variable `name` (the engine skips building the
    /// ones nobody reads).
    pub fn uses(&self, role: Role, name: &str) -> bool {
        self.used
            .iter()
            .find(|(r, _)| *r == role)
            .is_some_and(|(_, names)| names.contains(name))
    }

    /// Renders a role's prompt as one text.
    pub fn render(&self, role: Role, vars: &minijinja::Value) -> Result<String, TemplateError> {
        self.render_named(role.as_str(), vars)
    }

    /// Renders a role's prompt as messages: the stable system part first when the role has
    /// one, then the rest as a user message.
    pub fn messages(
        &self,
        role: Role,
        vars: &minijinja::Value,
    ) -> Result<Vec<Message>, TemplateError> {
        let mut messages = Vec::with_capacity(2);
        if self.split.contains(&role) {
            messages.push(Message::system(
                self.render_named(&system_name(role), vars)?,
            ));
        }
        messages.push(Message::user(self.render(role, vars)?));
        Ok(messages)
    }

    fn render_named(&self, name: &str, vars: &minijinja::Value) -> Result<String, TemplateError> {
        let tmpl = self
            .env
            .get_template(name)
            .map_err(|e| TemplateError::Render {
                message: e.to_string(),
            })?;
        tmpl.render(vars).map_err(|e| TemplateError::Render {
            message: match e.detail() {
                Some(d) => format!("{}: {d}", e.kind()),
                None => e.kind().to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{undefined_in, vars};

    #[test]
    fn defaults_use_only_the_variables_pe_check_allows() {
        for role in Role::ALL {
            for text in [Some(default_for(role)), default_system_for(role)]
                .into_iter()
                .flatten()
            {
                let undefined = undefined_in(text, vars::for_role(role)).unwrap();
                assert!(undefined.is_empty(), "{}: {undefined:?}", role.as_str());
            }
        }
    }
}
