//! A read-only view of one image in the local store, resolved to one platform.

use crate::descriptor::{Descriptor, Platform};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::media_types;
use crate::reference::Reference;
use crate::spec::{ImageConfig, Manifest, ManifestKind};
use crate::store::Store;

/// Indexes nest at most this deep (an index of indexes is legal but rare).
const MAX_INDEX_DEPTH: usize = 4;

/// One platform's image: manifest and config read and verified, layers described.
#[derive(Clone, Debug)]
pub struct LocalImage {
    /// The index it was picked from, when the tag points at an index.
    pub index: Option<Descriptor>,
    pub manifest_descriptor: Descriptor,
    pub manifest_bytes: Vec<u8>,
    pub manifest: Manifest,
    pub config_bytes: Vec<u8>,
    pub config: ImageConfig,
}

impl LocalImage {
    /// Opens the image a tag or digest reference names.
    pub fn open_ref(store: &Store, reference: &Reference, platform: &Platform) -> Result<Self> {
        let desc = store.resolve(reference)?;
        LocalImage::open(store, &desc, platform)
    }

    /// Opens the image `desc` (a manifest, or an index resolved to `platform`'s manifest).
    /// Every blob read is verified against its digest.
    pub fn open(store: &Store, desc: &Descriptor, platform: &Platform) -> Result<Self> {
        let mut index = None;
        let mut current = desc.clone();
        for _ in 0..=MAX_INDEX_DEPTH {
            crate::store::walk::check_manifest_size(store, &current.digest)?;
            let bytes = store.read_blob(&current.digest)?;
            let kind = ManifestKind::parse(&bytes, Some(&current.media_type)).map_err(|e| {
                Error::invalid(format!("manifest {}", current.digest), e.to_string())
            })?;
            match kind {
                ManifestKind::Index(i) => {
                    let pick = i
                        .manifests
                        .iter()
                        .find(|m| m.platform.as_ref().is_some_and(|p| p.matches(platform)))
                        .cloned()
                        .ok_or_else(|| {
                            let have: Vec<String> = i
                                .manifests
                                .iter()
                                .filter_map(|m| m.platform.as_ref().map(|p| p.to_string()))
                                .collect();
                            Error::invalid(
                                format!("index {}", current.digest),
                                format!(
                                    "no manifest for platform {platform} (has: {})",
                                    have.join(", ")
                                ),
                            )
                        })?;
                    index.get_or_insert_with(|| current.clone());
                    current = pick;
                }
                ManifestKind::Image(manifest) => {
                    return LocalImage::from_manifest(store, index, current, bytes, manifest)
                }
            }
        }
        Err(Error::invalid(
            format!("index {}", desc.digest),
            "indexes nested too deep",
        ))
    }

    fn from_manifest(
        store: &Store,
        index: Option<Descriptor>,
        mut manifest_descriptor: Descriptor,
        manifest_bytes: Vec<u8>,
        manifest: Manifest,
    ) -> Result<Self> {
        if !media_types::is_manifest(&manifest_descriptor.media_type) {
            manifest_descriptor.media_type = manifest.media_type().to_string();
        }
        let config_bytes = store.read_blob(&manifest.config.digest)?;
        if config_bytes.len() as u64 != manifest.config.size {
            return Err(Error::SizeMismatch {
                digest: manifest.config.digest.clone(),
                expected: manifest.config.size,
                actual: config_bytes.len() as u64,
            });
        }
        let config = ImageConfig::parse(&config_bytes)?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(Error::invalid(
                format!("image {}", manifest_descriptor.digest),
                format!(
                    "manifest has {} layers but config has {} diff_ids",
                    manifest.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            ));
        }
        Ok(LocalImage {
            index,
            manifest_descriptor,
            manifest_bytes,
            manifest,
            config_bytes,
            config,
        })
    }

    /// The image ID as Docker shows it: the config digest.
    pub fn id(&self) -> &Digest {
        &self.manifest.config.digest
    }

    pub fn layers(&self) -> &[Descriptor] {
        &self.manifest.layers
    }

    /// Digests of the uncompressed layers, in order.
    pub fn diff_ids(&self) -> &[Digest] {
        &self.config.rootfs.diff_ids
    }

    /// The digest a tag points at: the index's if there is one, else the manifest's.
    pub fn top_digest(&self) -> &Digest {
        &self
            .index
            .as_ref()
            .unwrap_or(&self.manifest_descriptor)
            .digest
    }

    /// Bytes in the store: config plus layer blobs.
    pub fn size(&self) -> u64 {
        self.manifest.config.size + self.manifest.layers.iter().map(|l| l.size).sum::<u64>()
    }

    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.config.architecture.clone(),
            os: self.config.os.clone(),
            os_version: self.config.os_version.clone(),
            os_features: None,
            variant: self.config.variant.clone(),
        }
    }
}

/// The ID `docker images` shows for a store entry: the config digest of the host platform's
/// image, or the entry's own digest when that cannot be read (a foreign-platform index, a
/// broken entry).
pub fn image_id(store: &Store, desc: &Descriptor) -> Digest {
    LocalImage::open(store, desc, &Platform::host())
        .map(|i| i.id().clone())
        .unwrap_or_else(|_| desc.digest.clone())
}
