//! A stage's filesystem as a directory, for the lookups COPY and WORKDIR need (does the
//! destination exist, where do its symlinks lead, who is `app` in /etc/passwd) and as the source
//! of `COPY --from`. Each committed layer is applied on top as it is made.

use std::path::Path;

use registry::store::Store;

use crate::fs::{unpack_layer, UnpackOptions};
use crate::layer::open_layer;

use super::error::BuildError;
use super::state::LayerRef;

pub struct StageFs {
    dir: tempfile::TempDir,
    applied: usize,
}

impl StageFs {
    pub fn new(work: &Path) -> Result<StageFs, BuildError> {
        std::fs::create_dir_all(work).map_err(|e| BuildError::io(work, e))?;
        let dir = tempfile::Builder::new()
            .prefix("rootfs-")
            .tempdir_in(work)
            .map_err(|e| BuildError::io(work, e))?;
        Ok(StageFs { dir, applied: 0 })
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Applies the layers not yet applied (the stage's layers are always a superset, in
    /// order, of what was applied before).
    pub fn sync(&mut self, store: &Store, layers: &[LayerRef]) -> Result<(), BuildError> {
        for layer in &layers[self.applied.min(layers.len())..] {
            unpack_verified(store, &layer.descriptor, self.dir.path())?;
            self.applied += 1;
        }
        Ok(())
    }
}

/// Unpacks a stored layer onto `dest`, reading the blob to its end so that its digest is
/// checked: a tar reader stops at the end-of-archive marker, before the compressed stream's
/// last bytes, and a corrupt blob must never pass unnoticed.
pub fn unpack_verified(
    store: &Store,
    layer: &registry::Descriptor,
    dest: &Path,
) -> Result<(), BuildError> {
    let fail = |e: &dyn std::fmt::Display| {
        BuildError::io(
            dest,
            std::io::Error::other(format!("unpacking layer {}: {e}", layer.digest)),
        )
    };
    let mut reader = open_layer(store, layer)?;
    unpack_layer(&mut reader, dest, UnpackOptions::default()).map_err(|e| fail(&e))?;
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| fail(&e))?;
    Ok(())
}
