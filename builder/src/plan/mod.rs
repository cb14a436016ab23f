//! The planner: a parsed Dockerfile becomes a [`BuildGraph`] of stages. It never runs a process
//! and never reads the disk; base images are named here and resolved by the executor.
//!
//! - Stages are split at each `FROM`; `FROM <earlier stage>`, `COPY --from=<stage|index>` and
//!   `RUN --mount=from=<stage>` are edges.
//! - `--target` picks the final stage; stages it does not reach are never built.
//! - `FROM` lines are expanded with the global `ARG`s (those before the first `FROM`), the
//!   build args and the predefined platform args, as Docker does.

mod args;
mod graph;

pub use args::{predefined_args, BuildArgs, PlatformArgs, PROXY_ARGS};
pub use graph::{Base, BuildGraph, FromRef, PlanError, Stage};
