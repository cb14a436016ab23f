//! The build cache: step keys and the records that let a rebuild skip steps.
//!
//! The executor derives a [`CacheKey`] for every step from its parent's key and what the step
//! depends on ([`CacheKey::root`] for a stage's first key, [`CacheKey::builder`] for each
//! step). A [`CacheStore`] maps keys to [`CacheRecord`]s: the layer the step produced (if any)
//! and its history entry. A hit whose layer blob has left the store is a miss.
//!
//! ```text
//! <store root>/cache/records/<key hex>   one record per key; file mtime = last used
//! <store root>/cache/tmp/                 records being written (renamed into records/)
//! <store root>/cache/lock                 flock: shared by builds (lease), exclusive by prune
//! ```
//!
//! Records are written to `tmp/` and renamed into place, so readers see a whole record or none.
//! A record starts with the sha256 of its body; a torn, truncated or edited record fails that
//! check, is removed and counts as a miss. [`CacheStore::prune`] drops records by age and size
//! (least recently used first); [`CacheStore::roots`] lists the blobs the records keep alive
//! for [`registry::store::Store::gc`].

mod key;
mod lock;
mod prune;
mod record;
mod store;
pub mod units;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use key::{CacheKey, CacheKeyBuilder, CACHE_FORMAT_VERSION};
pub use lock::CacheLease;
pub use prune::{PruneOptions, PruneReport};
pub use record::CacheRecord;
pub use store::CacheStore;

pub use crate::exec::state::LayerRef;

/// Errors of the cache module. Corrupt records are not errors (they are misses); these are the
/// failures a caller must hear about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cache record for {key}: layer blob {digest} is not in the store")]
    MissingLayer {
        key: CacheKey,
        digest: registry::Digest,
    },

    #[error(transparent)]
    Store(#[from] registry::Error),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
