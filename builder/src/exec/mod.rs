//! The executor: runs a [`BuildGraph`](crate::plan::BuildGraph)'s stages step by step. It never
//! parses; it expands each instruction with the stage's variables at that point and dispatches on
//! the instruction kind.

pub mod config;
pub mod state;
