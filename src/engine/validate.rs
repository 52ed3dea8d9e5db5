//! Plan validation, shared by the planner and the replanner's revisions: steps must parse,
//! ids must be unique, tools known, dependencies existing and acyclic, and the plan no
//! longer than `plan.max_steps`. Every problem is reported at once, so one re-ask can fix
//! them all.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::analyze::find_cycle;
use crate::diagnostic::suggestion;
use crate::spec::StepSpec;

/// The JSON Schema of a plan (the planner's structured-output format).
pub fn plan_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"steps": steps_schema()},
        "required": ["steps"],
        "additionalProperties": false
    })
}

/// The JSON Schema of a list of steps.
pub fn steps_schema() -> Value {
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "description": {"type": "string"},
                "tool": {"type": "string"},
                "depends_on": {"type": "array", "items": {"type": "string"}},
                "expected": {"type": "string"}
            },
            "required": ["id", "description"],
            "additionalProperties": false
        }
    })
}

/// [`plan_schema`] with the workflow's rules that a schema can express: each step's `tool`
/// is one of the workflow's tools and the plan has 1 to `max_steps` steps. Structured
/// output (and the local model's constrained decoding) then cannot break them.
pub fn plan_schema_for(tools: &[&str], max_steps: u32) -> Value {
    let mut schema = plan_schema();
    schema["properties"]["steps"] = steps_schema_for(tools, max_steps);
    schema
}

/// [`steps_schema`] with `tool` limited to `tools` (when there are any) and at most
/// `max_steps` items.
pub fn steps_schema_for(tools: &[&str], max_steps: u32) -> Value {
    let mut schema = steps_schema();
    if !tools.is_empty() {
        schema["items"]["properties"]["tool"] = json!({"enum": tools});
    }
    schema["minItems"] = json!(1);
    schema["maxItems"] = json!(max_steps.max(1));
    schema
}

/// Types a JSON array of steps, naming the step of each problem.
pub fn parse_steps(value: Option<&Value>) -> Result<Vec<StepSpec>, String> {
    let Some(value) = value else {
        return Err("the reply has no `steps` list".into());
    };
    let Value::Array(items) = value else {
        return Err("`steps` must be a list of step objects".into());
    };
    let mut steps = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match serde_json::from_value::<StepSpec>(item.clone()) {
            Ok(s) => steps.push(s),
            Err(e) => problems.push(format!("step {}: {e}", i + 1)),
        }
    }
    if problems.is_empty() {
        Ok(steps)
    } else {
        Err(problems.join("; "))
    }
}

/// What a plan is checked against.
pub struct Rules<'a> {
    /// Ids of finished steps a revision keeps: new steps may depend on them, not reuse them.
    pub kept: &'a [String],
    pub max_steps: u32,
    pub tools: &'a [&'a str],
}

/// Checks a plan; `Err` lists every problem.
pub fn validate(steps: &[StepSpec], rules: &Rules) -> Result<(), String> {
    let mut problems = Vec::new();
    if steps.is_empty() {
        problems.push("the plan has no steps".to_string());
    }
    if steps.len() > rules.max_steps as usize {
        problems.push(format!(
            "the plan has {} steps; at most {} are allowed",
            steps.len(),
            rules.max_steps
        ));
    }
    let mut seen = HashSet::new();
    for s in steps {
        if s.id.trim().is_empty() {
            problems.push("a step has an empty id".to_string());
        } else if !seen.insert(s.id.as_str()) {
            problems.push(format!("step id `{}` is used twice", s.id));
        } else if rules.kept.contains(&s.id) {
            problems.push(format!(
                "step id `{}` belongs to a step that already succeeded; choose a new id",
                s.id
            ));
        }
    }
    let mut known: Vec<&str> = Vec::new();
    for id in steps
        .iter()
        .map(|s| s.id.as_str())
        .chain(rules.kept.iter().map(String::as_str))
    {
        if !known.contains(&id) {
            known.push(id);
        }
    }
    for s in steps {
        if let Some(tool) = &s.tool
            && !rules.tools.contains(&tool.as_str())
        {
            problems.push(format!(
                "step `{}` names unknown tool `{tool}` ({})",
                s.id,
                suggestion(tool, rules.tools)
            ));
        }
        for dep in &s.depends_on {
            if dep == &s.id {
                problems.push(format!("step `{}` depends on itself", s.id));
            } else if !known.contains(&dep.as_str()) {
                problems.push(format!(
                    "step `{}` depends on unknown step `{dep}` ({})",
                    s.id,
                    suggestion(dep, &known)
                ));
            }
        }
    }
    if let Some(cycle) = find_cycle(steps) {
        problems.push(format!(
            "steps depend on each other in a cycle: {}",
            cycle.join(" -> ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(v: Value) -> Vec<StepSpec> {
        parse_steps(Some(&v)).unwrap()
    }

    #[test]
    fn reports_every_problem_of_a_bad_plan() {
        let steps = plan(json!([
            {"id": "a", "description": "x", "tool": "run_cj"},
            {"id": "a", "description": "y", "depends_on": ["b"]},
            {"id": "b", "description": "z", "depends_on": ["a", "zzz"]},
        ]));
        let rules = Rules {
            kept: &[],
            max_steps: 2,
            tools: &["run_ci", "deploy"],
        };
        assert_eq!(
            validate(&steps, &rules).unwrap_err(),
            "the plan has 3 steps; at most 2 are allowed; step id `a` is used twice; \
             step `a` names unknown tool `run_cj` (did you mean `run_ci`?); \
             step `b` depends on unknown step `zzz` (expected one of: `a`, `b`); \
             steps depend on each other in a cycle: a -> b -> a"
        );
    }

    #[test]
    fn revisions_may_depend_on_kept_steps_but_not_reuse_them() {
        let steps = plan(json!([{"id": "fix", "description": "x", "depends_on": ["ci"]}]));
        let kept = vec!["ci".to_string()];
        let rules = Rules {
            kept: &kept,
            max_steps: 5,
            tools: &[],
        };
        assert_eq!(validate(&steps, &rules), Ok(()));
        let steps = plan(json!([{"id": "ci", "description": "again"}]));
        assert_eq!(
            validate(&steps, &rules).unwrap_err(),
            "step id `ci` belongs to a step that already succeeded; choose a new id"
        );
    }

    #[test]
    fn parse_errors_name_the_step() {
        let v = json!([{"id": "a", "description": "x"}, {"id": "b", "name": "y"}]);
        assert_eq!(
            parse_steps(Some(&v)).unwrap_err(),
            "step 2: unknown field `name`, expected one of `depends_on`, `description`, `expected`, `id`, `tool`"
        );
        assert_eq!(
            validate(
                &[],
                &Rules {
                    kept: &[],
                    max_steps: 3,
                    tools: &[]
                }
            )
            .unwrap_err(),
            "the plan has no steps"
        );
    }
}
