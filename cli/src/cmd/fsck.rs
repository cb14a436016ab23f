//! `kiln fsck`: verifies every blob's digest and every image's graph in the store.

use anyhow::{bail, Result};

use super::Globals;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args, g: &Globals) -> Result<()> {
    let store = g.store()?;
    let report = store.fsck()?;
    if report.is_ok() {
        println!("store {} is consistent", g.root.display());
        return Ok(());
    }
    for p in &report.problems {
        eprintln!("{p}");
    }
    bail!(
        "store {} has {} problem(s)",
        g.root.display(),
        report.problems.len()
    )
}
