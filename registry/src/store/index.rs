//! Tags: `index.json` entries annotated with the image's fully-qualified reference.
//!
//! Every read-modify-write of index.json happens under [`Store::lock`] and ends with an atomic
//! rename, so racing kiln processes never lose each other's tags or leave a torn file. Entries
//! without a name annotation are untagged (dangling) images that gc still keeps.

use std::collections::BTreeMap;
use std::fs;

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image;
use crate::media_types;
use crate::reference::Reference;
use crate::spec::{Index, ManifestKind};
use crate::store::{blob, Store};

/// OCI's annotation naming a layout entry; kiln writes the fully-qualified reference.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// containerd's (and Docker 25+ archives') annotation with the fully-qualified reference.
pub const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";

/// What a user-given name resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The tag it was found under, if it was found by name.
    pub reference: Option<Reference>,
    /// The manifest or index.
    pub descriptor: Descriptor,
}

impl Store {
    fn index_path(&self) -> std::path::PathBuf {
        self.root().join("index.json")
    }

    /// Reads index.json (an empty index if there is none yet).
    pub fn read_index(&self) -> Result<Index> {
        let path = self.index_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::json(format!("store index {}", path.display()), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::oci(Vec::new())),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Runs `f` on index.json under the store lock and writes the result atomically.
    fn update_index<T>(&self, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let out = f(&mut index)?;
        let mut bytes = serde_json::to_vec_pretty(&index).expect("index serializes");
        bytes.push(b'\n');
        blob::write_atomic(&self.index_path(), &bytes)?;
        Ok(out)
    }

    /// Points `reference` (its tag; a digest in it is ignored) at the manifest or index
    /// `desc`, replacing what it pointed at before. The blob must be in the store.
    pub fn tag(&self, reference: &Reference, desc: &Descriptor) -> Result<()> {
        if reference.tag().is_none() {
            return Err(Error::InvalidReference {
                value: reference.to_string(),
                reason: "a tag is needed to name an image in the store".to_string(),
            });
        }
        if !self.has_blob(&desc.digest) {
            return Err(Error::BlobNotFound(desc.digest.clone()));
        }
        let name = reference.without_digest();
        // Re-tagging a name to what it already names writes nothing (an unchanged rebuild
        // must not pay for an fsync'd index rewrite). index.json is replaced atomically, so
        // reading it without the lock sees a whole version.
        let current = self.read_index()?;
        if current
            .manifests
            .iter()
            .any(|d| entry_ref(d).as_ref() == Some(&name) && d.digest == desc.digest)
        {
            return Ok(());
        }
        let mut entry = desc.clone();
        let annotations = entry.annotations.get_or_insert_with(BTreeMap::new);
        annotations.insert(REF_NAME_ANNOTATION.to_string(), name.to_string());
        annotations.insert(CONTAINERD_NAME_ANNOTATION.to_string(), name.to_string());
        self.update_index(|index| {
            index
                .manifests
                .retain(|d| entry_ref(d).as_ref() != Some(&name));
            // The image is named now: drop a dangling entry for it.
            index
                .manifests
                .retain(|d| entry_ref(d).is_some() || d.digest != entry.digest);
            index.manifests.push(entry);
            Ok(())
        })
    }

    /// Records an image with no name, so gc keeps it (`docker images` shows `<none>`).
    pub fn add_untagged(&self, desc: &Descriptor) -> Result<()> {
        if !self.has_blob(&desc.digest) {
            return Err(Error::BlobNotFound(desc.digest.clone()));
        }
        self.update_index(|index| {
            if !index.manifests.iter().any(|d| d.digest == desc.digest) {
                let mut entry = desc.clone();
                if let Some(a) = entry.annotations.as_mut() {
                    a.remove(REF_NAME_ANNOTATION);
                    a.remove(CONTAINERD_NAME_ANNOTATION);
                }
                index.manifests.push(entry);
            }
            Ok(())
        })
    }

    /// Removes a tag and returns what it pointed at. The blobs stay until [`Store::gc`].
    pub fn untag(&self, reference: &Reference) -> Result<Descriptor> {
        let name = reference.without_digest();
        self.update_index(|index| {
            let pos = index
                .manifests
                .iter()
                .position(|d| entry_ref(d).as_ref() == Some(&name))
                .ok_or_else(|| Error::ImageNotFound(reference.familiar()))?;
            Ok(strip_names(index.manifests.remove(pos)))
        })
    }

    /// Removes every entry (tagged or not) pointing at `digest`; returns the removed tags.
    pub fn remove_image(&self, digest: &Digest) -> Result<Vec<Reference>> {
        self.update_index(|index| {
            let mut removed = Vec::new();
            index.manifests.retain(|d| {
                if &d.digest != digest {
                    return true;
                }
                removed.extend(entry_ref(d));
                false
            });
            Ok(removed)
        })
    }

    /// Every tag, sorted by reference. Descriptors come without the name annotations.
    pub fn list(&self) -> Result<Vec<(Reference, Descriptor)>> {
        let mut out: Vec<_> = self
            .list_all()?
            .into_iter()
            .filter_map(|(r, d)| Some((r?, d)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Every index.json entry, untagged ones with `None`, in index order. Entries whose name
    /// annotation is not a valid reference are listed as untagged.
    pub fn list_all(&self) -> Result<Vec<(Option<Reference>, Descriptor)>> {
        Ok(self
            .read_index()?
            .manifests
            .into_iter()
            .map(|d| (entry_ref(&d), strip_names(d)))
            .collect())
    }

    /// The manifest or index a reference names (without the name annotations). With a tag, the tag is looked up (and must
    /// match the digest if both are given); with only a digest, the blob itself is used.
    pub fn resolve(&self, reference: &Reference) -> Result<Descriptor> {
        if reference.tag().is_some() {
            let name = reference.without_digest();
            let found = self
                .read_index()?
                .manifests
                .into_iter()
                .find(|d| entry_ref(d).as_ref() == Some(&name));
            match (found.map(strip_names), reference.digest()) {
                (Some(d), Some(want)) if &d.digest != want => {}
                (Some(d), _) => return Ok(d),
                (None, None) => return Err(Error::ImageNotFound(reference.familiar())),
                (None, Some(_)) => {}
            }
        }
        match reference.digest() {
            Some(digest) => self
                .descriptor_of_manifest(digest)
                .map_err(|_| Error::ImageNotFound(reference.familiar())),
            None => Err(Error::ImageNotFound(reference.familiar())),
        }
    }

    /// Resolves what a user typed, as `docker image inspect` does: a full digest or 64-hex
    /// image ID, a reference, or a unique prefix of an image ID (config digest) or manifest
    /// digest.
    pub fn lookup(&self, name: &str) -> Result<Resolved> {
        let not_found = || Error::ImageNotFound(name.to_string());
        let full = if name.len() == 64 && is_hex(name) {
            format!("sha256:{name}").parse::<Digest>().ok()
        } else {
            name.parse::<Digest>().ok()
        };
        if let Some(digest) = full {
            return self
                .lookup_id(|id, manifest| id == &digest || manifest == &digest, name)?
                .ok_or_else(not_found);
        }
        if let Ok(reference) = Reference::parse(name) {
            match self.resolve(&reference) {
                Ok(descriptor) => {
                    return Ok(Resolved {
                        reference: reference.tag().map(|_| reference.without_digest()),
                        descriptor,
                    })
                }
                Err(Error::ImageNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let prefix = name.strip_prefix("sha256:").unwrap_or(name);
        if !prefix.is_empty() && is_hex(prefix) {
            let found = self.lookup_id(
                |id, manifest| id.hex().starts_with(prefix) || manifest.hex().starts_with(prefix),
                name,
            )?;
            return found.ok_or_else(not_found);
        }
        Err(not_found())
    }

    /// Finds the single image whose (ID, manifest digest) satisfies `pred`.
    fn lookup_id(
        &self,
        pred: impl Fn(&Digest, &Digest) -> bool,
        name: &str,
    ) -> Result<Option<Resolved>> {
        let mut found: Option<Resolved> = None;
        for (reference, desc) in self.list_all()? {
            let id = image::image_id(self, &desc);
            if !pred(&id, &desc.digest) {
                continue;
            }
            match &found {
                Some(f) if f.descriptor.digest != desc.digest => {
                    return Err(Error::invalid(
                        format!("image ID {name:?}"),
                        "prefix matches more than one image; give more characters",
                    ))
                }
                Some(_) => {}
                None => {
                    found = Some(Resolved {
                        reference,
                        descriptor: desc,
                    })
                }
            }
        }
        if let Some(f) = found.as_mut() {
            // An image found by ID is not named by one of its tags.
            f.reference = None;
        }
        Ok(found)
    }

    /// A descriptor for a manifest or index blob known by digest.
    pub fn descriptor_of_manifest(&self, digest: &Digest) -> Result<Descriptor> {
        let bytes = self.read_blob(digest)?;
        let media_type = match ManifestKind::parse(&bytes, None)? {
            ManifestKind::Image(m) => m.media_type().to_string(),
            ManifestKind::Index(i) => i.media_type().to_string(),
        };
        debug_assert!(media_types::is_manifest(&media_type) || media_types::is_index(&media_type));
        Ok(Descriptor::new(
            media_type,
            digest.clone(),
            bytes.len() as u64,
        ))
    }
}

/// An index.json entry without the name annotations: what callers get back, so a descriptor
/// reused elsewhere (in a new index, a push) does not carry a stale name.
fn strip_names(mut d: Descriptor) -> Descriptor {
    if let Some(a) = d.annotations.as_mut() {
        a.remove(REF_NAME_ANNOTATION);
        a.remove(CONTAINERD_NAME_ANNOTATION);
        if a.is_empty() {
            d.annotations = None;
        }
    }
    d
}

/// The reference an index.json entry names: kiln's fully-qualified ref.name, else
/// containerd's name annotation.
/// A bare tag in ref.name (as `skopeo copy ... oci:DIR:TAG` writes) names no repository and is
/// ignored here.
pub(crate) fn entry_ref(d: &Descriptor) -> Option<Reference> {
    let by_ref = d
        .annotation(REF_NAME_ANNOTATION)
        .filter(|n| n.contains(['/', ':']))
        .and_then(|n| Reference::parse(n).ok());
    by_ref
        .or_else(|| {
            d.annotation(CONTAINERD_NAME_ANNOTATION)
                .and_then(|n| Reference::parse(n).ok())
        })
        .map(|r| r.without_digest())
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
