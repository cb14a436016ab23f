//! `kiln build --output`: where the built image goes besides the store, in buildx's terms.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use builder::exec::layers::unpack_verified;
use builder::exec::BuiltImage;
use registry::archive::{export_oci_layout, save, write_oci_archive, OciImage, SaveImage};
use registry::image::LocalImage;
use registry::reference::Reference;
use registry::store::Store;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputSpec {
    /// An OCI image layout, as a directory or a tarball.
    Oci { dest: PathBuf, tar: bool },
    /// A docker-archive tarball (`docker load`).
    Docker { dest: PathBuf },
    /// The image's files, in a directory.
    Local { dest: PathBuf },
    /// The image's files, in a tarball.
    Tar { dest: PathBuf },
}

impl OutputSpec {
    /// Parses `type=oci,dest=PATH[,tar=false]`; a bare path means `type=local,dest=PATH`.
    pub fn parse(spec: &str) -> Result<OutputSpec> {
        if !spec.contains('=') {
            return Ok(OutputSpec::Local {
                dest: PathBuf::from(spec),
            });
        }
        let mut kind = None;
        let mut dest = None;
        let mut tar = true;
        for field in spec.split(',') {
            let (k, v) = field
                .split_once('=')
                .with_context(|| format!("invalid --output field {field:?} in {spec:?}"))?;
            match k.trim() {
                "type" => kind = Some(v.to_string()),
                "dest" => dest = Some(PathBuf::from(v)),
                "tar" => {
                    tar = v
                        .parse::<bool>()
                        .with_context(|| format!("invalid tar={v:?} in --output {spec:?}"))?
                }
                // buildx accepts names and other attributes; names come from -t here.
                "name" | "oci-mediatypes" | "compression" | "force-compression" => {}
                other => bail!("unknown --output attribute {other:?} in {spec:?}"),
            }
        }
        let kind = kind.with_context(|| format!("--output {spec:?} needs type="))?;
        let dest = dest.with_context(|| format!("--output {spec:?} needs dest="))?;
        Ok(match kind.as_str() {
            "oci" => OutputSpec::Oci { dest, tar },
            "docker" => OutputSpec::Docker { dest },
            "local" => OutputSpec::Local { dest },
            "tar" => OutputSpec::Tar { dest },
            other => {
                bail!("unsupported --output type {other:?}: expected oci, docker, local or tar")
            }
        })
    }
}

pub fn export(
    store: &Store,
    image: &BuiltImage,
    tags: &[Reference],
    out: &OutputSpec,
) -> Result<()> {
    match out {
        OutputSpec::Oci { dest, tar: false } => {
            let images = [OciImage {
                descriptor: image.manifest.clone(),
                tags: tags.to_vec(),
            }];
            export_oci_layout(store, &images, dest)
                .with_context(|| format!("exporting an OCI layout to {}", dest.display()))
        }
        OutputSpec::Oci { dest, tar: true } => {
            let images = [OciImage {
                descriptor: image.manifest.clone(),
                tags: tags.to_vec(),
            }];
            with_file(dest, |w| {
                write_oci_archive(store, &images, w)?;
                Ok(())
            })
        }
        OutputSpec::Docker { dest } => {
            let local = LocalImage::open(store, &image.manifest, &registry::Platform::host())?;
            let images = [SaveImage {
                image: local,
                tags: tags.to_vec(),
            }];
            with_file(dest, |w| {
                save(store, &images, w)?;
                Ok(())
            })
        }
        OutputSpec::Local { dest } => {
            std::fs::create_dir_all(dest)
                .with_context(|| format!("creating {}", dest.display()))?;
            unpack_image(store, image, dest)
        }
        OutputSpec::Tar { dest } => {
            let scratch = store.root().join("tmp");
            std::fs::create_dir_all(&scratch)
                .with_context(|| format!("creating {}", scratch.display()))?;
            let tmp = tempfile::Builder::new()
                .prefix("export-")
                .tempdir_in(&scratch)
                .with_context(|| format!("creating a directory in {}", scratch.display()))?;
            unpack_image(store, image, tmp.path())?;
            with_file(dest, |w| {
                let mut b = tar::Builder::new(w);
                b.follow_symlinks(false);
                b.append_dir_all(".", tmp.path())?;
                b.into_inner()?;
                Ok(())
            })
        }
    }
}

fn unpack_image(store: &Store, image: &BuiltImage, dest: &Path) -> Result<()> {
    let local = LocalImage::open(store, &image.manifest, &registry::Platform::host())?;
    for layer in local.layers() {
        unpack_verified(store, layer, dest)?;
    }
    Ok(())
}

/// Writes to `dest`, or to stdout for `-`.
fn with_file(dest: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    if dest == Path::new("-") {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        write(&mut lock)?;
        lock.flush()?;
        return Ok(());
    }
    let f = File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut w = BufWriter::new(f);
    write(&mut w)?;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_specs_parse_like_buildx() {
        assert_eq!(
            OutputSpec::parse("type=oci,dest=/x,tar=false").unwrap(),
            OutputSpec::Oci {
                dest: "/x".into(),
                tar: false
            }
        );
        assert_eq!(
            OutputSpec::parse("out").unwrap(),
            OutputSpec::Local { dest: "out".into() }
        );
        assert!(OutputSpec::parse("type=bogus,dest=x").is_err());
        assert!(OutputSpec::parse("type=oci").is_err());
    }
}
