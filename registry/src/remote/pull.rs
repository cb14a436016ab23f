//! Pull: manifest (verified), platform choice from an index, config and layers streamed
//! concurrently into the store, then the manifest, then the tag. Mirrors are tried first and
//! the registry itself last; every digest is verified, so a mirror cannot change content.

use futures_util::{stream, StreamExt, TryStreamExt};

use super::blob;
use super::client::{FetchedManifest, RegistryClient};
use super::{origins, Remote};
use crate::descriptor::{Descriptor, Platform};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::spec::{Index, Manifest, ManifestKind};
use crate::store::Store;

/// What a pull stored.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// The image manifest (for the chosen platform) now in the store and tagged.
    pub manifest: Descriptor,
    /// The index it was chosen from, if the reference named one.
    pub index: Option<Descriptor>,
    /// The endpoint that served it (`registry-1.docker.io`, a mirror).
    pub endpoint: String,
}

impl Pulled {
    /// The digest `docker pull` prints: the index's when there was one.
    pub fn digest(&self) -> &Digest {
        &self.index.as_ref().unwrap_or(&self.manifest).digest
    }
}

/// Pulls `reference` for `platform` into `store` and tags it there.
pub async fn pull(
    remote: &Remote,
    store: &Store,
    reference: &Reference,
    platform: &Platform,
) -> Result<Pulled> {
    let endpoints = remote.pull_endpoints(reference.registry())?;
    let last = endpoints.len() - 1;
    for (i, client) in endpoints.iter().enumerate() {
        match pull_from(remote, client, store, reference, platform).await {
            Ok(p) => return Ok(p),
            Err(e) if i < last => {
                tracing::warn!(mirror = client.host(), error = %e, "mirror failed; trying the next endpoint");
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("pull_endpoints always includes the registry")
}

/// The manifest reference to ask for: the digest when given, else the tag.
pub fn manifest_reference(reference: &Reference) -> String {
    match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => crate::reference::DEFAULT_TAG.to_string(),
    }
}

/// Picks the manifest for `platform` from an index.
pub fn select_platform<'a>(
    index: &'a Index,
    platform: &Platform,
    what: &str,
) -> Result<&'a Descriptor> {
    let candidates = || {
        index.manifests.iter().filter(|d| {
            crate::media_types::is_manifest(&d.media_type)
                && d.platform.as_ref().is_some_and(|p| p.matches(platform))
        })
    };
    // Prefer an exact variant match over a variant-less one.
    candidates()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.variant == platform.variant)
        })
        .or_else(|| candidates().next())
        .ok_or_else(|| Error::NoMatchingPlatform {
            reference: what.to_string(),
            wanted: platform.to_string(),
            available: index
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Resolves `reference` to an image manifest (through an index when needed), verified,
/// without downloading layers. Returns (index, manifest).
pub async fn resolve(
    client: &RegistryClient,
    reference: &Reference,
    platform: &Platform,
) -> Result<(Option<FetchedManifest>, FetchedManifest, Manifest)> {
    let repo = reference.repository();
    let top = client
        .get_manifest(repo, &manifest_reference(reference))
        .await?;
    match ManifestKind::parse(&top.bytes, Some(&top.media_type))? {
        ManifestKind::Image(m) => Ok((None, top, m)),
        ManifestKind::Index(index) => {
            let desc = select_platform(&index, platform, &reference.to_string())?;
            let child = client.get_manifest(repo, &desc.digest.to_string()).await?;
            match ManifestKind::parse(&child.bytes, Some(&child.media_type))? {
                ManifestKind::Image(m) => Ok((Some(top), child, m)),
                ManifestKind::Index(_) => Err(Error::invalid(
                    format!("manifest {}@{}", reference.name(), desc.digest),
                    "an index inside an index is not supported",
                )),
            }
        }
    }
}

async fn pull_from(
    remote: &Remote,
    client: &RegistryClient,
    store: &Store,
    reference: &Reference,
    platform: &Platform,
) -> Result<Pulled> {
    let repo = reference.repository();
    let (index, fetched, manifest) = resolve(client, reference, platform).await?;
    let progress = remote.progress();
    blob::download(client, repo, &manifest.config, store, progress).await?;
    stream::iter(manifest.layers.iter())
        .map(|layer| blob::download(client, repo, layer, store, progress))
        .buffer_unordered(remote.options().max_concurrent.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    let index_desc = match &index {
        Some(i) => Some(put_manifest(store, i)?),
        None => None,
    };
    let manifest_desc = put_manifest(store, &fetched)?;
    let mut blobs: Vec<Digest> = manifest.layers.iter().map(|l| l.digest.clone()).collect();
    blobs.push(manifest.config.digest.clone());
    if let Err(e) = origins::record(store, &reference.name(), &blobs) {
        tracing::warn!(error = %e, "could not record blob origins");
    }
    if reference.tag().is_some() {
        store.tag(&reference.without_digest(), &manifest_desc)?;
    } else {
        store.add_untagged(&manifest_desc)?;
    }
    Ok(Pulled {
        manifest: manifest_desc,
        index: index_desc,
        endpoint: client.host().to_string(),
    })
}

fn put_manifest(store: &Store, m: &FetchedManifest) -> Result<Descriptor> {
    let digest = store.put_blob(&m.bytes)?;
    debug_assert_eq!(digest, m.digest);
    Ok(Descriptor::new(
        m.media_type.clone(),
        digest,
        m.bytes.len() as u64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_types::OCI_MANIFEST;

    fn entry(p: &str, seed: &[u8]) -> Descriptor {
        let mut d = Descriptor::new(OCI_MANIFEST, Digest::of(seed), 1);
        d.platform = Some(p.parse().unwrap());
        d
    }

    #[test]
    fn platform_selection_prefers_exact_variant() {
        let index = Index::oci(vec![
            entry("linux/amd64", b"a"),
            entry("linux/arm/v6", b"b"),
            entry("linux/arm/v7", b"c"),
        ]);
        let got = select_platform(&index, &"linux/arm/v7".parse().unwrap(), "x").unwrap();
        assert_eq!(got.digest, Digest::of(b"c"));
        let got = select_platform(&index, &"linux/amd64".parse().unwrap(), "x").unwrap();
        assert_eq!(got.digest, Digest::of(b"a"));
    }

    #[test]
    fn missing_platform_lists_what_is_available() {
        let index = Index::oci(vec![entry("linux/amd64", b"a")]);
        let e = select_platform(
            &index,
            &"linux/s390x".parse().unwrap(),
            "docker.io/library/x:1",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("linux/s390x") && e.contains("linux/amd64") && e.contains("library/x"),
            "{e}"
        );
    }
}
