//! Errors of the `fs` module: layer unpacking and root-confined path operations.

use std::path::PathBuf;

pub type Result<T, E = FsError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("layer entry {entry:?}: absolute paths are not allowed in a layer")]
    AbsolutePath { entry: PathBuf },

    #[error("layer entry {entry:?}: `..` components are not allowed in a layer")]
    ParentComponent { entry: PathBuf },

    #[error("layer entry {entry:?}: hardlink target {target:?} {reason}")]
    BadHardlink {
        entry: PathBuf,
        target: PathBuf,
        reason: &'static str,
    },

    #[error("layer entry {entry:?}: unsupported tar entry type {kind}")]
    UnsupportedEntry { entry: PathBuf, kind: String },

    #[error("layer entry {entry:?}: invalid pax record {key:?}")]
    BadPax { entry: PathBuf, key: String },

    #[error("layer entry {entry:?}: no mapping for {kind} {id} in this user namespace (widen the /etc/subuid and /etc/subgid ranges)")]
    UnmappedId {
        entry: PathBuf,
        kind: &'static str,
        id: u64,
    },

    #[error("layer entry {entry:?}: {source}")]
    Entry {
        entry: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("reading layer tar: {source}")]
    Tar {
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

impl FsError {
    pub fn io(path: impl Into<PathBuf>, source: impl Into<std::io::Error>) -> Self {
        FsError::Io {
            path: path.into(),
            source: source.into(),
        }
    }
}
