//! Plan validation, shared by the planner and the replanner's revisions: steps must parse,
//! ids must be unique, tools known, dependencies existing and acyclic, and the plan no
//! longer than `plan.max_steps`. Every problem is reported at once, so one re-ask can fix
//! them all — but the list is bounded: the first [`MAX_PROBLEMS`] problems and a count,
//! names quoted at most [`MAX_NAME_CHARS`] characters, never every step id per problem (a
//! 2,000-step plan once made a 34 MB re-ask prompt).

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::analyze::find_cycle;
use crate::diagnostic::did_you_mean;
use crate::engine::direct;
use crate::spec::{StepArgs, StepSpec};

/// Problems listed in one answer; the rest are counted.
pub const MAX_PROBLEMS: usize = 10;

/// Characters of a model-chosen name (step id, tool) quoted in a problem.
pub const MAX_NAME_CHARS: usize = 60;

/// Candidates listed when no name is close to a wrong one.
const MAX_CANDIDATES: usize = 10;

/// Problems collected up to [`MAX_PROBLEMS`], the rest counted.
#[derive(Default)]
struct Problems {
    listed: Vec<String>,
    more: usize,
}

impl Problems {
    fn push(&mut self, problem: String) {
        self.add(|| problem);
    }

    /// Adds a problem whose text is only built when it is listed ("did you mean" help
    /// compares a name with every step id: doing that for every problem of a huge plan
    /// would be quadratic).
    fn add(&mut self, problem: impl FnOnce() -> String) {
        if self.listed.len() < MAX_PROBLEMS {
            self.listed.push(problem());
        } else {
            self.more += 1;
        }
    }

    fn result(self) -> Result<(), String> {
        if self.listed.is_empty() {
            return Ok(());
        }
        let mut text = self.listed.join("; ");
        if self.more > 0 {
            text.push_str(&format!(
                "; and {} more problem{}",
                self.more,
                if self.more == 1 { "" } else { "s" }
            ));
        }
        Err(text)
    }
}

/// A model-chosen name as quoted in a problem: at most [`MAX_NAME_CHARS`] characters.
fn name(text: &str) -> String {
    match text.char_indices().nth(MAX_NAME_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// "did you mean" help that lists at most [`MAX_CANDIDATES`] candidates.
fn hint(word: &str, candidates: &[&str]) -> String {
    if let Some(best) = did_you_mean(word, candidates.iter().copied()) {
        return format!("did you mean `{}`?", name(best));
    }
    let shown: Vec<String> = candidates
        .iter()
        .take(MAX_CANDIDATES)
        .map(|c| format!("`{}`", name(c)))
        .collect();
    match candidates.len() {
        0 => "nothing is defined here".to_string(),
        n if n <= MAX_CANDIDATES => format!("expected one of: {}", shown.join(", ")),
        n => format!("expected one of {n}, e.g. {}", shown.join(", ")),
    }
}

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

/// The tools a plan may name, with their parameters' JSON Schema.
pub struct PlanTools<'a> {
    pub tools: Vec<(&'a str, &'a Value)>,
    /// Whether steps carry `args` for their tool.
    pub step_args: StepArgs,
}

impl PlanTools<'_> {
    fn names(&self) -> Vec<&str> {
        self.tools.iter().map(|(name, _)| *name).collect()
    }
}

/// [`plan_schema`] with the workflow's rules that a schema can express: each step's `tool`
/// is one of the workflow's tools, with `args` fitting that tool's parameters when the
/// workflow asks for them, and the plan has 1 to `max_steps` steps. Structured output (and
/// the local model's constrained decoding) then cannot break them.
pub fn plan_schema_for(tools: &PlanTools, max_steps: u32) -> Value {
    let mut schema = plan_schema();
    schema["properties"]["steps"] = steps_schema_for(tools, max_steps);
    schema
}

/// [`steps_schema`] with `tool` limited to the workflow's tools (when there are any), `args`
/// per tool when `step_args` asks for them, and at most `max_steps` items.
pub fn steps_schema_for(tools: &PlanTools, max_steps: u32) -> Value {
    let mut schema = steps_schema();
    if !tools.tools.is_empty() {
        schema["items"]["properties"]["tool"] = json!({"enum": tools.names()});
    }
    if tools.step_args != StepArgs::None && !tools.tools.is_empty() {
        // One shape per tool: `tool` names it and `args` fits its parameters.
        let mut shapes: Vec<Value> = tools
            .tools
            .iter()
            .map(|(name, parameters)| {
                json!({
                    "type": "object",
                    "properties": {
                        // An id that `{{ steps.ID.result }}` can name.
                        "id": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,39}$"},
                        "description": {"type": "string"},
                        "tool": {"const": name},
                        "args": parameters,
                        "depends_on": {"type": "array", "items": {"type": "string"}},
                        "expected": {"type": "string"}
                    },
                    "required": ["id", "description", "tool", "args"],
                    "additionalProperties": false
                })
            })
            .collect();
        if tools.step_args == StepArgs::Optional {
            let mut plain = schema["items"].clone();
            plain["properties"]
                .as_object_mut()
                .map(|p| p.remove("tool"));
            shapes.push(plain);
        }
        if max_steps <= 1 {
            // One step has nothing to depend on: a small model would fill the list anyway.
            for shape in &mut shapes {
                if let Some(p) = shape["properties"].as_object_mut() {
                    p.remove("depends_on");
                }
            }
        }
        schema["items"] = if shapes.len() == 1 {
            shapes.remove(0)
        } else {
            json!({"anyOf": shapes})
        };
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
    let mut problems = Problems::default();
    for (i, item) in items.iter().enumerate() {
        match StepSpec::deserialize(item) {
            Ok(s) => steps.push(s),
            Err(e) => problems.push(format!("step {}: {}", i + 1, name_cut(&e.to_string()))),
        }
    }
    problems.result().map(|()| steps)
}

/// A serde message quotes what it could not read: keep it short.
fn name_cut(message: &str) -> String {
    match message.char_indices().nth(4 * MAX_NAME_CHARS) {
        Some((at, _)) => format!("{}…", &message[..at]),
        None => message.to_string(),
    }
}

/// Checks written `args` against a tool's parameters, leaving alone the leaves at the given
/// JSON pointers (templates, rendered only when the step runs).
pub type ArgsCheck<'a> = &'a (dyn Fn(&str, &Value, &[String]) -> Result<(), String> + Sync);

/// What a plan is checked against.
pub struct Rules<'a> {
    /// How `args` are checked against the tools' parameters (`None`: only their shape).
    pub args: Option<ArgsCheck<'a>>,
    /// Ids of finished steps a revision keeps: new steps may depend on them, not reuse them.
    pub kept: &'a [String],
    pub max_steps: u32,
    /// Whether steps may (or must) carry `args`.
    pub step_args: StepArgs,
    pub tools: &'a [&'a str],
}

/// Checks a plan; `Err` lists the problems (bounded, see the module documentation).
pub fn validate(steps: &[StepSpec], rules: &Rules) -> Result<(), String> {
    let mut problems = Problems::default();
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
            problems.push(format!("step id `{}` is used twice", name(&s.id)));
        } else if rules.kept.contains(&s.id) {
            problems.push(format!(
                "step id `{}` belongs to a step that already succeeded; choose a new id",
                name(&s.id)
            ));
        }
    }
    let mut known: Vec<&str> = Vec::new();
    let mut known_set: HashSet<&str> = HashSet::new();
    for id in steps
        .iter()
        .map(|s| s.id.as_str())
        .chain(rules.kept.iter().map(String::as_str))
    {
        if known_set.insert(id) {
            known.push(id);
        }
    }
    for s in steps {
        if let Some(tool) = &s.tool
            && !rules.tools.contains(&tool.as_str())
        {
            problems.add(|| {
                format!(
                    "step `{}` names unknown tool `{}` ({})",
                    name(&s.id),
                    name(tool),
                    hint(tool, rules.tools)
                )
            });
        }
        let reads = args_problems(s, rules, &known_set, &mut problems);
        for dep in &s.depends_on {
            if reads.contains(dep) {
                // Already said of the args that read it.
                continue;
            }
            if dep == &s.id {
                problems.push(format!("step `{}` depends on itself", name(&s.id)));
            } else if !known_set.contains(dep.as_str()) {
                problems.add(|| {
                    format!(
                        "step `{}` depends on unknown step `{}` ({})",
                        name(&s.id),
                        name(dep),
                        hint(dep, &known)
                    )
                });
            }
        }
    }
    if let Some(cycle) = find_cycle(steps) {
        let shown: Vec<String> = cycle
            .iter()
            .take(MAX_CANDIDATES)
            .map(|id| name(id))
            .collect();
        let rest = cycle.len().saturating_sub(MAX_CANDIDATES);
        problems.push(format!(
            "steps depend on each other in a cycle: {}{}",
            shown.join(" -> "),
            if rest > 0 {
                format!(" -> … ({rest} more)")
            } else {
                String::new()
            }
        ));
    }
    problems.result()
}

/// The problems of a step's `args` (or of its missing ones); returns the step ids the args
/// read that are already reported (unknown, or the step itself).
fn args_problems(
    s: &StepSpec,
    rules: &Rules,
    known: &HashSet<&str>,
    problems: &mut Problems,
) -> HashSet<String> {
    let mut reported = HashSet::new();
    let Some(args) = &s.args else {
        if rules.step_args == StepArgs::Required {
            problems.push(format!(
                "step `{}` has no `args`; every step names a tool and its arguments",
                name(&s.id)
            ));
        }
        return reported;
    };
    if rules.step_args == StepArgs::None {
        problems.push(format!(
            "step `{}` has `args`, but this workflow's steps run through the executor (plan.step_args: none)",
            name(&s.id)
        ));
        return reported;
    }
    let Some(tool) = &s.tool else {
        problems.push(format!(
            "step `{}` has `args` but no `tool` to pass them to",
            name(&s.id)
        ));
        return reported;
    };
    if !args.is_object() {
        problems.push(format!(
            "step `{}`: `args` must be an object of the tool's arguments",
            name(&s.id)
        ));
        return reported;
    }
    let refs = direct::references(args);
    for p in refs.problems {
        problems.add(|| format!("step `{}` {}", name(&s.id), name_cut(&p)));
    }
    for id in &refs.steps {
        if id == &s.id {
            problems.push(format!("step `{}`'s args read its own result", name(&s.id)));
            reported.insert(id.clone());
        } else if !known.contains(id.as_str()) {
            problems.add(|| {
                format!(
                    "step `{}`'s args read unknown step `{}`",
                    name(&s.id),
                    name(id)
                )
            });
            reported.insert(id.clone());
        }
    }
    if let Some(check) = rules.args
        && rules.tools.contains(&tool.as_str())
    {
        let templated: Vec<String> = direct::templated_leaves(args)
            .into_iter()
            .map(|(pointer, _)| pointer)
            .collect();
        if let Err(p) = check(tool, args, &templated) {
            problems.add(|| format!("step `{}`: {}", name(&s.id), name_cut(&p)));
        }
    }
    reported
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
            args: None,
            step_args: StepArgs::None,
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
            args: None,
            step_args: StepArgs::None,
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
    fn huge_bad_plans_get_a_bounded_answer() {
        let steps: Vec<Value> = (0..2000)
            .map(|i| json!({"id": format!("s{i}"), "description": "x", "tool": "nope", "depends_on": [format!("missing{i}")]}))
            .collect();
        let steps = plan(Value::Array(steps));
        let rules = Rules {
            args: None,
            step_args: StepArgs::None,
            kept: &[],
            max_steps: 100,
            tools: &["run_ci"],
        };
        let t0 = std::time::Instant::now();
        let answer = validate(&steps, &rules).unwrap_err();
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(
            answer,
            "the plan has 2000 steps; at most 100 are allowed; \
             step `s0` names unknown tool `nope` (expected one of: `run_ci`); \
             step `s0` depends on unknown step `missing0` (expected one of 2000, e.g. `s0`, `s1`, `s2`, `s3`, `s4`, `s5`, `s6`, `s7`, `s8`, `s9`); \
             step `s1` names unknown tool `nope` (expected one of: `run_ci`); \
             step `s1` depends on unknown step `missing1` (expected one of 2000, e.g. `s0`, `s1`, `s2`, `s3`, `s4`, `s5`, `s6`, `s7`, `s8`, `s9`); \
             step `s2` names unknown tool `nope` (expected one of: `run_ci`); \
             step `s2` depends on unknown step `missing2` (expected one of 2000, e.g. `s0`, `s1`, `s2`, `s3`, `s4`, `s5`, `s6`, `s7`, `s8`, `s9`); \
             step `s3` names unknown tool `nope` (expected one of: `run_ci`); \
             step `s3` depends on unknown step `missing3` (expected one of 2000, e.g. `s0`, `s1`, `s2`, `s3`, `s4`, `s5`, `s6`, `s7`, `s8`, `s9`); \
             step `s4` names unknown tool `nope` (expected one of: `run_ci`); \
             and 3991 more problems"
        );
        let long_id = "i".repeat(10_000);
        let steps =
            plan(json!([{"id": long_id, "description": "x"}, {"id": long_id, "description": "y"}]));
        let answer = validate(&steps, &rules).unwrap_err();
        assert_eq!(
            answer,
            format!("step id `{}…` is used twice", "i".repeat(60))
        );
    }

    #[test]
    fn parse_errors_name_the_step() {
        let v = json!([{"id": "a", "description": "x"}, {"id": "b", "name": "y"}]);
        assert_eq!(
            parse_steps(Some(&v)).unwrap_err(),
            "step 2: unknown field `name`, expected one of `args`, `depends_on`, `description`, `expected`, `id`, `tool`"
        );
        assert_eq!(
            validate(
                &[],
                &Rules {
                    args: None,
                    step_args: StepArgs::None,
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
