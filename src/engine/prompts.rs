//! Prompt templates: the built-in default of each role, the workflow's own when it has one,
//! compiled once per run. The variables each role's template sees are exactly
//! [`crate::analyze::vars`], which `pe check` enforces on user templates.

use minijinja::Environment;
use serde::Serialize;

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

/// The executor's default prompt.
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

/// The replanner's default prompt.
pub const REPLANNER: &str = r#"You review a plan in progress and decide what happens next.

Task: {{ task }}

Plan:
{% for s in plan %}
- {{ s.id }} [{{ s.status }}]: {{ s.description }}{% if s.result %} => {{ s.result }}{% endif %}{% if s.error %} => error: {{ s.error }}{% endif %}

{% endfor %}
{% if failed_step %}

Step `{{ failed_step.id }}` failed: {{ failed_step.error }}
{% endif %}

Tools:
{% for t in tools %}
- {{ t.name }}: {{ t.description }}
{% endfor %}

Decide:
- a check failed and a tool can fix the cause: "revise" with a fix step, then the failed
  step again and the steps after it;
- the task says to stop or abort in this situation, or no tool can fix it: "abort";
- every step succeeded: "finish".

You may revise the plan {{ replans_left }} more time(s). Reply with only one JSON object:
- {"decision": "continue"} to keep the remaining steps
- {"decision": "revise", "reason": "...", "steps": [...]} to replace every step that has not succeeded; succeeded results are kept and new steps may depend on them; steps have the plan's fields (id, description, tool, depends_on, expected)
- {"decision": "finish", "reason": "..."} to answer now with the results so far
- {"decision": "abort", "reason": "..."} when the task cannot be achieved
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

/// The four role templates of a run, compiled.
pub struct Prompts {
    env: Environment<'static>,
}

impl Prompts {
    pub fn new(file: &WorkflowFile) -> Result<Prompts, TemplateError> {
        let mut env = crate::template::environment();
        for role in Role::ALL {
            let text = file
                .prompts
                .role(role)
                .cloned()
                .unwrap_or_else(|| default_for(role).to_string());
            env.add_template_owned(role.as_str(), text)
                .map_err(|e| TemplateError::Syntax {
                    message: e.to_string(),
                    range: e.range(),
                    line: e.line(),
                })?;
        }
        Ok(Prompts { env })
    }

    /// Renders a role's prompt.
    pub fn render<S: Serialize>(&self, role: Role, vars: &S) -> Result<String, TemplateError> {
        let tmpl = self
            .env
            .get_template(role.as_str())
            .map_err(|e| TemplateError::Render {
                message: e.to_string(),
            })?;
        tmpl.render(minijinja::Value::from(minijinja::value::Serde(vars)))
            .map_err(|e| TemplateError::Render {
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
            let undefined = undefined_in(default_for(role), vars::for_role(role)).unwrap();
            assert!(undefined.is_empty(), "{}: {undefined:?}", role.as_str());
        }
    }
}
