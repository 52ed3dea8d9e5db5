//! The one validator shared by `pe check`, `pe exec` and `pe test`: YAML with positions,
//! then the JSON Schema, then semantic analysis. Every problem is collected before anything
//! is reported.

use std::path::Path;

use serde_json::Value;

use crate::analyze;
use crate::diagnostic::{Bounded, Diagnostic, DiagnosticSink, Kind};
use crate::error::Error;
use crate::schema;
use crate::source::Source;
use crate::spec::WorkflowFile;
use crate::workflow::Workflow;
use crate::yaml;

/// Diagnostics kept per file, in file order; the rest are only counted. A hostile file can
/// hold a hundred thousand problems (one per duplicate key): nobody reads past the first
/// hundred, and rendering them all would take minutes.
pub const MAX_DIAGNOSTICS: usize = 100;

/// The outcome of checking one source: the workflow when valid, and its diagnostics.
#[derive(Debug)]
pub struct Checked {
    /// The first [`MAX_DIAGNOSTICS`] problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Problems found beyond those.
    pub omitted: usize,
    pub workflow: Option<Workflow>,
}

/// Checks a source that is already in memory (and the workflows its `workflow` tools name).
pub fn check_source(source: &Source) -> Checked {
    analyze::checking(&source.path, || check_one(source))
}

fn check_one(source: &Source) -> Checked {
    let mut diags = Bounded::new(MAX_DIAGNOSTICS);
    let doc = yaml::parse(source, &mut diags);
    // Nothing after a syntax error or a passed loader limit is trustworthy (or cheap).
    let syntax_failed = diags.has(Kind::YamlSyntax) || diags.has(Kind::YamlLimit);
    let mut workflow = None;
    if !syntax_failed {
        let failed = schema::validate(&doc, &mut diags);
        // Analyze what the schema accepted, so a typo in one place does not hide a broken
        // reference in another: drop failing nodes that have defaults, then try the types.
        if let Some(file) = salvage(&doc.value, &failed) {
            let clean = diags.pushed() == 0;
            let analyzed = analyze::analyze(file, &doc, source, &mut diags);
            if clean {
                workflow = analyzed;
            }
        }
    }
    let (diagnostics, omitted) = diags.finish();
    if !diagnostics.is_empty() {
        workflow = None;
    }
    Checked {
        diagnostics,
        omitted,
        workflow,
    }
}

/// Reads and checks a workflow file: the entry point of `exec` and `test`.
pub fn load_workflow(path: &Path) -> Result<Workflow, Error> {
    let source = read_source(path)?;
    let checked = check_source(&source);
    match checked.workflow {
        Some(w) => Ok(w),
        None => Err(Error::InvalidWorkflow {
            diagnostics: checked.diagnostics,
            file: Box::new(source),
        }),
    }
}

/// Reads a file named on the command line, with a usage error naming it when that fails.
/// `-` is standard input (shown as `<stdin>`; relative paths in it resolve against the
/// current directory). Standard input can be read once per process: a second `-` is an error
/// rather than an empty file.
pub fn read_source(path: &Path) -> Result<Source, Error> {
    if path.as_os_str() == "-" {
        return read_stdin();
    }
    Source::read(path).map_err(|e| Error::Read {
        path: path.display().to_string(),
        reason: match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::InvalidData => "the file is not UTF-8 text".to_string(),
            _ => e.to_string(),
        },
    })
}

/// Types as much of a document as possible: nodes the schema rejected are dropped, and while
/// deserializing still fails, the entry around the failure is dropped too (a tool missing its
/// description disappears; the rest of the file is still analyzed). Required top-level keys
/// get placeholders since the schema already reported them.
///
/// The copy is made without the rejected nodes (a 1 MB list under an unknown key is never
/// copied) and each round deserializes from a reference, so no round copies the document.
fn salvage(value: &Value, failed: &[String]) -> Option<WorkflowFile> {
    let failed: std::collections::HashSet<&str> = failed.iter().map(String::as_str).collect();
    let mut pruned = pruned_copy(value, "", &failed);
    if let Value::Object(root) = &mut pruned {
        root.entry("version").or_insert(Value::from(1));
        root.entry("name").or_insert(Value::from("unnamed"));
        root.entry("task").or_insert(Value::from(""));
    }
    // Each round removes at least one node, so this ends; the bound is only a backstop.
    for _ in 0..64 {
        let attempt = serde_path_to_error::deserialize::<_, WorkflowFile>(&pruned);
        match attempt {
            Ok(file) => return Some(file),
            Err(e) => {
                let mut pointer = String::new();
                for seg in e.path().iter() {
                    if let serde_path_to_error::Segment::Seq { index } = seg {
                        pointer.push_str(&format!("/{index}"));
                    } else if let serde_path_to_error::Segment::Map { key }
                    | serde_path_to_error::Segment::Enum { variant: key } = seg
                    {
                        pointer.push('/');
                        pointer.push_str(&crate::yaml::escape_pointer(key));
                    }
                }
                // "missing field" points at the mapping that lacks it: drop that mapping.
                if e.inner().to_string().starts_with("missing field") && !pointer.is_empty() {
                    remove_pointer(&mut pruned, &pointer);
                } else if !remove_pointer(&mut pruned, &pointer) {
                    return None;
                }
            }
        }
    }
    None
}

/// A copy of `value` (found at `pointer`) without the nodes at the `failed` pointers, as
/// [`remove_pointer`] would leave it: entries of mappings go; an element of a list takes its
/// whole list with it (removing one would shift its siblings' pointers).
fn pruned_copy(value: &Value, pointer: &str, failed: &std::collections::HashSet<&str>) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter_map(|(key, child)| {
                    let at = format!("{pointer}/{}", crate::yaml::escape_pointer(key));
                    if failed.contains(at.as_str()) || is_failed_list(child, &at, failed) {
                        return None;
                    }
                    Some((key.clone(), pruned_copy(child, &at, failed)))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, child)| pruned_copy(child, &format!("{pointer}/{i}"), failed))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether `value` (at `pointer`) is a list that one of its elements — or of the elements of
/// lists nested in it — failed.
fn is_failed_list(value: &Value, pointer: &str, failed: &std::collections::HashSet<&str>) -> bool {
    let Value::Array(items) = value else {
        return false;
    };
    items.iter().enumerate().any(|(i, item)| {
        let at = format!("{pointer}/{i}");
        failed.contains(at.as_str()) || is_failed_list(item, &at, failed)
    })
}

/// Removes the node at a JSON pointer when its parent is a mapping. Array elements are left in
/// place (removing one would shift its siblings' pointers).
/// Returns whether something was removed.
fn remove_pointer(value: &mut Value, pointer: &str) -> bool {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return false;
    };
    let key = last.replace("~1", "/").replace("~0", "~");
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => map.shift_remove(&key).is_some(),
        Some(Value::Array(items)) if parent.is_empty() || !items.is_empty() => {
            // An element of a list cannot go without shifting its siblings; drop the list.
            remove_pointer(value, parent)
        }
        _ => false,
    }
}

/// Standard input as a source named `<stdin>`.
fn read_stdin() -> Result<Source, Error> {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, Ordering};
    static TAKEN: AtomicBool = AtomicBool::new(false);
    let failed = |reason: String| Error::Read {
        path: "<stdin>".into(),
        reason,
    };
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(failed(
            "standard input was already read for another `-` argument".into(),
        ));
    }
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut bytes)
        .map_err(|e| failed(e.to_string()))?;
    let text =
        String::from_utf8(bytes).map_err(|_| failed("the input is not UTF-8 text".into()))?;
    Ok(Source::new("<stdin>".into(), "-".into(), text))
}
