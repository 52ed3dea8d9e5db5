//! `pe`: interpret declarative plan-and-execute workflows for LLM agents.

pub mod diagnostic;
pub mod duration;
pub mod schema;
pub mod source;
pub mod spec;
pub mod template;
pub mod yaml;
