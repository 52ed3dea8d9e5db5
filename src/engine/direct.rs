//! Direct tool steps: a plan step that carries `args` runs its tool with them, without an
//! executor call. String values of `args` are templates over `inputs` and `steps`
//! (`{{ steps.fetch.result }}`); a reference to a step makes the step depend on it
//! ([`link`]), so it runs after the step it reads and only when that step succeeded.
//!
//! A direct step whose arguments do not render, do not fit the tool's parameters, or whose
//! tool fails, either fails the attempt (`execute.direct_fallback: policy`, the default: the
//! failure policy applies) or runs as an ordinary executor step (`executor`).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::engine::context::Ctx;
use crate::engine::step::{CallSite, StepEnd, execute_tool, tool_loop};
use crate::model::ToolCall;
use crate::spec::{DirectFallback, StepSpec, StepStatus};
use crate::template;

/// What a step's `args` read, found without rendering them.
#[derive(Debug, Default, PartialEq)]
pub struct References {
    /// Ids of the steps read as `steps.ID…`.
    pub steps: BTreeSet<String>,
    /// Problems: templates that do not parse, unknown variables, `steps` read without an id.
    pub problems: Vec<String>,
}

/// The steps (and problems) of one step's `args`.
pub fn references(args: &Value) -> References {
    let mut found = References::default();
    for (pointer, text) in templated_leaves(args) {
        let at = if pointer.is_empty() { "/" } else { &pointer };
        match template::variables(&text) {
            Err(e) => found.problems.push(format!("args {at}: {e}")),
            Ok(vars) => {
                for var in vars {
                    let mut parts = var.split('.');
                    match (parts.next(), parts.next()) {
                        (Some("steps"), Some(id)) => {
                            found.steps.insert(id.to_string());
                        }
                        (Some("steps"), None) => found.problems.push(format!(
                            "args {at}: read a step's result as `steps.ID.result`"
                        )),
                        (Some(root), _) if crate::analyze::vars::RESULTS.contains(&root) => {}
                        (Some(root), _) => found.problems.push(format!(
                            "args {at}: unknown variable `{root}`; args can read `inputs` and `steps`"
                        )),
                        (None, _) => {}
                    }
                }
            }
        }
    }
    found
}

/// Adds every step a step's `args` read to its `depends_on` (once, after the written ones).
/// Problems are left to [`crate::engine::validate::validate`], which reads them again.
pub fn link(steps: &mut [StepSpec]) {
    for step in steps.iter_mut() {
        let Some(args) = &step.args else { continue };
        for id in references(args).steps {
            if id != step.id && !step.depends_on.contains(&id) {
                step.depends_on.push(id);
            }
        }
    }
}

/// The string leaves of `args` that hold template syntax, with their JSON pointers.
pub fn templated_leaves(args: &Value) -> Vec<(String, String)> {
    fn walk(value: &Value, pointer: &mut String, out: &mut Vec<(String, String)>) {
        match value {
            Value::String(text) if template::is_templated(text) => {
                out.push((pointer.clone(), text.clone()));
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = pointer.len();
                    pointer.push_str(&format!("/{i}"));
                    walk(item, pointer, out);
                    pointer.truncate(len);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    walk(item, pointer, out);
                    pointer.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(args, &mut String::new(), &mut out);
    out
}

/// Runs one attempt of a step with `args`.
pub async fn run(ctx: &Ctx, step: &StepSpec, attempt: u32) -> StepEnd {
    let failure = match attempt_direct(ctx, step, attempt).await {
        Ok(end) => return end,
        Err(reason) => reason,
    };
    match ctx.workflow.file.execute.direct_fallback {
        DirectFallback::Policy => StepEnd::Failed(failure),
        // The executor's calls are numbered after the direct one, so their idempotency
        // keys differ from it.
        DirectFallback::Executor => tool_loop(ctx, step, attempt, 1).await,
    }
}

/// `Ok` ends the attempt (success, or the store or a budget stopped it); `Err` is why the
/// direct call did not succeed.
async fn attempt_direct(ctx: &Ctx, step: &StepSpec, attempt: u32) -> Result<StepEnd, String> {
    let (Some(tool), Some(args)) = (&step.tool, &step.args) else {
        return Err("a step with `args` must name its `tool`".into());
    };
    let vars = json!({
        "inputs": ctx.tool_ctx.inputs,
        "steps": steps_var(ctx, Some(&references(args).steps)),
    });
    let arguments = template::render_args(args, &vars)
        .map_err(|e| format!("the step's args do not render: {e}"))?;
    let call = ToolCall {
        arguments,
        id: format!("{}-direct", step.id),
        name: tool.clone(),
    };
    let at = CallSite {
        attempt,
        number: 1,
        step: &step.id,
    };
    match execute_tool(ctx, &at, &call).await {
        Ok(Ok(content)) => Ok(StepEnd::Succeeded(content)),
        Ok(Err(e)) => Err(format!("tool `{tool}` failed: {e}")),
        Err(end) => Ok(end),
    }
}

/// The `steps` variable of `args` and `output.template`: each step by id, in plan order, with
/// `status`, `description`, `tool`, and `result` (succeeded) or `error` (failed). A step
/// without a result has no `result` key, so reading it is an error rather than an empty
/// string. `only` limits it to the steps a template reads.
pub fn steps_var(ctx: &Ctx, only: Option<&BTreeSet<String>>) -> Value {
    ctx.recorder.with_state(|state| {
        let mut map = Map::new();
        for s in state.steps.values() {
            if only.is_some_and(|ids| !ids.contains(&s.spec.id)) {
                continue;
            }
            let mut entry = Map::new();
            entry.insert("description".into(), json!(s.spec.description));
            entry.insert("status".into(), json!(s.status.as_str()));
            entry.insert("tool".into(), json!(s.spec.tool));
            match s.status {
                StepStatus::Succeeded => {
                    entry.insert("result".into(), json!(s.result.clone().unwrap_or_default()));
                }
                StepStatus::Failed => {
                    entry.insert("error".into(), json!(s.error.clone().unwrap_or_default()));
                }
                _ => {}
            }
            map.insert(s.spec.id.clone(), Value::Object(entry));
        }
        Value::Object(map)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_in_every_string_of_the_args() {
        let args = json!({
            "url": "http://x/{{ steps.fetch.result }}",
            "list": ["{{ steps['odd'].result }}", "plain", {"deep": "{{ steps.b.status }} {{ inputs.v }}"}],
            "n": 3,
            "bad": "{{ secrets.key }}",
            "oops": "{{ steps }}",
            "broken": "{{ steps.x.result "
        });
        let found = references(&args);
        assert_eq!(
            found.steps,
            ["b", "fetch"].into_iter().map(String::from).collect()
        );
        assert_eq!(
            found.problems,
            [
                "args /list/0: read a step's result as `steps.ID.result`",
                "args /bad: unknown variable `secrets`; args can read `inputs` and `steps`",
                "args /oops: read a step's result as `steps.ID.result`",
                "args /broken: template syntax error: unexpected end of input, expected end of variable block",
            ]
        );
    }

    #[test]
    fn linking_adds_each_reference_once_after_the_written_dependencies() {
        let mut steps: Vec<StepSpec> = serde_json::from_value(json!([
            {"id": "a", "description": "x"},
            {"id": "b", "description": "y", "depends_on": ["a"], "tool": "t",
             "args": {"p": "{{ steps.a.result }}", "q": "{{ steps.c.result }}{{ steps.a.result }}", "r": "{{ steps.b.result }}"}},
        ]))
        .unwrap();
        link(&mut steps);
        assert_eq!(steps[1].depends_on, ["a", "c"]);
        assert!(steps[0].depends_on.is_empty());
    }

    #[test]
    fn pointers_escape_keys() {
        let args =
            json!({"a/b": "{{ inputs.x }}", "c~d": ["{% if 1 %}y{% endif %}"], "e": "plain"});
        let leaves: Vec<String> = templated_leaves(&args)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(leaves, ["/a~1b", "/c~0d/0"]);
    }
}
