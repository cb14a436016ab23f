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
            let reader = open_layer(store, &layer.descriptor)?;
            unpack_layer(reader, self.dir.path(), UnpackOptions::default()).map_err(|e| {
                BuildError::io(
                    self.dir.path(),
                    std::io::Error::other(format!("unpacking layer {}: {e}", layer.diff_id)),
                )
            })?;
            self.applied += 1;
        }
        Ok(())
    }
}
