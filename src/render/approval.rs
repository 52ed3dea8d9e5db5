//! Plan approval at a terminal: the plan (a revision as a diff against the previous plan)
//! on stderr, then approve / reject / edit. Edit opens `$VISUAL` or `$EDITOR` on the plan
//! as YAML; the edited plan goes through the planner's validation, and problems are shown
//! and asked about again. End of input (Ctrl-D) leaves the run awaiting approval.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::engine::approval::{Approver, PlanProposal, Review};
use crate::engine::validate::parse_steps;
use crate::source::Source;
use crate::spec::StepSpec;

/// Asks on the process's terminal (stdin and stderr).
pub struct TerminalApprover;

#[async_trait::async_trait]
impl Approver for TerminalApprover {
    async fn review(&self, proposal: PlanProposal) -> Review {
        // Reading a terminal and waiting for an editor block: keep them off the runtime.
        tokio::task::spawn_blocking(move || {
            let stdin = std::io::stdin();
            let mut input = stdin.lock();
            let mut out = std::io::stderr();
            ask(&proposal, &mut input, &mut out, &mut run_editor)
        })
        .await
        .unwrap_or(Review::Defer)
    }
}

/// The conversation, on any input and output (tests drive it with buffers). `edit` gets the
/// plan as YAML and returns the edited text.
pub fn ask(
    proposal: &PlanProposal,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    edit: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Review {
    let _ = match &proposal.previous {
        Some(previous) => writeln!(
            out,
            "The replanner revised the plan; it needs approval:\n{}",
            diff(previous, &proposal.plan)
        ),
        None => writeln!(
            out,
            "The plan needs approval:\n{}",
            plan_lines(&proposal.plan)
        ),
    };
    // What approving means now: the proposal, or the user's last valid edit.
    let mut edited: Option<Vec<StepSpec>> = None;
    let mut draft = to_yaml(&proposal.editable);
    loop {
        let _ = write!(out, "Approve, reject or edit the plan? [a/r/e] ");
        let _ = out.flush();
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => {
                let _ = writeln!(out);
                return Review::Defer;
            }
            Ok(_) => {}
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "a" | "approve" | "y" | "yes" => {
                return match edited {
                    Some(steps) => Review::Edit(steps),
                    None => Review::Approve,
                };
            }
            "r" | "reject" | "n" | "no" => {
                return Review::Reject(Some("the plan was rejected at the terminal".into()));
            }
            "e" | "edit" => match edit(&draft) {
                Err(problem) => {
                    let _ = writeln!(out, "cannot edit the plan: {problem}");
                }
                Ok(text) => {
                    draft = text;
                    match from_yaml(&draft).and_then(|steps| {
                        proposal.validate(&steps)?;
                        Ok(steps)
                    }) {
                        Ok(steps) => {
                            let mut whole: Vec<StepSpec> = proposal
                                .plan
                                .iter()
                                .filter(|s| !proposal.editable.contains(s))
                                .cloned()
                                .collect();
                            whole.extend(steps.iter().cloned());
                            let _ = writeln!(out, "The edited plan:\n{}", plan_lines(&whole));
                            edited = Some(steps);
                        }
                        Err(problem) => {
                            let _ = writeln!(
                                out,
                                "The edited plan is not valid: {problem}\nEdit it again, or approve or reject the plan as it was."
                            );
                        }
                    }
                }
            },
            _ => {
                let _ = writeln!(out, "Answer a (approve), r (reject) or e (edit).");
            }
        }
    }
}

/// One line per step: `1. id: description [tool: t] (after a, b)`.
pub fn plan_lines(steps: &[StepSpec]) -> String {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| format!("  {}. {}", i + 1, step_line(s)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `id: description [tool: t {args}] (after a, b)`: what a person approving a plan must
/// see, the arguments a direct step will run with included (compact JSON, at most
/// [`MAX_ARGS_CHARS`] characters shown).
pub(crate) fn step_line(s: &StepSpec) -> String {
    let mut line = format!("{}: {}", s.id, s.description);
    match (&s.tool, &s.args) {
        (Some(tool), Some(args)) => line.push_str(&format!(" [tool: {tool} {}]", shown_args(args))),
        (Some(tool), None) => line.push_str(&format!(" [tool: {tool}]")),
        (None, Some(args)) => line.push_str(&format!(" [args: {}]", shown_args(args))),
        (None, None) => {}
    }
    if !s.depends_on.is_empty() {
        line.push_str(&format!(" (after {})", s.depends_on.join(", ")));
    }
    line
}

/// Characters of a step's `args` shown in a plan line.
const MAX_ARGS_CHARS: usize = 200;

fn shown_args(args: &serde_json::Value) -> String {
    let text = args.to_string();
    match text.char_indices().nth(MAX_ARGS_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// A revision against the plan before it: `  ` kept, `- ` removed, `+ ` added (a changed
/// step is removed and added).
pub fn diff(previous: &[StepSpec], next: &[StepSpec]) -> String {
    let mut lines = Vec::new();
    for old in previous {
        match next.iter().find(|n| n.id == old.id) {
            Some(new) if new == old => lines.push(format!("    {}", step_line(old))),
            Some(new) => {
                lines.push(format!("  - {}", step_line(old)));
                lines.push(format!("  + {}", step_line(new)));
            }
            None => lines.push(format!("  - {}", step_line(old))),
        }
    }
    for new in next {
        if !previous.iter().any(|o| o.id == new.id) {
            lines.push(format!("  + {}", step_line(new)));
        }
    }
    lines.join("\n")
}

/// The steps as an editable YAML document. Strings are written JSON-quoted, which YAML reads
/// as double-quoted scalars, so any text survives the round trip.
pub fn to_yaml(steps: &[StepSpec]) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut out = String::from(
        "# Edit the plan, save and quit. Each step: id, description; optional tool,\n\
         # depends_on (ids) and expected. Steps that already ran are not listed.\n\
         steps:\n",
    );
    for s in steps {
        out.push_str(&format!("  - id: {}\n", q(&s.id)));
        out.push_str(&format!("    description: {}\n", q(&s.description)));
        if let Some(tool) = &s.tool {
            out.push_str(&format!("    tool: {}\n", q(tool)));
        }
        if !s.depends_on.is_empty() {
            let deps: Vec<String> = s.depends_on.iter().map(|d| q(d)).collect();
            out.push_str(&format!("    depends_on: [{}]\n", deps.join(", ")));
        }
        if let Some(expected) = &s.expected {
            out.push_str(&format!("    expected: {}\n", q(expected)));
        }
    }
    out
}

/// Reads an edited plan back (`steps:` list, or a bare list of steps).
pub fn from_yaml(text: &str) -> Result<Vec<StepSpec>, String> {
    let source = Source::new("plan.yaml".into(), "plan.yaml".into(), text.to_string());
    let mut diags = Vec::new();
    let doc = crate::yaml::parse(&source, &mut diags);
    if let Some(d) = diags.first() {
        let (line, col) = source.line_col(d.span.offset);
        return Err(format!("line {line}, column {col}: {}", d.message));
    }
    match &doc.value {
        serde_json::Value::Array(_) => parse_steps(Some(&doc.value)),
        other => parse_steps(other.get("steps")),
    }
}

/// Opens `$VISUAL`, else `$EDITOR`, else `vi`, on the text in a temporary file. The
/// variable may hold arguments (`code --wait`); it is split on whitespace, never given to a
/// shell.
fn run_editor(text: &str) -> Result<String, String> {
    let editor = std::env::var("VISUAL")
        .ok()
        .or_else(|| std::env::var("EDITOR").ok())
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    let mut words = editor.split_whitespace();
    let program = words.next().unwrap_or("vi");
    let path = private_temp_file(text)?;
    let status = std::process::Command::new(program)
        .args(words)
        .arg(&path)
        .status();
    let result = match status {
        Ok(s) if s.success() => read(&path),
        Ok(s) => Err(format!("the editor `{editor}` exited with {s}")),
        Err(e) => Err(format!("cannot start the editor `{editor}`: {e}")),
    };
    let _ = std::fs::remove_file(&path);
    result
}

/// Writes `text` to a new file in the temporary directory that only this user can read:
/// an unpredictable name, created exclusively (`O_EXCL`, never through a link someone else
/// planted), mode 0600. The plan may hold what the run is about; other users of the
/// machine must neither read it nor swap it.
fn private_temp_file(text: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    let mut last_error = None;
    for _ in 0..16 {
        let path = dir.join(format!("pe-plan-{}.yaml", random_hex()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path);
        match file {
            Ok(mut file) => {
                file.write_all(text.as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
        }
    }
    Err(format!(
        "cannot create a temporary file in {}: {}",
        dir.display(),
        last_error.map_or_else(String::new, |e| e.to_string())
    ))
}

/// 128 random bits as hex, from the kernel (a clock or pid can be guessed).
fn random_hex() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let from_kernel =
        std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_kernel.is_err() {
        // Exclusive creation still protects the file; the name is only less surprising.
        for b in &mut bytes {
            *b = fastrand::u8(..);
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, description: &str, deps: &[&str]) -> StepSpec {
        StepSpec {
            args: None,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            description: description.into(),
            expected: None,
            id: id.into(),
            tool: None,
        }
    }

    #[test]
    fn a_direct_step_shows_the_arguments_it_will_run_with() {
        let mut s = step("deploy", "Deploy", &["ci"]);
        s.tool = Some("deploy".into());
        s.args = Some(serde_json::json!({"env": "production", "version": "{{ inputs.v }}"}));
        assert_eq!(
            step_line(&s),
            r#"deploy: Deploy [tool: deploy {"env":"production","version":"{{ inputs.v }}"}] (after ci)"#
        );
        s.args = Some(serde_json::json!({"text": "x".repeat(500)}));
        let line = step_line(&s);
        assert!(line.ends_with("xxx…] (after ci)"), "{line}");
        assert_eq!(
            line.chars().count(),
            "deploy: Deploy [tool: deploy ".len() + 201 + "] (after ci)".len()
        );
    }

    #[test]
    fn the_editor_file_is_private_new_and_unpredictable() {
        use std::os::unix::fs::PermissionsExt;
        let a = private_temp_file("steps: []\n").unwrap();
        let b = private_temp_file("steps: []\n").unwrap();
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            regex_lite::Regex::new(r"^pe-plan-[0-9a-f]{32}\.yaml$")
                .unwrap()
                .is_match(&name),
            "{name}"
        );
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "steps: []\n");
        let _ = std::fs::remove_file(a);
        let _ = std::fs::remove_file(b);
    }

    fn proposal() -> PlanProposal {
        let steps = vec![
            step("a", "first", &[]),
            step("b", "second \"quoted\"", &["a"]),
        ];
        PlanProposal {
            step_args: crate::spec::StepArgs::None,
            editable: steps.clone(),
            kept: vec![],
            max_steps: 3,
            plan: steps,
            previous: None,
            run_id: "r1".into(),
            tools: vec![],
        }
    }

    fn converse(
        answers: &str,
        edit: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> (Review, String) {
        let mut out = Vec::new();
        let review = ask(&proposal(), &mut answers.as_bytes(), &mut out, edit);
        (review, String::from_utf8(out).unwrap())
    }

    #[test]
    fn the_plan_round_trips_through_yaml() {
        let p = proposal();
        assert_eq!(from_yaml(&to_yaml(&p.editable)), Ok(p.editable));
    }

    #[test]
    fn approve_reject_and_end_of_input() {
        let mut no_edit = |_: &str| Err("unused".to_string());
        assert_eq!(converse("a\n", &mut no_edit).0, Review::Approve);
        let (review, out) = converse("x\nr\n", &mut no_edit);
        assert_eq!(
            review,
            Review::Reject(Some("the plan was rejected at the terminal".into()))
        );
        assert_eq!(
            out,
            "The plan needs approval:\n  1. a: first\n  2. b: second \"quoted\" (after a)\n\
             Approve, reject or edit the plan? [a/r/e] Answer a (approve), r (reject) or e (edit).\n\
             Approve, reject or edit the plan? [a/r/e] "
        );
        assert_eq!(converse("", &mut no_edit).0, Review::Defer);
    }

    #[test]
    fn an_invalid_edit_is_shown_and_asked_again_then_a_valid_one_is_approved() {
        let mut edits = vec![
            "steps:\n  - {id: a, description: x, depends_on: [zz]}\n".to_string(),
            "steps:\n  - {id: c, description: only step}\n".to_string(),
        ]
        .into_iter();
        let mut edit = |_: &str| Ok(edits.next().unwrap());
        let (review, out) = converse("e\ne\na\n", &mut edit);
        assert_eq!(review, Review::Edit(vec![step("c", "only step", &[])]));
        // (Prompts end without a newline: at a terminal the user's answer ends the line.)
        assert_eq!(
            out,
            "The plan needs approval:\n  1. a: first\n  2. b: second \"quoted\" (after a)\n\
             Approve, reject or edit the plan? [a/r/e] The edited plan is not valid: step `a` depends on unknown step `zz` (expected one of: `a`)\n\
             Edit it again, or approve or reject the plan as it was.\n\
             Approve, reject or edit the plan? [a/r/e] The edited plan:\n  1. c: only step\n\
             Approve, reject or edit the plan? [a/r/e] "
        );
    }

    #[test]
    fn a_revision_is_shown_as_a_diff() {
        let old = [
            step("ci", "run CI", &[]),
            step("smoke", "smoke test", &["ci"]),
            step("deploy", "deploy", &["smoke"]),
        ];
        let new = [
            step("ci", "run CI", &[]),
            step("smoke", "smoke test", &["ci"]),
            step("fix", "fix it", &[]),
            step("deploy", "deploy", &["fix"]),
        ];
        assert_eq!(
            diff(&old, &new),
            "    ci: run CI\n    smoke: smoke test (after ci)\n  - deploy: deploy (after smoke)\n  + deploy: deploy (after fix)\n  + fix: fix it"
        );
    }
}
