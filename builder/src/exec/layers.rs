//! Between stored layers and snapshots: a stage's layers unpacked once per chain ID (digest and
//! diff_id both verified), and a step's snapshot diff written as a layer.

use std::io::{self, Read};
use std::path::Path;

use registry::store::Store;
use registry::{Descriptor, Digest, DigestHasher};

use crate::fs::{unpack_layer, UnpackOptions};
use crate::layer::writer::DeviceKind as TarDevice;
use crate::layer::{open_layer, EntryMeta as TarMeta, LayerWriter};
use crate::snapshot::{chain_id, DeviceKind, DiffSink, Snapshotter};

use super::error::BuildError;
use super::state::LayerRef;

/// Makes sure the snapshot of `layers` exists, unpacking the missing ones (each layer once per
/// chain, shared by every later build). Returns the top chain ID, `None` for no layers.
pub fn ensure_chain(
    store: &Store,
    snapshotter: &dyn Snapshotter,
    layers: &[LayerRef],
) -> Result<Option<Digest>, BuildError> {
    let mut parent: Option<Digest> = None;
    for layer in layers {
        let chain = chain_id(parent.as_ref(), &layer.diff_id);
        if !snapshotter.exists(&chain) {
            let reader = open_layer(store, &layer.descriptor)?;
            let mut checked = DiffIdCheck::new(reader, &layer.diff_id, &layer.descriptor.digest);
            snapshotter
                .apply_layer(parent.as_ref(), &layer.diff_id, &mut checked)
                .map_err(|e| BuildError::Snapshot {
                    layer: layer.descriptor.digest.clone(),
                    message: e.to_string(),
                })?;
        }
        parent = Some(chain);
    }
    Ok(parent)
}

/// Fails the read at EOF when the uncompressed stream's digest is not the diff_id the image
/// config claims.
struct DiffIdCheck<R> {
    inner: R,
    hasher: Option<DigestHasher>,
    diff_id: Digest,
    blob: Digest,
}

impl<R: Read> DiffIdCheck<R> {
    fn new(inner: R, diff_id: &Digest, blob: &Digest) -> Self {
        DiffIdCheck {
            inner,
            hasher: Some(DigestHasher::new(diff_id.algorithm())),
            diff_id: diff_id.clone(),
            blob: blob.clone(),
        }
    }
}

impl<R: Read> Read for DiffIdCheck<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            if let Some(h) = self.hasher.as_mut() {
                h.update(&buf[..n]);
            }
        } else if let Some(h) = self.hasher.take() {
            let actual = h.finish();
            if actual != self.diff_id {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "layer {} does not match its diff_id: expected {}, got {actual}",
                        self.blob, self.diff_id
                    ),
                ));
            }
        }
        Ok(n)
    }
}

/// Unpacks a stored layer onto `dest`, reading the blob to its end so that its digest is
/// checked (a tar reader stops at the end-of-archive marker, before the last bytes).
pub fn unpack_verified(store: &Store, layer: &Descriptor, dest: &Path) -> Result<(), BuildError> {
    let fail = |e: &dyn std::fmt::Display| {
        BuildError::io(
            dest,
            io::Error::other(format!("unpacking layer {}: {e}", layer.digest)),
        )
    };
    let mut reader = open_layer(store, layer)?;
    unpack_layer(&mut reader, dest, UnpackOptions::default()).map_err(|e| fail(&e))?;
    io::copy(&mut reader, &mut io::sink()).map_err(|e| fail(&e))?;
    Ok(())
}

/// Writes a snapshot diff into a layer.
pub struct LayerSink<'w> {
    pub writer: &'w mut LayerWriter,
}

fn meta(m: &crate::fs::EntryMeta) -> TarMeta {
    TarMeta::from(m)
}

/// A diff path in kiln's string form of names (bytes that are not UTF-8 survive).
fn name(p: &Path) -> std::borrow::Cow<'_, str> {
    crate::fs::name::encode(p.as_os_str())
}

fn io_err(e: crate::layer::Error) -> io::Error {
    io::Error::other(e.to_string())
}

impl DiffSink for LayerSink<'_> {
    fn dir(&mut self, path: &Path, m: &crate::fs::EntryMeta) -> io::Result<()> {
        self.writer.add_dir(&name(path), &meta(m)).map_err(io_err)
    }

    fn file(
        &mut self,
        path: &Path,
        m: &crate::fs::EntryMeta,
        size: u64,
        data: &mut dyn Read,
    ) -> io::Result<()> {
        self.writer
            .add_file(&name(path), &meta(m), size, data)
            .map_err(io_err)
    }

    fn symlink(&mut self, path: &Path, target: &Path, m: &crate::fs::EntryMeta) -> io::Result<()> {
        self.writer
            .add_symlink(&name(path), &meta(m), &name(target))
            .map_err(io_err)
    }

    fn hardlink(&mut self, path: &Path, target: &Path, m: &crate::fs::EntryMeta) -> io::Result<()> {
        self.writer
            .add_hardlink(&name(path), &meta(m), &name(target))
            .map_err(io_err)
    }

    fn device(
        &mut self,
        path: &Path,
        kind: DeviceKind,
        m: &crate::fs::EntryMeta,
    ) -> io::Result<()> {
        let (k, major, minor) = match kind {
            DeviceKind::Char { major, minor } => (TarDevice::Char, major, minor),
            DeviceKind::Block { major, minor } => (TarDevice::Block, major, minor),
            DeviceKind::Fifo => (TarDevice::Fifo, 0, 0),
        };
        self.writer
            .add_device(&name(path), &meta(m), k, major, minor)
            .map_err(io_err)
    }

    fn whiteout(&mut self, path: &Path) -> io::Result<()> {
        self.writer.add_whiteout(&name(path)).map_err(io_err)
    }

    fn opaque(&mut self, dir: &Path) -> io::Result<()> {
        self.writer.add_opaque(&name(dir)).map_err(io_err)
    }
}
