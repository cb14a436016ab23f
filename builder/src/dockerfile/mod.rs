//! The Dockerfile frontend: text in, typed instructions out. It never touches the disk.
//!
//! - [`parse`] reads directives, comments, continuations and heredocs and checks every
//!   instruction's arguments and flags (`Dockerfile:12: unknown instruction: RUNN`).
//! - [`Lexer`] does Docker's word expansion (`$VAR`, `${VAR:-x}`, quotes, escapes).
//! - [`InstructionKind::expand`] applies Docker's rules for which instruction parts are expanded.

mod convert;
mod directives;
mod duration;
mod error;
mod expand;
mod expand_instruction;
mod flags;
mod heredoc;
mod instruction;
mod mount;
mod parser;
mod words;

#[cfg(test)]
mod golden_tests;

pub use directives::Directives;
pub use error::{ExpandError, ExpandErrorKind, ParseError, ParseErrorKind};
pub use expand::{Env, EnvMap, Expansion, Lexer, NoEnv};
pub use instruction::{
    AddInstr, ArgDef, Command, CopyInstr, Dockerfile, FromInstr, Healthcheck, Heredoc, Instruction,
    InstructionKind, KeyValue, NetworkMode, OnbuildInstr, RunInstr, SecurityMode, Span,
};
pub use mount::{CacheSharing, Mount, MountType};
pub use parser::parse;
