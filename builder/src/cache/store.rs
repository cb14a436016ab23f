//! [`CacheStore`]: records on disk under `<store root>/cache/`.

use std::collections::BTreeSet;
use std::fs::{self, File, FileTimes};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use registry::store::Store;
use registry::Digest;

use super::key::CacheKey;
use super::lock::{self, CacheLease};
use super::record::{self, CacheRecord};
use super::{Error, Result};

/// Temp files older than this are leftovers of a killed writer and are removed on open.
const TMP_STALE_AFTER: Duration = Duration::from_secs(60 * 60);

/// The build cache of one store. Cheap to clone; safe to share between threads and processes.
#[derive(Clone, Debug)]
pub struct CacheStore {
    store: Store,
    dir: PathBuf,
}

impl CacheStore {
    /// Opens (creating if needed) the cache of the store at `store_root`.
    pub fn open(store_root: impl Into<PathBuf>) -> Result<CacheStore> {
        CacheStore::for_store(Store::open(store_root)?)
    }

    /// The cache of an already opened store.
    pub fn for_store(store: Store) -> Result<CacheStore> {
        let dir = store.root().join("cache");
        let cache = CacheStore { store, dir };
        for d in [cache.records_dir(), cache.tmp_dir()] {
            fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
        cache.clean_stale_tmp();
        Ok(cache)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `<store root>/cache`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn records_dir(&self) -> PathBuf {
        self.dir.join("records")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    pub(super) fn lock_path(&self) -> PathBuf {
        self.dir.join("lock")
    }

    /// Where the record for `key` lives (whether or not it exists).
    pub fn record_path(&self, key: &CacheKey) -> PathBuf {
        self.records_dir().join(key.hex())
    }

    /// A shared hold for the length of a build: prune waits until it is dropped. Do not call
    /// [`CacheStore::prune`] from a thread of a process that holds a lease.
    pub fn lease(&self) -> Result<CacheLease> {
        lock::shared(&self.lock_path())
    }

    /// The record for `key`, if there is a usable one: a record whose layer blob is gone from
    /// the store, or that is corrupt, is removed and reported as a miss. A hit is touched
    /// (its `last_used` becomes now).
    pub fn get(&self, key: &CacheKey) -> Option<CacheRecord> {
        let (mut rec, file) = self.read(key)?;
        if let Some(layer) = &rec.layer {
            let digest = &layer.descriptor.digest;
            match self.store.blob_size(digest) {
                Ok(size) if size == layer.descriptor.size => {}
                Ok(size) => {
                    tracing::debug!(%key, %digest, size, "cache record's layer has the wrong size");
                    self.discard(key, file);
                    return None;
                }
                Err(e) => {
                    tracing::debug!(%key, %digest, error = %e, "cache record's layer is missing");
                    self.discard(key, file);
                    return None;
                }
            }
        }
        rec.last_used = self.touch(key).unwrap_or(rec.last_used);
        Some(rec)
    }

    /// Marks the record as used now (its file's mtime). Returns the new time, or `None` if the
    /// record is gone (pruned meanwhile).
    pub fn touch(&self, key: &CacheKey) -> Option<SystemTime> {
        let path = self.record_path(key);
        let now = SystemTime::now();
        let file = File::options().write(true).open(&path).ok()?;
        match file.set_modified(now) {
            Ok(()) => Some(now),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot touch cache record");
                None
            }
        }
    }

    /// Stores `record` under `key`, replacing any record there. The layer blob must already be
    /// in the store. Atomic: readers and concurrent writers see one whole record.
    pub fn put(&self, key: &CacheKey, record: &CacheRecord) -> Result<()> {
        if let Some(layer) = &record.layer {
            if !self.store.has_blob(&layer.descriptor.digest) {
                return Err(Error::MissingLayer {
                    key: key.clone(),
                    digest: layer.descriptor.digest.clone(),
                });
            }
        }
        let bytes = record::encode(key, record);
        let tmp = self.tmp_dir().join(unique_name(key));
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            fs::rename(&tmp, self.record_path(key))?;
            // After the rename: an old mtime on a temp file would look stale to clean-up.
            f.set_times(FileTimes::new().set_modified(record.last_used))
        })();
        result.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(self.record_path(key), e)
        })
    }

    /// Removes the record for `key`; false if there was none.
    pub fn remove(&self, key: &CacheKey) -> Result<bool> {
        let path = self.record_path(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Every valid record (without touching them). Corrupt records are removed on the way.
    pub fn list(&self) -> Result<Vec<(CacheKey, CacheRecord)>> {
        let dir = self.records_dir();
        let entries = fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let name = entry.file_name();
            let key = name
                .to_str()
                .and_then(|n| format!("sha256:{n}").parse::<Digest>().ok())
                .map(CacheKey::from_digest);
            let Some(key) = key else {
                tracing::debug!(path = %entry.path().display(), "removing stray cache file");
                let _ = fs::remove_file(entry.path());
                continue;
            };
            if let Some((rec, _)) = self.read(&key) {
                out.push((key, rec));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The blobs the records keep alive (their layers), for `Store::gc(extra_roots)`.
    pub fn roots(&self) -> Result<Vec<Digest>> {
        let set: BTreeSet<Digest> = self
            .list()?
            .into_iter()
            .filter_map(|(_, r)| r.layer.map(|l| l.descriptor.digest))
            .collect();
        Ok(set.into_iter().collect())
    }

    /// Reads and checks one record; a corrupt one is removed. Does not look at the store.
    fn read(&self, key: &CacheKey) -> Option<(CacheRecord, FileId)> {
        let path = self.record_path(key);
        let (bytes, mtime, file) = match read_with_mtime(&path) {
            Ok(v) => v,
            Err(e) if e.kind() == ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read cache record");
                return None;
            }
        };
        match record::decode(key, &bytes, mtime) {
            Ok(rec) => Some((rec, file)),
            Err(why) => {
                tracing::warn!(path = %path.display(), ?why, "removing corrupt cache record");
                self.discard(key, file);
                None
            }
        }
    }

    /// Removes a bad record, unless a concurrent put has meanwhile renamed a new one into
    /// place (a different file).
    pub(super) fn discard(&self, key: &CacheKey, file: FileId) {
        let path = self.record_path(key);
        let same = fs::symlink_metadata(&path).is_ok_and(|m| FileId::of(&m) == file);
        if !same {
            return;
        }
        if let Err(e) = self.remove(key) {
            tracing::warn!(error = %e, "cannot remove cache record");
        }
    }

    fn clean_stale_tmp(&self) {
        let Ok(entries) = fs::read_dir(self.tmp_dir()) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > TMP_STALE_AFTER);
            if stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Which file a record was read from (device and inode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FileId(u64, u64);

impl FileId {
    pub(super) fn of(meta: &fs::Metadata) -> FileId {
        FileId(meta.dev(), meta.ino())
    }
}

fn read_with_mtime(path: &Path) -> std::io::Result<(Vec<u8>, SystemTime, FileId)> {
    let mut f = File::open(path)?;
    let meta = f.metadata()?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut bytes)?;
    Ok((bytes, meta.modified()?, FileId::of(&meta)))
}

/// A temp name no other writer (thread or process) uses at the same time.
fn unique_name(key: &CacheKey) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}.{}.{n}", key.hex(), std::process::id())
}
