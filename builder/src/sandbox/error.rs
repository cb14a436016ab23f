//! Errors of the sandbox.

use std::path::PathBuf;

pub type Result<T, E = SandboxError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("starting sandbox init {program}: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Set up inside the sandbox failed before the command ran (mounts, pivot_root, exec).
    #[error("sandbox setup for {command:?}: {message}")]
    Setup { command: String, message: String },

    #[error("sandbox init for {command:?} ended without reporting a status")]
    NoStatus { command: String },

    #[error("run spec has no command")]
    EmptyCommand,

    #[error("mount target {target:?} must be an absolute path")]
    RelativeMountTarget { target: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SandboxError {
    pub fn io(path: impl Into<PathBuf>, source: impl Into<std::io::Error>) -> Self {
        SandboxError::Io {
            path: path.into(),
            source: source.into(),
        }
    }
}
