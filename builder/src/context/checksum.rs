//! Content checksums of resolved COPY sources, the heart of COPY's cache key.
//!
//! The checksum covers each entry's destination path, kind, mode bits, xattrs, link target
//! and file contents (not owners or mtimes: COPY resets owners, and an mtime alone does not
//! change what a build produces). File digests are cached per store in a small file, keyed by
//! `(path, dev, inode, size, mtime_ns, ctime_ns)`: an unchanged rebuild reads no file
//! contents, and a file rewritten to the same size with its mtime reset still misses
//! (its ctime moved, and ctime cannot be set from user space).
//!
//! A file changed within the timestamp granularity of the moment it was hashed could keep
//! the same stat; such "racily clean" files (ctime newer than [`RACY_WINDOW_NS`] before the
//! cache was opened) are hashed but not cached, as git does with its index.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use registry::{Digest, DigestHasher};

use super::sources::{EntryKind, FileStat, SourceEntry};
use super::{Error, Result};

const HEADER: &str = "kiln-checksum-cache v1";
const FILE_NAME: &str = "context-checksums";
/// How far back from now a ctime must be for its digest to be cached.
pub const RACY_WINDOW_NS: i128 = 100_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    dev: u64,
    ino: u64,
    size: u64,
    // i64 like FileStat: i128 would align the whole map entry to 16 bytes.
    mtime_ns: i64,
    ctime_ns: i64,
}

impl From<&FileStat> for Key {
    fn from(s: &FileStat) -> Key {
        Key {
            dev: s.dev,
            ino: s.ino,
            size: s.size,
            mtime_ns: s.mtime_ns,
            ctime_ns: s.ctime_ns,
        }
    }
}

/// How much work a checksum did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChecksumStats {
    /// Files whose contents were read.
    pub hashed_files: usize,
    /// Files whose digest came from the cache.
    pub cached_files: usize,
}

/// The persistent stat cache of file digests.
/// A SHA-256 as raw bytes: a cache of 100k files keeps 32 bytes per file, not a hex string.
type Sha = [u8; 32];

fn sha_of(d: &Digest) -> Option<Sha> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(d.hex(), &mut out).ok()?;
    Some(out)
}

fn digest_of(sha: &Sha) -> Digest {
    Digest::from_bytes(registry::digest::Algorithm::Sha256, sha)
}

#[derive(Debug)]
pub struct ChecksumCache {
    path: PathBuf,
    entries: HashMap<Box<str>, (Key, Sha)>,
    dirty: bool,
    opened_ns: i128,
    stats: ChecksumStats,
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

impl ChecksumCache {
    /// Opens (or starts) the cache kept in `dir`. A damaged cache file is discarded: it only
    /// ever costs a re-read.
    pub fn open(dir: &Path) -> Result<ChecksumCache> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(FILE_NAME);
        // Streamed: the file of a 100k-file context is ~20 MB of text.
        let entries = match File::open(&path) {
            Ok(f) => match parse(io::BufReader::new(f), &path) {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::warn!("discarding checksum cache: {e}");
                    HashMap::new()
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(Error::io(&path, e)),
        };
        Ok(ChecksumCache {
            path,
            entries,
            dirty: false,
            opened_ns: now_ns(),
            stats: ChecksumStats::default(),
        })
    }

    /// Work done since the cache was opened.
    pub fn stats(&self) -> ChecksumStats {
        self.stats
    }

    /// The sha256 of a file's contents, from the cache when its stat is unchanged.
    pub fn file_digest(&mut self, path: &Path, stat: &FileStat) -> Result<Digest> {
        let key = Key::from(stat);
        // Keyed by kiln's string form of the host path: names that are not UTF-8 are cached too.
        let name = crate::fs::name::encode(path.as_os_str());
        let cached = self.entries.get(&*name);
        if let Some((k, sha)) = cached {
            if *k == key {
                self.stats.cached_files += 1;
                return Ok(digest_of(sha));
            }
        }
        let digest = hash_file(path, stat.size)?;
        self.stats.hashed_files += 1;
        let racy = i128::from(stat.ctime_ns.max(stat.mtime_ns)) > self.opened_ns - RACY_WINDOW_NS;
        let storable = Some(&*name).filter(|p| !p.contains('\n'));
        match (storable, sha_of(&digest)) {
            (Some(p), Some(sha)) if !racy => {
                self.entries.insert(p.into(), (key, sha));
                self.dirty = true;
            }
            (Some(p), _) => {
                self.entries.remove(p);
            }
            (None, _) => {}
        }
        Ok(digest)
    }

    /// Writes the cache back (atomically) if it changed.
    pub fn save(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let dir = self.path.parent().expect("cache file has a parent");
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
        let mut rows: Vec<_> = self.entries.iter().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut w = io::BufWriter::new(tmp);
        let written = (|| -> io::Result<()> {
            writeln!(w, "{HEADER}")?;
            for (p, (k, sha)) in rows {
                writeln!(
                    w,
                    "{} {} {} {} {} {} {p}",
                    hex::encode(sha),
                    k.dev,
                    k.ino,
                    k.size,
                    k.mtime_ns,
                    k.ctime_ns
                )?;
            }
            w.flush()
        })();
        written.map_err(|e| Error::io(&self.path, e))?;
        let tmp = w
            .into_inner()
            .map_err(|e| Error::io(&self.path, e.into_error()))?;
        tmp.persist(&self.path)
            .map_err(|e| Error::io(&self.path, e.error))?;
        self.dirty = false;
        Ok(())
    }
}

fn parse(text: impl io::BufRead, path: &Path) -> Result<HashMap<Box<str>, (Key, Sha)>> {
    let bad = |line| Error::BadCache {
        path: path.to_path_buf(),
        line,
    };
    let mut lines = text.lines();
    match lines.next() {
        Some(Ok(h)) if h == HEADER => {}
        _ => return Err(bad(1)),
    }
    let mut out = HashMap::new();
    for (i, line) in lines.enumerate() {
        let line = line.map_err(|_| bad(i + 2))?;
        let mut f = line.splitn(7, ' ');
        let mut next = || f.next().ok_or(bad(i + 2));
        let mut sha = [0u8; 32];
        hex::decode_to_slice(next()?, &mut sha).map_err(|_| bad(i + 2))?;
        let unsigned = |s: &str| s.parse::<u64>().map_err(|_| bad(i + 2));
        let signed = |s: &str| s.parse::<i64>().map_err(|_| bad(i + 2));
        let key = Key {
            dev: unsigned(next()?)?,
            ino: unsigned(next()?)?,
            size: unsigned(next()?)?,
            mtime_ns: signed(next()?)?,
            ctime_ns: signed(next()?)?,
        };
        out.insert(next()?.into(), (key, sha));
    }
    Ok(out)
}

fn hash_file(path: &Path, expected: u64) -> Result<Digest> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = DigestHasher::sha256();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    if h.len() != expected {
        return Err(Error::io(
            path,
            io::Error::other(format!(
                "file changed while being checksummed: expected {expected} bytes, read {}",
                h.len()
            )),
        ));
    }
    Ok(h.finish())
}

/// The checksum of a resolved source list (see the module docs for what it covers).
pub fn checksum(entries: &[SourceEntry], cache: &mut ChecksumCache) -> Result<Digest> {
    let mut h = DigestHasher::sha256();
    for e in entries {
        h.update(e.dest.as_bytes());
        h.update(b"\0");
        let tail = match &e.kind {
            EntryKind::Dir => "dir".to_string(),
            EntryKind::File { .. } => {
                format!("file {}", cache.file_digest(&e.host_path, &e.stat)?)
            }
            EntryKind::Symlink { target } => format!("symlink {}", target.display()),
            EntryKind::Hardlink { target } => format!("hardlink {target}"),
            EntryKind::Fifo => "fifo".to_string(),
            EntryKind::CharDevice { major, minor } => format!("char {major}:{minor}"),
            EntryKind::BlockDevice { major, minor } => format!("block {major}:{minor}"),
        };
        h.update(format!("\0{:o}\0{tail}\0", e.meta.mode).as_bytes());
        for (k, v) in &e.meta.xattrs {
            h.update(k.as_bytes());
            h.update(b"=");
            h.update(hex::encode(v).as_bytes());
            h.update(b"\0");
        }
        h.update(b"\n");
    }
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::context::{Context, Ignore, SourceOptions};

    /// Lets the files' ctimes fall out of the racy window so their digests can be cached.
    fn settle() {
        std::thread::sleep(Duration::from_nanos(2 * RACY_WINDOW_NS as u64));
    }

    fn sum(root: &Path, cache_dir: &Path) -> (Digest, ChecksumStats) {
        let ctx = Context::with_ignore(root, Ignore::default()).unwrap();
        let entries = ctx
            .resolve_sources(&[".".to_string()], &SourceOptions::default())
            .unwrap();
        let mut cache = ChecksumCache::open(cache_dir).unwrap();
        let d = checksum(&entries, &mut cache).unwrap();
        cache.save().unwrap();
        (d, cache.stats())
    }

    #[test]
    fn unchanged_rebuild_reads_no_file_contents() {
        let ctx = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        fs::write(ctx.path().join("a"), "one").unwrap();
        fs::create_dir(ctx.path().join("d")).unwrap();
        fs::write(ctx.path().join("d/b"), "two").unwrap();
        settle();
        let (d1, s1) = sum(ctx.path(), cache.path());
        assert_eq!(s1.hashed_files, 2);
        let (d2, s2) = sum(ctx.path(), cache.path());
        assert_eq!(d1, d2);
        assert_eq!(
            s2,
            ChecksumStats {
                hashed_files: 0,
                cached_files: 2
            }
        );
    }

    #[test]
    fn names_that_are_not_utf8_are_cached_and_distinct() {
        use std::os::unix::ffi::OsStrExt;
        let ctx = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9");
        fs::write(ctx.path().join(latin1), "one").unwrap();
        settle();
        let (d1, s1) = sum(ctx.path(), cache.path());
        assert_eq!(s1.hashed_files, 1);
        let (d2, s2) = sum(ctx.path(), cache.path());
        assert_eq!((d1.clone(), s2.cached_files), (d2, 1));
        // Another invalid byte is another name, so another checksum.
        fs::rename(
            ctx.path().join(latin1),
            ctx.path().join(std::ffi::OsStr::from_bytes(b"caf\xe8")),
        )
        .unwrap();
        assert_ne!(sum(ctx.path(), cache.path()).0, d1);
    }

    #[test]
    fn same_size_rewrite_with_mtime_reset_is_still_seen() {
        let ctx = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let file = ctx.path().join("a");
        fs::write(&file, "one").unwrap();
        settle();
        let (d1, _) = sum(ctx.path(), cache.path());
        let before = fs::metadata(&file).unwrap().modified().unwrap();
        fs::write(&file, "two").unwrap();
        // `touch -d`: put the old mtime back; only the ctime tells.
        fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(before)
            .unwrap();
        let (d2, s2) = sum(ctx.path(), cache.path());
        assert_ne!(d1, d2);
        assert_eq!(s2.hashed_files, 1);
    }

    #[test]
    fn mode_and_symlink_target_changes_change_the_checksum() {
        use std::os::unix::fs::PermissionsExt;
        let ctx = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        fs::write(ctx.path().join("a"), "x").unwrap();
        std::os::unix::fs::symlink("a", ctx.path().join("l")).unwrap();
        let (d1, _) = sum(ctx.path(), cache.path());
        fs::set_permissions(ctx.path().join("a"), fs::Permissions::from_mode(0o600)).unwrap();
        let (d2, _) = sum(ctx.path(), cache.path());
        assert_ne!(d1, d2);
        fs::remove_file(ctx.path().join("l")).unwrap();
        std::os::unix::fs::symlink("b", ctx.path().join("l")).unwrap();
        let (d3, _) = sum(ctx.path(), cache.path());
        assert_ne!(d2, d3);
    }

    #[test]
    fn damaged_cache_file_is_discarded_not_fatal() {
        let ctx = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        fs::write(ctx.path().join("a"), "x").unwrap();
        fs::write(cache.path().join(FILE_NAME), "garbage\n1 2 3").unwrap();
        let (_, s) = sum(ctx.path(), cache.path());
        assert_eq!(s.hashed_files, 1);
    }
}
