//! `pe tools FILE`: every tool a run of the workflow would offer its models, with its
//! parameters. Unlike `pe check`, this connects to the workflow's MCP servers (starting
//! stdio ones, and stopping them again), so their tools — known only from the servers — are
//! listed as the run names them.

use std::io::Write;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Value, json};

use crate::check::load_workflow;
use crate::cli::ToolsArgs;
use crate::error::{Error, exit};
use crate::run::inputs;
use crate::tool::mcp::{NAME_SEPARATOR, ServerReport};
use crate::tool::{ToolContext, ToolDefinition, Toolbox};
use crate::workflow::{ToolKind, Workflow};

/// Lists the tools; exit 1 when a server could not be reached (the rest is still listed).
pub fn run(args: &ToolsArgs) -> Result<u8, Error> {
    let workflow = Arc::new(load_workflow(&args.file)?);
    let given = inputs::from_command_line(&workflow, &args.inputs, args.inputs_file.as_deref())?;
    // Only the `mcp` entries' templates use inputs here: a required input that is not given
    // matters only if one of them names it (then rendering says so).
    let inputs = inputs::resolve(&workflow, &given).unwrap_or_else(|_| partial(&workflow, &given));
    let ctx = ToolContext {
        inputs,
        workflow_dir: workflow.dir.clone(),
        ..ToolContext::default()
    };
    let toolbox = Toolbox::new(&workflow.tools);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage {
            message: format!("cannot start the async runtime: {e}"),
        })?;
    let (reports, definitions) = runtime.block_on(async {
        let reports = toolbox.connect(&ctx).await;
        let definitions = toolbox.definitions();
        toolbox.close().await;
        (reports, definitions)
    });
    drop(runtime);
    let servers = toolbox.server_names();
    let source = |name: &str| -> (String, Option<String>) {
        if let Some(tool) = workflow.tools.get(name) {
            let detail = match &tool.kind {
                ToolKind::Workflow { path, .. } => Some(path.clone()),
                _ => None,
            };
            return (tool.kind.name().to_string(), detail);
        }
        let entry = servers
            .iter()
            .find(|s| name.starts_with(&format!("{s}{NAME_SEPARATOR}")))
            .cloned();
        ("mcp".to_string(), entry)
    };
    let failed = reports.iter().any(|r| r.tools.is_err());
    let mut out = std::io::stdout().lock();
    if args.json {
        let document = json!({
            "file": args.file.display().to_string(),
            "servers": reports.iter().map(server_json).collect::<Vec<_>>(),
            "tools": definitions.iter().map(|d| {
                let (kind, detail) = source(&d.name);
                let mut v = json!({
                    "name": d.name,
                    "kind": kind,
                    "description": d.description,
                    "parameters": d.parameters,
                });
                if let Some(detail) = detail {
                    let key = if kind == "mcp" { "server" } else { "workflow" };
                    v[key] = Value::String(detail);
                }
                v
            }).collect::<Vec<_>>(),
        });
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&document).unwrap_or_default()
        );
    } else {
        let _ = write!(out, "{}", text(&definitions, &reports, &source));
    }
    if failed {
        let mut err = std::io::stderr().lock();
        for report in &reports {
            if let Err(e) = &report.tools {
                let _ = writeln!(err, "error: {e}");
            }
        }
        return Ok(exit::RUN_FAILED);
    }
    Ok(exit::COMPLETED)
}

/// The inputs that are given or have defaults.
fn partial(workflow: &Workflow, given: &IndexMap<String, Value>) -> Value {
    let mut map = serde_json::Map::new();
    for (name, schema) in &workflow.file.inputs {
        if let Some(v) = given.get(name).or_else(|| schema.get("default")) {
            map.insert(name.clone(), v.clone());
        }
    }
    Value::Object(map)
}

fn server_json(report: &ServerReport) -> Value {
    let mut v = json!({
        "tool": report.entry,
        "transport": report.transport,
        "server": report.server,
        "name": report.identity.name,
        "version": report.identity.version,
        "duration_ms": report.duration_ms,
        "skipped": report.skipped,
    });
    match &report.tools {
        Ok(tools) => v["tools"] = json!(tools.len()),
        Err(e) => v["error"] = Value::String(e.to_string()),
    }
    v
}

/// The human listing: each server's connection, then each tool with its parameters.
fn text(
    definitions: &[ToolDefinition],
    reports: &[ServerReport],
    source: &dyn Fn(&str) -> (String, Option<String>),
) -> String {
    let mut s = String::new();
    for report in reports {
        match &report.tools {
            Ok(tools) => {
                let who = format!("{} {}", report.identity.name, report.identity.version);
                s.push_str(&format!(
                    "server `{}` ({}, {}): {}, {} tool{} in {}ms\n",
                    report.entry,
                    report.transport,
                    report.server,
                    who.trim(),
                    tools.len(),
                    if tools.len() == 1 { "" } else { "s" },
                    report.duration_ms
                ));
                for skipped in &report.skipped {
                    s.push_str(&format!("  left out: {skipped}\n"));
                }
            }
            Err(_) => s.push_str(&format!(
                "server `{}` ({}, {}): not reachable (see the error below)\n",
                report.entry, report.transport, report.server
            )),
        }
    }
    if !reports.is_empty() {
        s.push('\n');
    }
    for d in definitions {
        let (kind, detail) = source(&d.name);
        let origin = match detail {
            Some(detail) => format!("{kind}: {detail}"),
            None => kind,
        };
        s.push_str(&format!("{} ({origin})\n", d.name));
        for line in d.description.trim().lines() {
            s.push_str(&format!("  {line}\n"));
        }
        s.push_str(&parameters_text(&d.parameters));
        s.push('\n');
    }
    s
}

/// `    name: type, required — description` per property.
fn parameters_text(schema: &Value) -> String {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return "  parameters: any\n".to_string();
    };
    if properties.is_empty() {
        return "  parameters: none\n".to_string();
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut s = String::from("  parameters:\n");
    for (name, property) in properties {
        let kind = match property.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" | "),
            _ => "any".to_string(),
        };
        let needed = if required.contains(&name.as_str()) {
            ", required"
        } else {
            ""
        };
        let about = property
            .get("description")
            .and_then(Value::as_str)
            .map(|d| format!(" — {}", d.lines().next().unwrap_or_default()))
            .unwrap_or_default();
        s.push_str(&format!("    {name}: {kind}{needed}{about}\n"));
    }
    s
}
