//! Root-confined path resolution: every path is resolved the way the kernel would resolve it
//! if the root directory were `/` (`..` stops at the root, absolute symlinks restart at the
//! root), so nothing a layer or a RUN step put on disk can lead an operation outside it.
//!
//! The fast path is `openat2(RESOLVE_IN_ROOT)`; kernels without it (or seccomp filters that
//! refuse it) use a user-space walker that opens one component at a time with `O_NOFOLLOW` and
//! expands symlinks itself.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};

/// Cleared the first time the kernel refuses `openat2`.
static OPENAT2_WORKS: AtomicBool = AtomicBool::new(true);

/// The most symlinks one resolution may expand, as the kernel's `MAXSYMLINKS`.
const MAX_SYMLINKS: usize = 40;

/// An open directory that all operations are confined to.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
    use_openat2: bool,
}

impl Root {
    /// Opens `path` (which must be a directory) as a root.
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = rfs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
            use_openat2: true,
        })
    }

    /// Forces the user-space walker (tests exercise the fallback with this).
    pub fn without_openat2(mut self) -> Root {
        self.use_openat2 = false;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Host path of `rel` for messages (never used to access the file).
    pub fn display(&self, rel: &Path) -> PathBuf {
        self.path.join(rel)
    }

    /// Opens the directory `rel` (resolved inside the root, symlinks followed inside it),
    /// creating missing components with mode 0755 when `create` is set.
    pub fn open_dir(&self, rel: &Path, create: bool) -> io::Result<OwnedFd> {
        if create {
            self.resolve_dir(rel, Some(&mut plain_mkdir))
        } else {
            self.resolve_dir(rel, None)
        }
    }

    /// As [`Root::open_dir`] with creation, each missing component made by `make`.
    pub fn open_dir_making(&self, rel: &Path, make: &mut MakeDir<'_>) -> io::Result<OwnedFd> {
        self.resolve_dir(rel, Some(make))
    }

    fn resolve_dir(&self, rel: &Path, make: Option<&mut MakeDir<'_>>) -> io::Result<OwnedFd> {
        let create = make.is_some();
        if rel.as_os_str().is_empty() || rel == Path::new(".") {
            return rfs::openat(
                &self.fd,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(Into::into);
        }
        if self.use_openat2 && OPENAT2_WORKS.load(Ordering::Relaxed) {
            match rfs::openat2(
                &self.fd,
                rel,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) {
                Ok(fd) => return Ok(fd),
                Err(rustix::io::Errno::NOENT) if create => {}
                Err(e @ (rustix::io::Errno::NOSYS | rustix::io::Errno::PERM)) => {
                    tracing::debug!("openat2 unavailable ({e}), using the user-space resolver");
                    OPENAT2_WORKS.store(false, Ordering::Relaxed);
                }
                // EXDEV/EAGAIN: a concurrent rename raced the kernel's check; walk instead.
                Err(rustix::io::Errno::XDEV | rustix::io::Errno::AGAIN) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.walk(rel, make)
    }

    /// Splits `rel` into its parent directory (opened, resolved inside the root) and its final
    /// name, which is never followed. Returns `None` for the root itself.
    pub fn open_parent(&self, rel: &Path, create: bool) -> io::Result<Option<(OwnedFd, OsString)>> {
        let Some(name) = rel.file_name() else {
            return Ok(None);
        };
        let parent = rel.parent().unwrap_or(Path::new(""));
        Ok(Some((self.open_dir(parent, create)?, name.to_os_string())))
    }

    /// As [`Root::open_parent`] with creation, each missing component made by `make`.
    pub fn open_parent_making(
        &self,
        rel: &Path,
        make: &mut MakeDir<'_>,
    ) -> io::Result<Option<(OwnedFd, OsString)>> {
        let Some(name) = rel.file_name() else {
            return Ok(None);
        };
        let parent = rel.parent().unwrap_or(Path::new(""));
        let fd = self.open_dir_making(parent, make)?;
        Ok(Some((fd, name.to_os_string())))
    }

    /// Opens `rel` as an `O_PATH` descriptor, following symlinks (the final one too) inside
    /// the root; used to address mount targets.
    pub fn open_path(&self, rel: &Path) -> io::Result<OwnedFd> {
        if self.use_openat2 && OPENAT2_WORKS.load(Ordering::Relaxed) {
            match rfs::openat2(
                &self.fd,
                rel,
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) {
                Ok(fd) => return Ok(fd),
                Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {
                    OPENAT2_WORKS.store(false, Ordering::Relaxed);
                }
                Err(rustix::io::Errno::XDEV | rustix::io::Errno::AGAIN) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Walk the whole path as directories except the last, then expand a final symlink
        // by walking again with its target in place.
        let mut rel = rel.to_path_buf();
        for _ in 0..MAX_SYMLINKS {
            let Some((dir, name)) = self.open_parent(&rel, false)? else {
                return self.open_dir(Path::new(""), false);
            };
            let fd = rfs::openat(
                &dir,
                &name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            if FileType::from_raw_mode(rfs::fstat(&fd)?.st_mode) != FileType::Symlink {
                return Ok(fd);
            }
            let target = rfs::readlinkat(&dir, &name, Vec::new())?;
            let target = Path::new(OsStr::from_bytes(target.as_bytes()));
            rel = if target.is_absolute() {
                target.to_path_buf()
            } else {
                rel.parent().unwrap_or(Path::new("")).join(target)
            };
        }
        Err(io::Error::from_raw_os_error(libc::ELOOP))
    }

    fn walk(&self, rel: &Path, mut make: Option<&mut MakeDir<'_>>) -> io::Result<OwnedFd> {
        let mut stack: Vec<OwnedFd> = Vec::new();
        // The names of `stack`'s directories: where a missing component lands in the root.
        let mut resolved: Vec<OsString> = Vec::new();
        let mut pending: VecDeque<OsString> = components(rel).collect();
        let mut links = 0;
        while let Some(name) = pending.pop_front() {
            if name == ".." {
                stack.pop();
                resolved.pop();
                continue;
            }
            let cur = stack.last().map(|f| f.as_fd()).unwrap_or(self.fd.as_fd());
            let st = match (
                rfs::statat(cur, &name, AtFlags::SYMLINK_NOFOLLOW),
                make.as_deref_mut(),
            ) {
                (Ok(st), _) => st,
                (Err(rustix::io::Errno::NOENT), Some(make)) => {
                    let at: PathBuf = resolved.iter().chain([&name]).collect();
                    match make(cur, &name, &at) {
                        // Someone else made it meanwhile: go on through what is there.
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                        res => res?,
                    }
                    pending.push_front(name);
                    continue;
                }
                (Err(e), _) => return Err(e.into()),
            };
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    let target = rfs::readlinkat(cur, &name, Vec::new())?;
                    let target = Path::new(OsStr::from_bytes(target.as_bytes()));
                    if target.is_absolute() {
                        stack.clear();
                        resolved.clear();
                    }
                    for c in components(target).collect::<Vec<_>>().into_iter().rev() {
                        pending.push_front(c);
                    }
                }
                FileType::Directory => {
                    let fd = rfs::openat(
                        cur,
                        &name,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?;
                    stack.push(fd);
                    resolved.push(name);
                }
                _ => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
            }
        }
        match stack.pop() {
            Some(fd) => Ok(fd),
            None => self.open_dir(Path::new(""), false),
        }
    }
}

/// Makes a missing directory while a path is resolved with creation: `parent` is open, `name`
/// is the directory to make and the path is where it lands inside the root, symlinks already
/// resolved (the unpacker looks that path up in the layers below). `EEXIST` means someone
/// else made it meanwhile; the resolution goes on through what is there.
pub type MakeDir<'a> = dyn FnMut(BorrowedFd<'_>, &OsStr, &Path) -> io::Result<()> + 'a;

/// What a missing component gets by default: a directory with mode 0755, owned by the caller.
pub fn plain_mkdir(parent: BorrowedFd<'_>, name: &OsStr, _at: &Path) -> io::Result<()> {
    rfs::mkdirat(parent, name, Mode::from_raw_mode(0o755)).map_err(Into::into)
}

/// Path components as names, dropping the root, `.` and empty parts; `..` is kept as a name.
fn components(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

/// Removes `name` in `dir` without following it; directories are removed recursively.
/// A missing entry is not an error.
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let st = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let sub = rfs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        for child in list_dir(sub.as_fd())? {
            remove_all_at(sub.as_fd(), &child)?;
        }
        rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    } else {
        rfs::unlinkat(dir, name, AtFlags::empty())?;
    }
    Ok(())
}

/// Names in a directory, without `.` and `..`.
pub fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let mut out = Vec::new();
    let mut d = rfs::Dir::read_from(dir)?;
    while let Some(entry) = d.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn both(root: &Path) -> [Root; 2] {
        [
            Root::open(root).unwrap(),
            Root::open(root).unwrap().without_openat2(),
        ]
    }

    #[test]
    fn absolute_and_dotdot_symlinks_stay_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("real")).unwrap();
        symlink("/", root.join("abs")).unwrap();
        symlink("../../../..", root.join("up")).unwrap();
        symlink("/real", root.join("toreal")).unwrap();
        for r in both(&root) {
            for p in ["abs/real", "up/real", "toreal", "up/up/abs/toreal"] {
                let fd = r.open_dir(Path::new(p), false).unwrap();
                let a = rfs::fstat(&fd).unwrap();
                let b = std::fs::metadata(root.join("real")).unwrap();
                assert_eq!(a.st_ino, std::os::unix::fs::MetadataExt::ino(&b), "{p}");
            }
        }
    }

    #[test]
    fn create_follows_symlinked_parent_inside_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        symlink(&outside, root.join("evil")).unwrap();
        for r in both(&root) {
            r.open_dir(Path::new("evil/sub"), true).unwrap();
        }
        assert!(!outside.join("sub").exists());
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("sub")
            .is_dir());
    }

    #[test]
    fn open_path_follows_a_final_symlink_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("run")).unwrap();
        std::fs::write(root.join("run/resolv"), b"in").unwrap();
        std::fs::create_dir(root.join("etc")).unwrap();
        symlink("../run/resolv", root.join("etc/rel")).unwrap();
        symlink("/run/resolv", root.join("etc/abs")).unwrap();
        symlink("/etc/passwd", root.join("etc/out")).unwrap();
        for r in both(&root) {
            for p in ["etc/rel", "etc/abs"] {
                let fd = r.open_path(Path::new(p)).unwrap();
                let ino = std::fs::metadata(root.join("run/resolv")).unwrap();
                assert_eq!(
                    rfs::fstat(&fd).unwrap().st_ino,
                    std::os::unix::fs::MetadataExt::ino(&ino)
                );
            }
            assert!(
                r.open_path(Path::new("etc/out")).is_err(),
                "host /etc/passwd reached"
            );
        }
    }

    #[test]
    fn missing_components_are_made_where_they_land_in_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).unwrap();
        symlink("/made", root.join("abs")).unwrap();
        symlink("../../..", root.join("up")).unwrap();
        for r in both(&root) {
            let mut made = Vec::new();
            let mut make = |dir: BorrowedFd<'_>, name: &OsStr, at: &Path| {
                made.push(at.to_path_buf());
                plain_mkdir(dir, name, at)
            };
            r.open_dir_making(Path::new("abs/x"), &mut make).unwrap();
            r.open_dir_making(Path::new("up/y/z"), &mut make).unwrap();
            assert_eq!(made, ["made", "made/x", "y", "y/z"].map(PathBuf::from));
            assert!(root.join("made/x").is_dir() && root.join("y/z").is_dir());
            std::fs::remove_dir_all(root.join("made")).unwrap();
            std::fs::remove_dir_all(root.join("y")).unwrap();
        }
    }

    #[test]
    fn symlink_loops_fail() {
        let tmp = tempfile::tempdir().unwrap();
        symlink("b", tmp.path().join("a")).unwrap();
        symlink("a", tmp.path().join("b")).unwrap();
        for r in both(tmp.path()) {
            let err = r.open_dir(Path::new("a/x"), true).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
        }
    }
}
