//! `docker save`: the combined docker-archive + OCI layout tar.

use std::collections::BTreeMap;
use std::io::{self, Seek, Write};

use serde::Serialize;

use crate::archive::tarout::{blob_path, TarOut};
use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::image::LocalImage;
use crate::media_types::{self, Compression};
use crate::reference::Reference;
use crate::spec::{Index, Manifest};
use crate::store::{Store, CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION};

/// One image to save and the names it is saved under (none: saved by ID, untagged).
#[derive(Clone, Debug)]
pub struct SaveImage {
    pub image: LocalImage,
    pub tags: Vec<Reference>,
}

/// One `manifest.json` entry, as Docker writes it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// Writes `images` to `out` as a docker-archive (combined with an OCI layout) and returns
/// `out`. Layers are written uncompressed and checked against the config's diff_ids; an image
/// whose layers do not match is an error, never a silently wrong archive.
pub fn save<W: Write>(store: &Store, images: &[SaveImage], out: W) -> Result<W> {
    let mut tar = TarOut::new(out, "docker-archive");
    tar.dir("blobs/")?;
    tar.dir("blobs/sha256/")?;
    let mut entries: Vec<ArchiveEntry> = Vec::new();
    let mut index = Index::oci(Vec::new());
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for SaveImage { image, tags } in images {
        let config_desc = Descriptor::new(
            media_types::OCI_CONFIG,
            image.id().clone(),
            image.config_bytes.len() as u64,
        );
        let config_path = blob_path(image.id());
        if !tar.has(&config_path) {
            tar.file(&config_path, &image.config_bytes)?;
        }
        let mut layers = Vec::new();
        for (layer, diff_id) in image.layers().iter().zip(image.diff_ids()) {
            let size = write_plain_layer(store, &mut tar, layer, diff_id)?;
            layers.push(Descriptor::new(
                media_types::OCI_LAYER,
                diff_id.clone(),
                size,
            ));
        }
        let manifest = Manifest::oci(config_desc, layers);
        let manifest_bytes = manifest.to_bytes();
        let manifest_digest = Digest::of(&manifest_bytes);
        let manifest_path = blob_path(&manifest_digest);
        if !tar.has(&manifest_path) {
            tar.file(&manifest_path, &manifest_bytes)?;
        }
        let manifest_desc = Descriptor::new(
            media_types::OCI_MANIFEST,
            manifest_digest,
            manifest_bytes.len() as u64,
        );
        let layer_paths: Vec<String> = image.diff_ids().iter().map(blob_path).collect();
        // One manifest.json entry per image; several names share it.
        let entry = match entries.iter_mut().position(|e| e.config == config_path) {
            Some(i) => &mut entries[i],
            None => {
                entries.push(ArchiveEntry {
                    config: config_path.clone(),
                    repo_tags: Vec::new(),
                    layers: layer_paths,
                });
                entries.last_mut().expect("just pushed")
            }
        };
        if tags.is_empty() {
            index.manifests.push(manifest_desc.clone());
        }
        for tag in tags {
            let Some(t) = tag.tag() else { continue };
            let familiar = tag.without_digest().familiar();
            if !entry.repo_tags.contains(&familiar) {
                entry.repo_tags.push(familiar);
            }
            let mut d = manifest_desc.clone();
            d.annotations = Some(BTreeMap::from([
                (
                    CONTAINERD_NAME_ANNOTATION.to_string(),
                    tag.without_digest().to_string(),
                ),
                (REF_NAME_ANNOTATION.to_string(), t.to_string()),
            ]));
            index.manifests.push(d);
            if let Some(top) = image.diff_ids().last() {
                repositories
                    .entry(tag.familiar_name())
                    .or_default()
                    .insert(t.to_string(), top.hex().to_string());
            }
        }
    }
    let mut index_bytes = serde_json::to_vec(&index).expect("index serializes");
    index_bytes.push(b'\n');
    tar.file("index.json", &index_bytes)?;
    let mut manifest_json = serde_json::to_vec(&entries).expect("manifest.json serializes");
    manifest_json.push(b'\n');
    tar.file("manifest.json", &manifest_json)?;
    tar.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    if !repositories.is_empty() {
        let mut r = serde_json::to_vec(&repositories).expect("repositories serializes");
        r.push(b'\n');
        tar.file("repositories", &r)?;
    }
    tar.finish()
}

/// Writes a layer uncompressed as `blobs/sha256/<diff_id>`, once; returns its size. A
/// compressed layer is decompressed into an unnamed temp file first (the tar header needs
/// the size), never into memory.
fn write_plain_layer<W: Write>(
    store: &Store,
    tar: &mut TarOut<W>,
    layer: &Descriptor,
    diff_id: &Digest,
) -> Result<u64> {
    let path = blob_path(diff_id);
    let compression = Compression::of_layer(&layer.media_type).ok_or_else(|| {
        Error::UnsupportedMediaType(format!("{} (layer {})", layer.media_type, layer.digest))
    })?;
    if compression == Compression::None {
        if layer.digest != *diff_id {
            return Err(Error::DigestMismatch {
                what: format!("uncompressed layer {} (diff_id)", layer.digest),
                expected: diff_id.clone(),
                actual: layer.digest.clone(),
            });
        }
        if !tar.has(&path) {
            tar.blob(store, layer)?;
        }
        return Ok(layer.size);
    }
    let ingest = store.root().join("ingest");
    let mut tmp = tempfile::tempfile_in(&ingest).at(&ingest)?;
    let blob = store.open_blob(&layer.digest)?;
    let mut hashing = crate::digest::HashingWriter::new(&mut tmp);
    decompress_into(compression, blob, &mut hashing).at(store.blob_path(&layer.digest))?;
    let (_, actual, size) = hashing.finish();
    if actual != *diff_id {
        return Err(Error::DigestMismatch {
            what: format!("decompressed layer {} (diff_id)", layer.digest),
            expected: diff_id.clone(),
            actual,
        });
    }
    if !tar.has(&path) {
        tmp.rewind().at(&ingest)?;
        tar.stream(&path, size, &mut tmp)?;
    }
    Ok(size)
}

/// Streams `src` decompressed into `dst`.
pub(crate) fn decompress_into(
    compression: Compression,
    src: impl io::Read,
    dst: &mut impl Write,
) -> io::Result<u64> {
    match compression {
        Compression::None => io::copy(&mut io::BufReader::new(src), dst),
        Compression::Gzip => io::copy(&mut flate2::read::MultiGzDecoder::new(src), dst),
        Compression::Zstd => io::copy(&mut zstd::stream::read::Decoder::new(src)?, dst),
    }
}
