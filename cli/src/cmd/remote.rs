//! What the registry commands share: registry flags, the async runtime, and progress lines
//! in the style of `docker pull`/`docker push`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use registry::remote::{Event, Mirrors, Progress, Remote, RemoteOptions};

/// Flags for every command that talks to a registry.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RegistryFlags {
    /// Registry (host[:port]) to reach over plain HTTP or unverified TLS (repeatable; also
    /// KILN_INSECURE_REGISTRIES)
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
    /// Pull mirror for docker.io, or REGISTRY=MIRROR for another registry (repeatable; also
    /// KILN_REGISTRY_MIRRORS)
    #[arg(long = "registry-mirror", value_name = "MIRROR")]
    pub mirrors: Vec<String>,
    /// Suppress progress output
    #[arg(short, long)]
    pub quiet: bool,
}

impl RegistryFlags {
    /// A [`Remote`] configured from the flags, the environment and the system files.
    pub fn remote(&self, concurrency: usize, verb: Verb) -> Result<Remote> {
        let mut opts = RemoteOptions::from_env().context("reading registry configuration")?;
        let flag_mirrors =
            Mirrors::from_system(&self.mirrors).context("reading registry mirrors")?;
        opts.transport
            .insecure_registries
            .extend(flag_mirrors.insecure.iter().cloned());
        opts.mirrors = flag_mirrors;
        opts.transport
            .insecure_registries
            .extend(self.insecure.iter().cloned());
        opts.max_concurrent = concurrency.max(1);
        if !self.quiet {
            opts.progress = Arc::new(LineProgress::new(verb));
        }
        Ok(Remote::new(opts))
    }
}

/// A multi-threaded runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Pull,
    Push,
}

/// Plain per-layer lines on stderr: `abc123def456: Pull complete`.
pub struct LineProgress {
    verb: Verb,
    sizes: Mutex<HashMap<String, u64>>,
}

impl LineProgress {
    pub fn new(verb: Verb) -> Self {
        LineProgress {
            verb,
            sizes: Mutex::new(HashMap::new()),
        }
    }
}

impl Progress for LineProgress {
    fn event(&self, event: Event) {
        let line = match &event {
            Event::Started { digest, size } => {
                self.sizes.lock().unwrap().insert(digest.to_string(), *size);
                let what = match self.verb {
                    Verb::Pull => "Downloading",
                    Verb::Push => "Pushing",
                };
                format!("{}: {what} {}", digest.short(), super::human_size(*size))
            }
            Event::Bytes { .. } => return,
            Event::Retrying { digest, offset } => {
                format!("{}: Retrying (from byte {offset})", digest.short())
            }
            Event::Skipped {
                digest,
                mounted_from: Some(from),
            } => format!("{}: Mounted from {from}", digest.short()),
            Event::Skipped { digest, .. } => format!("{}: Already exists", digest.short()),
            Event::Done { digest } => match self.verb {
                Verb::Pull => format!("{}: Pull complete", digest.short()),
                Verb::Push => format!("{}: Pushed", digest.short()),
            },
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}
