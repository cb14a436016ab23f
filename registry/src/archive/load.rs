//! `docker load`: classic or combined docker-archives and OCI layout tars into the store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read};

use serde::Deserialize;

use crate::archive::save::decompress_into;
use crate::descriptor::Descriptor;
use crate::digest::{Digest, DigestHasher};
use crate::error::{Error, IoContext, Result};
use crate::image::image_id;
use crate::media_types::{self, Compression};
use crate::reference::Reference;
use crate::spec::{ImageConfig, Index, Manifest, ManifestKind};
use crate::store::{index::entry_ref, walk, Store};

/// Metadata files at an archive's root are read into memory; they are small, and this caps
/// what a hostile archive can make kiln hold.
const MAX_METADATA: u64 = 16 << 20;
const METADATA: [&str; 4] = ["manifest.json", "index.json", "repositories", "oci-layout"];
/// Indexes of indexes are followed this deep.
const MAX_NESTING: usize = 8;
/// Symlink chains in classic archives (shared layers) are followed this far.
const MAX_LINK_DEPTH: usize = 16;

/// One image loaded, and the names it was tagged with (none: untagged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedImage {
    pub descriptor: Descriptor,
    pub id: Digest,
    pub tags: Vec<Reference>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// What streaming the tar found.
#[derive(Default)]
struct Contents {
    metadata: HashMap<String, Vec<u8>>,
    files: HashMap<String, (Digest, u64)>,
    links: HashMap<String, String>,
}

impl Contents {
    /// The blob stored for `path`, following links.
    fn file(&self, path: &str) -> Result<&(Digest, u64)> {
        let mut p = clean_path(path).ok_or_else(|| bad_path(path))?;
        for _ in 0..MAX_LINK_DEPTH {
            if let Some(f) = self.files.get(&p) {
                return Ok(f);
            }
            match self.links.get(&p) {
                Some(target) => p = target.clone(),
                None => break,
            }
        }
        Err(Error::invalid(
            format!("archive file {path:?}"),
            "missing from the archive",
        ))
    }
}

/// Loads every image in the tar `input` (optionally gzip- or zstd-compressed) into the store
/// and tags it. Each file is streamed into the store and verified; nothing is tagged unless
/// every blob an image needs is present and proven.
pub fn load<R: Read>(store: &Store, input: R) -> Result<Vec<LoadedImage>> {
    let contents = read_tar(store, input)?;
    let manifest_json = contents
        .metadata
        .get("manifest.json")
        .map(|b| serde_json::from_slice::<Vec<ArchiveEntry>>(b))
        .transpose()
        .map_err(|e| Error::json("manifest.json in archive", e))?;
    let images = match (contents.metadata.get("index.json"), &manifest_json) {
        (Some(index), _) => {
            let index: Index = serde_json::from_slice(index)
                .map_err(|e| Error::json("index.json in archive", e))?;
            load_oci(store, &contents, &index, manifest_json.as_deref())?
        }
        (None, Some(entries)) => load_classic(store, &contents, entries)?,
        (None, None) => {
            return Err(Error::invalid(
                "archive",
                "not a docker-archive or OCI layout: no manifest.json or index.json",
            ))
        }
    };
    for img in &images {
        if img.tags.is_empty() {
            store.add_untagged(&img.descriptor)?;
        }
        for tag in &img.tags {
            store.tag(tag, &img.descriptor)?;
        }
    }
    Ok(images)
}

fn read_tar<R: Read>(store: &Store, input: R) -> Result<Contents> {
    let mut input = BufReader::with_capacity(1 << 20, input);
    let head = input.fill_buf().at("archive")?;
    let reader: Box<dyn Read> = match Compression::sniff(head) {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(input).at("archive")?)
        }
    };
    let mut archive = tar::Archive::new(reader);
    let mut contents = Contents::default();
    for entry in archive.entries().at("archive")? {
        let mut entry = entry.at("archive")?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = clean_path(&raw).ok_or_else(|| bad_path(&raw))?;
        match entry.header().entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let joined = if entry.header().entry_type() == tar::EntryType::Symlink
                    && !target.starts_with('/')
                {
                    match path.rsplit_once('/') {
                        Some((dir, _)) => format!("{dir}/{target}"),
                        None => target.clone(),
                    }
                } else {
                    target.clone()
                };
                // A link that leaves the archive points at nothing we have.
                if let Some(t) = clean_path(&joined) {
                    contents.links.insert(path, t);
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                if METADATA.contains(&path.as_str()) {
                    if size > MAX_METADATA {
                        return Err(Error::invalid(
                            format!("{path} in archive"),
                            format!("{size} bytes is too big"),
                        ));
                    }
                    let mut data = Vec::with_capacity(size as usize);
                    entry.read_to_end(&mut data).at(&path)?;
                    contents.metadata.insert(path, data);
                    continue;
                }
                let expected = path
                    .strip_prefix("blobs/")
                    .and_then(|p| p.split_once('/'))
                    .and_then(|(alg, hex)| format!("{alg}:{hex}").parse::<Digest>().ok());
                let mut w = store.blob_writer()?;
                io::copy(&mut entry, &mut w).at(format!("{path} in archive"))?;
                let committed =
                    w.commit(expected.as_ref().map(|d| (d, size)))
                        .map_err(|e| match e {
                            Error::DigestMismatch {
                                expected, actual, ..
                            } => Error::DigestMismatch {
                                what: format!("{path} in archive"),
                                expected,
                                actual,
                            },
                            other => other,
                        })?;
                contents.files.insert(path, committed);
            }
            _ => {}
        }
    }
    Ok(contents)
}

/// An archive path made relative and normalized (`./a/../b` -> `b`); `None` if it climbs out
/// of the archive.
fn clean_path(p: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

fn bad_path(p: &str) -> Error {
    Error::invalid(format!("archive path {p:?}"), "climbs out of the archive")
}

/// OCI layout (and combined docker-archive): index.json entries, named by their annotations
/// or, failing that, by manifest.json's RepoTags for the same config.
fn load_oci(
    store: &Store,
    contents: &Contents,
    index: &Index,
    entries: Option<&[ArchiveEntry]>,
) -> Result<Vec<LoadedImage>> {
    let mut by_config: HashMap<Digest, Vec<String>> = HashMap::new();
    for e in entries.unwrap_or_default() {
        let (config, _) = contents.file(&e.config)?;
        by_config
            .entry(config.clone())
            .or_default()
            .extend(e.repo_tags.clone().unwrap_or_default());
    }
    let mut out: BTreeMap<Digest, LoadedImage> = BTreeMap::new();
    let mut seen = HashSet::new();
    for desc in &index.manifests {
        check_graph(store, desc, &mut seen)?;
        let mut tags: Vec<Reference> = entry_ref(desc).into_iter().collect();
        if tags.is_empty() && media_types::is_manifest(&desc.media_type) {
            let m: Manifest = serde_json::from_slice(&store.read_blob(&desc.digest)?)
                .map_err(|e| Error::json(format!("manifest {}", desc.digest), e))?;
            for t in by_config.get(&m.config.digest).into_iter().flatten() {
                tags.push(parse_tag(t)?);
            }
        }
        let mut clean = desc.clone();
        clean.annotations = None;
        let img = out
            .entry(desc.digest.clone())
            .or_insert_with(|| LoadedImage {
                id: image_id(store, &clean),
                descriptor: clean,
                tags: Vec::new(),
            });
        for t in tags {
            if !img.tags.contains(&t) {
                img.tags.push(t);
            }
        }
    }
    Ok(out.into_values().collect())
}

/// Every blob a manifest needs is present with the size its descriptor says (digests were
/// proven as they were stored). Absent children of an index are allowed. Each blob is checked
/// once, and indexes nest at most [`MAX_NESTING`] deep, so a hostile graph cannot make this
/// loop or recurse without bound.
fn check_graph(store: &Store, root: &Descriptor, seen: &mut HashSet<Digest>) -> Result<()> {
    let mut stack = vec![(root.clone(), true, 0usize)];
    while let Some((desc, required, depth)) = stack.pop() {
        if seen.contains(&desc.digest) {
            continue;
        }
        let size = match store.blob_size(&desc.digest) {
            Ok(s) => s,
            // Absent and optional: not marked seen, so a manifest needing it still fails.
            Err(Error::BlobNotFound(_)) if !required => continue,
            Err(e) => return Err(e),
        };
        seen.insert(desc.digest.clone());
        if size != desc.size {
            return Err(Error::SizeMismatch {
                digest: desc.digest.clone(),
                expected: desc.size,
                actual: size,
            });
        }
        let is_index = media_types::is_index(&desc.media_type);
        if let Some(children) = walk::children(store, &desc)? {
            if depth >= MAX_NESTING {
                return Err(Error::invalid(
                    format!("index {}", root.digest),
                    "manifests nested too deep",
                ));
            }
            stack.extend(children.into_iter().map(|c| (c, !is_index, depth + 1)));
        }
    }
    Ok(())
}

/// Classic docker-archive: manifest.json entries with config and layer paths. A manifest is
/// built for each, after checking every layer against the config's diff_ids.
fn load_classic(
    store: &Store,
    contents: &Contents,
    entries: &[ArchiveEntry],
) -> Result<Vec<LoadedImage>> {
    let mut out = Vec::new();
    for e in entries {
        let (config_digest, config_size) = contents.file(&e.config)?.clone();
        let config = ImageConfig::parse(&store.read_blob(&config_digest)?)?;
        if config.rootfs.diff_ids.len() != e.layers.len() {
            return Err(Error::invalid(
                format!("manifest.json entry for {}", e.config),
                format!(
                    "{} layers but the config has {} diff_ids",
                    e.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            ));
        }
        let mut layers = Vec::new();
        for (path, diff_id) in e.layers.iter().zip(&config.rootfs.diff_ids) {
            let (digest, size) = contents.file(path)?.clone();
            let compression = verify_layer(store, &digest, diff_id).map_err(|e| match e {
                Error::DigestMismatch {
                    expected, actual, ..
                } => Error::DigestMismatch {
                    what: format!("layer {path} in archive (diff_id)"),
                    expected,
                    actual,
                },
                other => other,
            })?;
            layers.push(Descriptor::new(compression.oci_layer_type(), digest, size));
        }
        let manifest = Manifest::oci(
            Descriptor::new(media_types::OCI_CONFIG, config_digest.clone(), config_size),
            layers,
        );
        let bytes = manifest.to_bytes();
        let digest = store.put_blob(&bytes)?;
        let descriptor = Descriptor::new(media_types::OCI_MANIFEST, digest, bytes.len() as u64);
        let tags = e
            .repo_tags
            .iter()
            .flatten()
            .map(|t| parse_tag(t))
            .collect::<Result<Vec<_>>>()?;
        // Sanity: what was written reads back as an image.
        debug_assert!(matches!(
            ManifestKind::parse(&bytes, None),
            Ok(ManifestKind::Image(_))
        ));
        out.push(LoadedImage {
            id: config_digest,
            descriptor,
            tags,
        });
    }
    Ok(out)
}

/// Checks a stored layer blob against its diff_id (decompressing a compressed one on the
/// fly) and returns its compression.
fn verify_layer(store: &Store, digest: &Digest, diff_id: &Digest) -> Result<Compression> {
    let mut f = BufReader::new(store.open_blob(digest)?);
    let compression = Compression::sniff(f.fill_buf().at(store.blob_path(digest))?);
    let actual = if compression == Compression::None {
        digest.clone()
    } else {
        let mut h = DigestHasher::sha256();
        decompress_into(compression, f, &mut h).at(store.blob_path(digest))?;
        h.finish()
    };
    if &actual != diff_id {
        return Err(Error::DigestMismatch {
            what: format!("layer {digest}"),
            expected: diff_id.clone(),
            actual,
        });
    }
    Ok(compression)
}

fn parse_tag(t: &str) -> Result<Reference> {
    Reference::parse(t)
}
