//! Everything the user sees: diagnostics, progress, results. The library never prints
//! elsewhere.

pub mod approval;
pub mod color;
pub mod diagnostic;
pub mod progress;
pub mod result;
pub mod text;
