//! The content graph: which blobs a manifest or index points at.

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::media_types;
use crate::spec::ManifestKind;
use crate::store::Store;

/// Blobs bigger than this are never manifests (registries cap manifests at 4 MiB).
pub(crate) const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// The descriptors a blob points at, if it is a manifest or an index; `None` for leaves
/// (configs, layers, unknown types). The blob is read verified.
pub(crate) fn children(store: &Store, desc: &Descriptor) -> Result<Option<Vec<Descriptor>>> {
    if !media_types::is_manifest(&desc.media_type) && !media_types::is_index(&desc.media_type) {
        return Ok(None);
    }
    check_manifest_size(store, &desc.digest)?;
    let bytes = store.read_blob(&desc.digest)?;
    parse_children(&desc.digest, &bytes, Some(&desc.media_type)).map(Some)
}

/// Children of a blob known only by digest (a gc root given by a caller): it is treated as a
/// manifest or index if it is small and parses as one.
pub(crate) fn children_of_digest(store: &Store, digest: &Digest) -> Result<Vec<Descriptor>> {
    let size = store.blob_size(digest)?;
    if size > MAX_MANIFEST_SIZE {
        return Ok(Vec::new());
    }
    let bytes = store.read_blob(digest)?;
    let looks_like_manifest = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("schemaVersion").cloned())
        .is_some();
    if !looks_like_manifest {
        return Ok(Vec::new());
    }
    parse_children(digest, &bytes, None)
}

/// Refuses to read a "manifest" too big to be one (a hostile archive or registry could
/// otherwise make kiln read gigabytes into memory).
pub(crate) fn check_manifest_size(store: &Store, digest: &Digest) -> Result<()> {
    let size = store.blob_size(digest)?;
    if size > MAX_MANIFEST_SIZE {
        return Err(Error::invalid(
            format!("manifest {digest}"),
            format!("{size} bytes is more than the {MAX_MANIFEST_SIZE} a manifest may have"),
        ));
    }
    Ok(())
}

fn parse_children(
    digest: &Digest,
    bytes: &[u8],
    media_type: Option<&str>,
) -> Result<Vec<Descriptor>> {
    let kind = ManifestKind::parse(bytes, media_type)
        .map_err(|e| Error::invalid(format!("manifest {digest}"), e.to_string()))?;
    Ok(match kind {
        ManifestKind::Image(m) => {
            let mut out = vec![m.config];
            out.extend(m.layers);
            out.extend(m.subject);
            out
        }
        ManifestKind::Index(i) => i.manifests,
    })
}
