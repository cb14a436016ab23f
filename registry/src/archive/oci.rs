//! OCI image layouts, as a directory or a tar, with blobs exactly as stored.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::archive::tarout::{blob_path, TarOut};
use crate::descriptor::Descriptor;
use crate::digest::HashingWriter;
use crate::error::{Error, IoContext, Result};
use crate::media_types;
use crate::reference::Reference;
use crate::spec::Index;
use crate::store::{
    blob::write_atomic, walk, Store, CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION,
};

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// An image (manifest or index) to export and its names.
#[derive(Clone, Debug)]
pub struct OciImage {
    pub descriptor: Descriptor,
    pub tags: Vec<Reference>,
}

/// index.json entries for `images`: one per tag, with `org.opencontainers.image.ref.name` =
/// the tag (as BuildKit, Docker and skopeo write it, so `umoci --image DIR:TAG` finds it) and
/// `io.containerd.image.name` = the fully-qualified name.
fn index_entries(images: &[OciImage]) -> Vec<Descriptor> {
    let mut out = Vec::new();
    for img in images {
        let mut base = img.descriptor.clone();
        base.annotations = None;
        if img.tags.is_empty() {
            out.push(base.clone());
        }
        for tag in &img.tags {
            let mut d = base.clone();
            let mut a = BTreeMap::new();
            a.insert(
                CONTAINERD_NAME_ANNOTATION.to_string(),
                tag.without_digest().to_string(),
            );
            if let Some(t) = tag.tag() {
                a.insert(REF_NAME_ANNOTATION.to_string(), t.to_string());
            }
            d.annotations = Some(a);
            out.push(d);
        }
    }
    out
}

/// Every blob the images need, parents before children. A manifest's config and layers must
/// be present; an index's absent children (other platforms) are left out.
fn collect_blobs(store: &Store, images: &[OciImage]) -> Result<Vec<Descriptor>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<(Descriptor, bool)> = images
        .iter()
        .map(|i| (i.descriptor.clone(), true))
        .collect();
    while let Some((desc, required)) = stack.pop() {
        if !seen.insert(desc.digest.clone()) {
            continue;
        }
        if !store.has_blob(&desc.digest) {
            if required {
                return Err(Error::BlobNotFound(desc.digest));
            }
            continue;
        }
        let is_index = media_types::is_index(&desc.media_type);
        if let Some(children) = walk::children(store, &desc)? {
            stack.extend(children.into_iter().map(|c| (c, !is_index)));
        }
        out.push(desc);
    }
    Ok(out)
}

/// Writes the images as an OCI image layout directory at `dest` (created if needed). An
/// existing layout there is added to: entries with the same names are replaced.
pub fn export_oci_layout(store: &Store, images: &[OciImage], dest: &Path) -> Result<()> {
    let blobs_dir = dest.join("blobs/sha256");
    fs::create_dir_all(&blobs_dir).at(&blobs_dir)?;
    for desc in collect_blobs(store, images)? {
        let target = dest.join(blob_path(&desc.digest));
        if fs::metadata(&target).is_ok_and(|m| m.len() == desc.size) {
            continue;
        }
        copy_verified(store, &desc, &target)?;
    }
    let index_path = dest.join("index.json");
    let mut index = match fs::read(&index_path) {
        Ok(b) => serde_json::from_slice::<Index>(&b)
            .map_err(|e| Error::json(format!("{}", index_path.display()), e))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Index::oci(Vec::new()),
        Err(e) => return Err(Error::io(index_path, e)),
    };
    let new = index_entries(images);
    let name = |d: &Descriptor| d.annotation(CONTAINERD_NAME_ANNOTATION).map(str::to_string);
    let new_names: HashSet<String> = new.iter().filter_map(name).collect();
    index
        .manifests
        .retain(|d| name(d).is_none_or(|n| !new_names.contains(&n)));
    index.manifests.extend(new);
    let mut bytes = serde_json::to_vec(&index).expect("index serializes");
    bytes.push(b'\n');
    write_atomic(&dest.join("oci-layout"), OCI_LAYOUT)?;
    write_atomic(&index_path, &bytes)
}

/// Copies a store blob to `target`, verifying its digest, via a temp file and a rename.
fn copy_verified(store: &Store, desc: &Descriptor, target: &Path) -> Result<()> {
    let dir = target.parent().expect("blob path has a parent");
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .at(dir)?;
    let mut w = HashingWriter::new(io::BufWriter::new(tmp));
    let mut src = store.open_blob(&desc.digest)?;
    io::copy(&mut src, &mut w).at(store.blob_path(&desc.digest))?;
    let (buf, actual, size) = w.finish();
    if actual != desc.digest {
        return Err(Error::DigestMismatch {
            what: format!("stored blob {}", store.blob_path(&desc.digest).display()),
            expected: desc.digest.clone(),
            actual,
        });
    }
    if size != desc.size {
        return Err(Error::SizeMismatch {
            digest: desc.digest.clone(),
            expected: desc.size,
            actual: size,
        });
    }
    let tmp = buf
        .into_inner()
        .map_err(|e| Error::io(dir, e.into_error()))?;
    tmp.persist(target)
        .map_err(|e| Error::io(target, e.error))?;
    Ok(())
}

/// Writes the images as an OCI image layout tar (`oci-archive`).
pub fn write_oci_archive<W: Write>(store: &Store, images: &[OciImage], out: W) -> Result<W> {
    let mut tar = TarOut::new(out, "oci archive");
    tar.file("oci-layout", OCI_LAYOUT)?;
    tar.dir("blobs/")?;
    tar.dir("blobs/sha256/")?;
    for desc in collect_blobs(store, images)? {
        tar.blob(store, &desc)?;
    }
    let index = Index::oci(index_entries(images));
    let mut bytes = serde_json::to_vec(&index).expect("index serializes");
    bytes.push(b'\n');
    tar.file("index.json", &bytes)?;
    tar.finish()
}
