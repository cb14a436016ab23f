//! `kiln delete docker://REF`: delete a manifest from a registry (where it allows deletes).

use anyhow::Result;
use registry::reference::Reference;
use registry::remote::ops;

use super::remote::{runtime, RegistryFlags, Verb};
use super::Globals;

#[derive(clap::Args)]
pub struct Args {
    /// Image in a registry (docker://NAME[:TAG|@DIGEST])
    #[arg(value_name = "REF")]
    reference: String,
    #[command(flatten)]
    registry: RegistryFlags,
}

pub fn run(args: Args, _g: &Globals) -> Result<()> {
    let Some(name) = args.reference.strip_prefix("docker://") else {
        anyhow::bail!(
            "{}: kiln delete removes images from registries; write docker://NAME (use kiln rmi for the local store)",
            args.reference
        );
    };
    let reference = Reference::parse(name)?;
    let remote = args.registry.remote(1, Verb::Pull)?;
    let digest = runtime()?.block_on(ops::delete(&remote, &reference))?;
    println!("Deleted: {digest}");
    Ok(())
}
