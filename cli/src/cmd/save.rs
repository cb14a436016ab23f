//! `kiln save -o FILE NAME...`: a docker-archive (combined with an OCI layout).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use registry::archive::{save, SaveImage};
use registry::image::LocalImage;
use registry::Platform;

use super::Globals;

#[derive(clap::Args)]
pub struct Args {
    /// Write to a file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Platform to save for multi-platform images (default: this machine's)
    #[arg(long)]
    platform: Option<String>,
    /// Images to save (names keep their tags; IDs are saved untagged)
    #[arg(required = true, value_name = "IMAGE")]
    names: Vec<String>,
}

pub fn run(args: Args, g: &Globals) -> Result<()> {
    let store = g.store()?;
    let platform = match &args.platform {
        Some(p) => p
            .parse()
            .with_context(|| format!("invalid --platform {p:?}"))?,
        None => Platform::host(),
    };
    let mut images: Vec<SaveImage> = Vec::new();
    for name in &args.names {
        let resolved = super::lookup(&store, name)?;
        let image = LocalImage::open(&store, &resolved.descriptor, &platform)
            .with_context(|| format!("reading image {name}"))?;
        match images.iter_mut().find(|s| s.image.id() == image.id()) {
            Some(s) => {
                if let Some(r) = resolved.reference.filter(|r| !s.tags.contains(r)) {
                    s.tags.push(r);
                }
            }
            None => images.push(SaveImage {
                image,
                tags: resolved.reference.into_iter().collect(),
            }),
        }
    }
    match &args.output {
        Some(path) => {
            // Write beside the target and rename, so a failure leaves no half archive.
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let tmp = tempfile::Builder::new()
                .prefix(".kiln-save-")
                .tempfile_in(&dir)
                .with_context(|| format!("creating a file in {}", dir.display()))?;
            let w = std::io::BufWriter::new(tmp);
            let w =
                save(&store, &images, w).with_context(|| format!("writing {}", path.display()))?;
            let tmp = w
                .into_inner()
                .map_err(|e| e.into_error())
                .with_context(|| format!("writing {}", path.display()))?;
            tmp.as_file().sync_all()?;
            tmp.persist(path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            anyhow::ensure!(
                !stdout.is_terminal(),
                "cowardly refusing to save to a terminal. Use the -o flag or redirect"
            );
            let mut w = save(&store, &images, std::io::BufWriter::new(stdout.lock()))?;
            w.flush()?;
        }
    }
    Ok(())
}
