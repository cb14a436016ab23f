//! `kiln load -i FILE`: docker-archives and OCI layout tars into the store.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use registry::archive::load;

use super::Globals;

#[derive(clap::Args)]
pub struct Args {
    /// Read from a tar archive file instead of stdin (gzip or zstd compressed is fine)
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(args: Args, g: &Globals) -> Result<()> {
    let store = g.store()?;
    let loaded = match &args.input {
        Some(path) => {
            let f =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            load(&store, f).with_context(|| format!("loading {}", path.display()))?
        }
        None => {
            let stdin = std::io::stdin();
            anyhow::ensure!(
                !std::io::IsTerminal::is_terminal(&stdin),
                "requested load from stdin, but stdin is empty"
            );
            load(&store, stdin.lock()).context("loading from stdin")?
        }
    };
    if args.quiet {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for img in &loaded {
        if img.tags.is_empty() {
            writeln!(out, "Loaded image ID: {}", img.id)?;
        }
        for t in &img.tags {
            writeln!(out, "Loaded image: {}", t.familiar())?;
        }
    }
    Ok(())
}
