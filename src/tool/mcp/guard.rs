//! The guard that makes a stdio server's process group die with pe, even with `kill -9`.
//!
//! pe kills a server's process group when the run ends or the server is dropped; a process
//! killed with SIGKILL runs no such code, and `PR_SET_PDEATHSIG` reaches only the direct
//! child (`npx`), not the `node` it starts. So each server's group is led by a small guard
//! process, `pe __mcp-guard`, whose stdin is a pipe only pe holds open: when pe dies for any
//! reason the kernel closes it, the guard reads end-of-file and kills its own process group
//! — itself and every process of the server. Being the group leader, the guard also keeps
//! the group id from being reused while it lives, so pe's own `killpg` can never hit a
//! stranger.

use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The hidden subcommand that runs the guard.
pub const GUARD_SUBCOMMAND: &str = "__mcp-guard";

static GUARD_PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Tells the MCP client which executable runs [`guard_main`] (the `pe` binary itself). Set
/// once by the binary at start-up; without it (pe used as a library, unit tests) servers
/// still die with their group when pe exits normally and when their stdin closes.
pub fn set_guard_program(program: PathBuf) {
    let _ = GUARD_PROGRAM.set(program);
}

pub(crate) fn guard_program() -> Option<&'static PathBuf> {
    GUARD_PROGRAM.get()
}

/// `pe __mcp-guard`: waits until its stdin reaches end-of-file (pe exited or was killed),
/// then kills its process group. Never returns normally.
pub fn guard_main() -> u8 {
    let mut stdin = std::io::stdin().lock();
    let mut buffer = [0u8; 64];
    loop {
        match stdin.read(&mut buffer) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    // SAFETY: kill(2) with pid 0 signals our own process group; no memory is involved.
    unsafe {
        libc::kill(0, libc::SIGKILL);
    }
    1
}
