//! `RUN --mount`: turns the parsed [`dockerfile::Mount`]s of a step into sandbox mounts and
//! holds what they need (cache locks, secret files, stage views, scratch copies) until the
//! step ends.
//!
//! - `type=cache`: a directory under `<store>/cache-mounts/<id>/data` that outlives builds;
//!   `sharing=shared` holds a shared `flock` on `<id>/lock`, `locked` an exclusive one (other
//!   users wait), `private` an exclusive one when it is free and otherwise a fresh empty
//!   instance of its own that is discarded afterwards. `mode/uid/gid` apply when the
//!   directory is created.
//! - `type=secret`: the value is written to a private directory on `/dev/shm` (memory, not
//!   disk) and bound read-only at `/run/secrets/<id>` or `target`, and/or exported as `env`.
//! - `type=bind`: a path of the context, a stage or an image, resolved inside that root; bound
//!   read-only, or for `rw` a scratch copy whose writes are discarded.
//! - `type=tmpfs`: a fresh tmpfs, with `size`.
//!
//! Mount points the sandbox had to create are removed after the step, so none of this ends up
//! in the step's layer.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::dockerfile::{self, CacheSharing, Instruction, MountType};
use crate::fs::EntryMeta;
use crate::plan::FromRef;
use crate::sandbox::{Mount, MountKind};
use crate::snapshot::{DeviceKind, DiffSink, SnapshotView};

use super::error::BuildError;
use super::layers::ensure_chain;
use super::rootfs::RootfsView;
use super::state::resolve_path;
use super::steps::StageRun;

/// Where secret files live while a step runs: memory-backed on every Linux we know.
const SECRET_DIR: &str = "/dev/shm";

/// The sandbox mounts and extra environment of one RUN step, with what keeps them valid.
#[derive(Default)]
pub(super) struct StepMounts {
    pub mounts: Vec<Mount>,
    /// `VAR=value` for secrets exposed with `env=`.
    pub env: Vec<String>,
    /// Locks, views and scratch directories released when the step ends.
    guards: Vec<Guard>,
}

#[allow(dead_code)] // Held for their Drop.
enum Guard {
    Lock(File),
    Dir(tempfile::TempDir),
    View(Box<dyn SnapshotView>),
}

impl StageRun<'_, '_> {
    /// Prepares every `--mount` of a RUN (already expanded).
    pub(super) fn step_mounts(
        &self,
        ins: &Instruction,
        specs: &[dockerfile::Mount],
    ) -> Result<StepMounts, BuildError> {
        let mut out = StepMounts::default();
        for m in specs {
            let at = |e: &dyn std::fmt::Display| {
                BuildError::at(
                    &ins.span,
                    &ins.original,
                    format!("--mount=type={}: {e}", m.mount_type.as_str()),
                )
            };
            let target = m
                .target
                .as_deref()
                .filter(|t| !t.is_empty())
                .map(|t| resolve_path(&self.state.working_dir(), t, false));
            match m.mount_type {
                MountType::Cache => {
                    let target = target.ok_or_else(|| at(&"a target is required"))?;
                    self.cache_mount(m, target, &mut out).map_err(|e| at(&e))?
                }
                MountType::Secret => self.secret_mount(m, target, &mut out).map_err(|e| at(&e))?,
                MountType::Bind => {
                    let target = target.ok_or_else(|| at(&"a target is required"))?;
                    self.bind_mount(m, target, &mut out).map_err(|e| at(&e))?
                }
                MountType::Tmpfs => {
                    let target = target.ok_or_else(|| at(&"a target is required"))?;
                    out.mounts.push(Mount {
                        target,
                        kind: MountKind::Tmpfs {
                            size: m.size,
                            mode: None,
                        },
                    });
                }
                MountType::Ssh if m.required => {
                    return Err(at(&"ssh agent forwarding is not supported by kiln"))
                }
                MountType::Ssh => self
                    .builder
                    .progress
                    .note("RUN --mount=type=ssh skipped: kiln does not forward an ssh agent"),
            }
        }
        Ok(out)
    }

    fn cache_mount(
        &self,
        m: &dockerfile::Mount,
        target: String,
        out: &mut StepMounts,
    ) -> Result<(), String> {
        if m.from.is_some() || m.source.is_some() {
            return Err("from= and source= are not supported for cache mounts yet".into());
        }
        let id =
            m.id.clone()
                .filter(|i| !i.is_empty())
                .unwrap_or(target.clone());
        let dir = cache_dir(self.builder.store.root(), &id);
        let entry = CacheEntry::open(&dir, m.mode, m.uid, m.gid)?;
        let sharing = m.sharing.unwrap_or(CacheSharing::Shared);
        let (source, guard) = entry.acquire(sharing)?;
        out.guards.push(guard);
        out.mounts.push(Mount {
            target,
            kind: MountKind::Bind {
                source,
                readonly: m.readonly,
            },
        });
        Ok(())
    }

    fn secret_mount(
        &self,
        m: &dockerfile::Mount,
        target: Option<String>,
        out: &mut StepMounts,
    ) -> Result<(), String> {
        let id = match (&m.id, &target) {
            (Some(id), _) if !id.is_empty() => id.clone(),
            (_, Some(t)) => base_name(t).to_string(),
            _ => return Err("a secret needs an id or a target".into()),
        };
        let Some(value) = self.builder.opts.secrets.get(&id) else {
            if m.required {
                return Err(format!(
                    "secret {id} is required but was not given (kiln build --secret id={id},src=FILE)"
                ));
            }
            return Ok(());
        };
        if let Some(var) = &m.env {
            let text = std::str::from_utf8(value.expose())
                .map_err(|_| format!("secret {id} is not UTF-8 text and cannot be env {var}"))?;
            out.env.push(format!("{var}={text}"));
            if target.is_none() {
                return Ok(());
            }
        }
        let target = target.unwrap_or_else(|| format!("/run/secrets/{}", base_name(&id)));
        let work = self.builder.work_dir().map_err(|e| e.to_string())?;
        let dir = secret_scratch(&work.join("secrets"))?;
        let file = dir.path().join("secret");
        write_secret(&file, value.expose(), m.mode, m.uid, m.gid)?;
        out.guards.push(Guard::Dir(dir));
        out.mounts.push(Mount {
            target,
            kind: MountKind::Bind {
                source: file,
                readonly: true,
            },
        });
        Ok(())
    }

    fn bind_mount(
        &self,
        m: &dockerfile::Mount,
        target: String,
        out: &mut StepMounts,
    ) -> Result<(), String> {
        let b = self.builder;
        let (root, what): (PathBuf, String) = match m.from.as_deref() {
            None => (
                self.context.root().to_path_buf(),
                "the build context".into(),
            ),
            Some(from) => {
                let layers = match self.graph.resolve_from(from) {
                    FromRef::Stage(j) => self
                        .done
                        .get(&j)
                        .ok_or_else(|| format!("stage {from:?} was not built"))?
                        .state
                        .layers
                        .clone(),
                    FromRef::Image(name) => super::base::load(b.resolver(), &name)?.layers,
                };
                let chain = ensure_chain(b.store, b.snapshotter.as_ref(), &layers)
                    .map_err(|e| e.to_string())?;
                let view = b
                    .snapshotter
                    .view(chain.as_ref())
                    .map_err(|e| e.to_string())?;
                let root = view.rootfs().to_path_buf();
                out.guards.push(Guard::View(view));
                (root, format!("{from:?}"))
            }
        };
        let source = m.source.as_deref().unwrap_or("/");
        let host = confined(&root, source)
            .ok_or_else(|| format!("source {source:?} not found in {what}"))?;
        let source = if m.readonly {
            host
        } else {
            // Writes to a rw bind are discarded: they go to a scratch copy.
            let work = b.work_dir().map_err(|e| e.to_string())?;
            let scratch = tempfile::Builder::new()
                .prefix("bind-")
                .tempdir_in(work)
                .map_err(|e| format!("{}: {e}", work.display()))?;
            let copy = scratch.path().join("src");
            if host.is_dir() {
                crate::snapshot::copy::copy_tree(&host, &copy).map_err(|e| e.to_string())?;
            } else {
                std::fs::copy(&host, &copy).map_err(|e| format!("{}: {e}", host.display()))?;
            }
            out.guards.push(Guard::Dir(scratch));
            copy
        };
        out.mounts.push(Mount {
            target,
            kind: MountKind::Bind {
                source,
                readonly: m.readonly,
            },
        });
        Ok(())
    }
}

/// Mount points kiln itself provides in every step (see the sandbox).
const SANDBOX_MOUNT_POINTS: [&str; 6] = [
    "/proc",
    "/dev",
    "/sys",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/hostname",
];

/// Keeps mount points out of a step's layer. The sandbox removes the stubs it created, but
/// creating them touched their parent directories (a new mtime; with overlayfs a copy-up), so
/// the diff reports those parents as changed. A reported directory that is an ancestor of a
/// mount target and is in the parent snapshot with the same mode, owner and xattrs is
/// dropped: only its mtime could differ.
pub(super) struct MountPointFilter<'s> {
    inner: &'s mut dyn DiffSink,
    /// Ancestors of mount targets, relative to the rootfs.
    parents: HashSet<PathBuf>,
    lower: Option<PathBuf>,
    /// Entries passed on.
    pub passed: usize,
}

impl<'s> MountPointFilter<'s> {
    /// `lower` is the parent snapshot's rootfs (`None` for scratch).
    pub fn new(inner: &'s mut dyn DiffSink, mounts: &[Mount], lower: Option<&Path>) -> Self {
        let mut parents = HashSet::new();
        let targets = mounts
            .iter()
            .map(|m| m.target.as_str())
            .chain(SANDBOX_MOUNT_POINTS);
        for t in targets {
            let mut p = Path::new(t.trim_start_matches('/'));
            while let Some(parent) = p.parent() {
                if !parent.as_os_str().is_empty() {
                    parents.insert(parent.to_path_buf());
                }
                p = parent;
            }
        }
        MountPointFilter {
            inner,
            parents,
            lower: lower.map(Path::to_path_buf),
            passed: 0,
        }
    }

    fn unchanged_parent(&self, path: &Path, meta: &EntryMeta) -> bool {
        let Some(lower) = &self.lower else {
            return false;
        };
        if !self.parents.contains(path) {
            return false;
        }
        let host = lower.join(path);
        let Ok(st) = rustix::fs::lstat(&host) else {
            return false;
        };
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
            return false;
        }
        match EntryMeta::from_stat(&host, &st) {
            Ok(before) => {
                (before.mode, before.uid, before.gid, &before.xattrs)
                    == (meta.mode, meta.uid, meta.gid, &meta.xattrs)
            }
            Err(_) => false,
        }
    }
}

impl DiffSink for MountPointFilter<'_> {
    fn dir(&mut self, path: &Path, meta: &EntryMeta) -> io::Result<()> {
        if self.unchanged_parent(path, meta) {
            return Ok(());
        }
        self.passed += 1;
        self.inner.dir(path, meta)
    }
    fn file(
        &mut self,
        path: &Path,
        meta: &EntryMeta,
        size: u64,
        data: &mut dyn Read,
    ) -> io::Result<()> {
        self.passed += 1;
        self.inner.file(path, meta, size, data)
    }
    fn symlink(&mut self, path: &Path, target: &Path, meta: &EntryMeta) -> io::Result<()> {
        self.passed += 1;
        self.inner.symlink(path, target, meta)
    }
    fn hardlink(&mut self, path: &Path, target: &Path, meta: &EntryMeta) -> io::Result<()> {
        self.passed += 1;
        self.inner.hardlink(path, target, meta)
    }
    fn device(&mut self, path: &Path, kind: DeviceKind, meta: &EntryMeta) -> io::Result<()> {
        self.passed += 1;
        self.inner.device(path, kind, meta)
    }
    fn whiteout(&mut self, path: &Path) -> io::Result<()> {
        self.passed += 1;
        self.inner.whiteout(path)
    }
    fn opaque(&mut self, dir: &Path) -> io::Result<()> {
        self.passed += 1;
        self.inner.opaque(dir)
    }
}

/// The host path of `path` inside `root` with every symlink resolved inside the root, or
/// `None` when nothing is there.
fn confined(root: &Path, path: &str) -> Option<PathBuf> {
    let view = RootfsView::new(root);
    let canonical = view.canonicalize(path, true);
    view.lstat(&canonical)?;
    Some(root.join(canonical.trim_start_matches('/')))
}

fn base_name(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(path)
}

/// `<store>/cache-mounts/<id>`, the id made a single safe file name: bytes other than
/// `[A-Za-z0-9._-]` (and a leading `.`) are `%XX`-escaped, so distinct ids never collide.
pub fn cache_dir(store_root: &Path, id: &str) -> PathBuf {
    let mut name = String::new();
    for (i, b) in id.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b"_-".contains(&b) || (b == b'.' && i > 0);
        if plain {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    store_root.join("cache-mounts").join(name)
}

/// One cache mount's directory: `data/` (what is mounted) and `lock`.
struct CacheEntry {
    dir: PathBuf,
    lock: File,
    mode: u32,
    owner: (u32, u32),
}

impl CacheEntry {
    fn open(
        dir: &Path,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<CacheEntry, String> {
        let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let lock_path = dir.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io(&lock_path, e))?;
        Ok(CacheEntry {
            dir: dir.to_path_buf(),
            lock,
            mode: mode.unwrap_or(0o755),
            owner: (uid.unwrap_or(0), gid.unwrap_or(0)),
        })
    }

    /// The directory to mount and the lock or scratch dir that must live as long as the step.
    fn acquire(self, sharing: CacheSharing) -> Result<(PathBuf, Guard), String> {
        let lock_err = |e: rustix::io::Errno| format!("locking {}: {e}", self.dir.display());
        let exclusive = match sharing {
            CacheSharing::Private => {
                match flock(&self.lock, FlockOperation::NonBlockingLockExclusive) {
                    Ok(()) => true,
                    Err(rustix::io::Errno::WOULDBLOCK) => false,
                    Err(e) => return Err(lock_err(e)),
                }
            }
            CacheSharing::Locked => {
                flock(&self.lock, FlockOperation::LockExclusive).map_err(lock_err)?;
                true
            }
            CacheSharing::Shared => {
                flock(&self.lock, FlockOperation::LockShared).map_err(lock_err)?;
                false
            }
        };
        if !exclusive && sharing == CacheSharing::Private {
            // Someone uses the cache: this private user gets a fresh instance of its own.
            let scratch = tempfile::Builder::new()
                .prefix("private-")
                .tempdir_in(&self.dir)
                .map_err(|e| format!("{}: {e}", self.dir.display()))?;
            let data = scratch.path().join("data");
            self.create_data(&data)?;
            return Ok((data, Guard::Dir(scratch)));
        }
        let data = self.dir.join("data");
        if !data.exists() {
            // `data` is created under the exclusive lock, so it appears once, fully set up.
            if !exclusive {
                flock(&self.lock, FlockOperation::LockExclusive).map_err(lock_err)?;
            }
            if !data.exists() {
                let tmp = self.dir.join("data.new");
                if tmp.exists() {
                    std::fs::remove_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
                }
                self.create_data(&tmp)?;
                std::fs::rename(&tmp, &data).map_err(|e| format!("{}: {e}", data.display()))?;
            }
            if !exclusive {
                flock(&self.lock, FlockOperation::LockShared).map_err(lock_err)?;
            }
        }
        Ok((data, Guard::Lock(self.lock)))
    }

    fn create_data(&self, path: &Path) -> Result<(), String> {
        let err = |e: std::io::Error| format!("{}: {e}", path.display());
        std::fs::create_dir(path).map_err(err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(self.mode)).map_err(err)?;
        chown_if_possible(path, self.owner).map_err(err)
    }
}

/// Sets the owner when kiln is root. Rootless, kiln's own uid is root inside the sandbox's
/// user namespace, so only the default owner `0:0` can be honoured.
fn chown_if_possible(path: &Path, (uid, gid): (u32, u32)) -> std::io::Result<()> {
    if rustix::process::geteuid().is_root() {
        return std::os::unix::fs::chown(path, Some(uid), Some(gid));
    }
    if (uid, gid) != (0, 0) {
        return Err(std::io::Error::other(format!(
            "owner {uid}:{gid} needs kiln to run as root"
        )));
    }
    Ok(())
}

/// A private (0700) directory for one secret file: on `/dev/shm` when it exists, else under
/// `fallback` (the build's scratch dir, removed with it).
fn secret_scratch(fallback: &Path) -> Result<tempfile::TempDir, String> {
    let shm = Path::new(SECRET_DIR);
    let parent = if shm.is_dir() {
        shm
    } else {
        std::fs::create_dir_all(fallback).map_err(|e| format!("{}: {e}", fallback.display()))?;
        fallback
    };
    let dir = tempfile::Builder::new()
        .prefix("kiln-secret-")
        .tempdir_in(parent)
        .map_err(|e| format!("{}: {e}", parent.display()))?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("{}: {e}", dir.path().display()))?;
    Ok(dir)
}

fn write_secret(
    path: &Path,
    value: &[u8],
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut f = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(value).map_err(err)?;
    drop(f);
    chown_if_possible(path, (uid.unwrap_or(0), gid.unwrap_or(0))).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode.unwrap_or(0o400)))
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_ids_become_single_distinct_names() {
        let root = Path::new("/s");
        assert_eq!(
            cache_dir(root, "/root/.cache"),
            Path::new("/s/cache-mounts/%2Froot%2F.cache")
        );
        assert_eq!(
            cache_dir(root, "go-build"),
            Path::new("/s/cache-mounts/go-build")
        );
        assert_eq!(cache_dir(root, ".."), Path::new("/s/cache-mounts/%2E."));
        assert_ne!(cache_dir(root, "a/b"), cache_dir(root, "a%2Fb"));
    }

    #[test]
    fn cache_data_is_created_once_with_its_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = cache_dir(tmp.path(), "x");
        let entry = CacheEntry::open(&dir, Some(0o700), None, None).unwrap();
        let (data, _guard) = entry.acquire(CacheSharing::Locked).unwrap();
        assert_eq!(data, dir.join("data"));
        let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700);
        std::fs::write(data.join("kept"), b"1").unwrap();
        drop(_guard);
        // A second use with other options keeps what is there.
        let entry = CacheEntry::open(&dir, Some(0o755), None, None).unwrap();
        let (again, _g) = entry.acquire(CacheSharing::Shared).unwrap();
        assert!(again.join("kept").exists());
    }

    #[test]
    fn private_users_get_their_own_instance_while_the_cache_is_busy() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = cache_dir(tmp.path(), "p");
        let first = CacheEntry::open(&dir, None, None, None).unwrap();
        let (main, held) = first.acquire(CacheSharing::Shared).unwrap();
        let second = CacheEntry::open(&dir, None, None, None).unwrap();
        let (own, scratch) = second.acquire(CacheSharing::Private).unwrap();
        assert_ne!(main, own);
        assert!(own.is_dir());
        drop(scratch);
        assert!(!own.exists(), "the private instance is discarded");
        drop(held);
        let third = CacheEntry::open(&dir, None, None, None).unwrap();
        let (free, _g) = third.acquire(CacheSharing::Private).unwrap();
        assert_eq!(free, main);
    }

    #[test]
    fn locked_users_exclude_each_other() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = cache_dir(tmp.path(), "l");
        let (_, held) = CacheEntry::open(&dir, None, None, None)
            .unwrap()
            .acquire(CacheSharing::Locked)
            .unwrap();
        // A second open file description cannot take the lock while it is held.
        let other = File::open(dir.join("lock")).unwrap();
        assert_eq!(
            flock(&other, FlockOperation::NonBlockingLockShared),
            Err(rustix::io::Errno::WOULDBLOCK)
        );
        drop(held);
        flock(&other, FlockOperation::NonBlockingLockShared).unwrap();
    }

    #[test]
    fn bind_sources_resolve_inside_their_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir(root.join("dir")).unwrap();
        std::fs::write(root.join("dir/f"), b"x").unwrap();
        std::os::unix::fs::symlink("/dir", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("up")).unwrap();
        assert_eq!(confined(root, "abs/f"), Some(root.join("dir/f")));
        assert_eq!(confined(root, "/"), Some(root.join("")));
        // `../etc` from the root stays in the root, where there is no etc.
        assert_eq!(confined(root, "up/passwd"), None);
        assert_eq!(confined(root, "../../etc/passwd"), None);
    }

    #[test]
    fn secret_files_get_their_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = secret_scratch(tmp.path()).unwrap();
        let f = dir.path().join("secret");
        write_secret(&f, b"s3", None, None, None).unwrap();
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o400);
        assert_eq!(std::fs::read(&f).unwrap(), b"s3");
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists(), "the secret is removed with its directory");
    }
}
