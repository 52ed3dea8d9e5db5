//! `pe`: interpret declarative plan-and-execute workflows for LLM agents.
//!
//! Data flows one way: a file is loaded with positions ([`source`], [`yaml`]), validated
//! ([`schema`], [`analyze`], via [`check`]) into a [`workflow::Workflow`], which the engine
//! runs, emitting events into the run journal. Rendering happens only in [`render`] and the
//! [`commands`].

pub mod analyze;
pub mod check;
pub mod cli;
pub mod commands;
pub mod diagnostic;
pub mod digest;
pub mod duration;
pub mod engine;
pub mod error;
pub mod model;
pub mod models_cache;
pub mod render;
pub mod run;
pub mod schema;
pub mod source;
pub mod spec;
pub mod template;
pub mod tool;
pub mod workflow;
pub mod yaml;

use std::io::Write;

use cli::{Cli, Command};

/// Runs one command line and returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    render::color::init(cli.color);
    // MCP servers' process groups are guarded by this executable (`pe __mcp-guard`).
    if let Ok(exe) = std::env::current_exe() {
        tool::mcp::set_guard_program(exe);
    }
    let result = match cli.command {
        Command::Check(args) => commands::check::run(&args),
        Command::Completions(args) => commands::help::completions(&args),
        Command::Exec(args) => commands::exec::run(&args),
        Command::Man(args) => commands::help::man(&args),
        Command::Model(args) => commands::model::run(&args),
        Command::Runs(args) => commands::runs::run(&args),
        Command::Resume(args) => commands::resume::run(&args),
        Command::Show(args) => commands::show::run(&args),
        Command::Test(args) => commands::test::run(&args),
        Command::Tools(args) => commands::tools::run(&args),
        Command::Schema(args) => commands::schema::run(&args),
        Command::McpGuard => return tool::mcp::guard_main(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            e.code()
        }
    }
}

/// Prints an error that ended a command to stderr.
pub fn report(e: &error::Error) {
    let mut err = std::io::stderr().lock();
    let color = render::color::stderr();
    match e {
        error::Error::InvalidWorkflow { diagnostics, file }
        | error::Error::ScriptedReplies {
            source: model::scripted::ScriptedLoadError::Located { diagnostics, file },
        } => {
            for d in diagnostics {
                let _ = write!(err, "{}", render::diagnostic::render(file, d, color));
            }
            let _ = writeln!(err, "error: {e}");
        }
        _ => {
            let _ = writeln!(err, "error: {e}");
        }
    }
}
