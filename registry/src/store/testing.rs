//! Small, deterministic images for tests (here and in other crates): a config plus layers of
//! a few files, written into a store with the public API.

use std::io::Write;

use crate::descriptor::{Descriptor, Platform};
use crate::digest::Digest;
use crate::error::Result;
use crate::media_types::{self, Compression};
use crate::spec::{History, ImageConfig, Index, Manifest};
use crate::store::Store;

/// A tar of regular files (`path`, `content`), mode 0644, mtime 0. Parent directories are
/// not emitted. Test-sized data only: it is built in memory.
pub fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, *data).expect("in-memory tar");
    }
    b.into_inner().expect("in-memory tar")
}

/// Compresses `data` with `compression`.
pub fn compress(data: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).expect("in-memory gzip");
            e.finish().expect("in-memory gzip")
        }
        Compression::Zstd => zstd::encode_all(data, 3).expect("in-memory zstd"),
    }
}

/// Writes a layer; returns its descriptor and diff_id.
pub fn write_layer(
    store: &Store,
    files: &[(&str, &[u8])],
    compression: Compression,
) -> Result<(Descriptor, Digest)> {
    let tar = layer_tar(files);
    let diff_id = Digest::of(&tar);
    let blob = compress(&tar, compression);
    let digest = store.put_blob(&blob)?;
    Ok((
        Descriptor::new(compression.oci_layer_type(), digest, blob.len() as u64),
        diff_id,
    ))
}

/// Writes an image with `layers` layers (layer `i` holds `<seed>/file-<i>.txt`) for
/// `platform`, and returns its manifest descriptor. The same seed gives the same digests.
pub fn make_image_for(
    store: &Store,
    seed: &str,
    layers: usize,
    compression: Compression,
    platform: &Platform,
) -> Result<Descriptor> {
    let mut descs = Vec::new();
    let mut config = ImageConfig {
        created: Some("2024-01-02T03:04:05Z".to_string()),
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        ..ImageConfig::default()
    };
    let cc = config.container_config_mut();
    cc.env = Some(vec![
        "PATH=/usr/bin:/bin".to_string(),
        format!("SEED={seed}"),
    ]);
    cc.cmd = Some(vec!["/bin/sh".to_string()]);
    cc.working_dir = Some("/".to_string());
    for i in 0..layers {
        let path = format!("{seed}/file-{i}.txt");
        let content = format!("{seed} layer {i}\n");
        let (desc, diff_id) = write_layer(store, &[(&path, content.as_bytes())], compression)?;
        descs.push(desc);
        config.rootfs.diff_ids.push(diff_id);
        config.history.push(History {
            created: Some("2024-01-02T03:04:05Z".to_string()),
            created_by: Some(format!("COPY {path} /{path} # buildkit")),
            comment: Some("buildkit.dockerfile.v0".to_string()),
            ..History::default()
        });
    }
    config.history.push(History {
        created: Some("2024-01-02T03:04:05Z".to_string()),
        created_by: Some("CMD [\"/bin/sh\"]".to_string()),
        empty_layer: true,
        ..History::default()
    });
    let config_bytes = config.to_bytes();
    let config_digest = store.put_blob(&config_bytes)?;
    let manifest = Manifest::oci(
        Descriptor::new(
            media_types::OCI_CONFIG,
            config_digest,
            config_bytes.len() as u64,
        ),
        descs,
    );
    let bytes = manifest.to_bytes();
    let digest = store.put_blob(&bytes)?;
    Ok(Descriptor::new(
        media_types::OCI_MANIFEST,
        digest,
        bytes.len() as u64,
    ))
}

/// [`make_image_for`] the host platform.
pub fn make_image(
    store: &Store,
    seed: &str,
    layers: usize,
    compression: Compression,
) -> Result<Descriptor> {
    make_image_for(store, seed, layers, compression, &Platform::host())
}

/// Writes an OCI index over `(manifest, platform)` pairs and returns its descriptor.
pub fn make_index(store: &Store, manifests: &[(Descriptor, Platform)]) -> Result<Descriptor> {
    let index = Index::oci(
        manifests
            .iter()
            .map(|(d, p)| Descriptor {
                platform: Some(p.clone()),
                ..d.clone()
            })
            .collect(),
    );
    let bytes = index.to_bytes();
    let digest = store.put_blob(&bytes)?;
    Ok(Descriptor::new(
        media_types::OCI_INDEX,
        digest,
        bytes.len() as u64,
    ))
}
