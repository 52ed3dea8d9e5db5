//! `pe model pull NAME` and `pe model list`: the local models cache from the command line.
//! Progress goes to stderr; `list` prints its table on stdout.

use std::io::Write;

use crate::cli::{ModelArgs, ModelCommand};
use crate::error::{Error, exit};
use crate::models_cache::{self, CATALOG};

pub fn run(args: &ModelArgs) -> Result<u8, Error> {
    match &args.command {
        ModelCommand::Pull { name } => pull(name),
        ModelCommand::List { json } => list(*json),
    }
}

fn pull(name: &str) -> Result<u8, Error> {
    let mut say = |line: &str| {
        let _ = writeln!(std::io::stderr().lock(), "pe model pull: {line}");
    };
    let path = models_cache::pull(name, &mut say).map_err(|source| Error::LocalModel { source })?;
    let _ = writeln!(std::io::stdout().lock(), "{}", path.display());
    Ok(exit::COMPLETED)
}

fn list(json: bool) -> Result<u8, Error> {
    let installed = models_cache::installed().map_err(|source| Error::LocalModel { source })?;
    let mut out = std::io::stdout().lock();
    let dir = models_cache::models_dir();
    if json {
        let doc = serde_json::json!({
            "models_dir": dir.display().to_string(),
            "installed": installed.iter().map(|m| serde_json::json!({
                "name": m.name, "size": m.size, "path": m.path.display().to_string(),
            })).collect::<Vec<_>>(),
            "available": CATALOG.iter().map(|e| serde_json::json!({
                "name": e.name, "size": e.size, "description": e.description,
                "installed": installed.iter().any(|m| m.name == e.name),
            })).collect::<Vec<_>>(),
        });
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
        return Ok(exit::COMPLETED);
    }
    let _ = writeln!(out, "models directory: {}", dir.display());
    if installed.is_empty() {
        let _ = writeln!(out, "no models installed");
    }
    for m in &installed {
        let _ = writeln!(
            out,
            "{:<16} {:>8.1} MB  {}",
            m.name,
            m.size as f64 / 1e6,
            m.path.display()
        );
    }
    let missing: Vec<_> = CATALOG
        .iter()
        .filter(|e| !installed.iter().any(|m| m.name == e.name))
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(out, "\navailable with `pe model pull NAME`:");
        for e in missing {
            let _ = writeln!(
                out,
                "{:<16} {:>8.1} MB  {}",
                e.name,
                e.size as f64 / 1e6,
                e.description
            );
        }
    }
    Ok(exit::COMPLETED)
}
