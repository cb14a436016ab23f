//! Shared pieces of the two diff walks: sorted directory listings, entry metadata and an
//! emitter that turns on-disk entries into [`DiffSink`] calls (hardlinks by inode, parent
//! directories emitted before the first change below them).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, FileType, Mode, OFlags, Stat};

use super::error::{Result, SnapshotError};
use super::sink::{DeviceKind, DiffSink};
use crate::fs::EntryMeta;

/// Directory entries with their `lstat`, sorted by name bytes.
pub(crate) fn read_sorted(dir: &Path) -> Result<Vec<(OsString, Stat)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| SnapshotError::io(dir, e))? {
        let entry = entry.map_err(|e| SnapshotError::io(dir, e))?;
        let path = entry.path();
        let st = rfs::lstat(&path).map_err(|e| SnapshotError::io(&path, e))?;
        out.push((entry.file_name(), st));
    }
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(out)
}

pub(crate) fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Entry metadata without overlayfs' private xattrs.
pub(crate) fn entry_meta(path: &Path, st: &Stat) -> Result<EntryMeta> {
    let mut meta = EntryMeta::from_stat(path, st).map_err(|e| SnapshotError::io(path, e))?;
    meta.xattrs
        .retain(|(k, _)| !k.starts_with("trusted.overlay.") && !k.starts_with("user.overlay."));
    Ok(meta)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiffStats {
    pub entries: u64,
    pub whiteouts: u64,
    pub bytes: u64,
}

struct PendingDir {
    rel: PathBuf,
    meta: EntryMeta,
    emitted: bool,
}

pub(crate) struct Emitter<'s> {
    sink: &'s mut dyn DiffSink,
    pending: Vec<PendingDir>,
    links: HashMap<(u64, u64), PathBuf>,
    pub stats: DiffStats,
}

fn sink_err(rel: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Sink {
        path: rel.to_path_buf(),
        source,
    }
}

impl<'s> Emitter<'s> {
    pub fn new(sink: &'s mut dyn DiffSink) -> Emitter<'s> {
        Emitter {
            sink,
            pending: Vec::new(),
            links: HashMap::new(),
            stats: DiffStats::default(),
        }
    }

    /// Enters a directory; it is emitted now when `changed`, else only before the first
    /// change below it (as overlayfs copies a directory up for any change inside it).
    pub fn enter_dir(&mut self, rel: &Path, meta: EntryMeta, changed: bool) -> Result<()> {
        self.pending.push(PendingDir {
            rel: rel.to_path_buf(),
            meta,
            emitted: false,
        });
        if changed {
            self.flush()?;
        }
        Ok(())
    }

    pub fn leave_dir(&mut self) {
        self.pending.pop();
    }

    fn flush(&mut self) -> Result<()> {
        for d in self.pending.iter_mut().filter(|d| !d.emitted) {
            d.emitted = true;
            if d.rel.as_os_str().is_empty() {
                continue;
            }
            self.stats.entries += 1;
            self.sink.dir(&d.rel, &d.meta).map_err(sink_err(&d.rel))?;
        }
        Ok(())
    }

    pub fn opaque(&mut self, rel: &Path) -> Result<()> {
        self.flush()?;
        self.sink.opaque(rel).map_err(sink_err(rel))
    }

    pub fn whiteout(&mut self, rel: &Path) -> Result<()> {
        self.flush()?;
        self.stats.whiteouts += 1;
        self.sink.whiteout(rel).map_err(sink_err(rel))
    }

    /// Emits a non-directory entry found at `host` (relative name `rel`).
    pub fn entry(&mut self, host: &Path, rel: &Path, st: &Stat) -> Result<()> {
        let ft = file_type(st);
        if ft == FileType::Socket {
            return Ok(());
        }
        self.flush()?;
        self.stats.entries += 1;
        let meta = entry_meta(host, st)?;
        if ft == FileType::RegularFile && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                return self.sink.hardlink(rel, first, &meta).map_err(sink_err(rel));
            }
            self.links.insert(key, rel.to_path_buf());
        }
        match ft {
            FileType::RegularFile => {
                let fd = rfs::open(
                    host,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| SnapshotError::io(host, e))?;
                let mut file = File::from(fd);
                self.stats.bytes += st.st_size as u64;
                self.sink
                    .file(rel, &meta, st.st_size as u64, &mut file)
                    .map_err(sink_err(rel))
            }
            FileType::Symlink => {
                let target = std::fs::read_link(host).map_err(|e| SnapshotError::io(host, e))?;
                self.sink
                    .symlink(rel, &target, &meta)
                    .map_err(sink_err(rel))
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                let (major, minor) = (rfs::major(st.st_rdev), rfs::minor(st.st_rdev));
                let kind = match ft {
                    FileType::CharacterDevice => DeviceKind::Char { major, minor },
                    FileType::BlockDevice => DeviceKind::Block { major, minor },
                    _ => DeviceKind::Fifo,
                };
                self.sink.device(rel, kind, &meta).map_err(sink_err(rel))
            }
            _ => Ok(()),
        }
    }
}
