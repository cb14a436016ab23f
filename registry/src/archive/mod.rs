//! Image archives: what `docker save` writes and `docker load` reads, and OCI layouts.
//!
//! - [`save`] writes the combined form Docker 25+ writes: an OCI image layout (`oci-layout`,
//!   `index.json`, `blobs/`) plus the classic `manifest.json` and `repositories`, so `docker
//!   load`, `podman load` and `skopeo ... docker-archive:FILE` all read it. Layers are written
//!   uncompressed, verified against the config's diff_ids, as Docker's own archives are: every
//!   docker-archive reader takes plain tars. (skopeo 1.9 also reads gzip layers there, checked
//!   by hand, but plain tars need no reader to guess, and Docker writes nothing else.)
//! - [`load`] reads a classic or combined docker-archive, or an OCI layout tar, streaming each
//!   file into the store (hashed on the way, never held whole), verifying digests, and tags.
//! - [`export_oci_layout`] and [`write_oci_archive`] write an OCI image layout directory or
//!   tar with the images' blobs as stored (what `kiln build --output type=oci` produces).

mod load;
mod oci;
mod save;
mod tarout;
#[cfg(test)]
mod tests;

use std::io::{self, Read};

pub use load::{load, LoadedImage};
pub use oci::{export_oci_layout, write_oci_archive, OciImage};
pub use save::{save, SaveImage};

use crate::digest::{Digest, DigestHasher};

/// Hashes and counts what passes through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: DigestHasher,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: DigestHasher::sha256(),
        }
    }

    pub(crate) fn finish(self) -> (Digest, u64) {
        let n = self.hasher.len();
        (self.hasher.finish(), n)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
