//! File metadata as layers carry it (mode, owner, mtime, xattrs): reading it from disk and
//! applying it to a freshly created entry.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, Mode, Timespec, Timestamps, XattrFlags};

/// A point in time as stored in a layer (seconds and nanoseconds since the epoch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    pub fn from_secs(secs: i64) -> Timestamp {
        Timestamp { secs, nanos: 0 }
    }

    /// The modification time in `st`.
    pub fn mtime_of(st: &rfs::Stat) -> Timestamp {
        Timestamp {
            secs: st.st_mtime,
            nanos: st.st_mtime_nsec as u32,
        }
    }

    fn timespec(self) -> Timespec {
        Timespec {
            tv_sec: self.secs,
            tv_nsec: self.nanos as _,
        }
    }
}

/// The metadata of one layer entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryMeta {
    /// Permission bits plus setuid/setgid/sticky (`0o7777`), without the file type.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Timestamp,
    /// Extended attributes sorted by name (e.g. `security.capability`).
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl EntryMeta {
    /// Metadata of `path` (not followed) from an already obtained `lstat`.
    pub fn from_stat(path: &Path, st: &rfs::Stat) -> io::Result<EntryMeta> {
        Ok(EntryMeta::with_xattrs(st, read_xattrs(path)?))
    }

    /// Mode, owner and mtime from `st`, with the given xattrs.
    pub fn with_xattrs(st: &rfs::Stat, xattrs: Vec<(String, Vec<u8>)>) -> EntryMeta {
        EntryMeta {
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            mtime: Timestamp::mtime_of(st),
            xattrs,
        }
    }
}

/// All extended attributes of `path` (not followed), sorted by name.
pub fn read_xattrs(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    collect_xattrs(
        |buf| rfs::llistxattr(path, buf),
        |name, buf| rfs::lgetxattr(path, name, buf),
    )
}

/// All extended attributes of the open file `fd`, sorted by name.
pub fn read_xattrs_fd(fd: BorrowedFd<'_>) -> io::Result<Vec<(String, Vec<u8>)>> {
    collect_xattrs(
        |buf| rfs::flistxattr(fd, buf),
        |name, buf| rfs::fgetxattr(fd, name, buf),
    )
}

/// Lists the names with `list` and reads each with `get`, growing buffers on `ERANGE`; a
/// filesystem without xattrs has none, a name removed meanwhile is skipped.
fn collect_xattrs(
    list: impl Fn(&mut [u8]) -> rustix::io::Result<usize>,
    get: impl Fn(&str, &mut [u8]) -> rustix::io::Result<usize>,
) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut names = vec![0u8; 1024];
    let len = loop {
        match list(&mut names[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => names.resize(names.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let mut value = vec![0u8; 256];
        let n = loop {
            match get(name.as_str(), &mut value[..]) {
                Ok(n) => break Some(n),
                Err(rustix::io::Errno::RANGE) => value.resize(value.len() * 4, 0),
                Err(rustix::io::Errno::NODATA) => break None,
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(n) = n {
            value.truncate(n);
            out.push((name, value));
        }
    }
    out.sort();
    Ok(out)
}

/// How the owner of an entry is applied: `None` leaves the creating user as owner.
pub type Owner = Option<(u32, u32)>;

/// Applies owner, mode, xattrs and mtime (in the order that keeps setuid bits and file
/// capabilities: chown clears both) to an open regular file or directory.
pub fn apply_to_fd(
    fd: BorrowedFd<'_>,
    meta: &EntryMeta,
    owner: Owner,
    times: bool,
) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        rfs::fchown(
            fd,
            Some(rfs::Uid::from_raw(uid)),
            Some(rfs::Gid::from_raw(gid)),
        )?;
    }
    rfs::fchmod(fd, Mode::from_raw_mode(meta.mode))?;
    for (name, value) in &meta.xattrs {
        rfs::fsetxattr(fd, name.as_str(), value, XattrFlags::empty())?;
    }
    if times {
        set_times_fd(fd, meta.mtime)?;
    }
    Ok(())
}

pub fn set_times_fd(fd: BorrowedFd<'_>, mtime: Timestamp) -> io::Result<()> {
    let ts = Timestamps {
        last_access: mtime.timespec(),
        last_modification: mtime.timespec(),
    };
    rfs::futimens(fd, &ts).map_err(Into::into)
}

/// Applies metadata to `name` in `dir` without following it (symlinks, devices, fifos).
/// `chmod` is skipped for symlinks, whose mode Linux ignores.
pub fn apply_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    meta: &EntryMeta,
    owner: Owner,
    is_symlink: bool,
) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        rfs::chownat(
            dir,
            name,
            Some(rfs::Uid::from_raw(uid)),
            Some(rfs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    if !is_symlink {
        rfs::chmodat(dir, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())?;
    }
    if !meta.xattrs.is_empty() {
        // The parent is already resolved inside the root; its /proc magic link plus a
        // never-followed final name addresses exactly this entry.
        let path = Path::new("/proc/self/fd")
            .join(dir.as_fd().as_raw_fd().to_string())
            .join(name);
        for (key, value) in &meta.xattrs {
            rfs::lsetxattr(&path, key.as_str(), value, XattrFlags::empty())?;
        }
    }
    let ts = Timestamps {
        last_access: meta.mtime.timespec(),
        last_modification: meta.mtime.timespec(),
    };
    rfs::utimensat(dir, name, &ts, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}
