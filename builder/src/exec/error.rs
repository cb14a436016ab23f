use std::path::PathBuf;

use crate::dockerfile::Span;

/// A build failure. Errors tied to an instruction carry its `file:line`.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("build interrupted by signal {0}")]
    Interrupted(i32),
    #[error(transparent)]
    Parse(#[from] crate::dockerfile::ParseError),
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error("{file}:{line}: {instruction}: {message}")]
    Step {
        file: String,
        line: usize,
        instruction: String,
        message: String,
    },
    #[error("build context {path}: {source}")]
    Context {
        path: PathBuf,
        #[source]
        source: crate::context::Error,
    },
    #[error(transparent)]
    Store(#[from] registry::Error),
    #[error(transparent)]
    Layer(#[from] crate::layer::Error),
    #[error("cannot use layer {layer}: {message}")]
    Snapshot {
        layer: registry::Digest,
        message: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl BuildError {
    /// An error at an instruction: `Dockerfile:3: COPY missing.txt /: <message>`.
    pub fn at(span: &Span, original: &str, message: impl std::fmt::Display) -> BuildError {
        let mut instruction = original.lines().next().unwrap_or("").trim().to_string();
        if instruction.len() > 80 {
            let mut cut = 77;
            while !instruction.is_char_boundary(cut) {
                cut -= 1;
            }
            instruction.truncate(cut);
            instruction.push_str("...");
        }
        BuildError::Step {
            file: span.file.clone(),
            line: span.line_start,
            instruction,
            message: message.to_string(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> BuildError {
        BuildError::Io {
            path: path.into(),
            source,
        }
    }
}
