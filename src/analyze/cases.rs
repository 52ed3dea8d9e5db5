//! `tests:` cases: they name declared tools, inputs and steps, and they are hermetic — a case
//! runs on scripted replies or a cassette (never the workflow's real models) and stubs every
//! tool that reaches outside pe (`command`, `http`, `write_file`) unless its `live:` lets it
//! run for real. `expect.steps` may name steps a revision in the case's replies adds.

use std::collections::BTreeSet;

use serde_json::Value;

use super::Analyzer;
use crate::diagnostic::{Diagnostic, Kind, suggestion};
use crate::spec::{RepliesSource, ScriptedReplies, TestCase, ToolSpec};
use crate::yaml::escape_pointer;

/// Builtins that change or read the world outside the workflow's own tools.
const WORLDLY_BUILTINS: &[&str] = &["write_file"];

impl Analyzer<'_> {
    pub(super) fn tests(&mut self) {
        for (i, case) in self.file.tests.iter().enumerate() {
            let base = format!("/tests/{i}");
            self.case_references(&base, case);
            self.case_is_hermetic(&base, case);
            self.case_steps(&base, case);
        }
    }

    fn case_references(&mut self, base: &str, case: &TestCase) {
        let names = self.tool_names();
        let tools: Vec<&str> = names.iter().map(String::as_str).collect();
        let inputs: Vec<&str> = self.file.inputs.keys().map(String::as_str).collect();
        let live: Vec<(usize, &String)> = match &case.live {
            crate::spec::LiveTools::Tools(names) => names.iter().enumerate().collect(),
            crate::spec::LiveTools::All(_) => Vec::new(),
        };
        let named = case
            .tools
            .keys()
            .map(|n| (format!("{base}/tools/{}", escape_pointer(n)), n, true))
            .chain(case.expect.tool_calls.keys().map(|n| {
                (
                    format!("{base}/expect/tool_calls/{}", escape_pointer(n)),
                    n,
                    true,
                )
            }))
            .chain(
                live.into_iter()
                    .map(|(j, n)| (format!("{base}/live/{j}"), n, false)),
            );
        for (pointer, name, is_key) in named {
            // `live` names whole `mcp` entries (the server runs); stubs name their tools.
            let known = if is_key {
                self.tool_known(name)
            } else {
                self.file.tools.contains_key(name.as_str())
            };
            if !known {
                let span = if is_key {
                    self.doc.key_span(&pointer)
                } else {
                    self.doc.value_span(&pointer)
                };
                self.push(
                    Diagnostic::new(
                        Kind::UnknownTool,
                        span,
                        format!("test `{}` refers to unknown tool `{name}`", case.name),
                    )
                    .label("not declared under `tools:`")
                    .help(suggestion(name, &tools)),
                );
            }
        }
        for name in case.inputs.keys() {
            if !inputs.contains(&name.as_str()) {
                let p = format!("{base}/inputs/{}", escape_pointer(name));
                self.push(
                    Diagnostic::new(
                        Kind::UndefinedVariable,
                        self.doc.key_span(&p),
                        format!("test `{}` sets unknown input `{name}`", case.name),
                    )
                    .label("not declared under `inputs:`")
                    .help(suggestion(name, &inputs)),
                );
            }
        }
    }

    fn case_is_hermetic(&mut self, base: &str, case: &TestCase) {
        let at = self.doc.value_span(&format!("{base}/name"));
        if case.cassette.is_some() {
            // A cassette answers every model and tool call.
            return;
        }
        if case.replies.is_none() {
            self.push(
                Diagnostic::new(
                    Kind::TestNotHermetic,
                    at,
                    format!(
                        "test `{}` has no `replies` or `cassette`: it would call the workflow's real models",
                        case.name
                    ),
                )
                .label("no scripted model")
                .help("give the case `replies:` (a replies file, or replies per role inline), or record a run with `pe exec --record FILE` and set `cassette: FILE`"),
            );
        }
        let worldly: Vec<(&String, &'static str)> = self
            .file
            .tools
            .iter()
            .filter_map(|(name, spec)| worldly_kind(spec).map(|k| (name, k)))
            .filter(|(name, _)| !case.tools.contains_key(*name) && !case.live.allows(name))
            .collect();
        for (tool, kind) in worldly {
            self.push(
                Diagnostic::new(
                    Kind::TestNotHermetic,
                    at,
                    format!(
                        "test `{}` would run tool `{tool}` ({kind}) for real",
                        case.name
                    ),
                )
                .label("tool not stubbed")
                .help(format!(
                    "stub it in the case (`tools: {{{tool}: 'a result'}}`), or let it run with `live: [{tool}]`"
                )),
            );
        }
    }

    /// `expect.steps` against the fixed plan and the steps the case's replanner replies add.
    fn case_steps(&mut self, base: &str, case: &TestCase) {
        let Some(fixed) = &self.file.plan.steps else {
            // The planner decides the steps; nothing to compare with before the run.
            return;
        };
        let mut ids: BTreeSet<String> = fixed.iter().map(|s| s.id.clone()).collect();
        match self.case_replies(case) {
            Some(replies) => ids.extend(revised_step_ids(&replies)),
            // An unreadable replies file is reported when the case runs.
            None if matches!(case.replies, Some(RepliesSource::File(_))) => return,
            None => {}
        }
        let known: Vec<&str> = ids.iter().map(String::as_str).collect();
        for id in case.expect.steps.keys() {
            if !ids.contains(id) {
                let p = format!("{base}/expect/steps/{}", escape_pointer(id));
                self.push(
                    Diagnostic::new(
                        Kind::UnknownStep,
                        self.doc.key_span(&p),
                        format!("test `{}` expects unknown step `{id}`", case.name),
                    )
                    .label("neither in the fixed plan nor added by a revision in the replies")
                    .help(suggestion(id, &known)),
                );
            }
        }
    }

    /// The case's replies: inline, or read from the file (`None` when it does not load).
    fn case_replies(&self, case: &TestCase) -> Option<ScriptedReplies> {
        match case.replies.as_ref()? {
            RepliesSource::Inline(r) => Some(r.clone()),
            RepliesSource::File(f) => {
                let source = crate::source::Source::read(&self.source.dir().join(f)).ok()?;
                crate::model::scripted_replies::check_replies(&source).ok()
            }
        }
    }
}

/// `command`, `http` or `write_file` for a tool that acts outside pe; `None` for the rest.
fn worldly_kind(spec: &ToolSpec) -> Option<&'static str> {
    if spec.command.is_some() {
        Some("command")
    } else if spec.http.is_some() {
        Some("http")
    } else if spec.workflow.is_some() {
        // Its child would call the child's real models. (An `mcp` entry is not listed: in a
        // case that does not let it run, its tools are exactly the stubbed ones.)
        Some("workflow")
    } else {
        spec.builtin
            .as_deref()
            .and_then(|b| WORLDLY_BUILTINS.iter().find(|w| **w == b))
            .map(|_| "builtin write_file")
    }
}

/// Step ids in the replanner's `revise` decisions.
fn revised_step_ids(replies: &ScriptedReplies) -> Vec<String> {
    replies
        .replanner
        .iter()
        .filter_map(|r| r.json.as_ref())
        .filter(|j| j.get("decision").and_then(Value::as_str) == Some("revise"))
        .filter_map(|j| j.get("steps").and_then(Value::as_array))
        .flatten()
        .filter_map(|s| s.get("id").and_then(Value::as_str).map(str::to_string))
        .collect()
}
