//! What the registry commands share: registry flags, the async runtime, and progress lines
//! in the style of `docker pull`/`docker push`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
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
            opts.progress = if std::io::stderr().is_terminal() {
                Arc::new(BarProgress::new(verb))
            } else {
                Arc::new(LineProgress::new(verb))
            };
        }
        Ok(Remote::new(opts))
    }
}

impl RegistryFlags {
    /// A [`Remote`] like [`RegistryFlags::remote`] that reports no progress (background work).
    pub fn quiet_remote(&self) -> Result<Remote> {
        let quiet = RegistryFlags {
            quiet: true,
            ..self.clone()
        };
        quiet.remote(DEFAULT_UPLOADS, Verb::Push)
    }
}

/// Layers uploaded at once by default: dockerd's `max-concurrent-uploads` (with fewer, the last
/// big layer of an image uploads alone and the registry's ingest sits partly idle).
pub const DEFAULT_UPLOADS: usize = 5;
/// Layers downloaded at once by default: dockerd's `max-concurrent-downloads`.
pub const DEFAULT_DOWNLOADS: usize = 3;

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

fn done_word(verb: Verb) -> &'static str {
    match verb {
        Verb::Pull => "Pull complete",
        Verb::Push => "Pushed",
    }
}

/// Per-layer progress bars with bytes and speed, for a terminal.
pub struct BarProgress {
    verb: Verb,
    multi: indicatif::MultiProgress,
    bars: Mutex<HashMap<String, indicatif::ProgressBar>>,
}

impl BarProgress {
    pub fn new(verb: Verb) -> Self {
        BarProgress {
            verb,
            multi: indicatif::MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::stderr(),
            ),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl Progress for BarProgress {
    fn event(&self, event: Event) {
        let mut bars = self.bars.lock().unwrap();
        match event {
            Event::Started { digest, size } => {
                let bar = self.multi.add(indicatif::ProgressBar::new(size));
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix}: {msg:12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(digest.short().to_string());
                bar.set_message(match self.verb {
                    Verb::Pull => "Downloading",
                    Verb::Push => "Pushing",
                });
                bars.insert(digest.to_string(), bar);
            }
            Event::Bytes { digest, n } => {
                if let Some(b) = bars.get(&digest.to_string()) {
                    b.inc(n);
                }
            }
            Event::Retrying { digest, offset } => {
                if let Some(b) = bars.get(&digest.to_string()) {
                    b.set_position(offset);
                    b.set_message("Retrying");
                }
            }
            Event::Skipped {
                digest,
                mounted_from,
            } => {
                let what = match mounted_from {
                    Some(from) => format!("Mounted from {from}"),
                    None => "Already exists".to_string(),
                };
                let _ = self.multi.println(format!("{}: {what}", digest.short()));
            }
            Event::Done { digest } => {
                if let Some(b) = bars.remove(&digest.to_string()) {
                    b.finish_and_clear();
                    let _ =
                        self.multi
                            .println(format!("{}: {}", digest.short(), done_word(self.verb)));
                }
            }
        }
    }
}

/// Plain per-layer lines on stderr: `abc123def456: Pull complete`.
pub struct LineProgress {
    verb: Verb,
}

impl LineProgress {
    pub fn new(verb: Verb) -> Self {
        LineProgress { verb }
    }
}

impl Progress for LineProgress {
    fn event(&self, event: Event) {
        let line = match &event {
            Event::Started { digest, size } => {
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
            Event::Done { digest } => format!("{}: {}", digest.short(), done_word(self.verb)),
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}
