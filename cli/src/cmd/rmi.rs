//! `kiln rmi NAME...`: remove image names. Blobs are freed by the store's gc.

use std::io::Write;

use anyhow::{Context, Result};

use super::Globals;

#[derive(clap::Args)]
pub struct Args {
    /// Images to remove (name, ID or digest)
    #[arg(required = true, value_name = "IMAGE")]
    names: Vec<String>,
    /// Remove every tag of an image given by ID, even if it has several
    #[arg(short, long)]
    force: bool,
}

pub fn run(args: Args, g: &Globals) -> Result<()> {
    let store = g.store()?;
    let mut out = std::io::stdout().lock();
    let mut errors = Vec::new();
    for name in &args.names {
        if let Err(e) = remove(&store, name, args.force, &mut out) {
            errors.push(format!("{e:#}"));
        }
    }
    match errors.len() {
        0 => Ok(()),
        _ => anyhow::bail!("{}", errors.join("\n")),
    }
}

fn remove(
    store: &registry::store::Store,
    name: &str,
    force: bool,
    out: &mut impl Write,
) -> Result<()> {
    let resolved = super::lookup(store, name)?;
    if let Some(reference) = resolved.reference {
        store
            .untag(&reference)
            .with_context(|| format!("untagging {}", reference.familiar()))?;
        writeln!(out, "Untagged: {}", reference.familiar())?;
        return Ok(());
    }
    // By ID or digest: every name of the image goes, which needs -f if there are several.
    let digest = &resolved.descriptor.digest;
    let tags: Vec<_> = store
        .list()?
        .into_iter()
        .filter(|(_, d)| &d.digest == digest)
        .collect();
    if tags.len() > 1 && !force {
        anyhow::bail!(
            "conflict: unable to delete {name} (must be forced) - image is referenced in \
             multiple repositories"
        );
    }
    let id = registry::image::image_id(store, &resolved.descriptor);
    for r in store.remove_image(digest)? {
        writeln!(out, "Untagged: {}", r.familiar())?;
    }
    writeln!(out, "Deleted: {id}")?;
    Ok(())
}
