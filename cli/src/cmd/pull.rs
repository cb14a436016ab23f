//! `kiln pull`: download an image from a registry into the store.

use anyhow::{Context, Result};
use registry::reference::Reference;
use registry::remote::pull;
use registry::Platform;

use super::remote::{runtime, RegistryFlags, Verb};
use super::Globals;

#[derive(clap::Args)]
pub struct Args {
    /// Image to pull (NAME[:TAG|@DIGEST])
    #[arg(value_name = "NAME")]
    name: String,
    /// Platform to pull from a multi-platform image (os/arch[/variant]; default: this machine's)
    #[arg(long)]
    platform: Option<String>,
    /// Layers downloaded at once
    #[arg(long, default_value_t = super::remote::DEFAULT_DOWNLOADS, value_name = "N")]
    max_concurrent_downloads: usize,
    #[command(flatten)]
    registry: RegistryFlags,
}

pub fn run(args: Args, g: &Globals) -> Result<()> {
    let reference = Reference::parse(&args.name)?;
    let platform = parse_platform(args.platform.as_deref())?;
    let store = g.store()?;
    let remote = args
        .registry
        .remote(args.max_concurrent_downloads, Verb::Pull)?;
    if !args.registry.quiet {
        let what = reference.tag().unwrap_or("latest");
        eprintln!("{what}: Pulling from {}", reference.repository());
    }
    let pulled = runtime()?.block_on(pull::pull(&remote, &store, &reference, &platform))?;
    if !args.registry.quiet {
        eprintln!("Digest: {}", pulled.digest());
        eprintln!("Status: Downloaded image for {}", reference.familiar());
    }
    println!("{reference}");
    Ok(())
}

/// `--platform`, or the host's.
pub fn parse_platform(p: Option<&str>) -> Result<Platform> {
    match p {
        Some(p) => p
            .parse()
            .with_context(|| format!("invalid --platform {p:?}")),
        None => Ok(Platform::host()),
    }
}
