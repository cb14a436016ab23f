//! `kiln info`: where kiln keeps images and which registry settings it is using.

use std::path::Path;

use anyhow::Result;
use registry::remote::RemoteOptions;

use super::remote::RegistryFlags;
use super::Globals;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    registry: RegistryFlags,
}

fn state(p: &Path) -> &'static str {
    if p.exists() {
        ""
    } else {
        " (absent)"
    }
}

pub fn run(args: Args, g: &Globals) -> Result<()> {
    let mut flags = args.registry.clone();
    flags.quiet = true;
    // Built the way pull/push build it, so what is printed is what they use.
    let remote = flags.remote(3, super::remote::Verb::Pull)?;
    let opts: &RemoteOptions = remote.options();
    println!("Store: {}", g.root.display());
    println!("Credentials (in lookup order):");
    let c = &opts.credentials;
    if let Some(p) = &c.registry_auth_file {
        println!("  {} [REGISTRY_AUTH_FILE]{}", p.display(), state(p));
    }
    println!(
        "  {}{} [login writes here]",
        c.docker_config.display(),
        state(&c.docker_config)
    );
    if let Some(p) = &c.containers_auth {
        println!("  {}{}", p.display(), state(p));
    }
    println!("Mirror configuration:");
    for p in ["/etc/docker/daemon.json", "/etc/containers/registries.conf"] {
        println!("  {p}{}", state(Path::new(p)));
    }
    println!("Registry mirrors:");
    if opts.mirrors.by_registry.is_empty() {
        println!("  (none)");
    }
    for (registry, mirrors) in &opts.mirrors.by_registry {
        println!("  {registry}: {}", mirrors.join(", "));
    }
    println!("Insecure registries (plain HTTP allowed; loopback always):");
    if opts.transport.insecure_registries.is_empty() {
        println!("  (none)");
    }
    for h in &opts.transport.insecure_registries {
        println!("  {h}");
    }
    println!("CA certificate directories:");
    for d in &opts.transport.cert_dirs {
        println!("  {}/<host>/*.crt{}", d.display(), state(d));
    }
    Ok(())
}
