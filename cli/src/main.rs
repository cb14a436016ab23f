//! The `kiln` binary: parses flags and calls the libraries. One file per command under `cmd/`.

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "Daemonless, rootless container image builder"
)]
struct Cli {
    /// The image store directory.
    #[arg(long, global = true, env = "KILN_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,

    /// Log debug detail to stderr.
    #[arg(long, global = true)]
    debug: bool,

    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    // The sandbox re-executes kiln as the init of each RUN step; that must happen before clap
    // or any thread starts.
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(builder::sandbox::INIT_ARG))
    {
        builder::sandbox::init_main();
    }
    // Rootless: move into a user namespace with the caller's subordinate ids, also before
    // any thread starts.
    if let Err(e) = builder::sandbox::userns::enter_rootless() {
        eprintln!("Error: rootless setup: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    init_logging(cli.debug);
    let globals = cmd::Globals {
        root: cli
            .root
            .unwrap_or_else(registry::store::Store::default_root),
        debug: cli.debug,
    };
    match cmd::run(cli.command, &globals) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if cmd::is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("Error: {}", error_message(&e));
            // Interrupted builds exit as the shell expects of a signal: 128 + its number.
            let interrupted = e.chain().find_map(|c| match c.downcast_ref() {
                Some(builder::exec::BuildError::Interrupted(sig)) => Some(*sig),
                _ => None,
            });
            match interrupted {
                Some(sig) => ExitCode::from(128 + sig as u8),
                None => ExitCode::FAILURE,
            }
        }
    }
}

fn init_logging(debug: bool) {
    let default = if debug { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KILN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The error and its causes on one line, skipping causes whose text the message already holds
/// (library errors often print their source themselves).
fn error_message(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}
