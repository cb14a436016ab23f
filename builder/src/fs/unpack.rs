//! Applying an OCI layer (an uncompressed tar stream) onto a directory, safely.
//!
//! Entries are read with `tar::Archive::entries` and every file is created by this module
//! through [`Root`], so a hostile layer cannot write outside the target: `..` and absolute
//! entry names are rejected, symlinked parents are resolved inside the root, hardlinks must
//! point at an entry already inside the root, and the final component is never followed.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, XattrFlags};
use tar::EntryType;

use super::error::{FsError, Result};
use super::meta::{self, EntryMeta, Owner, Timestamp};
use super::parents::lower_dir_meta;
use super::pending::PendingDirs;
use super::root::{list_dir, remove_all_at, Root};

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The opaque marker of an overlay mounted with `userxattr` (in a user namespace).
pub const USER_OVERLAY_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// The opaque-directory xattr overlayfs uses in this process: `user.overlay.opaque` inside a
/// user namespace (rootless, mounted with `userxattr`), `trusted.overlay.opaque` otherwise.
pub fn overlay_opaque_xattr() -> &'static str {
    if super::idmap::in_user_namespace() {
        USER_OVERLAY_OPAQUE_XATTR
    } else {
        OVERLAY_OPAQUE_XATTR
    }
}

/// What to do with whiteout entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// Delete what they name (the layer is applied onto a flattened tree).
    #[default]
    Apply,
    /// Write them in overlayfs form (char 0/0 devices, `trusted.overlay.opaque=y`), for a
    /// directory that will be used as an overlay lower layer.
    Overlay,
}

/// One contiguous range of an id mapping: container ids `container..container+size` are
/// stored on the host as `host..host+size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdMap {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
}

impl IdMap {
    fn lookup(ranges: &[IdRange], id: u32) -> Option<u32> {
        ranges
            .iter()
            .find(|r| id >= r.container && id - r.container < r.size)
            .map(|r| r.host + (id - r.container))
    }
}

/// How entry owners are applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// chown to the uid/gid in the layer (needs root).
    Preserve,
    /// Leave files owned by the unpacking user.
    Ignore,
    /// chown through a mapping (rootless with subordinate ids); unmapped ids are an error.
    Map(IdMap),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnpackOptions {
    pub ownership: Ownership,
    pub whiteouts: WhiteoutMode,
    /// The layers below, topmost first, when the layer is unpacked on its own (an overlay
    /// lower dir): a directory the layer needs but does not list copies mode, owner, xattrs
    /// and mtime from the first of them that has it. Empty: such directories get mode 0755
    /// and the unpacking user as owner (right when unpacking onto the merged tree, where
    /// existing directories are kept as they are).
    pub parents: Vec<PathBuf>,
}

impl Default for UnpackOptions {
    /// Preserve owners when running as root, ignore them otherwise; apply whiteouts.
    ///
    /// Rootless kiln unpacks inside its user namespace (caller = 0 plus the subordinate
    /// ids), so "root" there preserves owners through the kernel's mapping; an id the
    /// namespace does not map is an error naming the entry rather than a silent chown to
    /// someone else.
    fn default() -> Self {
        let ownership = if !rustix::process::geteuid().is_root() {
            Ownership::Ignore
        } else {
            match super::idmap::current() {
                None => Ownership::Preserve,
                Some(ids) => Ownership::Map(ids.clone()),
            }
        };
        UnpackOptions {
            ownership,
            whiteouts: WhiteoutMode::Apply,
            parents: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub devices: u64,
    pub whiteouts: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    /// Device nodes that could not be created without privileges.
    pub skipped_devices: u64,
}

/// Applies the uncompressed layer tar read from `reader` onto the directory `root`.
pub fn unpack_layer(reader: impl Read, root: &Path, opts: UnpackOptions) -> Result<UnpackStats> {
    let root = Root::open(root).map_err(|e| FsError::io(root, e))?;
    unpack_into(reader, &root, opts)
}

/// As [`unpack_layer`], onto an already opened [`Root`].
pub fn unpack_into(reader: impl Read, root: &Root, opts: UnpackOptions) -> Result<UnpackStats> {
    let mut u = Unpacker {
        root,
        opts,
        stats: UnpackStats::default(),
        dirs: PendingDirs::default(),
        written: HashSet::new(),
        opaque: Vec::new(),
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive
        .entries()
        .map_err(|source| FsError::Tar { source })?
    {
        let entry = entry.map_err(|source| FsError::Tar { source })?;
        u.entry(entry)?;
    }
    u.finish()
}

struct Unpacker<'r> {
    root: &'r Root,
    opts: UnpackOptions,
    stats: UnpackStats,
    /// Directories whose mode and mtime are applied after their contents.
    dirs: PendingDirs,
    /// Paths (and their ancestors) this layer wrote: an opaque marker keeps them.
    written: HashSet<PathBuf>,
    opaque: Vec<PathBuf>,
}

/// A layer entry's path, made relative; `..` and absolute names are refused.
pub fn normalize_entry_path(raw: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(FsError::AbsolutePath {
                    entry: raw.to_path_buf(),
                })
            }
            Component::ParentDir => {
                return Err(FsError::ParentComponent {
                    entry: raw.to_path_buf(),
                })
            }
        }
    }
    Ok(out)
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            return Ok(());
        }
        let raw = entry
            .path()
            .map_err(|source| FsError::Tar { source })?
            .into_owned();
        let rel = normalize_entry_path(&raw)?;
        self.stats.entries += 1;
        let meta = entry_meta(&mut entry, &raw)?;
        let name = rel.file_name().map(|n| n.as_bytes()).unwrap_or(b"");
        if name.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            self.stats.whiteouts += 1;
            return self.whiteout(&rel).map_err(|e| entry_err(&raw, e));
        }
        for a in rel.ancestors() {
            if !self.written.insert(a.to_path_buf()) {
                break;
            }
        }
        let owner = self.owner(&raw, meta.uid, meta.gid)?;
        match kind {
            EntryType::Directory => {
                self.stats.dirs += 1;
                self.dir(&rel, &meta, owner).map_err(|e| entry_err(&raw, e))
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.stats.files += 1;
                let bytes = self
                    .file(&rel, &mut entry, &meta, owner)
                    .map_err(|e| entry_err(&raw, e))?;
                self.stats.bytes += bytes;
                Ok(())
            }
            EntryType::Symlink => {
                self.stats.symlinks += 1;
                let target = entry
                    .link_name_bytes()
                    .map(|b| b.into_owned())
                    .unwrap_or_default();
                self.symlink(&rel, OsStr::from_bytes(&target), &meta, owner)
                    .map_err(|e| entry_err(&raw, e))
            }
            EntryType::Link => {
                self.stats.hardlinks += 1;
                let target = entry
                    .link_name()
                    .map_err(|source| FsError::Tar { source })?
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                self.hardlink(&raw, &rel, &target)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let ft = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                self.special(&raw, &rel, ft, rfs::makedev(major, minor), &meta, owner)
            }
            other => Err(FsError::UnsupportedEntry {
                entry: raw,
                kind: format!("{other:?}"),
            }),
        }
    }

    fn owner(&self, raw: &Path, uid: u32, gid: u32) -> Result<Owner> {
        match &self.opts.ownership {
            Ownership::Preserve => Ok(Some((uid, gid))),
            Ownership::Ignore => Ok(None),
            Ownership::Map(map) => {
                let u = IdMap::lookup(&map.uids, uid).ok_or(FsError::UnmappedId {
                    entry: raw.to_path_buf(),
                    kind: "uid",
                    id: uid.into(),
                })?;
                let g = IdMap::lookup(&map.gids, gid).ok_or(FsError::UnmappedId {
                    entry: raw.to_path_buf(),
                    kind: "gid",
                    id: gid.into(),
                })?;
                Ok(Some((u, g)))
            }
        }
    }

    /// The directory `rel` goes into (missing ones made as [`Self::implicit_dir`]) and its
    /// name there, for an entry about to be written.
    fn parent(&mut self, rel: &Path) -> io::Result<(OwnedFd, OsString)> {
        let root = self.root;
        let (fd, name) = root
            .open_parent_making(rel, &mut |dir, name, at| self.implicit_dir(dir, name, at))?
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EISDIR))?;
        self.dirs
            .before_change(fd.as_fd(), rel.parent().unwrap_or(Path::new("")))?;
        Ok((fd, name))
    }

    /// The directory `rel`, missing ones made as [`Self::implicit_dir`].
    fn dir_making(&mut self, rel: &Path) -> io::Result<OwnedFd> {
        let root = self.root;
        root.open_dir_making(rel, &mut |dir, name, at| self.implicit_dir(dir, name, at))
    }

    /// Makes `name` in `parent`, a directory the layer needs at `at` but does not list. It
    /// copies the lower layers' directory there, if any (see [`UnpackOptions::parents`]).
    fn implicit_dir(&mut self, parent: BorrowedFd<'_>, name: &OsStr, at: &Path) -> io::Result<()> {
        self.dirs
            .before_change(parent, at.parent().unwrap_or(Path::new("")))?;
        rfs::mkdirat(parent, name, Mode::from_raw_mode(0o755))?;
        let fd = open_nofollow_dir(parent, name)?;
        match lower_dir_meta(&self.opts.parents, at)? {
            Some(lower) => self.copy_lower_dir(fd.as_fd(), at, &lower),
            None => self.dirs.made(fd.as_fd()),
        }
    }

    /// Gives the implicit directory `dir` the lower one's owner and xattrs now, and its mode
    /// and mtime at the end.
    fn copy_lower_dir(
        &mut self,
        dir: BorrowedFd<'_>,
        at: &Path,
        lower: &EntryMeta,
    ) -> io::Result<()> {
        if let Some((uid, gid)) = self.lower_owner(lower) {
            rfs::fchown(
                dir,
                Some(rfs::Uid::from_raw(uid)),
                Some(rfs::Gid::from_raw(gid)),
            )?;
        }
        for (key, value) in &lower.xattrs {
            match rfs::fsetxattr(dir, key.as_str(), value, XattrFlags::empty()) {
                Ok(()) => {}
                // Not ours to set here (`trusted.*`/`security.*` rootless, a filesystem
                // without that namespace): the copy is best effort, the layer never asked.
                Err(e @ (rustix::io::Errno::PERM | rustix::io::Errno::NOTSUP)) => {
                    tracing::debug!(dir = %at.display(), xattr = %key, "not copied from the lower layer: {e}");
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.dirs.set(dir, at, lower.mode, lower.mtime)
    }

    /// The owner an implicit directory takes from the lower one. The lower dirs were written by
    /// this same kind of unpack, so their owners are already what `Preserve` or `Map` put on
    /// disk (mapping them again would map twice); `Ignore` keeps the unpacking user.
    fn lower_owner(&self, lower: &EntryMeta) -> Owner {
        match self.opts.ownership {
            Ownership::Ignore => None,
            Ownership::Preserve | Ownership::Map(_) => Some((lower.uid, lower.gid)),
        }
    }

    fn dir(&mut self, rel: &Path, meta: &EntryMeta, owner: Owner) -> io::Result<()> {
        if rel.as_os_str().is_empty() {
            let fd = self.root.open_dir(rel, false)?;
            return self.dirs.set(fd.as_fd(), rel, meta.mode, meta.mtime);
        }
        let (parent, name) = self.parent(rel)?;
        match rfs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
            Ok(_) => {
                remove_all_at(parent.as_fd(), &name)?;
                rfs::mkdirat(&parent, &name, Mode::from_raw_mode(0o700))?;
            }
            Err(rustix::io::Errno::NOENT) => {
                rfs::mkdirat(&parent, &name, Mode::from_raw_mode(0o700))?
            }
            Err(e) => return Err(e.into()),
        }
        let fd = open_nofollow_dir(parent.as_fd(), &name)?;
        if let Some((uid, gid)) = owner {
            rfs::fchown(
                &fd,
                Some(rfs::Uid::from_raw(uid)),
                Some(rfs::Gid::from_raw(gid)),
            )?;
        }
        for (k, v) in &meta.xattrs {
            rfs::fsetxattr(&fd, k.as_str(), v, XattrFlags::empty())?;
        }
        self.dirs.set(fd.as_fd(), rel, meta.mode, meta.mtime)
    }

    fn file(
        &mut self,
        rel: &Path,
        data: &mut impl Read,
        meta: &EntryMeta,
        owner: Owner,
    ) -> io::Result<u64> {
        let (parent, name) = self.parent(rel)?;
        remove_all_at(parent.as_fd(), &name)?;
        let fd = rfs::openat(
            &parent,
            &name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        let mut file = File::from(fd);
        let n = io::copy(data, &mut file)?;
        meta::apply_to_fd(file.as_fd(), meta, owner, true)?;
        Ok(n)
    }

    fn symlink(
        &mut self,
        rel: &Path,
        target: &OsStr,
        meta: &EntryMeta,
        owner: Owner,
    ) -> io::Result<()> {
        let (parent, name) = self.parent(rel)?;
        remove_all_at(parent.as_fd(), &name)?;
        rfs::symlinkat(target, &parent, &name)?;
        meta::apply_at(parent.as_fd(), &name, meta, owner, true)
    }

    fn hardlink(&mut self, raw: &Path, rel: &Path, target: &Path) -> Result<()> {
        let bad = |reason| FsError::BadHardlink {
            entry: raw.to_path_buf(),
            target: target.to_path_buf(),
            reason,
        };
        let trel = match normalize_entry_path(target) {
            Ok(t) if !t.as_os_str().is_empty() => t,
            Ok(_) => return Err(bad("is the root directory")),
            Err(FsError::AbsolutePath { .. }) => return Err(bad("is an absolute path")),
            Err(_) => return Err(bad("leaves the layer root")),
        };
        let resolved = self.root.open_parent(&trel, false);
        let Ok(Some((tparent, tname))) = resolved else {
            return Err(bad("does not exist in this layer or below"));
        };
        let tst = match rfs::statat(&tparent, &tname, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(_) => return Err(bad("does not exist in this layer or below")),
        };
        if FileType::from_raw_mode(tst.st_mode) == FileType::Directory {
            return Err(bad("is a directory"));
        }
        let (parent, name) = self.parent(rel).map_err(|e| entry_err(raw, e))?;
        if let Ok(st) = rfs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW) {
            if st.st_ino == tst.st_ino && st.st_dev == tst.st_dev {
                return Ok(());
            }
        }
        remove_all_at(parent.as_fd(), &name).map_err(|e| entry_err(raw, e))?;
        rfs::linkat(&tparent, &tname, &parent, &name, AtFlags::empty())
            .map_err(|e| entry_err(raw, e.into()))
    }

    fn special(
        &mut self,
        raw: &Path,
        rel: &Path,
        ft: FileType,
        dev: rfs::Dev,
        meta: &EntryMeta,
        owner: Owner,
    ) -> Result<()> {
        let (parent, name) = self.parent(rel).map_err(|e| entry_err(raw, e))?;
        remove_all_at(parent.as_fd(), &name).map_err(|e| entry_err(raw, e))?;
        match rfs::mknodat(
            &parent,
            &name,
            ft,
            Mode::from_raw_mode(meta.mode & 0o777),
            dev,
        ) {
            Ok(()) => self.stats.devices += 1,
            Err(rustix::io::Errno::PERM) if ft != FileType::Fifo => {
                tracing::warn!(entry = %raw.display(), "skipping device node: creating it needs privileges");
                self.stats.skipped_devices += 1;
                return Ok(());
            }
            Err(e) => return Err(entry_err(raw, e.into())),
        }
        meta::apply_at(parent.as_fd(), &name, meta, owner, false).map_err(|e| entry_err(raw, e))
    }

    fn whiteout(&mut self, rel: &Path) -> io::Result<()> {
        let name = rel.file_name().unwrap_or_default().as_bytes();
        let dir = rel.parent().unwrap_or(Path::new(""));
        let opaque = name == OPAQUE_WHITEOUT.as_bytes();
        let target = OsStr::from_bytes(&name[WHITEOUT_PREFIX.len()..]);
        match self.opts.whiteouts {
            WhiteoutMode::Apply if opaque => {
                self.written.insert(dir.to_path_buf());
                self.opaque.push(dir.to_path_buf());
                Ok(())
            }
            WhiteoutMode::Apply => match self.root.open_dir(dir, false) {
                Ok(fd) => {
                    self.dirs.before_change(fd.as_fd(), dir)?;
                    remove_all_at(fd.as_fd(), target)
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => Ok(()),
                Err(e) => Err(e),
            },
            // The lower layers' contents of `dir` are hidden, but not `dir` itself: made
            // implicitly here, it copies their metadata. Implicit directories below it copy
            // from the lower layers too, although overlayfs hides those: unpacked onto the
            // merged tree (native), they are kept with their metadata because this layer
            // writes into them, and the two snapshotters should agree.
            WhiteoutMode::Overlay if opaque => {
                let fd = self.dir_making(dir)?;
                rfs::fsetxattr(&fd, overlay_opaque_xattr(), b"y", XattrFlags::empty())?;
                Ok(())
            }
            WhiteoutMode::Overlay => {
                let fd = self.dir_making(dir)?;
                self.dirs.before_change(fd.as_fd(), dir)?;
                remove_all_at(fd.as_fd(), target)?;
                rfs::mknodat(
                    &fd,
                    target,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rfs::makedev(0, 0),
                )?;
                Ok(())
            }
        }
    }

    /// Empties opaque directories of everything this layer did not write.
    fn prune(&mut self, dir: &Path) -> io::Result<()> {
        let fd = match self.root.open_dir(dir, false) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) => return Err(e),
        };
        self.dirs.before_change(fd.as_fd(), dir)?;
        for child in list_dir(fd.as_fd())? {
            let crel = dir.join(&child);
            if !self.written.contains(&crel) {
                remove_all_at(fd.as_fd(), &child)?;
            } else if rfs::statat(&fd, &child, AtFlags::SYMLINK_NOFOLLOW)
                .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)?
            {
                self.prune(&crel)?;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<UnpackStats> {
        for dir in std::mem::take(&mut self.opaque) {
            self.prune(&dir).map_err(|e| FsError::Entry {
                entry: dir.join(OPAQUE_WHITEOUT),
                source: e,
            })?;
        }
        self.dirs.apply(self.root)?;
        Ok(self.stats)
    }
}

fn entry_err(entry: &Path, source: io::Error) -> FsError {
    FsError::Entry {
        entry: entry.to_path_buf(),
        source,
    }
}

fn open_nofollow_dir(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    rfs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(Into::into)
}

/// Mode, owner (PAX `uid`/`gid` override the header), mtime (PAX `mtime` keeps nanoseconds)
/// and xattrs (PAX `SCHILY.xattr.*`) of an entry.
pub(crate) fn entry_meta<R: Read>(entry: &mut tar::Entry<'_, R>, raw: &Path) -> Result<EntryMeta> {
    let h = entry.header();
    let mut meta = EntryMeta {
        mode: h.mode().unwrap_or(0o644) & 0o7777,
        uid: h.uid().unwrap_or(0) as u32,
        gid: h.gid().unwrap_or(0) as u32,
        mtime: Timestamp::from_secs(h.mtime().unwrap_or(0) as i64),
        xattrs: Vec::new(),
    };
    let bad = |key: &str| FsError::BadPax {
        entry: raw.to_path_buf(),
        key: key.to_string(),
    };
    let Some(pax) = entry
        .pax_extensions()
        .map_err(|source| FsError::Tar { source })?
    else {
        return Ok(meta);
    };
    for ext in pax {
        let ext = ext.map_err(|source| FsError::Tar { source })?;
        let key = ext.key().map_err(|_| bad("<non-utf8>"))?;
        let value = ext.value_bytes();
        if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
            meta.xattrs.push((name.to_string(), value.to_vec()));
            continue;
        }
        let text = || std::str::from_utf8(value).map_err(|_| bad(key));
        match key {
            "uid" => meta.uid = text()?.parse().map_err(|_| bad(key))?,
            "gid" => meta.gid = text()?.parse().map_err(|_| bad(key))?,
            "mtime" => meta.mtime = parse_pax_time(text()?).ok_or_else(|| bad(key))?,
            _ => {}
        }
    }
    meta.xattrs.sort();
    Ok(meta)
}

/// `1700000000.123456789` (fraction optional, negative allowed) as a timestamp.
fn parse_pax_time(s: &str) -> Option<Timestamp> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos = 0u32;
    if !frac.is_empty() {
        let digits: String = frac.chars().take(9).collect();
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        nanos = format!("{digits:0<9}").parse().ok()?;
    }
    Some(Timestamp { secs, nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time("12"), Some(Timestamp::from_secs(12)));
        assert_eq!(
            parse_pax_time("12.5"),
            Some(Timestamp {
                secs: 12,
                nanos: 500_000_000
            })
        );
        assert_eq!(parse_pax_time("x"), None);
    }

    #[test]
    fn entry_paths() {
        assert_eq!(
            normalize_entry_path(Path::new("./a/./b/")).unwrap(),
            Path::new("a/b")
        );
        assert!(matches!(
            normalize_entry_path(Path::new("a/../../b")),
            Err(FsError::ParentComponent { .. })
        ));
        assert!(matches!(
            normalize_entry_path(Path::new("/etc/passwd")),
            Err(FsError::AbsolutePath { .. })
        ));
    }
}
