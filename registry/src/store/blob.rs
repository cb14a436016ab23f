//! Verify-then-rename blob writes: nothing appears under a digest it has not proven.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::digest::{Digest, DigestHasher};
use crate::error::{Error, IoContext, Result};
use crate::store::Store;

/// Writes a blob into `<root>/ingest`, hashing as it goes. [`BlobWriter::commit`] verifies the
/// digest and size, fsyncs, and renames into `blobs/`. Dropping an uncommitted writer deletes
/// the partial file, and a crash leaves it only in `ingest/`, which is never read as content.
pub struct BlobWriter {
    file: io::BufWriter<Writeback>,
    hasher: DigestHasher,
    store: Store,
}

impl BlobWriter {
    pub(crate) fn new(store: &Store) -> Result<Self> {
        let ingest = store.root().join("ingest");
        let tmp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&ingest)
            .at(&ingest)?;
        Ok(BlobWriter {
            file: io::BufWriter::with_capacity(1 << 20, Writeback::new(tmp)),
            hasher: DigestHasher::sha256(),
            store: store.clone(),
        })
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    /// Finishes the blob. With `expected`, a digest or size mismatch is an error and nothing is
    /// stored. Returns the proven digest and size.
    pub fn commit(self, expected: Option<(&Digest, u64)>) -> Result<(Digest, u64)> {
        let size = self.hasher.len();
        let digest = self.hasher.finish();
        if let Some((want, want_size)) = expected {
            if want != &digest {
                return Err(Error::DigestMismatch {
                    what: "blob".to_string(),
                    expected: want.clone(),
                    actual: digest,
                });
            }
            if want_size != size {
                return Err(Error::SizeMismatch {
                    digest,
                    expected: want_size,
                    actual: size,
                });
            }
        }
        let ingest = self.store.root().join("ingest");
        let tmp = self
            .file
            .into_inner()
            .map_err(|e| Error::io(&ingest, e.into_error()))?
            .file;
        let dest = self.store.blob_path(&digest);
        if dest.is_file() {
            // Same content already proven; the temp file is dropped. Touching it tells a
            // concurrent gc (which spares young blobs) that it is wanted again.
            touch(&dest);
            return Ok((digest, size));
        }
        tmp.as_file().sync_all().at(tmp.path())?;
        tmp.persist(&dest)
            .map_err(|e| Error::io(dest.clone(), e.error))?;
        sync_dir(dest.parent().expect("blob path has a parent"))?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)?;
        self.hasher.update(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A blob file that starts the kernel's writeback every [`WRITEBACK_STEP`] bytes, so that the
/// fsync in [`BlobWriter::commit`] finds little left to write: disk writes overlap the download
/// or compression instead of all happening at the end.
struct Writeback {
    file: tempfile::NamedTempFile,
    written: u64,
    kicked: u64,
}

const WRITEBACK_STEP: u64 = 8 << 20;

impl Writeback {
    fn new(file: tempfile::NamedTempFile) -> Self {
        Writeback {
            file,
            written: 0,
            kicked: 0,
        }
    }

    fn kick(&mut self) {
        use std::os::fd::AsRawFd;
        let len = self.written - self.kicked;
        // SAFETY: a plain syscall on our own open descriptor; SYNC_FILE_RANGE_WRITE only
        // starts writeback (no waiting) and failure just leaves the work to fsync.
        unsafe {
            libc::sync_file_range(
                self.file.as_file().as_raw_fd(),
                self.kicked as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
        self.kicked = self.written;
    }
}

impl Write for Writeback {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.kicked >= WRITEBACK_STEP {
            self.kick();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes a small file atomically: temp file in the same dir, fsync, rename, fsync dir.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .at(dir)?;
    tmp.write_all(data).at(tmp.path().to_path_buf())?;
    tmp.as_file().sync_all().at(tmp.path().to_path_buf())?;
    tmp.persist(path)
        .map_err(|e| Error::io(path.to_path_buf(), e.error))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .at(PathBuf::from(dir))
}

/// Sets a blob's mtime to now (best effort: a read-only store still works).
pub(crate) fn touch(path: &Path) {
    if let Ok(f) = File::options().append(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// Removes leftovers of interrupted writes older than `age`: files in `ingest/` and
/// `.tmp-*` files of [`write_atomic`] in the root. Young files may belong to a live writer in
/// another process and are left alone.
pub(crate) fn clean_stale(store: &Store, age: Duration) -> Result<()> {
    let now = SystemTime::now();
    let stale = |e: &fs::DirEntry| {
        e.metadata()
            .and_then(|m| m.modified())
            .map(|t| now.duration_since(t).unwrap_or_default() >= age)
            .unwrap_or(false)
    };
    let ingest = store.root().join("ingest");
    for entry in fs::read_dir(&ingest).at(&ingest)? {
        let entry = entry.at(&ingest)?;
        if stale(&entry) {
            let _ = fs::remove_file(entry.path());
        }
    }
    let root = store.root();
    for entry in fs::read_dir(root).at(root)? {
        let entry = entry.at(root)?;
        if entry.file_name().to_string_lossy().starts_with(".tmp-") && stale(&entry) {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_blob_is_readable_under_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = store.put_blob(b"hello").unwrap();
        assert_eq!(store.read_blob(&d).unwrap(), b"hello");
    }

    #[test]
    fn mismatched_digest_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"evil").unwrap();
        let claimed = Digest::of(b"good");
        assert!(w.commit(Some((&claimed, 4))).is_err());
        assert!(!store.has_blob(&claimed));
        assert!(!store.has_blob(&Digest::of(b"evil")));
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn interrupted_write_leaves_nothing_under_a_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"half a layer").unwrap();
        w.flush().unwrap();
        // A crash: the writer is never committed nor dropped.
        std::mem::forget(w);
        let blobs = dir.path().join("blobs/sha256");
        assert_eq!(fs::read_dir(&blobs).unwrap().count(), 0);
        assert!(!store.has_blob(&Digest::of(b"half a layer")));
        // A fresh open keeps the young leftover (it may be a live writer elsewhere)...
        Store::open(dir.path()).unwrap();
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 1);
        // ...and removes it once stale.
        clean_stale(&store, Duration::ZERO).unwrap();
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn stale_ingest_is_cleaned_on_open() {
        let dir = tempfile::tempdir().unwrap();
        Store::open(dir.path()).unwrap();
        let old = dir.path().join("ingest/blob-crashed");
        fs::write(&old, b"junk").unwrap();
        let f = File::options().append(true).open(&old).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(2 * 3600))
            .unwrap();
        Store::open(dir.path()).unwrap();
        assert!(!old.exists());
    }

    #[test]
    fn corrupt_blob_is_detected_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = store.put_blob(b"hello").unwrap();
        fs::write(store.blob_path(&d), b"hellp").unwrap();
        assert!(matches!(
            store.read_blob(&d),
            Err(Error::DigestMismatch { .. })
        ));
    }
}
