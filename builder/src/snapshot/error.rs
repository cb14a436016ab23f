//! Errors of the snapshotters.

use std::path::PathBuf;

use registry::Digest;

use crate::fs::FsError;

pub type Result<T, E = SnapshotError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("unknown snapshotter {0:?} (expected overlay or native)")]
    UnknownKind(String),

    #[error("snapshot {chain} not found")]
    NotFound { chain: Digest },

    #[error("mounting overlay at {target}: {source}")]
    Mount {
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("overlay lowerdir list for {chain} is {len} bytes, over the kernel's limit")]
    TooManyLayers { chain: Digest, len: usize },

    #[error("unpacking layer {diff_id}: {source}")]
    Unpack {
        diff_id: Digest,
        #[source]
        source: FsError,
    },

    #[error("diff of {path}: {source}")]
    Sink {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SnapshotError {
    pub fn io(path: impl Into<PathBuf>, source: impl Into<std::io::Error>) -> Self {
        SnapshotError::Io {
            path: path.into(),
            source: source.into(),
        }
    }
}
