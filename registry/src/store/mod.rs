//! The local content-addressed store: an OCI image layout directory.
//!
//! ```text
//! <root>/oci-layout          {"imageLayoutVersion":"1.0.0"}
//! <root>/index.json          tagged manifests (annotation org.opencontainers.image.ref.name)
//! <root>/blobs/sha256/<hex>  content, only ever written by [`BlobWriter::commit`]
//! <root>/ingest/             in-flight writes; never read as content
//! <root>/lock                 flock(2) held for every index.json read-modify-write and for gc
//! ```
//!
//! Blob commits are atomic renames of proven content and take no lock; [`Store::tag`],
//! [`Store::untag`] and [`Store::gc`] serialize on `<root>/lock`, so several kiln processes can
//! share one store.

pub(crate) mod blob;
mod fsck;
mod gc;
pub(crate) mod index;
mod lock;
pub mod testing;
#[cfg(test)]
mod tests;
pub(crate) mod walk;

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

pub use blob::BlobWriter;
pub use fsck::{FsckProblem, FsckReport};
pub use gc::{GcReport, DEFAULT_GC_GRACE};
pub use index::{Resolved, CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION};
pub use lock::StoreLock;

use crate::digest::{Digest, DigestHasher};
use crate::error::{Error, IoContext, Result};

/// In-flight files untouched for this long are leftovers of a crashed writer and are removed on
/// open. A live writer touches its file with every write.
pub const INGEST_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// A handle on a store directory. Cheap to clone; safe to share between threads and processes.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        for dir in [root.join("blobs/sha256"), root.join("ingest")] {
            fs::create_dir_all(&dir).at(&dir)?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            blob::write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let store = Store { root };
        blob::clean_stale(&store, INGEST_STALE_AFTER)?;
        Ok(store)
    }

    /// The default store location: `$KILN_ROOT`, else `/var/lib/kiln` as root, else
    /// `$XDG_DATA_HOME/kiln` (`~/.local/share/kiln`).
    pub fn default_root() -> PathBuf {
        if let Some(r) = std::env::var_os("KILN_ROOT").filter(|r| !r.is_empty()) {
            return PathBuf::from(r);
        }
        if rustix::process::geteuid().is_root() {
            return PathBuf::from("/var/lib/kiln");
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            return PathBuf::from(x).join("kiln");
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
        PathBuf::from(home).join(".local/share/kiln")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Size of a stored blob.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Starts writing a new blob; it appears in the store only when committed and proven.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        BlobWriter::new(self)
    }

    /// Stores `data` and returns its digest.
    pub fn put_blob(&self, data: &[u8]) -> Result<Digest> {
        let digest = Digest::of(data);
        if self.has_blob(&digest) {
            blob::touch(&self.blob_path(&digest));
            return Ok(digest);
        }
        let mut w = self.blob_writer()?;
        std::io::Write::write_all(&mut w, data).at(self.root.join("ingest"))?;
        w.commit(Some((&digest, data.len() as u64)))?;
        Ok(digest)
    }

    /// Opens a blob for streaming. The caller that needs proof should hash what it reads
    /// (see [`Store::read_blob`] for small blobs, verified whole).
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::BlobNotFound(digest.clone()),
            _ => Error::io(path, e),
        })
    }

    /// Reads a whole (small) blob and verifies its digest: a corrupt blob is an error, never
    /// served.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut f = self.open_blob(digest)?;
        let mut data = Vec::new();
        f.read_to_end(&mut data).at(self.blob_path(digest))?;
        let mut h = DigestHasher::new(digest.algorithm());
        h.update(&data);
        let actual = h.finish();
        if &actual != digest {
            return Err(Error::DigestMismatch {
                what: format!("stored blob {}", self.blob_path(digest).display()),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(data)
    }
}
