//! kiln's builder: Dockerfile frontend -> build graph -> executor -> image.
//!
//! Each layer knows only the one below it: [`dockerfile`] parses text and never touches disk;
//! [`plan`] turns a parsed Dockerfile into a graph of stages and steps and never runs a process;
//! [`exec`] runs steps and never parses.

pub mod context;
pub mod dockerfile;
pub mod exec;
pub mod fs;
pub mod layer;
pub mod plan;
pub mod sandbox;
pub mod snapshot;
