//! The `kiln` binary: parses flags and calls the libraries. One file per command under `cmd/`.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "Daemonless, rootless container image builder"
)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
}
