//! `kiln copy SRC DST`: copy an image between transports, as `skopeo copy` does.
//!
//! Transports: `docker://REF` (a registry), `oci:PATH[:TAG]` (an OCI layout directory),
//! `docker-archive:FILE` (a `docker save` tar) and a bare name (the local store).
//! Registry to registry streams blobs without touching disk (mounting them when both sides
//! are one registry); every other pair goes through a store, with every blob verified.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use registry::archive::{self, OciImage, SaveImage};
use registry::image::LocalImage;
use registry::media_types;
use registry::reference::Reference;
use registry::remote::{ops, pull, push, Remote};
use registry::spec::ManifestKind;
use registry::store::{Store, REF_NAME_ANNOTATION};
use registry::{Descriptor, Platform};

use super::remote::{runtime, RegistryFlags, Verb};
use super::Globals;

#[derive(clap::Args)]
pub struct Args {
    /// Source: docker://REF, oci:PATH[:TAG], docker-archive:FILE or a local image name
    #[arg(value_name = "SRC")]
    src: String,
    /// Destination: docker://REF, oci:PATH[:TAG], docker-archive:FILE or a local image name
    #[arg(value_name = "DST")]
    dst: String,
    /// Copy every platform of a multi-platform image (registry to registry)
    #[arg(long)]
    all: bool,
    /// Platform to copy from a multi-platform image (default: this machine's)
    #[arg(long)]
    platform: Option<String>,
    /// Blobs transferred at once
    #[arg(long, default_value_t = 3, value_name = "N")]
    max_concurrent: usize,
    #[command(flatten)]
    registry: RegistryFlags,
}

/// Where an image is.
#[derive(Debug, PartialEq, Eq)]
pub enum Location {
    Docker(Reference),
    Oci { path: PathBuf, tag: Option<String> },
    Archive(PathBuf),
    Local(String),
}

impl Location {
    pub fn parse(s: &str) -> Result<Location> {
        if let Some(r) = s.strip_prefix("docker://") {
            return Ok(Location::Docker(Reference::parse(r)?));
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            let (path, tag) = match rest.rsplit_once(':') {
                Some((p, t)) if !t.contains('/') && !p.is_empty() => (p, Some(t.to_string())),
                _ => (rest, None),
            };
            if path.is_empty() {
                bail!("{s}: oci: needs a directory path");
            }
            return Ok(Location::Oci {
                path: PathBuf::from(path),
                tag,
            });
        }
        if let Some(file) = s.strip_prefix("docker-archive:") {
            if file.is_empty() {
                bail!("{s}: docker-archive: needs a file path");
            }
            return Ok(Location::Archive(PathBuf::from(file)));
        }
        Ok(Location::Local(s.to_string()))
    }
}

pub fn run(args: Args, g: &Globals) -> Result<()> {
    let src = Location::parse(&args.src)?;
    let dst = Location::parse(&args.dst)?;
    let platform = super::pull::parse_platform(args.platform.as_deref())?;
    let remote = args.registry.remote(args.max_concurrent, Verb::Push)?;
    let rt = runtime()?;
    if let (Location::Docker(s), Location::Docker(d)) = (&src, &dst) {
        let r = rt
            .block_on(ops::copy_remote(&remote, s, d, &platform, args.all))
            .with_context(|| format!("copying {s} to {d}"))?;
        print_digest(r.digest.as_ref());
        return Ok(());
    }
    let local = g.store()?;
    let (store, desc, name) = open_source(&rt, &remote, &local, &src, &platform)?;
    match dst {
        Location::Docker(d) => {
            let r = rt
                .block_on(push::push(&remote, &store, &desc, &d))
                .with_context(|| format!("pushing to {d}"))?;
            print_digest(r.digest.as_ref());
        }
        Location::Oci { path, tag } => {
            let tags = match tag {
                Some(t) => vec![name.as_ref().map_or_else(
                    || Reference::parse(&format!("localhost/image:{t}")),
                    |n| n.with_tag(&t),
                )?],
                None => Vec::new(),
            };
            archive::export_oci_layout(
                &store,
                &[OciImage {
                    descriptor: desc.clone(),
                    tags,
                }],
                &path,
            )
            .with_context(|| format!("writing OCI layout {}", path.display()))?;
            print_digest(Some(&desc.digest));
        }
        Location::Archive(file) => {
            let image = LocalImage::open(&store, &desc, &platform)?;
            let tags = name.into_iter().collect();
            let out = std::fs::File::create(&file)
                .with_context(|| format!("creating {}", file.display()))?;
            archive::save(
                &store,
                &[SaveImage { image, tags }],
                io::BufWriter::new(out),
            )
            .with_context(|| format!("writing {}", file.display()))?;
            print_digest(Some(&desc.digest));
        }
        Location::Local(n) => {
            let r = Reference::parse(&n)?;
            if store.root() != local.root() {
                copy_graph(&store, &local, &desc)?;
            }
            local.tag(&r, &desc)?;
            print_digest(Some(&desc.digest));
        }
    }
    Ok(())
}

fn print_digest(d: Option<&registry::Digest>) {
    if let Some(d) = d {
        println!("{d}");
    }
}

/// The store holding the source image, its descriptor and its name, pulling or loading
/// into the local store when the source is a registry or an archive.
fn open_source(
    rt: &tokio::runtime::Runtime,
    remote: &Remote,
    local: &Store,
    src: &Location,
    platform: &Platform,
) -> Result<(Store, Descriptor, Option<Reference>)> {
    match src {
        Location::Docker(r) => {
            let p = rt
                .block_on(pull::pull(remote, local, r, platform))
                .with_context(|| format!("pulling {r}"))?;
            Ok((local.clone(), p.manifest, Some(r.without_digest())))
        }
        Location::Oci { path, tag } => {
            if !path.join("index.json").is_file() {
                bail!(
                    "{}: not an OCI image layout (no index.json)",
                    path.display()
                );
            }
            let store = Store::open(path)?;
            let entries = store.read_index()?.manifests;
            let found: Vec<&Descriptor> = entries
                .iter()
                .filter(|d| match tag {
                    Some(t) => d
                        .annotation(REF_NAME_ANNOTATION)
                        .is_some_and(|n| n == t || n.ends_with(&format!(":{t}"))),
                    None => true,
                })
                .collect();
            let desc = match found.as_slice() {
                [one] => (*one).clone(),
                [] => bail!(
                    "{}: no image tagged {:?}",
                    path.display(),
                    tag.as_deref().unwrap_or("")
                ),
                _ => bail!(
                    "{}: holds several images; name one with oci:PATH:TAG",
                    path.display()
                ),
            };
            let name = tag
                .as_ref()
                .and_then(|t| Reference::parse(&format!("localhost/image:{t}")).ok());
            Ok((store, desc, name))
        }
        Location::Archive(file) => {
            let f =
                std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
            let loaded = archive::load(local, io::BufReader::new(f))
                .with_context(|| format!("loading {}", file.display()))?;
            let Some(first) = loaded.into_iter().next() else {
                bail!("{}: the archive holds no image", file.display());
            };
            Ok((
                local.clone(),
                first.descriptor,
                first.tags.into_iter().next(),
            ))
        }
        Location::Local(name) => {
            let r = super::lookup(local, name)?;
            Ok((local.clone(), r.descriptor, r.reference))
        }
    }
}

/// Copies a manifest or index and every blob it needs (present children of an index) from
/// one store to another, streaming and verifying each blob.
fn copy_graph(src: &Store, dst: &Store, desc: &Descriptor) -> Result<()> {
    let bytes = src.read_blob(&desc.digest)?;
    match ManifestKind::parse(&bytes, Some(&desc.media_type))? {
        ManifestKind::Image(m) => {
            for d in m.layers.iter().chain(std::iter::once(&m.config)) {
                copy_blob(src, dst, d)?;
            }
        }
        ManifestKind::Index(i) => {
            for child in i.manifests.iter().filter(|c| src.has_blob(&c.digest)) {
                if media_types::is_manifest(&child.media_type)
                    || media_types::is_index(&child.media_type)
                {
                    copy_graph(src, dst, child)?;
                }
            }
        }
    }
    copy_blob(src, dst, desc)
}

fn copy_blob(src: &Store, dst: &Store, d: &Descriptor) -> Result<()> {
    if dst.has_blob(&d.digest) {
        return Ok(());
    }
    let mut from = src.open_blob(&d.digest)?;
    let mut w = dst.blob_writer()?;
    io::copy(&mut from, &mut w).with_context(|| blob_context(src.root(), d))?;
    w.commit(Some((&d.digest, d.size)))
        .with_context(|| blob_context(src.root(), d))?;
    Ok(())
}

fn blob_context(root: &Path, d: &Descriptor) -> String {
    format!("copying blob {} from {}", d.digest, root.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_like_skopeo() {
        assert_eq!(
            Location::parse("oci:/tmp/lay:v1").unwrap(),
            Location::Oci {
                path: "/tmp/lay".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            Location::parse("oci:/tmp/lay").unwrap(),
            Location::Oci {
                path: "/tmp/lay".into(),
                tag: None
            }
        );
        assert_eq!(
            Location::parse("docker-archive:/tmp/a.tar").unwrap(),
            Location::Archive("/tmp/a.tar".into())
        );
        assert!(
            matches!(Location::parse("docker://busybox").unwrap(), Location::Docker(r) if r.to_string() == "docker.io/library/busybox:latest")
        );
        assert_eq!(
            Location::parse("app:1").unwrap(),
            Location::Local("app:1".into())
        );
        assert!(Location::parse("oci:").is_err());
    }
}
