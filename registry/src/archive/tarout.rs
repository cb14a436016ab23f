//! A tar writer for archives: directories, small files, and blobs streamed from the store
//! with their digest checked on the way out.

use std::collections::HashSet;
use std::io::{self, Read, Write};

use crate::archive::HashingReader;
use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::store::Store;

pub(crate) struct TarOut<W: Write> {
    tar: tar::Builder<W>,
    /// What this is written to, for error messages.
    what: String,
    written: HashSet<String>,
}

impl<W: Write> TarOut<W> {
    pub(crate) fn new(out: W, what: impl Into<String>) -> Self {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Deterministic);
        TarOut {
            tar,
            what: what.into(),
            written: HashSet::new(),
        }
    }

    fn err(&self, e: io::Error) -> Error {
        Error::io(&self.what, e)
    }

    fn header(size: u64, kind: tar::EntryType, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    pub(crate) fn has(&self, path: &str) -> bool {
        self.written.contains(path)
    }

    pub(crate) fn dir(&mut self, path: &str) -> Result<()> {
        if !self.written.insert(path.to_string()) {
            return Ok(());
        }
        let mut h = Self::header(0, tar::EntryType::Directory, 0o755);
        self.tar
            .append_data(&mut h, path, io::empty())
            .map_err(|e| self.err(e))
    }

    pub(crate) fn file(&mut self, path: &str, data: &[u8]) -> Result<()> {
        self.written.insert(path.to_string());
        let mut h = Self::header(data.len() as u64, tar::EntryType::Regular, 0o644);
        self.tar
            .append_data(&mut h, path, data)
            .map_err(|e| self.err(e))
    }

    /// Streams exactly `size` bytes of `reader` as `path`; returns their digest. A short
    /// reader is an error (the header already promised `size` bytes).
    pub(crate) fn stream(&mut self, path: &str, size: u64, reader: impl Read) -> Result<Digest> {
        self.written.insert(path.to_string());
        let mut h = Self::header(size, tar::EntryType::Regular, 0o644);
        let mut hr = HashingReader::new(reader.take(size));
        self.tar
            .append_data(&mut h, path, &mut hr)
            .map_err(|e| self.err(e))?;
        let (digest, n) = hr.finish();
        if n != size {
            return Err(Error::invalid(
                format!("{path} in {}", self.what),
                format!("source ended after {n} of {size} bytes"),
            ));
        }
        Ok(digest)
    }

    /// Writes a store blob as `blobs/<alg>/<hex>`, once, verifying its digest and size.
    pub(crate) fn blob(&mut self, store: &Store, desc: &Descriptor) -> Result<()> {
        let path = blob_path(&desc.digest);
        if self.has(&path) {
            return Ok(());
        }
        let size = store.blob_size(&desc.digest)?;
        if size != desc.size {
            return Err(Error::SizeMismatch {
                digest: desc.digest.clone(),
                expected: desc.size,
                actual: size,
            });
        }
        let file = store.open_blob(&desc.digest)?;
        let actual = self.stream(&path, size, file)?;
        if actual != desc.digest {
            return Err(Error::DigestMismatch {
                what: format!("stored blob {}", store.blob_path(&desc.digest).display()),
                expected: desc.digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<W> {
        let what = self.what.clone();
        self.tar.into_inner().at(what)
    }
}

/// `blobs/sha256/<hex>`, the OCI layout path of a blob.
pub(crate) fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().as_str(), d.hex())
}
