//! `pe schema`: the published JSON Schemas (workflow files, replies files) and the
//! parameters of the builtin tools.

use std::io::Write;

use serde_json::json;

use crate::cli::SchemaArgs;
use crate::error::{Error, exit};
use crate::schema::{REPLIES_SCHEMA, WORKFLOW_SCHEMA};
use crate::workflow::Builtin;

pub fn run(args: &SchemaArgs) -> Result<u8, Error> {
    let mut out = std::io::stdout().lock();
    if args.builtins {
        let doc = builtins_json();
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
    } else if args.replies {
        let _ = out.write_all(REPLIES_SCHEMA.as_bytes());
    } else {
        let _ = out.write_all(WORKFLOW_SCHEMA.as_bytes());
    }
    Ok(exit::COMPLETED)
}

/// `{"calculator": {"description": ..., "parameters": {...}}, ...}` for every builtin.
pub fn builtins_json() -> serde_json::Value {
    let mut doc = serde_json::Map::new();
    for b in Builtin::ALL {
        doc.insert(
            b.name().to_string(),
            json!({"description": b.description(), "parameters": b.parameters()}),
        );
    }
    serde_json::Value::Object(doc)
}
