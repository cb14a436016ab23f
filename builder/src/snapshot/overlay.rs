//! The overlayfs snapshotter: each committed snapshot holds one layer in overlay form (char
//! 0/0 whiteouts, `trusted.overlay.opaque`), stacked as lower dirs; a step writes into a fresh
//! upper dir, and the diff walks only that upper dir.
//!
//! Rootless (kiln inside its user namespace, Linux >= 5.11): the same, mounted with
//! `userxattr`, so overlayfs keeps its markers in `user.overlay.*` (unprivileged users can
//! write those; `trusted.*` needs privilege over the initial namespace). The probe in
//! [`probe`] decides at run time; where it fails the native snapshotter takes over.

use std::ffi::CString;
use std::io::Read;
use std::path::{Path, PathBuf};

use registry::Digest;
use rustix::mount::{MountFlags, UnmountFlags};

use super::error::{Result, SnapshotError};
use super::walk::{entry_meta, file_type, read_sorted, DiffStats, Emitter};
use super::{chain_id, ActiveSnapshot, Chains, DiffSink, Snapshotter, SnapshotterKind};
use crate::fs::idmap::in_user_namespace;
use crate::fs::meta::read_xattrs;
use crate::fs::unpack::{OVERLAY_OPAQUE_XATTR, USER_OVERLAY_OPAQUE_XATTR};
use crate::fs::{UnpackOptions, WhiteoutMode};

/// The kernel copies mount options into one page.
const MAX_MOUNT_DATA: usize = 4000;

pub struct OverlaySnapshotter {
    chains: Chains,
}

impl OverlaySnapshotter {
    pub fn new(root: PathBuf) -> Result<OverlaySnapshotter> {
        Ok(OverlaySnapshotter {
            chains: Chains::new(root)?,
        })
    }

    /// Lower dirs for a step on top of `chain`, topmost first.
    fn lowers(&self, chain: &Digest) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut cur = Some(chain.clone());
        while let Some(c) = cur {
            out.push(self.chains.require(&c)?);
            cur = self.chains.parent(&c)?;
        }
        Ok(out)
    }
}

impl Snapshotter for OverlaySnapshotter {
    fn kind(&self) -> SnapshotterKind {
        SnapshotterKind::Overlay
    }

    fn exists(&self, chain: &Digest) -> bool {
        self.chains.exists(chain)
    }

    fn apply_layer(
        &self,
        parent: Option<&Digest>,
        diff_id: &Digest,
        tar: &mut dyn Read,
    ) -> Result<Digest> {
        let chain = chain_id(parent, diff_id);
        if self.chains.exists(&chain) {
            return Ok(chain);
        }
        // The layer lands in an empty dir; directories it needs but does not list copy the
        // parent chain's, which they hide in the merged view.
        let parents = match parent {
            Some(p) => self.lowers(p)?,
            None => Vec::new(),
        };
        let tmp = self.chains.tmp()?;
        let fs = tmp.path().join("fs");
        std::fs::create_dir(&fs).map_err(|e| SnapshotError::io(&fs, e))?;
        let opts = UnpackOptions {
            whiteouts: WhiteoutMode::Overlay,
            parents,
            ..UnpackOptions::default()
        };
        super::unpack_and_publish(&self.chains, tmp, &fs, tar, diff_id, opts, &chain, parent)?;
        Ok(chain)
    }

    fn prepare(&self, parent: Option<&Digest>) -> Result<Box<dyn ActiveSnapshot>> {
        let tmp = self.chains.tmp()?;
        let dir = tmp.path().to_path_buf();
        let mut lowers = match parent {
            Some(p) => self.lowers(p)?,
            None => Vec::new(),
        };
        for d in ["upper", "work", "merged", "empty"] {
            std::fs::create_dir(dir.join(d)).map_err(|e| SnapshotError::io(dir.join(d), e))?;
        }
        if lowers.is_empty() {
            lowers.push(dir.join("empty"));
        }
        let merged = dir.join("merged");
        mount_overlay(
            &lowers,
            &dir.join("upper"),
            &dir.join("work"),
            &merged,
            parent,
        )?;
        Ok(Box::new(ActiveOverlay {
            chains: self.chains.clone(),
            tmp: Some(tmp),
            merged,
            upper: dir.join("upper"),
            parent: parent.cloned(),
            mounted: true,
        }))
    }
}

fn mount_overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    chain: Option<&Digest>,
) -> Result<()> {
    let lowerdir: Vec<String> = lowers.iter().map(|p| escape(p)).collect();
    // Full copy-up only: redirects and metacopy would leave changes the upper walk can't see.
    let mut data = format!(
        "lowerdir={},upperdir={},workdir={},redirect_dir={},index=off,metacopy=off",
        lowerdir.join(":"),
        escape(upper),
        escape(work),
        redirect_dir_off()
    );
    if in_user_namespace() {
        data.push_str(",userxattr");
    }
    if data.len() > MAX_MOUNT_DATA {
        return mount_overlay_fsconfig(lowers, upper, work, target).map_err(|e| {
            tracing::debug!("fsconfig overlay mount failed: {e}");
            SnapshotError::TooManyLayers {
                chain: chain.cloned().unwrap_or_else(|| Digest::of(b"")),
                len: data.len(),
            }
        });
    }
    // `volatile` skips the syncfs of the upper filesystem at unmount: every snapshot dir is
    // fresh and thrown away or re-read by kiln, and a sync there would wait for every dirty
    // page on the host's filesystem (seconds after another build wrote gigabytes).
    let volatile = CString::new(format!("{data},volatile")).expect("paths have no NUL");
    let data = CString::new(data).expect("paths have no NUL");
    let mount = |d: &CString| {
        rustix::mount::mount(
            "overlay",
            target,
            "overlay",
            MountFlags::empty(),
            d.as_c_str(),
        )
    };
    mount(&volatile)
        .or_else(|e| {
            tracing::debug!("overlay mount with volatile failed ({e}); retrying without");
            mount(&data)
        })
        .map_err(|e| SnapshotError::Mount {
            target: target.to_path_buf(),
            source: e.into(),
        })
}

/// The new mount API passes one lower dir per call (`lowerdir+`, Linux 6.8+), so the
/// number of layers is not limited by the one-page option string of mount(2).
fn mount_overlay_fsconfig(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> std::io::Result<()> {
    use rustix::mount::{self as m, FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags};
    let fs = m::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    for l in lowers {
        m::fsconfig_set_string(&fs, "lowerdir+", l.as_path())?;
    }
    m::fsconfig_set_string(&fs, "upperdir", upper)?;
    m::fsconfig_set_string(&fs, "workdir", work)?;
    m::fsconfig_set_string(&fs, "redirect_dir", redirect_dir_off())?;
    for key in ["index", "metacopy"] {
        m::fsconfig_set_string(&fs, key, "off")?;
    }
    if in_user_namespace() {
        m::fsconfig_set_flag(&fs, "userxattr")?;
    }
    // See mount_overlay: no syncfs at unmount. Older kernels lack it; the mount works without.
    let _ = m::fsconfig_set_flag(&fs, "volatile");
    m::fsconfig_create(&fs)?;
    let mnt = m::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())?;
    m::move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(())
}

/// No redirects: `off` (which still follows existing ones) conflicts with `userxattr`, so
/// rootless uses `nofollow`; kiln's lower dirs never hold redirects either way.
fn redirect_dir_off() -> &'static str {
    if in_user_namespace() {
        "nofollow"
    } else {
        "off"
    }
}

/// `trusted.overlay.opaque` (rootful) or `user.overlay.opaque` (rootless, `userxattr`).
fn is_opaque_marker(name: &str) -> bool {
    name == OVERLAY_OPAQUE_XATTR || name == USER_OVERLAY_OPAQUE_XATTR
}

/// Escapes the separators of overlay's option syntax.
fn escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Checks that overlayfs can be mounted (and whiteouts created) under `base`.
pub fn probe(base: &Path) -> Result<()> {
    std::fs::create_dir_all(base).map_err(|e| SnapshotError::io(base, e))?;
    let tmp = tempfile::Builder::new()
        .prefix("overlay-probe-")
        .tempdir_in(base)
        .map_err(|e| SnapshotError::io(base, e))?;
    let d = tmp.path();
    for sub in ["lower", "upper", "work", "merged"] {
        std::fs::create_dir(d.join(sub)).map_err(|e| SnapshotError::io(d.join(sub), e))?;
    }
    std::fs::write(d.join("lower/f"), b"").map_err(|e| SnapshotError::io(d.join("lower/f"), e))?;
    let merged = d.join("merged");
    mount_overlay(
        &[d.join("lower")],
        &d.join("upper"),
        &d.join("work"),
        &merged,
        None,
    )?;
    let res =
        std::fs::remove_file(merged.join("f")).map_err(|e| SnapshotError::io(merged.join("f"), e));
    let _ = rustix::mount::unmount(&merged, UnmountFlags::DETACH);
    res?;
    let st = rustix::fs::lstat(d.join("upper/f"))
        .map_err(|e| SnapshotError::io(d.join("upper/f"), e))?;
    if file_type(&st) != rustix::fs::FileType::CharacterDevice {
        return Err(SnapshotError::io(
            d.join("upper/f"),
            std::io::Error::other("overlay whiteouts are not char devices here"),
        ));
    }
    Ok(())
}

pub struct ActiveOverlay {
    chains: Chains,
    tmp: Option<tempfile::TempDir>,
    merged: PathBuf,
    upper: PathBuf,
    parent: Option<Digest>,
    mounted: bool,
}

impl ActiveOverlay {
    fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            rustix::mount::unmount(&self.merged, UnmountFlags::empty())
                .or_else(|_| rustix::mount::unmount(&self.merged, UnmountFlags::DETACH))
                .map_err(|e| SnapshotError::io(&self.merged, e))?;
            self.mounted = false;
        }
        Ok(())
    }

    fn walk(&self, em: &mut Emitter<'_>, rel: &Path) -> Result<()> {
        let host = self.upper.join(rel);
        for (name, st) in read_sorted(&host)? {
            let crel = rel.join(&name);
            let chost = host.join(&name);
            match file_type(&st) {
                rustix::fs::FileType::Directory => {
                    let meta = entry_meta(&chost, &st)?;
                    em.enter_dir(&crel, meta, true)?;
                    let xattrs = read_xattrs(&chost).map_err(|e| SnapshotError::io(&chost, e))?;
                    if xattrs.iter().any(|(k, v)| is_opaque_marker(k) && v == b"y") {
                        em.opaque(&crel)?;
                    }
                    self.walk(em, &crel)?;
                    em.leave_dir();
                }
                rustix::fs::FileType::CharacterDevice if st.st_rdev == 0 => em.whiteout(&crel)?,
                _ => em.entry(&chost, &crel, &st)?,
            }
        }
        Ok(())
    }
}

impl ActiveSnapshot for ActiveOverlay {
    fn rootfs(&self) -> &Path {
        &self.merged
    }

    fn parent(&self) -> Option<&Digest> {
        self.parent.as_ref()
    }

    fn diff(&mut self, sink: &mut dyn DiffSink) -> Result<DiffStats> {
        let mut em = Emitter::new(sink);
        self.walk(&mut em, Path::new(""))?;
        Ok(em.stats)
    }

    fn commit(mut self: Box<Self>, diff_id: &Digest) -> Result<Digest> {
        let chain = chain_id(self.parent.as_ref(), diff_id);
        self.unmount()?;
        let tmp = self.tmp.take().expect("active snapshot has its dir");
        if self.chains.exists(&chain) {
            return Ok(chain);
        }
        let fs = tmp.path().join("fs");
        std::fs::rename(&self.upper, &fs).map_err(|e| SnapshotError::io(&fs, e))?;
        for d in ["work", "merged", "empty"] {
            let p = tmp.path().join(d);
            std::fs::remove_dir_all(&p).map_err(|e| SnapshotError::io(p, e))?;
        }
        self.chains.publish(tmp, &chain, self.parent.as_ref())?;
        Ok(chain)
    }
}

impl Drop for ActiveOverlay {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            tracing::warn!("{e}");
        }
    }
}
