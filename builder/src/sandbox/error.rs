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
    Setup {
        command: String,
        message: String,
        stage: SetupStage,
    },

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

/// Where a sandbox setup failed, for docker's exit codes (125, 126, 127).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupStage {
    /// Namespaces, mounts, credentials, working directory.
    Sandbox,
    /// The command is not in `$PATH`, or its path does not exist.
    NotFound,
    /// The command exists but cannot be executed.
    NotExecutable,
}

impl SandboxError {
    /// The exit code `docker run` gives for this failure: 127 for a command not found, 126
    /// for one that cannot be executed, 125 for everything else.
    pub fn docker_exit_code(&self) -> i32 {
        match self {
            SandboxError::Setup {
                stage: SetupStage::NotFound,
                ..
            } => 127,
            SandboxError::Setup {
                stage: SetupStage::NotExecutable,
                ..
            } => 126,
            _ => 125,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: impl Into<std::io::Error>) -> Self {
        SandboxError::Io {
            path: path.into(),
            source: source.into(),
        }
    }
}
