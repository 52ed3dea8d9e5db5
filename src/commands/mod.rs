//! One module per subcommand: each turns parsed arguments into work and an exit code.

pub mod check;
pub(crate) mod children;
pub mod durable;
pub mod exec;
pub mod help;
pub mod model;
pub mod resume;
pub mod runs;
pub mod schema;
pub mod show;
pub mod test;
pub mod tools;
