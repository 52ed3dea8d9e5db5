//! `pe test FILE...`: run each workflow's `tests:` offline and check their expectations.
//! A case runs the real engine on scripted replies (a file or inline), on a cassette, or
//! on the workflow's own models, with its `tools:` stubs in place of the tools' behaviour
//! and plans approved; events stay in memory (no run store is touched).
//!
//! Output follows the usual test-runner form on stdout: one `test WORKFLOW › CASE ... ok`
//! line per case, then each failure explained (expected against actual), then the closing
//! line `N passed, N failed`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Value, json};

use crate::check::{check_source, read_source};
use crate::cli::TestArgs;
use crate::commands::children::Children;
use crate::commands::exec::{replay_models, replaying};
use crate::engine::approval::Headless;
use crate::engine::{self, MemorySink, RunConfig};
use crate::error::{Error, exit};
use crate::model::scripted::ScriptedModel;
use crate::model::{Model, ModelSet, apply_overrides, connect_all};
use crate::render::result::output_text;
use crate::run::cassette::Replay;
use crate::run::inputs;
use crate::run::redact::Redactor;
use crate::run::state::RunState;
use crate::spec::{Expectation, RepliesSource, RunStatus, StepStatus, TestCase};
use crate::tool::Toolbox;
use crate::workflow::Workflow;

pub fn run(args: &TestArgs) -> Result<u8, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage {
            message: format!("cannot start the async runtime: {e}"),
        })?;
    let mut out = std::io::stdout().lock();
    let mut code = exit::COMPLETED;
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut invalid: Vec<Value> = Vec::new();
    let mut filtered_out = 0usize;
    for path in &args.files {
        let workflow = match load(path) {
            Ok(w) => w,
            Err(e) => {
                crate::report(&e);
                invalid.push(json!({"file": path.display().to_string(), "error": e.to_string()}));
                code = code.max(e.code());
                continue;
            }
        };
        if workflow.file.tests.is_empty() {
            let _ = writeln!(
                std::io::stderr().lock(),
                "warning: {} has no `tests:`",
                path.display()
            );
        }
        let workflow = Arc::new(workflow);
        for case in &workflow.file.tests {
            let title = format!("{} › {}", workflow.file.name, case.name);
            if !args.filters.is_empty() && !args.filters.iter().any(|f| title.contains(f.as_str()))
            {
                filtered_out += 1;
                continue;
            }
            let started = std::time::Instant::now();
            let (status, problems) = match runtime.block_on(run_case(&workflow, case)) {
                Ok((state, calls)) => (state.status(), check(&case.expect, &state, &calls)),
                Err(e) => {
                    if let Error::ScriptedReplies {
                        source: crate::model::scripted::ScriptedLoadError::Located { .. },
                    } = &e
                    {
                        // Located problems in the replies file, rendered with their source.
                        crate::report(&e);
                    }
                    (None, vec![format!("the run could not start: {e}")])
                }
            };
            let outcome = Outcome {
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                file: path.display().to_string(),
                name: case.name.clone(),
                problems,
                status,
                title,
                workflow: workflow.file.name.clone(),
            };
            if !args.json {
                let verdict = if outcome.problems.is_empty() {
                    "ok"
                } else {
                    "FAILED"
                };
                let _ = writeln!(out, "test {} ... {verdict}", outcome.title);
            }
            outcomes.push(outcome);
        }
    }
    let failed = outcomes.iter().filter(|o| !o.problems.is_empty()).count();
    let passed = outcomes.len() - failed;
    if args.json {
        let cases: Vec<Value> = outcomes.iter().map(Outcome::to_json).collect();
        let doc = json!({
            "passed": passed,
            "failed": failed,
            "filtered_out": filtered_out,
            "cases": cases,
            "invalid": invalid,
        });
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
    } else {
        if failed > 0 {
            let _ = writeln!(out, "\nfailures:");
            for o in outcomes.iter().filter(|o| !o.problems.is_empty()) {
                let _ = writeln!(out, "\n---- {} ----", o.title);
                for p in &o.problems {
                    let _ = writeln!(out, "{p}");
                }
            }
        }
        let filtered = if filtered_out > 0 {
            format!("; {filtered_out} filtered out")
        } else {
            String::new()
        };
        let _ = writeln!(out, "\n{passed} passed, {failed} failed{filtered}");
    }
    if failed > 0 {
        code = code.max(exit::RUN_FAILED);
    }
    if !args.filters.is_empty() && outcomes.is_empty() && filtered_out > 0 {
        let _ = writeln!(
            std::io::stderr().lock(),
            "error: no test case matches --filter {}",
            args.filters.join(", --filter ")
        );
        code = code.max(exit::USAGE);
    }
    Ok(code)
}

/// One case's result.
struct Outcome {
    duration_ms: u64,
    file: String,
    name: String,
    /// Every missed expectation; empty when the case passed.
    problems: Vec<String>,
    status: Option<RunStatus>,
    title: String,
    workflow: String,
}

impl Outcome {
    fn to_json(&self) -> Value {
        json!({
            "workflow": self.workflow,
            "file": self.file,
            "name": self.name,
            "passed": self.problems.is_empty(),
            "status": self.status.map(RunStatus::as_str),
            "problems": self.problems,
            "duration_ms": self.duration_ms,
        })
    }
}

fn load(path: &Path) -> Result<Workflow, Error> {
    let source = read_source(path)?;
    let checked = check_source(&source);
    checked.workflow.ok_or_else(|| Error::InvalidWorkflow {
        diagnostics: checked.diagnostics,
        file: Box::new(source),
    })
}

/// Runs one case; returns the final state and how often each tool ran.
async fn run_case(
    workflow: &Arc<Workflow>,
    case: &TestCase,
) -> Result<(RunState, IndexMap<String, u64>), Error> {
    let given: IndexMap<String, Value> = case.inputs.clone();
    let inputs = inputs::resolve(workflow, &given)?;
    let roles = engine::roles_used(workflow);
    let dir = &workflow.dir;
    let mut toolbox = Toolbox::new(&workflow.tools);
    let models = if let Some(cassette) = &case.cassette {
        let replay =
            Replay::load(&dir.join(cassette)).map_err(|source| Error::Cassette { source })?;
        toolbox = replaying(toolbox, &replay);
        let choices = apply_overrides(workflow, &[], dir)?;
        replay_models(choices.choices, &roles, &replay)
    } else {
        match &case.replies {
            Some(RepliesSource::File(file)) => {
                // Resolved against the workflow's directory (`dir`), and shown as that join.
                let reference = format!("scripted/{file}");
                connect_all(apply_overrides(workflow, &[reference], dir)?, &roles)?
            }
            Some(RepliesSource::Inline(replies)) => {
                let reference = "scripted/inline".to_string();
                let choices = apply_overrides(workflow, std::slice::from_ref(&reference), dir)?;
                let model: Arc<dyn Model> = Arc::new(
                    ScriptedModel::from_replies(
                        replies.clone(),
                        format!("the inline replies of test `{}`", case.name),
                        reference,
                    )
                    .map_err(|source| Error::ScriptedReplies { source })?,
                );
                ModelSet {
                    models: roles.iter().map(|r| (*r, Arc::clone(&model))).collect(),
                    choices: choices.choices,
                }
            }
            // `pe check` refuses such a case (it would call the real models); never run one.
            None => {
                return Err(Error::Usage {
                    message: format!(
                        "test `{}` has no `replies` or `cassette`, so it would call the workflow's real models",
                        case.name
                    ),
                });
            }
        }
    };
    let models = models.redacted(&crate::commands::exec::redactor(workflow));
    // A workflow tool the case lets run (`live`) runs its child in memory on the case's
    // models.
    let children = Children::in_memory(&models);
    let toolbox = toolbox
        .with_child_runs(children)
        .with_stubs(&case.tools, |name| case.live.allows(name));
    let toolbox = Arc::new(toolbox);
    let config = RunConfig {
        approve: true,
        approver: Arc::new(Headless),
        inputs,
        models,
        parent: None,
        plan_only: false,
        prior: Vec::new(),
        redactor: Redactor::default(),
        run_id: format!("test-{}", case.name),
        toolbox: Arc::clone(&toolbox),
        workflow: Arc::clone(workflow),
        workflow_sha256: None,
    };
    let state = engine::run(config, Arc::new(MemorySink::default())).await?;
    Ok((state, toolbox.call_counts()))
}

/// Every way the run missed its expectation, one line each.
pub fn check(expect: &Expectation, state: &RunState, calls: &IndexMap<String, u64>) -> Vec<String> {
    let mut problems = Vec::new();
    let finished = state.finished.as_ref();
    let status = finished.map_or("unfinished", |f| f.status.as_str());
    if let Some(want) = expect.status
        && Some(want) != state.status()
    {
        let why = finished
            .and_then(|f| f.reason.as_deref())
            .filter(|_| state.status() != Some(RunStatus::Completed))
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        problems.push(format!(
            "status: expected {}, got {status}{why}",
            want.as_str()
        ));
    }
    for (id, want) in &expect.steps {
        match state.step(id) {
            None => problems.push(format!(
                "step `{id}`: expected {}, but the plan has no such step (steps: {})",
                want.as_str(),
                state.steps.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
            Some(s) if s.status != *want => problems.push(format!(
                "step `{id}`: expected {}, got {}{}",
                want.as_str(),
                s.status.as_str(),
                s.error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )),
            Some(_) => {}
        }
    }
    let output = finished.and_then(|f| f.output.as_ref());
    if let Some(want) = &expect.output {
        match output {
            None => problems.push(format!("output: expected {}, got no output", compact(want))),
            Some(got) => {
                if let Some(miss) = subset_mismatch(want, got, "") {
                    problems.push(format!("output: {miss}"));
                }
            }
        }
    }
    if let Some(needle) = &expect.output_contains {
        let text = output.map(output_text).unwrap_or_default();
        if !text.contains(needle.as_str()) {
            problems.push(format!(
                "output: expected it to contain {needle:?}, got {}",
                if output.is_some() {
                    format!("{text:?}")
                } else {
                    "no output".into()
                }
            ));
        }
    }
    if let Some(want) = expect.replans
        && want != state.replans
    {
        problems.push(format!("replans: expected {want}, got {}", state.replans));
    }
    for (tool, want) in &expect.tool_calls {
        let got = calls.get(tool).copied().unwrap_or(0);
        if got != u64::from(*want) {
            problems.push(format!(
                "tool `{tool}`: expected {want} call{}, got {got}",
                if *want == 1 { "" } else { "s" }
            ));
        }
    }
    if !problems.is_empty() {
        // A skipped step says only which dependency failed: show each failed step's own
        // error, unless a line above already does.
        for (id, step) in &state.steps {
            if step.status != StepStatus::Failed {
                continue;
            }
            let note = format!(
                "step `{id}` failed: {}",
                step.error.as_deref().unwrap_or("no error recorded")
            );
            if !problems.iter().any(|p| p.contains(&note)) {
                problems.push(format!("note: {note}"));
            }
        }
    }
    problems
}

/// Where `got` does not contain `want`: objects match on the keys `want` names (deeply),
/// arrays element by element with equal length, anything else by equality.
pub fn subset_mismatch(want: &Value, got: &Value, at: &str) -> Option<String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w.iter().find_map(|(k, wv)| {
            let here = format!("{at}/{}", crate::yaml::escape_pointer(k));
            match g.get(k) {
                None => Some(format!("at {here}: expected {}, got nothing", compact(wv))),
                Some(gv) => subset_mismatch(wv, gv, &here),
            }
        }),
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .enumerate()
            .find_map(|(i, (wv, gv))| subset_mismatch(wv, gv, &format!("{at}/{i}"))),
        _ if want == got => None,
        _ => Some(format!(
            "{}expected {}, got {}",
            if at.is_empty() {
                String::new()
            } else {
                format!("at {at}: ")
            },
            compact(want),
            compact(got)
        )),
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn output_matches_as_a_subset() {
        let got = json!({"a": 1, "b": {"c": [1, 2], "d": "x"}});
        assert_eq!(subset_mismatch(&json!({"b": {"d": "x"}}), &got, ""), None);
        assert_eq!(
            subset_mismatch(&json!({"b": {"c": [1, 3]}}), &got, ""),
            Some("at /b/c/1: expected 3, got 2".into())
        );
        assert_eq!(
            subset_mismatch(&json!({"z": true}), &got, ""),
            Some("at /z: expected true, got nothing".into())
        );
        assert_eq!(
            subset_mismatch(&json!("done"), &json!("nope"), ""),
            Some(r#"expected "done", got "nope""#.into())
        );
    }
}
