//! Turns a finished stage into an image in the store: config blob, then manifest blob.

use registry::spec::{ImageConfig, Manifest};
use registry::store::Store;
use registry::{media_types, Descriptor};

use super::error::BuildError;
use super::state::StageState;

/// The config and manifest of a built image, stored.
#[derive(Clone, Debug)]
pub struct BuiltImage {
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub config_value: ImageConfig,
}

impl BuiltImage {
    /// The image ID as Docker shows it: the config digest.
    pub fn id(&self) -> &registry::Digest {
        &self.config.digest
    }
}

pub fn write_image(store: &Store, state: &StageState) -> Result<BuiltImage, BuildError> {
    let config_bytes = state.config.to_bytes();
    let config_digest = store.put_blob(&config_bytes)?;
    let config = Descriptor::new(
        media_types::OCI_CONFIG,
        config_digest,
        config_bytes.len() as u64,
    );
    let layers = state.layers.iter().map(|l| l.descriptor.clone()).collect();
    let manifest = Manifest::oci(config.clone(), layers);
    let bytes = manifest.to_bytes();
    let digest = store.put_blob(&bytes)?;
    Ok(BuiltImage {
        manifest: Descriptor::new(media_types::OCI_MANIFEST, digest, bytes.len() as u64),
        config,
        config_value: state.config.clone(),
    })
}

/// RFC 3339 with nanoseconds, as Docker and BuildKit write `created`.
pub fn timestamp(secs: i64, nanos: u32) -> String {
    chrono::DateTime::from_timestamp(secs, nanos)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
