//! Base images for FROM and `COPY --from=<image>`: from the local store, or from an OCI layout
//! directory (`oci-layout://path[:tag|@digest]`, as buildx names it), imported blob by blob
//! with every digest verified.

use std::fs;
use std::path::Path;

use registry::image::LocalImage;
use registry::reference::Reference;
use registry::spec::Index;
use registry::store::Store;
use registry::{Descriptor, Digest};

use crate::plan::PlatformArgs;

use super::state::{LayerRef, StageState};

/// Brings images the store lacks into it (from a registry): FROM and `COPY --from=<image>`.
pub trait ImageFetcher: Sync {
    fn fetch(&self, reference: &Reference, platform: &registry::Platform) -> Result<(), String>;
}

/// How base images are found: the store, then (or first, with `--pull`) the fetcher.
#[derive(Clone, Copy)]
pub struct Resolver<'a> {
    pub store: &'a Store,
    pub platforms: &'a PlatformArgs,
    pub fetcher: Option<&'a dyn ImageFetcher>,
    /// `--pull`: fetch even when the store has the tag.
    pub always_pull: bool,
    /// Names already fetched in this build (fetched once even with `--pull`).
    pub fetched: &'a std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Loads `name` as the starting state of a stage.
pub fn load(r: Resolver<'_>, name: &str) -> Result<StageState, String> {
    let image = open(r, name)?;
    let layers = image
        .manifest
        .layers
        .iter()
        .zip(image.config.rootfs.diff_ids.iter())
        .map(|(d, id)| LayerRef {
            descriptor: d.clone(),
            diff_id: id.clone(),
        })
        .collect::<Vec<_>>();
    if layers.len() != image.manifest.layers.len() {
        return Err(format!(
            "image {name} is invalid: {} layers but {} diff_ids",
            image.manifest.layers.len(),
            image.config.rootfs.diff_ids.len()
        ));
    }
    Ok(StageState::from_config(
        image.config.clone(),
        layers,
        Some(image.manifest_descriptor.digest.clone()),
    ))
}

/// Opens `name` (a reference or `oci-layout://...`) as a local image, fetching it when the
/// store lacks it (or always, once per build, with `--pull`). A tag in the store needs no
/// network: an unchanged rebuild works offline.
pub fn open(r: Resolver<'_>, name: &str) -> Result<LocalImage, String> {
    let store = r.store;
    let platform = &r.platforms.target;
    let desc = match name.strip_prefix("oci-layout://") {
        Some(spec) => import_layout(store, spec).map_err(|e| format!("{name}: {e}"))?,
        None => {
            let reference = Reference::parse(name).map_err(|e| e.to_string())?;
            let fetch = |r: &Resolver<'_>| -> Result<(), String> {
                let Some(f) = r.fetcher else { return Ok(()) };
                let mut done = r.fetched.lock().unwrap_or_else(|p| p.into_inner());
                if done.insert(reference.to_string()) {
                    f.fetch(&reference, platform)
                        .map_err(|e| format!("pulling {name}: {e}"))?;
                }
                Ok(())
            };
            if r.always_pull {
                fetch(&r)?;
            }
            match store.resolve(&reference) {
                Ok(d) => d,
                Err(_) if r.fetcher.is_some() && !r.always_pull => {
                    fetch(&r)?;
                    store
                        .resolve(&reference)
                        .map_err(|e| format!("{name}: {e}"))?
                }
                Err(_) => {
                    return Err(format!(
                        "image {name} ({reference}) not found in the local store; \
                         pull it first (kiln pull {name})"
                    ))
                }
            }
        }
    };
    LocalImage::open(store, &desc, platform).map_err(|e| format!("{name}: {e}"))
}

/// Copies the image `spec` (`path[:tag]` or `path@sha256:...`) names from an OCI layout into
/// the store and returns its descriptor. Every blob is verified while copied.
fn import_layout(store: &Store, spec: &str) -> Result<Descriptor, String> {
    let (path, selector) = split_layout_spec(spec);
    let dir = Path::new(path);
    let index_bytes =
        fs::read(dir.join("index.json")).map_err(|e| format!("{}/index.json: {e}", path))?;
    let index: Index =
        serde_json::from_slice(&index_bytes).map_err(|e| format!("{path}/index.json: {e}"))?;
    let desc = match selector {
        Selector::Digest(d) => index
            .manifests
            .iter()
            .find(|m| m.digest == d)
            .cloned()
            .unwrap_or_else(|| Descriptor::new(registry::media_types::OCI_MANIFEST, d, 0)),
        Selector::Tag(t) => index
            .manifests
            .iter()
            .find(|m| {
                m.annotation("org.opencontainers.image.ref.name")
                    .is_some_and(|n| n == t || n.rsplit(':').next() == Some(t))
            })
            .cloned()
            .ok_or_else(|| format!("no image tagged {t:?} in {path}/index.json"))?,
        Selector::Only => match index.manifests.as_slice() {
            [one] => one.clone(),
            [] => return Err(format!("{path}/index.json lists no images")),
            _ => index
                .manifests
                .iter()
                .find(|m| m.annotation("org.opencontainers.image.ref.name") == Some("latest"))
                .cloned()
                .ok_or_else(|| {
                    format!("{path} holds several images: name one with :tag or @digest")
                })?,
        },
    };
    copy_graph(store, dir, &desc.digest)?;
    let size = store.blob_size(&desc.digest).map_err(|e| e.to_string())?;
    let mut desc = desc;
    desc.size = size;
    if desc.media_type.is_empty() {
        desc.media_type = registry::media_types::OCI_MANIFEST.to_string();
    }
    Ok(desc)
}

enum Selector<'a> {
    Only,
    Tag(&'a str),
    Digest(Digest),
}

fn split_layout_spec(spec: &str) -> (&str, Selector<'_>) {
    if let Some((p, d)) = spec.rsplit_once('@') {
        if let Ok(d) = d.parse::<Digest>() {
            return (p, Selector::Digest(d));
        }
    }
    match spec.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') && !t.is_empty() => (p, Selector::Tag(t)),
        _ => (spec, Selector::Only),
    }
}

/// Copies a manifest or index and everything it references.
fn copy_graph(store: &Store, dir: &Path, digest: &Digest) -> Result<(), String> {
    copy_blob(store, dir, digest)?;
    let bytes = store.read_blob(digest).map_err(|e| e.to_string())?;
    match registry::spec::ManifestKind::parse(&bytes, None).map_err(|e| e.to_string())? {
        registry::spec::ManifestKind::Index(i) => {
            for m in &i.manifests {
                copy_graph(store, dir, &m.digest)?;
            }
        }
        registry::spec::ManifestKind::Image(m) => {
            copy_blob(store, dir, &m.config.digest)?;
            for l in &m.layers {
                copy_blob(store, dir, &l.digest)?;
            }
        }
    }
    Ok(())
}

/// Copies one blob into the store, verified against its digest.
fn copy_blob(store: &Store, dir: &Path, digest: &Digest) -> Result<(), String> {
    let src = dir
        .join("blobs")
        .join(digest.algorithm().as_str())
        .join(digest.hex());
    if !store.has_blob(digest) {
        let mut f = fs::File::open(&src).map_err(|e| format!("{}: {e}", src.display()))?;
        let mut w = store.blob_writer().map_err(|e| e.to_string())?;
        std::io::copy(&mut f, &mut w).map_err(|e| format!("{}: {e}", src.display()))?;
        let size = w.written();
        w.commit(Some((digest, size)))
            .map_err(|e| format!("{}: {e}", src.display()))?;
    }
    Ok(())
}
