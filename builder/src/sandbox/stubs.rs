//! Mount points kiln creates in a rootfs for a step (`/proc`, `/dev`, `/etc/hosts`,
//! `--mount` targets...) and removes afterwards while still empty, so they never end up in
//! the step's layer. Only what did not exist is created; all paths resolve inside the root.

use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};

use super::error::{Result, SandboxError};
use crate::fs::Root;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StubKind {
    Dir,
    File,
}

#[derive(Debug)]
pub struct MountStubs {
    root: Root,
    created: Vec<(PathBuf, StubKind)>,
}

impl MountStubs {
    /// Creates each missing `(path, kind)` (absolute paths inside the rootfs) and its
    /// missing parent directories.
    pub fn create(rootfs: &Path, wanted: &[(String, StubKind)]) -> Result<MountStubs> {
        let root = Root::open(rootfs).map_err(|e| SandboxError::io(rootfs, e))?;
        let mut stubs = MountStubs {
            root,
            created: Vec::new(),
        };
        for (path, kind) in wanted {
            let rel = Path::new(path.trim_start_matches('/'));
            stubs
                .create_one(rel, *kind)
                .map_err(|e| SandboxError::io(rootfs.join(rel), e))?;
        }
        Ok(stubs)
    }

    fn create_one(&mut self, rel: &Path, kind: StubKind) -> io::Result<()> {
        let mut prefix = PathBuf::new();
        let parts: Vec<_> = rel.components().collect();
        for (i, c) in parts.iter().enumerate() {
            prefix.push(c);
            let last = i + 1 == parts.len();
            let Some((dir, name)) = self.root.open_parent(&prefix, false)? else {
                continue;
            };
            match rfs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(_) => continue,
                Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
            if last && kind == StubKind::File {
                rfs::openat(
                    &dir,
                    &name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o644),
                )?;
                self.created.push((prefix.clone(), StubKind::File));
            } else {
                rfs::mkdirat(&dir, &name, Mode::from_raw_mode(0o755))?;
                self.created.push((prefix.clone(), StubKind::Dir));
            }
        }
        Ok(())
    }

    pub fn created(&self) -> impl Iterator<Item = &Path> {
        self.created.iter().map(|(p, _)| p.as_path())
    }

    /// Removes the stubs that are still empty, deepest first.
    pub fn cleanup(self) -> Result<()> {
        for (rel, kind) in self.created.iter().rev() {
            let Ok(Some((dir, name))) = self.root.open_parent(rel, false) else {
                continue;
            };
            let Ok(st) = rfs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            let res = match (kind, FileType::from_raw_mode(st.st_mode)) {
                (StubKind::Dir, FileType::Directory) => {
                    rfs::unlinkat(dir.as_fd(), &name, AtFlags::REMOVEDIR)
                }
                (StubKind::File, FileType::RegularFile) if st.st_size == 0 => {
                    rfs::unlinkat(dir.as_fd(), &name, AtFlags::empty())
                }
                _ => Ok(()),
            };
            match res {
                Ok(()) | Err(rustix::io::Errno::NOTEMPTY | rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(SandboxError::io(self.root.display(rel), e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubs_are_removed_unless_used() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("etc")).unwrap();
        std::fs::write(tmp.path().join("etc/hosts"), b"image's own").unwrap();
        let wanted = [
            ("/proc".to_string(), StubKind::Dir),
            ("/etc/hosts".to_string(), StubKind::File),
            ("/etc/resolv.conf".to_string(), StubKind::File),
            ("/run/secrets/x".to_string(), StubKind::File),
            ("/cache/dir".to_string(), StubKind::Dir),
        ];
        let stubs = MountStubs::create(tmp.path(), &wanted).unwrap();
        let created: Vec<_> = stubs.created().map(|p| p.to_path_buf()).collect();
        assert!(!created.contains(&PathBuf::from("etc/hosts")));
        assert!(created.contains(&PathBuf::from("run/secrets/x")));
        // The step wrote into one of them: it stays.
        std::fs::write(tmp.path().join("cache/dir/kept"), b"k").unwrap();
        stubs.cleanup().unwrap();
        let mut left: Vec<_> = walkdir::WalkDir::new(tmp.path())
            .min_depth(1)
            .into_iter()
            .map(|e| {
                e.unwrap()
                    .path()
                    .strip_prefix(tmp.path())
                    .unwrap()
                    .to_path_buf()
            })
            .collect();
        left.sort();
        let expected: Vec<PathBuf> = ["cache", "cache/dir", "cache/dir/kept", "etc", "etc/hosts"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(left, expected);
    }
}
