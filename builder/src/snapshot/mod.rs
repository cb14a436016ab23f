//! Snapshotters: base-image layers unpacked once per chain ID, a writable rootfs for each
//! step, and the step's changes read back as a diff.
//!
//! - [`overlay`]: layers are overlayfs lower dirs, a step writes into a fresh upper dir and
//!   the diff walks only that upper dir (cost ~ what changed).
//! - [`native`]: for hosts where overlayfs cannot be mounted: the parent tree is copied
//!   (reflink / `copy_file_range`) and the diff compares metadata against the parent.
//!
//! Layout: `<store>/snapshots/<kind>/<chain-id hex>/{fs/,parent}`; a snapshot directory
//! appears by rename once complete, so its existence means it is whole. Temporary and active
//! snapshots live in `<store>/snapshots/<kind>/tmp/` and vanish when dropped.

pub mod copy;
pub mod error;
pub mod native;
pub mod overlay;
pub mod sink;
pub mod walk;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use registry::Digest;

pub use error::{Result, SnapshotError};
pub use sink::{Change, DeviceKind, DiffSink, RecordingSink, TarSink};
pub use walk::DiffStats;

/// The OCI chain ID of a layer stack: `chain(L0) = diff_id(L0)`,
/// `chain(Ln) = sha256(chain(Ln-1) + " " + diff_id(Ln))`.
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// `--snapshotter overlay|native`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SnapshotterKind {
    Overlay,
    Native,
}

impl SnapshotterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotterKind::Overlay => "overlay",
            SnapshotterKind::Native => "native",
        }
    }
}

impl fmt::Display for SnapshotterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SnapshotterKind {
    type Err = SnapshotError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "overlay" | "overlayfs" => Ok(SnapshotterKind::Overlay),
            "native" => Ok(SnapshotterKind::Native),
            _ => Err(SnapshotError::UnknownKind(s.to_string())),
        }
    }
}

pub trait Snapshotter: Send + Sync {
    fn kind(&self) -> SnapshotterKind;

    /// Whether the snapshot of `chain` is present (its layer need not be read again).
    fn exists(&self, chain: &Digest) -> bool;

    /// Unpacks the uncompressed layer `tar` with `diff_id` on top of `parent`, unless that
    /// chain is already present. Returns the new chain ID.
    fn apply_layer(
        &self,
        parent: Option<&Digest>,
        diff_id: &Digest,
        tar: &mut dyn Read,
    ) -> Result<Digest>;

    /// A writable rootfs on top of `parent` (an empty one for `None`).
    fn prepare(&self, parent: Option<&Digest>) -> Result<Box<dyn ActiveSnapshot>>;

    /// A read-only look at `chain` for lookups and `COPY --from`; never written through. The
    /// default is a prepared snapshot that is dropped unused.
    fn view(&self, chain: Option<&Digest>) -> Result<Box<dyn SnapshotView>> {
        Ok(Box::new(PreparedView(self.prepare(chain)?)))
    }
}

/// A rootfs to read (see [`Snapshotter::view`]).
pub trait SnapshotView: Send {
    fn rootfs(&self) -> &Path;
}

pub(crate) struct PreparedView(pub Box<dyn ActiveSnapshot>);

impl SnapshotView for PreparedView {
    fn rootfs(&self) -> &Path {
        self.0.rootfs()
    }
}

/// A committed snapshot's own directory, when it holds the whole tree (native).
pub(crate) struct DirView(pub PathBuf);

impl SnapshotView for DirView {
    fn rootfs(&self) -> &Path {
        &self.0
    }
}

/// Unpacks `tar` into `fs` (inside `tmp`), reads the stream to its end and publishes `tmp` as
/// the snapshot of `chain`: the caller's reader verifies digests at EOF, and a layer that fails
/// them must not be published.
#[allow(clippy::too_many_arguments)]
pub(crate) fn unpack_and_publish(
    chains: &Chains,
    tmp: tempfile::TempDir,
    fs: &Path,
    tar: &mut dyn Read,
    diff_id: &Digest,
    opts: crate::fs::UnpackOptions,
    chain: &Digest,
    parent: Option<&Digest>,
) -> Result<()> {
    crate::fs::unpack_layer(&mut *tar, fs, opts).map_err(|source| SnapshotError::Unpack {
        diff_id: diff_id.clone(),
        source,
    })?;
    drain(tar, diff_id)?;
    chains.publish(tmp, chain, parent)
}

/// Reads what is left of a layer stream after its tar end marker.
pub(crate) fn drain(tar: &mut dyn Read, diff_id: &Digest) -> Result<()> {
    std::io::copy(tar, &mut std::io::sink()).map_err(|e| {
        SnapshotError::io(
            PathBuf::from(format!("diff {diff_id}")),
            std::io::Error::new(e.kind(), e.to_string()),
        )
    })?;
    Ok(())
}

/// A writable snapshot. Dropping it without [`ActiveSnapshot::commit`] discards it.
pub trait ActiveSnapshot: Send {
    /// The directory to use as the step's `/`.
    fn rootfs(&self) -> &Path;

    fn parent(&self) -> Option<&Digest>;

    /// Emits what changed relative to the parent.
    fn diff(&mut self, sink: &mut dyn DiffSink) -> Result<DiffStats>;

    /// Keeps the changes as the snapshot of `chain_id(parent, diff_id)` (the diff_id of the
    /// layer the caller wrote from [`ActiveSnapshot::diff`]), so the next step starts from it
    /// without unpacking anything.
    fn commit(self: Box<Self>, diff_id: &Digest) -> Result<Digest>;
}

/// Opens the snapshotter of a store; `None` picks overlay when it can be mounted here and
/// falls back to native otherwise. The choice (and the probe mount it needs) is made on first
/// use, so a build that is all cache hits never mounts anything.
pub fn open_snapshotter(
    store_root: &Path,
    kind: Option<SnapshotterKind>,
) -> Result<Box<dyn Snapshotter>> {
    Ok(Box::new(LazySnapshotter {
        base: store_root.join("snapshots"),
        kind,
        inner: std::sync::OnceLock::new(),
    }))
}

/// Picks and opens the snapshotter on first use.
struct LazySnapshotter {
    base: PathBuf,
    kind: Option<SnapshotterKind>,
    inner: std::sync::OnceLock<std::result::Result<Box<dyn Snapshotter>, String>>,
}

impl LazySnapshotter {
    fn get(&self) -> Result<&dyn Snapshotter> {
        let opened = self.inner.get_or_init(|| {
            let kind = self
                .kind
                .unwrap_or_else(|| match overlay::probe(&self.base) {
                    Ok(()) => SnapshotterKind::Overlay,
                    Err(e) => {
                        tracing::info!("overlayfs unavailable ({e}); using the native snapshotter");
                        SnapshotterKind::Native
                    }
                });
            let opened: Result<Box<dyn Snapshotter>> = match kind {
                SnapshotterKind::Overlay => {
                    overlay::OverlaySnapshotter::new(self.base.join("overlay"))
                        .map(|s| Box::new(s) as Box<dyn Snapshotter>)
                }
                SnapshotterKind::Native => native::NativeSnapshotter::new(self.base.join("native"))
                    .map(|s| Box::new(s) as Box<dyn Snapshotter>),
            };
            opened.map_err(|e| e.to_string())
        });
        match opened {
            Ok(s) => Ok(s.as_ref()),
            Err(msg) => Err(SnapshotError::io(
                &self.base,
                std::io::Error::other(msg.clone()),
            )),
        }
    }
}

impl Snapshotter for LazySnapshotter {
    fn kind(&self) -> SnapshotterKind {
        match self.get() {
            Ok(s) => s.kind(),
            Err(_) => self.kind.unwrap_or(SnapshotterKind::Native),
        }
    }

    fn exists(&self, chain: &Digest) -> bool {
        self.get().is_ok_and(|s| s.exists(chain))
    }

    fn apply_layer(
        &self,
        parent: Option<&Digest>,
        diff_id: &Digest,
        tar: &mut dyn Read,
    ) -> Result<Digest> {
        self.get()?.apply_layer(parent, diff_id, tar)
    }

    fn prepare(&self, parent: Option<&Digest>) -> Result<Box<dyn ActiveSnapshot>> {
        self.get()?.prepare(parent)
    }

    fn view(&self, chain: Option<&Digest>) -> Result<Box<dyn SnapshotView>> {
        self.get()?.view(chain)
    }
}

/// Committed snapshots of one kind, by chain ID.
#[derive(Clone, Debug)]
pub(crate) struct Chains {
    root: PathBuf,
}

impl Chains {
    pub fn new(root: PathBuf) -> Result<Chains> {
        std::fs::create_dir_all(root.join("tmp")).map_err(|e| SnapshotError::io(&root, e))?;
        Ok(Chains { root })
    }

    pub fn dir(&self, chain: &Digest) -> PathBuf {
        self.root.join(chain.hex())
    }

    pub fn fs(&self, chain: &Digest) -> PathBuf {
        self.dir(chain).join("fs")
    }

    pub fn exists(&self, chain: &Digest) -> bool {
        self.fs(chain).is_dir()
    }

    pub fn require(&self, chain: &Digest) -> Result<PathBuf> {
        if self.exists(chain) {
            Ok(self.fs(chain))
        } else {
            Err(SnapshotError::NotFound {
                chain: chain.clone(),
            })
        }
    }

    pub fn parent(&self, chain: &Digest) -> Result<Option<Digest>> {
        let p = self.dir(chain).join("parent");
        match std::fs::read_to_string(&p) {
            Ok(s) => s.trim().parse().map(Some).map_err(|e| {
                SnapshotError::io(&p, std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SnapshotError::io(p, e)),
        }
    }

    pub fn tmp(&self) -> Result<tempfile::TempDir> {
        let t = self.root.join("tmp");
        tempfile::Builder::new()
            .prefix("snap-")
            .tempdir_in(&t)
            .map_err(|e| SnapshotError::io(t, e))
    }

    /// Publishes `tmp` (holding `fs/`) as the snapshot of `chain`. If another process got
    /// there first, ours is discarded and theirs kept.
    pub fn publish(
        &self,
        tmp: tempfile::TempDir,
        chain: &Digest,
        parent: Option<&Digest>,
    ) -> Result<()> {
        if let Some(p) = parent {
            let path = tmp.path().join("parent");
            std::fs::write(&path, p.to_string()).map_err(|e| SnapshotError::io(path, e))?;
        }
        let dest = self.dir(chain);
        match std::fs::rename(tmp.path(), &dest) {
            Ok(()) => Ok(()),
            Err(_) if self.exists(chain) => Ok(()),
            Err(e) => Err(SnapshotError::io(dest, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        assert_eq!(chain_id(None, &a), a);
        let expected = Digest::of(format!("{a} {b}").as_bytes());
        assert_eq!(chain_id(Some(&a), &b), expected);
    }

    #[test]
    fn kinds_parse() {
        assert_eq!(
            "overlay".parse::<SnapshotterKind>().unwrap(),
            SnapshotterKind::Overlay
        );
        assert_eq!(
            "native".parse::<SnapshotterKind>().unwrap(),
            SnapshotterKind::Native
        );
        let err = "zfs".parse::<SnapshotterKind>().unwrap_err().to_string();
        assert!(err.contains("zfs"), "{err}");
    }
}
