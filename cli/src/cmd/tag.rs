//! `kiln tag SOURCE TARGET`.

use anyhow::{Context, Result};
use registry::reference::Reference;

use super::Globals;

#[derive(clap::Args)]
pub struct Args {
    /// Existing image (name, ID or digest)
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    source: String,
    /// New name
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    target: String,
}

pub fn run(args: Args, g: &Globals) -> Result<()> {
    let target = Reference::parse(&args.target)
        .with_context(|| format!("invalid target name {:?}", args.target))?;
    anyhow::ensure!(
        target.digest().is_none(),
        "refusing to create a tag with a digest reference: {}",
        args.target
    );
    let store = g.store()?;
    let resolved = super::lookup(&store, &args.source)?;
    store
        .tag(&target, &resolved.descriptor)
        .with_context(|| format!("tagging {} as {}", args.source, target.familiar()))?;
    Ok(())
}
