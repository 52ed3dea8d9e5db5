//! `pe completions SHELL` and `pe man`: the command line described for shells and `man`,
//! generated from the same clap definition that parses it, so they cannot drift.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::error::{Error, exit};

/// Prints the completion script for a shell on stdout.
pub fn completions(args: &CompletionsArgs) -> Result<u8, Error> {
    let mut command = Cli::command();
    // Generated into memory: clap_complete panics when its writer fails, and a closed pipe
    // (`pe completions bash | head`) is not worth a panic.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "pe", &mut script);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&script);
    let _ = out.flush();
    Ok(exit::COMPLETED)
}

/// Prints `pe.1`, or writes every page into `--out-dir`.
pub fn man(args: &ManArgs) -> Result<u8, Error> {
    let command = Cli::command();
    match &args.out_dir {
        Some(dir) => {
            let failed = |e: std::io::Error| Error::Write {
                path: dir.display().to_string(),
                reason: e.to_string(),
            };
            std::fs::create_dir_all(dir).map_err(failed)?;
            clap_mangen::generate_to(command, dir).map_err(failed)?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`pe man | head`) is not an error worth reporting.
            let _ = clap_mangen::Man::new(command).render(&mut out);
        }
    }
    Ok(exit::COMPLETED)
}
