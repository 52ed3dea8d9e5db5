//! Direct tool steps of a fixed plan (`args`) and `output.template`: templates over `inputs`
//! and `steps`, references to steps that exist (a step's `args` may only read steps of the
//! plan other than itself), and written arguments that fit the tool's parameters.

use std::collections::HashSet;

use serde_json::Value;

use super::Analyzer;
use super::templates::vars;
use crate::diagnostic::{Diagnostic, Kind, suggestion};
use crate::engine::direct::{references, templated_leaves};
use indexmap::IndexMap;

use crate::tool::Toolbox;
use crate::workflow::Tool;

impl Analyzer<'_> {
    pub(super) fn step_args(&mut self, tools: &IndexMap<String, Tool>) {
        let Some(steps) = &self.file.plan.steps else {
            return;
        };
        if !steps.iter().any(|s| s.args.is_some()) {
            return;
        }
        let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
        let known: HashSet<&str> = ids.iter().copied().collect();
        // Built only for a plan with args: it compiles every tool's parameters.
        let toolbox = Toolbox::new(tools);
        for (i, step) in steps.iter().enumerate() {
            let Some(args) = &step.args else { continue };
            let base = format!("/plan/steps/{i}/args");
            let Some(tool) = &step.tool else {
                self.push(
                    Diagnostic::new(
                        Kind::StepArguments,
                        self.doc.key_span(&base),
                        format!("step `{}` has `args` but no `tool`", step.id),
                    )
                    .label("arguments for which tool?")
                    .help(
                        "add `tool: NAME` to the step, or remove `args` to let the executor choose",
                    ),
                );
                continue;
            };
            let leaves = templated_leaves(args);
            for (pointer, text) in &leaves {
                self.template(&format!("{base}{pointer}"), text, vars::RESULTS, None);
            }
            for id in references(args).steps {
                let (message, label) = if id == step.id {
                    (
                        format!("step `{}`'s args read its own result", step.id),
                        "a step cannot read itself",
                    )
                } else if !known.contains(id.as_str()) {
                    (
                        format!("step `{}`'s args read unknown step `{id}`", step.id),
                        "no such step",
                    )
                } else {
                    continue;
                };
                let at = leaves
                    .iter()
                    .find(|(_, text)| text.contains(id.as_str()))
                    .map(|(pointer, _)| format!("{base}{pointer}"))
                    .unwrap_or(base.clone());
                let mut d = Diagnostic::new(Kind::UnknownStep, self.doc.value_span(&at), message)
                    .label(label);
                if id != step.id {
                    d = d.help(suggestion(&id, &ids));
                }
                self.push(d);
            }
            if toolbox.get(tool).is_none() {
                // Reported by the fixed plan's check.
                continue;
            }
            let templated: Vec<String> = leaves.into_iter().map(|(p, _)| p).collect();
            if let Err(e) = toolbox.check_written(tool, args, &templated) {
                self.push(
                    Diagnostic::new(
                        Kind::StepArguments,
                        self.doc.value_span(&base),
                        format!("step `{}`: {e}", step.id),
                    )
                    .label("does not fit the tool's parameters")
                    .help(format!("see the `parameters` of tool `{tool}`")),
                );
            }
        }
    }

    pub(super) fn output_template(&mut self) {
        let Some(text) = &self.file.output.template else {
            return;
        };
        self.template("/output/template", text, vars::RESULTS, None);
        // With a fixed plan the step ids are known: reading one that is not there would
        // fail every run at its end.
        let Some(steps) = &self.file.plan.steps else {
            return;
        };
        let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
        let probe = Value::Object(
            [("template".to_string(), Value::String(text.clone()))]
                .into_iter()
                .collect(),
        );
        for id in references(&probe).steps {
            if !ids.contains(&id.as_str()) {
                self.push(
                    Diagnostic::new(
                        Kind::UnknownStep,
                        self.doc.value_span("/output/template"),
                        format!("output.template reads unknown step `{id}`"),
                    )
                    .label("no such step in the fixed plan")
                    .help(suggestion(&id, &ids)),
                );
            }
        }
    }
}
