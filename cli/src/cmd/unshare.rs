//! `kiln unshare [CMD...]`: runs a command in the user and mount namespace kiln itself uses
//! when not root (as `buildah unshare` and `podman unshare` do), e.g. to look at or remove
//! store files owned by subordinate ids. As root it simply runs the command.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// The command and its arguments (default: $SHELL, or /bin/sh)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<OsString>,
}

pub fn run(args: Args) -> Result<()> {
    // main() has already entered the namespace (builder::sandbox::userns::enter_rootless).
    let mut argv = args.command.into_iter();
    let program = argv
        .next()
        .or_else(|| std::env::var_os("SHELL"))
        .unwrap_or_else(|| "/bin/sh".into());
    let err = Command::new(&program).args(argv).exec();
    Err(err).with_context(|| format!("running {}", program.to_string_lossy()))
}
