//! Fixed plans: unique step ids, known dependencies and tools, no cycles, within
//! `plan.max_steps`. [`find_cycle`] is shared with the engine's validation of planner output.

use std::collections::{HashMap, HashSet};

use super::Analyzer;
use super::templates::vars;
use crate::diagnostic::{Diagnostic, Kind, suggestion};
use crate::spec::StepSpec;

impl Analyzer<'_> {
    pub(super) fn fixed_plan(&mut self) {
        let Some(steps) = &self.file.plan.steps else {
            return;
        };
        if steps.len() > self.file.plan.max_steps as usize {
            self.push(
                Diagnostic::new(
                    Kind::OutOfRange,
                    self.doc.key_span("/plan/steps"),
                    format!(
                        "the fixed plan has {} steps, more than `plan.max_steps` ({})",
                        steps.len(),
                        self.file.plan.max_steps
                    ),
                )
                .label("too many steps")
                .help("raise `plan.max_steps` or remove steps"),
            );
        }
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, step) in steps.iter().enumerate() {
            if let Some(j) = first.get(step.id.as_str()) {
                let (line, _) = self
                    .source
                    .line_col(self.doc.value_span(&format!("/plan/steps/{j}/id")).offset);
                self.push(
                    Diagnostic::new(
                        Kind::DuplicateStepId,
                        self.doc.value_span(&format!("/plan/steps/{i}/id")),
                        format!("duplicate step id `{}`", step.id),
                    )
                    .label("used again here")
                    .help(format!(
                        "step ids must be unique; `{}` is first used on line {line}",
                        step.id
                    )),
                );
            } else {
                first.insert(&step.id, i);
            }
        }
        // Step texts are templates over `inputs`, like the task.
        for (i, step) in steps.iter().enumerate() {
            self.template(
                &format!("/plan/steps/{i}/description"),
                &step.description,
                vars::TASK,
                None,
            );
            if let Some(expected) = &step.expected {
                self.template(
                    &format!("/plan/steps/{i}/expected"),
                    expected,
                    vars::TASK,
                    None,
                );
            }
        }
        let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
        let known: HashSet<&str> = ids.iter().copied().collect();
        let names = self.tool_names();
        let tools: Vec<&str> = names.iter().map(String::as_str).collect();
        for (i, step) in steps.iter().enumerate() {
            for (j, dep) in step.depends_on.iter().enumerate() {
                let span = self
                    .doc
                    .value_span(&format!("/plan/steps/{i}/depends_on/{j}"));
                if dep == &step.id {
                    self.push(
                        Diagnostic::new(
                            Kind::DependencyCycle,
                            span,
                            format!("step `{dep}` depends on itself"),
                        )
                        .label("self-dependency"),
                    );
                } else if !known.contains(dep.as_str()) {
                    self.push(
                        Diagnostic::new(
                            Kind::UnknownStep,
                            span,
                            format!("step `{}` depends on unknown step `{dep}`", step.id),
                        )
                        .label("no such step")
                        .help(suggestion(dep, &ids)),
                    );
                }
            }
            if let Some(tool) = &step.tool
                && !self.tool_known(tool)
            {
                self.push(
                    Diagnostic::new(
                        Kind::UnknownTool,
                        self.doc.value_span(&format!("/plan/steps/{i}/tool")),
                        format!("step `{}` names unknown tool `{tool}`", step.id),
                    )
                    .label("not declared under `tools:`")
                    .help(suggestion(tool, &tools)),
                );
            }
        }
        if let Some(cycle) = find_cycle(steps) {
            let first_index = ids.iter().position(|id| *id == cycle[0]).unwrap_or(0);
            self.push(
                Diagnostic::new(
                    Kind::DependencyCycle,
                    self.doc
                        .key_span(&format!("/plan/steps/{first_index}/depends_on")),
                    format!("steps depend on each other in a cycle: {}", shown(&cycle)),
                )
                .label("cycle starts here")
                .help("remove one `depends_on` entry so the steps can run in some order"),
            );
        }
    }
}

/// A cycle as `a → b → a`, at most ten ids and a count.
fn shown(cycle: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut text = cycle
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" → ");
    if cycle.len() > SHOWN {
        text.push_str(&format!(" → … ({} more)", cycle.len() - SHOWN));
    }
    text
}

/// One dependency cycle among `steps` (ids in order, first repeated at the end), if any.
///
/// Depth-first with an explicit stack, not recursion: a plan is model output (or a file from
/// someone else), and a chain of 100,000 steps must not overflow the thread's stack.
pub fn find_cycle(steps: &[StepSpec]) -> Option<Vec<String>> {
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    // 0 = unvisited, 1 = on the path, 2 = done.
    let mut state = vec![0u8; steps.len()];
    // The current path: each step and how many of its dependencies were looked at.
    let mut path: Vec<(usize, usize)> = Vec::new();
    for start in 0..steps.len() {
        if state[start] != 0 {
            continue;
        }
        state[start] = 1;
        path.push((start, 0));
        while let Some((i, next)) = path.last_mut() {
            let i = *i;
            let Some(dep) = steps[i].depends_on.get(*next) else {
                state[i] = 2;
                path.pop();
                continue;
            };
            *next += 1;
            let Some(&j) = index.get(dep.as_str()) else {
                continue;
            };
            if j == i {
                continue;
            }
            match state[j] {
                1 => {
                    let from = path.iter().position(|&(k, _)| k == j).unwrap_or(0);
                    let mut cycle: Vec<String> = path[from..]
                        .iter()
                        .map(|&(k, _)| steps[k].id.clone())
                        .collect();
                    cycle.push(steps[j].id.clone());
                    return Some(cycle);
                }
                0 => {
                    state[j] = 1;
                    path.push((j, 0));
                }
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, deps: &[&str]) -> StepSpec {
        StepSpec {
            args: None,
            depends_on: deps.iter().map(|s| s.to_string()).collect(),
            description: id.into(),
            expected: None,
            id: id.into(),
            tool: None,
        }
    }

    #[test]
    fn finds_cycles_and_accepts_dags() {
        let dag = [step("a", &[]), step("b", &["a"]), step("c", &["a", "b"])];
        assert_eq!(find_cycle(&dag), None);
        let cyc = [step("a", &["c"]), step("b", &["a"]), step("c", &["b"])];
        assert_eq!(find_cycle(&cyc).unwrap(), ["a", "c", "b", "a"]);
    }

    #[test]
    fn a_very_long_chain_does_not_overflow_the_stack() {
        let n = 200_000;
        let ids: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let mut chain: Vec<StepSpec> = (0..n).map(|i| step(&ids[i], &[])).collect();
        for i in 0..n - 1 {
            chain[i].depends_on = vec![ids[i + 1].clone()];
        }
        assert_eq!(find_cycle(&chain), None);
        chain[n - 1].depends_on = vec![ids[0].clone()];
        let cycle = find_cycle(&chain).unwrap();
        assert_eq!(cycle.len(), n + 1);
        assert_eq!((cycle[0].as_str(), cycle[n].as_str()), ("s0", "s0"));
    }
}
