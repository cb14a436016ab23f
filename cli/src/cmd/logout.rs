//! `kiln logout`: remove stored credentials for a registry.

use anyhow::Result;

use super::login::normalize_server;
use super::Globals;

#[derive(clap::Args)]
pub struct Args {
    /// Registry host (default: docker.io)
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

pub fn run(args: Args, _g: &Globals) -> Result<()> {
    let server = normalize_server(args.server.as_deref());
    let sources = registry::remote::CredentialSources::from_env();
    if sources.erase(&server)? {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(())
}
