//! Remote operations that move no layers through the store: inspect, tags, delete, and
//! registry-to-registry copy (blobs streamed from source to destination, mounted when both
//! are repositories of one registry).

use futures_util::{stream, StreamExt, TryStreamExt};
use serde::Serialize;

use super::blob::{self, UploadSource, Uploaded};
use super::client::{FetchedManifest, RegistryClient};
use super::pull::{manifest_reference, resolve};
use super::push::Pushed;
use super::Remote;
use crate::descriptor::{Descriptor, Platform};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::spec::{History, ImageConfig, Manifest, ManifestKind};

/// What `kiln inspect docker://REF` shows, fetched without layers.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoteImage {
    pub name: String,
    /// The digest of what the reference points at (the index when there is one).
    pub digest: Digest,
    pub manifest_digest: Digest,
    pub media_type: String,
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    pub layers: Vec<Descriptor>,
    pub diff_ids: Vec<Digest>,
    pub history: Vec<History>,
    /// Sum of the compressed layer sizes plus the config.
    pub size: u64,
    #[serde(skip)]
    pub config: ImageConfig,
    /// The exact bytes of the top manifest or index (`--raw`).
    #[serde(skip)]
    pub raw_manifest: Vec<u8>,
    #[serde(skip)]
    pub raw_config: Vec<u8>,
}

/// Fetches manifest and config of `reference` for `platform`.
pub async fn inspect(
    remote: &Remote,
    reference: &Reference,
    platform: &Platform,
) -> Result<RemoteImage> {
    let client = remote.client(reference.registry())?;
    let (index, fetched, manifest) = resolve(&client, reference, platform).await?;
    let raw_config = fetch_config(&client, reference.repository(), &manifest).await?;
    let config = ImageConfig::parse(&raw_config)?;
    let top = index.as_ref().unwrap_or(&fetched);
    Ok(RemoteImage {
        name: reference.to_string(),
        digest: top.digest.clone(),
        manifest_digest: fetched.digest.clone(),
        media_type: fetched.media_type.clone(),
        architecture: config.architecture.clone(),
        os: config.os.clone(),
        variant: config.variant.clone(),
        created: config.created.clone(),
        size: manifest.layers.iter().map(|l| l.size).sum::<u64>() + manifest.config.size,
        layers: manifest.layers.clone(),
        diff_ids: config.rootfs.diff_ids.clone(),
        history: config.history.clone(),
        raw_manifest: top.bytes.clone(),
        raw_config,
        config,
    })
}

/// The top manifest or index bytes of `reference` (`inspect --raw`), digest-verified.
pub async fn raw_manifest(remote: &Remote, reference: &Reference) -> Result<FetchedManifest> {
    let client = remote.client(reference.registry())?;
    client
        .get_manifest(reference.repository(), &manifest_reference(reference))
        .await
}

/// Downloads and verifies a config blob (size-capped, in memory: configs are small).
async fn fetch_config(client: &RegistryClient, repo: &str, m: &Manifest) -> Result<Vec<u8>> {
    let what = client.blob_what(repo, &m.config.digest);
    if m.config.size > super::client::MAX_MANIFEST_SIZE as u64 * 4 {
        return Err(Error::invalid(
            what,
            format!("config of {} bytes is too large", m.config.size),
        ));
    }
    let (resp, _) = client.get_blob(repo, &m.config.digest, 0).await?;
    let url = resp.url().clone();
    let bytes = super::client::read_capped(resp, m.config.size as usize, &what, &url).await?;
    let actual = Digest::of(&bytes);
    if actual != m.config.digest {
        return Err(Error::DigestMismatch {
            what,
            expected: m.config.digest.clone(),
            actual,
        });
    }
    Ok(bytes)
}

/// All tags of `reference`'s repository.
pub async fn tags(remote: &Remote, reference: &Reference) -> Result<Vec<String>> {
    remote
        .client(reference.registry())?
        .list_tags(reference.repository())
        .await
}

/// Deletes the manifest `reference` names (a tag is resolved to its digest first). Returns
/// the deleted digest.
pub async fn delete(remote: &Remote, reference: &Reference) -> Result<Digest> {
    let client = remote.client(reference.registry())?;
    let repo = reference.repository();
    let digest = match reference.digest() {
        Some(d) => d.clone(),
        None => {
            client
                .get_manifest(repo, &manifest_reference(reference))
                .await?
                .digest
        }
    };
    client.delete_manifest(repo, &digest).await?;
    Ok(digest)
}

/// Copies `src` to `dst` between registries: every blob streams from source to destination
/// (or is mounted when both are on one registry); manifests are copied byte for byte, so
/// digests are preserved. With `all`, an index is copied with every platform; otherwise only
/// `platform`'s manifest.
pub async fn copy_remote(
    remote: &Remote,
    src: &Reference,
    dst: &Reference,
    platform: &Platform,
    all: bool,
) -> Result<Pushed> {
    let sc = remote.client(src.registry())?;
    let dc = remote.client(dst.registry())?;
    let top = sc
        .get_manifest(src.repository(), &manifest_reference(src))
        .await?;
    let mut report = Pushed::default();
    let root = match ManifestKind::parse(&top.bytes, Some(&top.media_type))? {
        ManifestKind::Image(m) => {
            copy_blobs(remote, &sc, src, &dc, dst, &m, &mut report).await?;
            top
        }
        ManifestKind::Index(index) if all => {
            for child in &index.manifests {
                let f = sc
                    .get_manifest(src.repository(), &child.digest.to_string())
                    .await?;
                if let ManifestKind::Image(m) = ManifestKind::parse(&f.bytes, Some(&f.media_type))?
                {
                    copy_blobs(remote, &sc, src, &dc, dst, &m, &mut report).await?;
                }
                dc.put_manifest(
                    dst.repository(),
                    &f.digest.to_string(),
                    &f.media_type,
                    &f.bytes,
                )
                .await?;
            }
            top
        }
        ManifestKind::Index(_) => {
            let (_, f, m) = resolve(&sc, src, platform).await?;
            copy_blobs(remote, &sc, src, &dc, dst, &m, &mut report).await?;
            f
        }
    };
    let target = match (dst.tag(), dst.digest()) {
        (Some(t), _) => t.to_string(),
        _ => root.digest.to_string(),
    };
    report.digest = Some(
        dc.put_manifest(dst.repository(), &target, &root.media_type, &root.bytes)
            .await?,
    );
    report.size = root.bytes.len() as u64;
    Ok(report)
}

async fn copy_blobs(
    remote: &Remote,
    sc: &RegistryClient,
    src: &Reference,
    dc: &RegistryClient,
    dst: &Reference,
    m: &Manifest,
    report: &mut Pushed,
) -> Result<()> {
    let same_registry = sc.host() == dc.host();
    let from = same_registry.then(|| src.repository());
    let progress = remote.progress();
    let results: Vec<Uploaded> = stream::iter(m.layers.iter().chain(std::iter::once(&m.config)))
        .map(|d| {
            blob::upload(
                dc,
                dst.repository(),
                d,
                UploadSource::Remote {
                    client: sc,
                    repo: src.repository(),
                },
                from,
                progress,
            )
        })
        .buffer_unordered(remote.options().max_concurrent.max(1))
        .try_collect()
        .await?;
    for r in results {
        match r {
            Uploaded::Exists => report.existed += 1,
            Uploaded::Mounted { .. } => report.mounted += 1,
            Uploaded::Pushed => report.uploaded += 1,
        }
    }
    Ok(())
}
