//! The layers below a layer that is unpacked on its own (an overlay lower dir), asked about a
//! directory the layer needs but does not list: a foreign layer may name `a/b/file` without
//! entries for `a/` or `a/b/`. The directory the unpacker makes for it hides the lower ones in
//! the merged view, so it should carry what the merged view showed before: the metadata of
//! the directory in the topmost layer below that has one there (as containerd's applier does
//! with its parent layers).
//!
//! The parent dirs are kiln's own snapshot dirs and trusted; the path is derived from a
//! hostile tar, so it is looked up one component at a time, never following a symlink, and
//! only ever below the parent dir.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, Mode, OFlags};

use super::meta::{read_xattrs_fd, EntryMeta};
use super::unpack::{OVERLAY_OPAQUE_XATTR, USER_OVERLAY_OPAQUE_XATTR};

/// Metadata (mode, owner as stored on disk, mtime, xattrs other than overlayfs' own) of the
/// directory that `parents` (topmost first) merge to at `rel`; `None` when the merged view has
/// no directory there.
pub fn lower_dir_meta(parents: &[PathBuf], rel: &Path) -> io::Result<Option<EntryMeta>> {
    for layer in parents {
        match find_in_layer(layer, rel)? {
            InLayer::Dir(fd) => return dir_meta(fd.as_fd()).map(Some),
            InLayer::Hides => return Ok(None),
            InLayer::Absent => {}
        }
    }
    Ok(None)
}

/// What one layer holds at a path, as overlayfs merges it with the layers below.
enum InLayer {
    /// A directory: the merged view shows its metadata.
    Dir(OwnedFd),
    /// Something that ends the lookup without a directory: a symlink, file or whiteout at the
    /// path or at one of its ancestors, or an opaque ancestor without the path.
    ///
    /// A symlink here is where the overlay snapshotter cannot match a flattened tree: unpacked
    /// onto the merged tree, `lib/x` would go through a lower `lib -> usr/lib`, but a layer
    /// unpacked on its own gets a plain `lib/` directory, which then hides the symlink. That
    /// directory keeps the default metadata.
    Hides,
    /// Nothing there: the layers below decide.
    Absent,
}

fn find_in_layer(layer: &Path, rel: &Path) -> io::Result<InLayer> {
    let mut cur = open_dir(rfs::CWD, layer.as_os_str(), true)?;
    let mut names = normal_names(rel)?.into_iter().peekable();
    let mut opaque_above = false;
    while let Some(name) = names.next() {
        cur = match open_dir(cur.as_fd(), name, false) {
            Ok(fd) => fd,
            Err(e) => {
                return match e.raw_os_error() {
                    Some(libc::ENOENT) if opaque_above => Ok(InLayer::Hides),
                    Some(libc::ENOENT) => Ok(InLayer::Absent),
                    // ELOOP: a symlink (O_NOFOLLOW); ENOTDIR: a file, device or whiteout.
                    Some(libc::ELOOP | libc::ENOTDIR) => Ok(InLayer::Hides),
                    _ => Err(e),
                };
            }
        };
        if names.peek().is_some() {
            opaque_above |= is_opaque(cur.as_fd())?;
        }
    }
    Ok(InLayer::Dir(cur))
}

/// The names of `rel`; anything but plain names (`..`, a root) could leave the parent dir and
/// is refused.
fn normal_names(rel: &Path) -> io::Result<Vec<&OsStr>> {
    rel.components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a plain relative path", rel.display()),
            )),
        })
        .collect()
}

fn open_dir(dir: BorrowedFd<'_>, name: &OsStr, follow: bool) -> io::Result<OwnedFd> {
    let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    rfs::openat(dir, name, flags, Mode::empty()).map_err(Into::into)
}

/// Whether overlayfs treats the directory as opaque (rootful or `userxattr` marker).
fn is_opaque(dir: BorrowedFd<'_>) -> io::Result<bool> {
    for name in [OVERLAY_OPAQUE_XATTR, USER_OVERLAY_OPAQUE_XATTR] {
        let mut value = [0u8; 2];
        match rfs::fgetxattr(dir, name, &mut value[..]) {
            Ok(n) if value[..n] == *b"y" => return Ok(true),
            Ok(_) => {}
            Err(
                rustix::io::Errno::NODATA
                | rustix::io::Errno::NOTSUP
                | rustix::io::Errno::RANGE
                | rustix::io::Errno::PERM,
            ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

fn dir_meta(dir: BorrowedFd<'_>) -> io::Result<EntryMeta> {
    let st = rfs::fstat(dir)?;
    let xattrs = read_xattrs_fd(dir)?
        .into_iter()
        .filter(|(name, _)| !is_overlay_private(name))
        .collect();
    Ok(EntryMeta::with_xattrs(&st, xattrs))
}

/// overlayfs' own markers belong to the lower dir's place in the stack, not to the directory
/// (copied, an opaque marker would hide the other lower layers' contents).
fn is_overlay_private(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}
