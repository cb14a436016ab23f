//! `kiln tags REPO`: list a repository's tags in a registry.

use anyhow::Result;
use registry::reference::Reference;
use registry::remote::ops;

use super::remote::{runtime, RegistryFlags, Verb};
use super::Globals;

#[derive(clap::Args)]
pub struct Args {
    /// Repository (docker://NAME or NAME)
    #[arg(value_name = "REPO")]
    repo: String,
    #[command(flatten)]
    registry: RegistryFlags,
}

pub fn run(args: Args, _g: &Globals) -> Result<()> {
    let name = args.repo.strip_prefix("docker://").unwrap_or(&args.repo);
    let reference = Reference::parse_named(name)?;
    let remote = args.registry.remote(1, Verb::Pull)?;
    let tags = runtime()?.block_on(ops::tags(&remote, &reference))?;
    let mut out = std::io::stdout().lock();
    for t in tags {
        std::io::Write::write_all(&mut out, format!("{t}\n").as_bytes())?;
    }
    Ok(())
}
