//! The native (copy-based) snapshotter, for hosts where overlayfs cannot be mounted: each
//! snapshot is a full tree; a step gets a copy of its parent and the diff compares the two
//! by metadata, reading file contents only when metadata cannot tell.
//!
//! Change detection: a marker file is written right after the copy. Anything not touched
//! since has a ctime older than the marker's (chmod, chown, writes, renames and link count
//! changes all bump ctime, and users cannot set ctime), so only entries with a newer or
//! equal ctime are compared; equal metadata with a newer ctime falls back to comparing
//! contents. A directory born after the marker (statx btime) replaced the parent's one and
//! is emitted as opaque, like overlayfs does.

use std::io::Read;
use std::path::{Path, PathBuf};

use registry::Digest;
use rustix::fs::{self as rfs, AtFlags, FileType, StatxFlags};

use super::copy::copy_tree;
use super::error::{Result, SnapshotError};
use super::walk::{entry_meta, file_type, read_sorted, DiffStats, Emitter};
use super::{chain_id, ActiveSnapshot, Chains, DiffSink, Snapshotter, SnapshotterKind};
use crate::fs::{Timestamp, UnpackOptions};

pub struct NativeSnapshotter {
    chains: Chains,
}

impl NativeSnapshotter {
    pub fn new(root: PathBuf) -> Result<NativeSnapshotter> {
        Ok(NativeSnapshotter {
            chains: Chains::new(root)?,
        })
    }

    fn fresh_tree(&self, parent: Option<&Digest>) -> Result<(tempfile::TempDir, PathBuf)> {
        let tmp = self.chains.tmp()?;
        let fs = tmp.path().join("fs");
        match parent {
            Some(p) => copy_tree(&self.chains.require(p)?, &fs)?,
            None => std::fs::create_dir(&fs).map_err(|e| SnapshotError::io(&fs, e))?,
        }
        Ok((tmp, fs))
    }
}

impl Snapshotter for NativeSnapshotter {
    fn kind(&self) -> SnapshotterKind {
        SnapshotterKind::Native
    }

    fn exists(&self, chain: &Digest) -> bool {
        self.chains.exists(chain)
    }

    /// A native snapshot holds its whole tree: look at it in place, no copy.
    fn view(&self, chain: Option<&Digest>) -> Result<Box<dyn super::SnapshotView>> {
        match chain {
            Some(c) => Ok(Box::new(super::DirView(self.chains.require(c)?))),
            None => {
                let active = self.prepare(None)?;
                Ok(Box::new(super::PreparedView(active)))
            }
        }
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
        let (tmp, fs) = self.fresh_tree(parent)?;
        super::unpack_and_publish(
            &self.chains,
            tmp,
            &fs,
            tar,
            diff_id,
            UnpackOptions::default(),
            &chain,
            parent,
        )?;
        Ok(chain)
    }

    fn prepare(&self, parent: Option<&Digest>) -> Result<Box<dyn ActiveSnapshot>> {
        let (tmp, fs) = self.fresh_tree(parent)?;
        let marker_path = tmp.path().join("marker");
        std::fs::write(&marker_path, b"").map_err(|e| SnapshotError::io(&marker_path, e))?;
        let marker = times(&marker_path)?.ctime;
        wait_for_clock_tick(tmp.path(), marker)?;
        let parent_fs = parent.map(|p| self.chains.fs(p));
        Ok(Box::new(ActiveNative {
            chains: self.chains.clone(),
            tmp: Some(tmp),
            fs,
            parent: parent.cloned(),
            parent_fs,
            marker,
        }))
    }
}

/// File times come from a coarse clock: wait until it has moved past `marker`, so anything
/// the step creates is strictly newer than the copy.
fn wait_for_clock_tick(dir: &Path, marker: Timestamp) -> Result<()> {
    let probe = dir.join("clock-probe");
    for _ in 0..1000 {
        std::fs::write(&probe, b"").map_err(|e| SnapshotError::io(&probe, e))?;
        if times(&probe)?.ctime > marker {
            break;
        }
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
    std::fs::remove_file(&probe).map_err(|e| SnapshotError::io(&probe, e))
}

struct Times {
    ctime: Timestamp,
    btime: Option<Timestamp>,
}

fn times(path: &Path) -> Result<Times> {
    let x = rfs::statx(
        rfs::CWD,
        path,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::CTIME | StatxFlags::BTIME,
    )
    .map_err(|e| SnapshotError::io(path, e))?;
    let ts = |t: rfs::StatxTimestamp| Timestamp {
        secs: t.tv_sec,
        nanos: t.tv_nsec,
    };
    Ok(Times {
        ctime: ts(x.stx_ctime),
        btime: (x.stx_mask & StatxFlags::BTIME.bits() != 0).then(|| ts(x.stx_btime)),
    })
}

pub struct ActiveNative {
    chains: Chains,
    tmp: Option<tempfile::TempDir>,
    fs: PathBuf,
    parent: Option<Digest>,
    parent_fs: Option<PathBuf>,
    marker: Timestamp,
}

impl ActiveNative {
    /// Walks `rel` in the active tree against the parent tree (`compare`: the parent has
    /// this directory and its children are compared, else everything below is new).
    fn walk(&self, em: &mut Emitter<'_>, rel: &Path, compare: bool) -> Result<()> {
        let host = self.fs.join(rel);
        let active = read_sorted(&host)?;
        let parent = match (&self.parent_fs, compare) {
            (Some(p), true) => read_sorted(&p.join(rel))?,
            _ => Vec::new(),
        };
        let (mut a, mut p) = (active.into_iter().peekable(), parent.into_iter().peekable());
        loop {
            let order = match (a.peek(), p.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(x), Some(y)) => x.0.as_encoded_bytes().cmp(y.0.as_encoded_bytes()),
            };
            match order {
                std::cmp::Ordering::Greater => {
                    let (name, _) = p.next().expect("peeked");
                    em.whiteout(&rel.join(name))?;
                }
                std::cmp::Ordering::Less => {
                    let (name, st) = a.next().expect("peeked");
                    self.entry(em, rel, &name, &st, None)?;
                }
                std::cmp::Ordering::Equal => {
                    let (name, st) = a.next().expect("peeked");
                    let (_, pst) = p.next().expect("peeked");
                    self.entry(em, rel, &name, &st, Some(&pst))?;
                }
            }
        }
        Ok(())
    }

    fn entry(
        &self,
        em: &mut Emitter<'_>,
        rel: &Path,
        name: &std::ffi::OsStr,
        st: &rfs::Stat,
        old: Option<&rfs::Stat>,
    ) -> Result<()> {
        let crel = rel.join(name);
        let host = self.fs.join(&crel);
        if file_type(st) == FileType::Directory {
            let meta = entry_meta(&host, st)?;
            let Some(old) = old else {
                em.enter_dir(&crel, meta, true)?;
                self.walk(em, &crel, false)?;
                em.leave_dir();
                return Ok(());
            };
            let born_after = times(&host)?.btime.is_some_and(|b| b > self.marker);
            if file_type(old) != FileType::Directory || born_after {
                em.enter_dir(&crel, meta, true)?;
                em.opaque(&crel)?;
                self.walk(em, &crel, false)?;
            } else {
                let old_path = self.parent_path(&crel);
                let changed = self.touched(st) && meta != entry_meta(&old_path, old)?;
                em.enter_dir(&crel, meta, changed)?;
                self.walk(em, &crel, true)?;
            }
            em.leave_dir();
            return Ok(());
        }
        match old {
            Some(old) if !self.changed(&host, st, &self.parent_path(&crel), old)? => Ok(()),
            _ => em.entry(&host, &crel, st),
        }
    }

    fn parent_path(&self, rel: &Path) -> PathBuf {
        self.parent_fs
            .as_deref()
            .unwrap_or(Path::new("/nonexistent"))
            .join(rel)
    }

    fn touched(&self, st: &rfs::Stat) -> bool {
        Timestamp {
            secs: st.st_ctime,
            nanos: st.st_ctime_nsec as u32,
        } >= self.marker
    }

    fn changed(
        &self,
        path: &Path,
        st: &rfs::Stat,
        old_path: &Path,
        old: &rfs::Stat,
    ) -> Result<bool> {
        if !self.touched(st) {
            return Ok(false);
        }
        if file_type(st) != file_type(old)
            || st.st_size != old.st_size
            || st.st_nlink != old.st_nlink
            || st.st_rdev != old.st_rdev
            || entry_meta(path, st)? != entry_meta(old_path, old)?
        {
            return Ok(true);
        }
        match file_type(st) {
            FileType::Symlink => {
                let a = std::fs::read_link(path).map_err(|e| SnapshotError::io(path, e))?;
                let b = std::fs::read_link(old_path).map_err(|e| SnapshotError::io(old_path, e))?;
                Ok(a != b)
            }
            FileType::RegularFile => Ok(!same_contents(path, old_path)?),
            _ => Ok(false),
        }
    }
}

fn same_contents(a: &Path, b: &Path) -> Result<bool> {
    let open = |p: &Path| std::fs::File::open(p).map_err(|e| SnapshotError::io(p, e));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let na = read_full(&mut fa, &mut ba).map_err(|e| SnapshotError::io(a, e))?;
        let nb = read_full(&mut fb, &mut bb).map_err(|e| SnapshotError::io(b, e))?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

impl ActiveSnapshot for ActiveNative {
    fn rootfs(&self) -> &Path {
        &self.fs
    }

    fn parent(&self) -> Option<&Digest> {
        self.parent.as_ref()
    }

    fn diff(&mut self, sink: &mut dyn DiffSink) -> Result<DiffStats> {
        let mut em = Emitter::new(sink);
        em.enter_dir(Path::new(""), Default::default(), false)?;
        self.walk(&mut em, Path::new(""), self.parent_fs.is_some())?;
        Ok(em.stats)
    }

    fn commit(mut self: Box<Self>, diff_id: &Digest) -> Result<Digest> {
        let chain = chain_id(self.parent.as_ref(), diff_id);
        let tmp = self.tmp.take().expect("active snapshot has its dir");
        if !self.chains.exists(&chain) {
            let marker = tmp.path().join("marker");
            std::fs::remove_file(&marker).map_err(|e| SnapshotError::io(marker, e))?;
            self.chains.publish(tmp, &chain, self.parent.as_ref())?;
        }
        Ok(chain)
    }
}
