//! `pe check FILE...`: validate workflows and report every problem at once.

use std::io::Write;

use serde_json::json;

use crate::check::{check_source, read_source};
use crate::cli::{CheckArgs, Format};
use crate::error::{Error, exit};
use crate::render::diagnostic::{render, to_json};

/// Checks every file (a missing file does not stop the others) and returns the exit code:
/// 0 all valid, 3 any invalid, 2 any unreadable.
pub fn run(args: &CheckArgs) -> Result<u8, Error> {
    let color = crate::render::color::stderr();
    let format = args.format();
    let mut code = exit::COMPLETED;
    let mut files = Vec::new();
    let mut stderr = std::io::stderr().lock();
    for path in &args.files {
        let source = match read_source(path) {
            Ok(s) => s,
            Err(e) => {
                code = code.max(e.code());
                if format == Format::Json {
                    files.push(json!({"file": path.display().to_string(), "valid": false, "error": e.to_string(), "diagnostics": []}));
                } else {
                    let _ = writeln!(stderr, "error: {e}");
                }
                continue;
            }
        };
        let checked = check_source(&source);
        let n = checked.diagnostics.len() + checked.omitted;
        if n > 0 {
            code = code.max(exit::INVALID_WORKFLOW);
        }
        match format {
            Format::Json => {
                let diags: Vec<_> = checked
                    .diagnostics
                    .iter()
                    .map(|d| to_json(&source, d))
                    .collect();
                let mut file = json!({"file": source.name, "valid": n == 0, "diagnostics": diags});
                if checked.omitted > 0 {
                    file["omitted"] = json!(checked.omitted);
                }
                files.push(file);
            }
            Format::Human => {
                for d in &checked.diagnostics {
                    let _ = write!(stderr, "{}", render(&source, d, color));
                }
                let _ = if n == 0 {
                    writeln!(stderr, "{}: ok", source.name)
                } else if checked.omitted > 0 {
                    writeln!(
                        stderr,
                        "{}: {n} problems (the first {} are shown)",
                        source.name,
                        checked.diagnostics.len()
                    )
                } else {
                    writeln!(
                        stderr,
                        "{}: {n} problem{}",
                        source.name,
                        if n == 1 { "" } else { "s" }
                    )
                };
            }
        }
    }
    if format == Format::Json {
        let doc = json!({"valid": code == exit::COMPLETED, "files": files});
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(
            stdout,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
    }
    Ok(code)
}
