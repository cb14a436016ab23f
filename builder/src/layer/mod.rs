//! Image layers: writing a tar layer straight into the store in one streaming pass
//! ([`LayerWriter`]) and reading layers and local archives back ([`reader`]).

mod pax;
pub mod pgzip;
pub mod reader;
pub mod writer;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use reader::{open_archive, open_layer, sniff_archive, ArchiveFormat};
pub use writer::{LayerInfo, LayerWriter};

/// Threads compressing one layer (gzip chunks, zstd jobs): one per core, capped so that a
/// big machine does not hold dozens of in-flight chunks per layer. Never 0: for zstd that
/// would select its single-threaded mode, whose output differs (see [`writer::zstd_encoder`]).
pub(crate) fn compression_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 16)
}

/// Metadata of one layer entry, written exactly as given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryMeta {
    /// Permission bits plus setuid/setgid/sticky (`0o7777`); the file type is implied by the
    /// entry kind.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the Unix epoch.
    pub mtime: i64,
    /// Extended attributes (`security.capability`, `user.*`, ...).
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl EntryMeta {
    /// Root-owned entry with these permission bits and mtime.
    pub fn new(mode: u32, mtime: i64) -> Self {
        EntryMeta {
            mode,
            mtime,
            ..EntryMeta::default()
        }
    }
}

/// `SOURCE_DATE_EPOCH`: entry mtimes later than this are clamped to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceDateEpoch(pub i64);

/// Errors of the layer module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid layer entry path {path:?}: {reason}")]
    BadPath { path: String, reason: &'static str },

    #[error(
        "{path}: expected {expected} bytes, read {actual} (file changed while being archived?)"
    )]
    SizeChanged {
        path: String,
        expected: u64,
        actual: u64,
    },

    #[error("writing layer: {0}")]
    Write(#[source] std::io::Error),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Store(#[from] registry::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;

/// A file's metadata as read from disk or a tar entry, as the writer records it.
impl From<&crate::fs::EntryMeta> for EntryMeta {
    fn from(m: &crate::fs::EntryMeta) -> Self {
        EntryMeta {
            mode: m.mode,
            uid: m.uid as u64,
            gid: m.gid as u64,
            mtime: m.mtime.secs,
            xattrs: m.xattrs.iter().cloned().collect(),
        }
    }
}
