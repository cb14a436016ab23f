//! Directory modes and mtimes, applied once a layer is fully unpacked.
//!
//! Writing into a directory changes its mtime, so the mtime a directory should end with can
//! only be set after the last entry went into it: the one its layer entry gives it, the one an
//! implicitly made directory copies from a lower layer, or, for a directory that was there
//! before and that the layer does not list, the one it had (the layer says nothing about it).
//! The mode waits too, so a read-only directory can still be written into meanwhile.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, Mode};

use super::error::{FsError, Result};
use super::meta::{self, Timestamp};
use super::root::Root;

/// A directory by device and inode: paths can name it twice (through symlinks) or name
/// another directory later (after a whiteout).
type DirId = (u64, u64);

#[derive(Debug, Default)]
pub(crate) struct PendingDirs {
    /// In the order they were made; of several for one directory, the last one wins.
    fixes: Vec<Fix>,
    /// Directories that already have a fix or were made by this unpack: writing into them
    /// records nothing more.
    known: HashSet<DirId>,
}

#[derive(Debug)]
struct Fix {
    rel: PathBuf,
    id: DirId,
    /// `None` keeps the mode (a directory that was there before).
    mode: Option<u32>,
    mtime: Timestamp,
}

impl PendingDirs {
    /// `dir` (at `rel`) gets `mode` and `mtime` at the end.
    pub fn set(
        &mut self,
        dir: BorrowedFd<'_>,
        rel: &Path,
        mode: u32,
        mtime: Timestamp,
    ) -> io::Result<()> {
        let id = dir_id(dir)?;
        self.known.insert(id);
        self.fixes.push(Fix {
            rel: rel.to_path_buf(),
            id,
            mode: Some(mode),
            mtime,
        });
        Ok(())
    }

    /// `dir` was made by this unpack and has no metadata to get: it keeps the time it was
    /// last written, as before.
    pub fn made(&mut self, dir: BorrowedFd<'_>) -> io::Result<()> {
        self.known.insert(dir_id(dir)?);
        Ok(())
    }

    /// To be called before an entry is created in or removed from `dir` (at `rel`): a
    /// directory that was there before the unpack gets its current mtime back at the end.
    pub fn before_change(&mut self, dir: BorrowedFd<'_>, rel: &Path) -> io::Result<()> {
        let st = rfs::fstat(dir)?;
        let id = (st.st_dev, st.st_ino);
        if !self.known.insert(id) {
            return Ok(());
        }
        self.fixes.push(Fix {
            rel: rel.to_path_buf(),
            id,
            mode: None,
            mtime: Timestamp::mtime_of(&st),
        });
        Ok(())
    }

    /// Applies the fixes, children before parents (newest first). A directory that is no
    /// longer at its path (a later entry removed or replaced it) is left alone.
    pub fn apply(&self, root: &Root) -> Result<()> {
        let mut done = HashSet::new();
        for fix in self.fixes.iter().rev() {
            let fd = match root.open_dir(&fix.rel, false) {
                Ok(fd) => fd,
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                    continue
                }
                Err(e) => return Err(fix_err(&fix.rel, e)),
            };
            let id = dir_id(fd.as_fd()).map_err(|e| fix_err(&fix.rel, e))?;
            if id != fix.id || !done.insert(id) {
                continue;
            }
            if let Some(mode) = fix.mode {
                rfs::fchmod(&fd, Mode::from_raw_mode(mode))
                    .map_err(|e| fix_err(&fix.rel, e.into()))?;
            }
            meta::set_times_fd(fd.as_fd(), fix.mtime).map_err(|e| fix_err(&fix.rel, e))?;
        }
        Ok(())
    }
}

fn dir_id(dir: BorrowedFd<'_>) -> io::Result<DirId> {
    let st = rfs::fstat(dir)?;
    Ok((st.st_dev, st.st_ino))
}

fn fix_err(rel: &Path, source: io::Error) -> FsError {
    FsError::Entry {
        entry: rel.to_path_buf(),
        source,
    }
}
