//! The record of a run: its [`event`]s, the SQLite [`journal`] they are appended to, and
//! the [`state`] that is a fold over them. Everything that shows a run (progress, the
//! `--json` result, `pe show`, `pe runs`, resume) reads events, never a second copy of state.

pub mod cassette;
pub(crate) mod cassette_mcp;
pub mod event;
pub mod id;
pub mod inputs;
pub mod journal;
pub mod lease;
pub mod redact;
pub mod state;
pub mod writer;

pub use event::{Event, EventKind};
pub use state::RunState;
