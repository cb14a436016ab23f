//! Copying a rootfs tree exactly (owners, modes, xattrs, mtimes, hardlinks, devices), with
//! reflinks or `copy_file_range` for file data where the filesystem allows.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, FileType, Mode, OFlags};

use super::error::{Result, SnapshotError};
use super::walk::{file_type, read_sorted};
use crate::fs::meta::{self, EntryMeta, Owner};

/// Copies the tree `src` into the new directory `dst`.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let root = rustix::process::geteuid().is_root();
    let mut c = Copier {
        root,
        links: HashMap::new(),
        dirs: Vec::new(),
    };
    let st = rfs::lstat(src).map_err(|e| SnapshotError::io(src, e))?;
    c.dir(src, dst, &st)?;
    for (path, meta) in c.dirs.iter().rev() {
        let fd = rfs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SnapshotError::io(path, e))?;
        rfs::fchmod(&fd, Mode::from_raw_mode(meta.mode)).map_err(|e| SnapshotError::io(path, e))?;
        meta::set_times_fd(fd.as_fd(), meta.mtime).map_err(|e| SnapshotError::io(path, e))?;
    }
    Ok(())
}

struct Copier {
    root: bool,
    links: HashMap<(u64, u64), PathBuf>,
    dirs: Vec<(PathBuf, EntryMeta)>,
}

impl Copier {
    fn owner(&self, meta: &EntryMeta) -> Owner {
        self.root.then_some((meta.uid, meta.gid))
    }

    fn dir(&mut self, src: &Path, dst: &Path, st: &rfs::Stat) -> Result<()> {
        let meta = EntryMeta::from_stat(src, st).map_err(|e| SnapshotError::io(src, e))?;
        std::fs::create_dir(dst).map_err(|e| SnapshotError::io(dst, e))?;
        let fd = rfs::open(
            dst,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SnapshotError::io(dst, e))?;
        meta::apply_to_fd(
            fd.as_fd(),
            &EntryMeta {
                mode: 0o700,
                ..meta.clone()
            },
            self.owner(&meta),
            false,
        )
        .map_err(|e| SnapshotError::io(dst, e))?;
        self.dirs.push((dst.to_path_buf(), meta));
        for (name, cst) in read_sorted(src)? {
            self.entry(&src.join(&name), &dst.join(&name), &cst)?;
        }
        Ok(())
    }

    fn entry(&mut self, src: &Path, dst: &Path, st: &rfs::Stat) -> Result<()> {
        let ft = file_type(st);
        if ft == FileType::Directory {
            return self.dir(src, dst, st);
        }
        if ft == FileType::Socket {
            return Ok(());
        }
        if st.st_nlink > 1 && ft != FileType::Directory {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                return std::fs::hard_link(first, dst).map_err(|e| SnapshotError::io(dst, e));
            }
            self.links.insert(key, dst.to_path_buf());
        }
        let meta = EntryMeta::from_stat(src, st).map_err(|e| SnapshotError::io(src, e))?;
        let owner = self.owner(&meta);
        let io_err = |e: io::Error| SnapshotError::io(dst, e);
        if ft == FileType::RegularFile {
            let out = copy_file(src, dst).map_err(io_err)?;
            return meta::apply_to_fd(out.as_fd(), &meta, owner, true).map_err(io_err);
        }
        let parent = File::open(dst.parent().unwrap_or(Path::new("/"))).map_err(io_err)?;
        let name = dst.file_name().unwrap_or_default();
        match ft {
            FileType::Symlink => {
                let target = std::fs::read_link(src).map_err(|e| SnapshotError::io(src, e))?;
                rfs::symlinkat(&target, &parent, name).map_err(|e| io_err(e.into()))?;
            }
            _ => rfs::mknodat(
                &parent,
                name,
                ft,
                Mode::from_raw_mode(meta.mode & 0o777),
                st.st_rdev,
            )
            .map_err(|e| io_err(e.into()))?,
        }
        meta::apply_at(parent.as_fd(), name, &meta, owner, ft == FileType::Symlink).map_err(io_err)
    }
}

/// Copies file data: reflink first, then `copy_file_range`, then a plain read/write loop.
fn copy_file(src: &Path, dst: &Path) -> io::Result<File> {
    let mut input = File::open(src)?;
    let fd = rfs::open(
        dst,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let mut out = File::from(fd);
    if rfs::ioctl_ficlone(&out, &input).is_ok() {
        return Ok(out);
    }
    loop {
        match rfs::copy_file_range(&input, None, &out, None, 1 << 30) {
            Ok(0) => return Ok(out),
            Ok(_) => continue,
            Err(
                rustix::io::Errno::XDEV
                | rustix::io::Errno::NOSYS
                | rustix::io::Errno::INVAL
                | rustix::io::Errno::OPNOTSUPP,
            ) => break,
            Err(e) => return Err(e.into()),
        }
    }
    // copy_file_range may have copied part before failing: both offsets moved together.
    io::copy(&mut input, &mut out)?;
    Ok(out)
}
