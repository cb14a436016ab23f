//! `kiln push NAME [DEST]`: upload an image from the store to a registry.

use anyhow::{Context, Result};
use registry::reference::Reference;
use registry::remote::push;

use super::remote::{runtime, RegistryFlags, Verb};
use super::Globals;

#[derive(clap::Args)]
pub struct Args {
    /// Image in the store (name, ID or digest)
    #[arg(value_name = "NAME")]
    name: String,
    /// Where to push it (default: NAME)
    #[arg(value_name = "DEST")]
    dest: Option<String>,
    /// Layers uploaded at once
    #[arg(long, default_value_t = super::remote::DEFAULT_UPLOADS, value_name = "N")]
    max_concurrent_uploads: usize,
    #[command(flatten)]
    registry: RegistryFlags,
}

pub fn run(args: Args, g: &Globals) -> Result<()> {
    let store = g.store()?;
    let resolved = super::lookup(&store, &args.name)?;
    let dest = match (&args.dest, &resolved.reference) {
        (Some(d), _) => Reference::parse(d)?,
        (None, Some(r)) => r.clone(),
        (None, None) => Reference::parse(&args.name)
            .ok()
            .filter(|_| !args.name.starts_with("sha256:"))
            .with_context(|| {
                format!(
                    "{}: an image ID needs a destination: kiln push ID NAME[:TAG]",
                    args.name
                )
            })?,
    };
    let remote = args
        .registry
        .remote(args.max_concurrent_uploads, Verb::Push)?;
    if !args.registry.quiet {
        eprintln!("The push refers to repository [{}]", dest.name());
    }
    let pushed = runtime()?.block_on(push::push(&remote, &store, &resolved.descriptor, &dest))?;
    let digest = pushed
        .digest
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let tag = dest.tag().unwrap_or("latest");
    println!("{tag}: digest: {digest} size: {}", pushed.size);
    Ok(())
}
