//! Push: blobs first (skipped when present, mounted when the store knows another repository
//! of the same registry has them, else streamed from the store), config, then the manifest
//! by tag. An index is pushed after each of its manifests.

use futures_util::{stream, StreamExt, TryStreamExt};

use super::blob::{self, UploadSource, Uploaded};
use super::client::RegistryClient;
use super::{origins, Remote};
use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::spec::{Manifest, ManifestKind};
use crate::store::Store;

/// What a push did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Digest and size of the top manifest or index, as the registry stores it.
    pub digest: Option<Digest>,
    pub size: u64,
    pub uploaded: usize,
    pub mounted: usize,
    pub existed: usize,
}

impl Pushed {
    fn count(&mut self, u: &Uploaded) {
        match u {
            Uploaded::Exists => self.existed += 1,
            Uploaded::Mounted { .. } => self.mounted += 1,
            Uploaded::Pushed => self.uploaded += 1,
        }
    }
}

/// Pushes the manifest or index `desc` from `store` to `dest` (by its tag; by digest when
/// `dest` has only a digest).
pub async fn push(
    remote: &Remote,
    store: &Store,
    desc: &Descriptor,
    dest: &Reference,
) -> Result<Pushed> {
    let client = remote.client(dest.registry())?;
    let repo = dest.repository();
    let bytes = store.read_blob(&desc.digest)?;
    let mut report = Pushed::default();
    match ManifestKind::parse(&bytes, Some(&desc.media_type))? {
        ManifestKind::Image(m) => {
            push_blobs(remote, &client, store, repo, &m, &mut report).await?;
        }
        ManifestKind::Index(index) => {
            for child in &index.manifests {
                if !store.has_blob(&child.digest) {
                    return Err(Error::invalid(
                        format!("index {}", desc.digest),
                        format!(
                            "manifest {} ({}) is not in the store",
                            child.digest,
                            platform_of(child)
                        ),
                    ));
                }
                let child_bytes = store.read_blob(&child.digest)?;
                let ManifestKind::Image(m) =
                    ManifestKind::parse(&child_bytes, Some(&child.media_type))?
                else {
                    return Err(Error::invalid(
                        format!("index {}", desc.digest),
                        "nested indexes are not supported",
                    ));
                };
                push_blobs(remote, &client, store, repo, &m, &mut report).await?;
                client
                    .put_manifest(
                        repo,
                        &child.digest.to_string(),
                        &child.media_type,
                        &child_bytes,
                    )
                    .await?;
            }
        }
    }
    let target = match (dest.tag(), dest.digest()) {
        (Some(t), _) => t.to_string(),
        (None, Some(d)) if d == &desc.digest => d.to_string(),
        (None, Some(d)) => {
            return Err(Error::DigestMismatch {
                what: format!("push destination {dest}"),
                expected: d.clone(),
                actual: desc.digest.clone(),
            })
        }
        (None, None) => crate::reference::DEFAULT_TAG.to_string(),
    };
    let digest = client
        .put_manifest(repo, &target, &desc.media_type, &bytes)
        .await?;
    report.digest = Some(digest);
    report.size = bytes.len() as u64;
    Ok(report)
}

/// Uploads one blob of `store` to `dest`'s repository (skipped when present, mounted when
/// another repository there has it): a build with `--push` sends each layer as soon as it is
/// written, and the push that follows finds them there.
pub async fn push_blob(
    remote: &Remote,
    store: &Store,
    desc: &Descriptor,
    dest: &Reference,
) -> Result<()> {
    let client = remote.client(dest.registry())?;
    let repo = dest.repository();
    let from = origins::mount_source(store, &desc.digest, client.name(), repo);
    blob::upload(
        &client,
        repo,
        desc,
        UploadSource::Store(store),
        from.as_deref(),
        remote.progress(),
    )
    .await?;
    Ok(())
}

fn platform_of(d: &Descriptor) -> String {
    d.platform
        .as_ref()
        .map_or_else(|| "no platform".to_string(), |p| p.to_string())
}

/// Uploads the layers (concurrently) and then the config of one image manifest.
async fn push_blobs(
    remote: &Remote,
    client: &RegistryClient,
    store: &Store,
    repo: &str,
    m: &Manifest,
    report: &mut Pushed,
) -> Result<()> {
    for d in m.layers.iter().chain(std::iter::once(&m.config)) {
        if !store.has_blob(&d.digest) {
            return Err(Error::BlobNotFound(d.digest.clone()));
        }
    }
    let progress = remote.progress();
    let results: Vec<Uploaded> = stream::iter(m.layers.iter())
        .map(|layer| {
            let from = origins::mount_source(store, &layer.digest, client.name(), repo);
            async move {
                blob::upload(
                    client,
                    repo,
                    layer,
                    UploadSource::Store(store),
                    from.as_deref(),
                    progress,
                )
                .await
            }
        })
        .buffer_unordered(remote.options().max_concurrent.max(1))
        .try_collect()
        .await?;
    for r in &results {
        report.count(r);
    }
    let from = origins::mount_source(store, &m.config.digest, client.name(), repo);
    let r = blob::upload(
        client,
        repo,
        &m.config,
        UploadSource::Store(store),
        from.as_deref(),
        progress,
    )
    .await?;
    report.count(&r);
    let mut blobs: Vec<Digest> = m.layers.iter().map(|l| l.digest.clone()).collect();
    blobs.push(m.config.digest.clone());
    if let Err(e) = origins::record(store, &format!("{}/{repo}", client.name()), &blobs) {
        tracing::warn!(error = %e, "could not record blob origins");
    }
    Ok(())
}
