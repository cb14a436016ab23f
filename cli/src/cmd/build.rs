//! `kiln build`: docker/buildx-compatible flags in, an image in the store (and optional
//! exports) out.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use builder::exec::secrets::{SecretSpec, Secrets};
use builder::exec::{BuildInput, BuildOptions, Builder, BuiltImage, Progress, Silent};
use builder::plan::{BuildArgs, PlatformArgs};
use builder::sandbox::{LinuxSandbox, NetworkMode};
use builder::snapshot::SnapshotterKind;
use registry::media_types::Compression;
use registry::reference::Reference;
use registry::Platform;

use super::output::{export, OutputSpec};
use super::progress::{PlainProgress, ProgressMode};
use super::Globals;

#[derive(clap::Args)]
pub struct Args {
    /// Name and optionally a tag (name:tag); may be repeated
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    tags: Vec<String>,
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile; "-" reads stdin)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<String>,
    /// Set build-time variables (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    no_cache: bool,
    /// Do not cache the given stage(s) (name or index); may be repeated
    #[arg(long = "no-cache-filter", value_name = "STAGE", value_delimiter = ',')]
    no_cache_filter: Vec<String>,
    /// Set metadata for an image (KEY=VALUE)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Set target platform for build (os/arch[/variant])
    #[arg(long)]
    platform: Option<String>,
    /// Write the image ID to the file
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    quiet: bool,
    /// Type of progress output (auto, plain, tty)
    #[arg(long, default_value = "auto")]
    progress: ProgressMode,
    /// Output destination (type=oci|docker|local|tar,dest=PATH[,tar=false]; a bare path means
    /// type=local)
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    outputs: Vec<String>,
    /// Layer compression (gzip, zstd, none)
    #[arg(long, default_value = "gzip")]
    compression: String,
    /// Parse and validate the Dockerfile and its stage graph without building
    #[arg(long)]
    check: bool,
    /// Snapshotter for RUN steps: overlay or native (default: overlay where it can be mounted)
    #[arg(long)]
    snapshotter: Option<String>,
    /// Networking mode for RUN steps (host, none)
    #[arg(long, default_value = "host")]
    network: String,
    /// Allow extra privileged entitlement (security.insecure)
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    allow: Vec<String>,
    /// Always pull base images, even when the store has them
    #[arg(long)]
    pull: bool,
    /// Push the image to its registry after building (every -t name)
    #[arg(long)]
    push: bool,
    /// Registry (host[:port]) to reach over plain HTTP or unverified TLS (repeatable)
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure_registries: Vec<String>,
    /// Pull mirror for docker.io, or REGISTRY=MIRROR (repeatable)
    #[arg(long = "registry-mirror", value_name = "MIRROR")]
    registry_mirrors: Vec<String>,
    /// Secret to expose to RUN --mount=type=secret (id=ID,src=FILE | id=ID,env=VAR;
    /// type=file|env)
    #[arg(long = "secret", value_name = "SPEC")]
    secrets: Vec<String>,
    /// Build context directory
    #[arg(value_name = "CONTEXT")]
    context: PathBuf,
}

pub fn run(args: Args, g: &Globals) -> Result<()> {
    let input = read_input(&args)?;
    let opts = options(&args)?;
    let outputs = args
        .outputs
        .iter()
        .map(|o| OutputSpec::parse(o))
        .collect::<Result<Vec<_>>>()?;
    let tags = args
        .tags
        .iter()
        .map(|t| Reference::parse(t).with_context(|| format!("invalid tag {t:?}")))
        .collect::<Result<Vec<_>>>()?;
    if args.check {
        let graph = Builder::check(&input, &opts)?;
        let needed = graph.needed()?;
        println!(
            "{}: {} stage(s), target {:?} needs {} of them: check complete, no problems found",
            input.dockerfile_name,
            graph.stages.len(),
            graph.stages[graph.target].display_name(),
            needed.len()
        );
        return Ok(());
    }

    let store = g.store()?;
    let plain;
    let silent = Silent;
    let progress: &dyn Progress = if args.quiet {
        &silent
    } else {
        plain = PlainProgress::new(args.progress.resolve(std::io::stderr().is_terminal()));
        &plain
    };
    forward_interrupts()?;
    let sandbox = LinuxSandbox::current_exe()?;
    let registry_flags = super::remote::RegistryFlags {
        insecure: args.insecure_registries.clone(),
        mirrors: args.registry_mirrors.clone(),
        quiet: args.quiet,
    };
    let pull_flags = registry_flags.clone();
    let fetcher = RegistryFetcher {
        remote: pull_flags.remote(3, super::remote::Verb::Pull)?,
        store: store.clone(),
    };
    if args.push {
        anyhow::ensure!(!tags.is_empty(), "--push needs at least one -t NAME");
    }
    // With --push, layers start uploading (quietly) while later steps still run.
    let push_rt = args.push.then(super::remote::runtime).transpose()?;
    let early = match (&push_rt, tags.first()) {
        (Some(rt), Some(tag)) => Some(EarlyPush::start(
            rt,
            registry_flags.quiet_remote()?,
            store.clone(),
            tag.clone(),
        )),
        _ => None,
    };
    let mut builder = Builder::new(&store, &opts, progress, &sandbox)?.with_fetcher(&fetcher);
    if let Some(e) = &early {
        builder = builder.with_layer_observer(e);
    }
    let image = builder.build(&input)?;
    drop(builder);
    if let (Some(rt), Some(e)) = (&push_rt, early) {
        e.finish(rt);
    }
    for tag in &tags {
        store
            .tag(tag, &image.manifest)
            .with_context(|| format!("naming the image {}", tag.familiar()))?;
    }
    for out in &outputs {
        export(&store, &image, &tags, out)?;
    }
    report(&args, &image, &tags)?;
    if let Some(rt) = push_rt {
        let remote =
            registry_flags.remote(super::remote::DEFAULT_UPLOADS, super::remote::Verb::Push)?;
        for tag in &tags {
            let pushed = rt
                .block_on(registry::remote::push::push(
                    &remote,
                    &store,
                    &image.manifest,
                    tag,
                ))
                .with_context(|| format!("pushing {}", tag.familiar()))?;
            eprintln!(
                "{}: digest: {} size: {}",
                tag.tag().unwrap_or("latest"),
                image.manifest.digest,
                pushed.size
            );
        }
    }
    Ok(())
}

/// Uploads the target stage's layers to the first `-t` repository while the build runs. A
/// failure here is not an error: the push after the build uploads whatever is missing.
struct EarlyPush {
    tx: tokio::sync::mpsc::UnboundedSender<registry::Descriptor>,
    task: tokio::task::JoinHandle<()>,
}

impl EarlyPush {
    fn start(
        rt: &tokio::runtime::Runtime,
        remote: registry::remote::Remote,
        store: registry::store::Store,
        dest: Reference,
    ) -> EarlyPush {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<registry::Descriptor>();
        let remote = std::sync::Arc::new(remote);
        let task = rt.spawn(async move {
            let mut uploads = tokio::task::JoinSet::new();
            let limit =
                std::sync::Arc::new(tokio::sync::Semaphore::new(super::remote::DEFAULT_UPLOADS));
            while let Some(layer) = rx.recv().await {
                let (remote, store, dest) = (remote.clone(), store.clone(), dest.clone());
                let limit = limit.clone();
                uploads.spawn(async move {
                    let _permit = limit.acquire().await;
                    let r = registry::remote::push::push_blob(&remote, &store, &layer, &dest).await;
                    if let Err(e) = r {
                        tracing::debug!("early upload of {} failed: {e}", layer.digest);
                    }
                });
            }
            while uploads.join_next().await.is_some() {}
        });
        EarlyPush { tx, task }
    }

    /// Waits for the uploads already started.
    fn finish(self, rt: &tokio::runtime::Runtime) {
        drop(self.tx);
        let _ = rt.block_on(self.task);
    }
}

impl builder::exec::LayerObserver for EarlyPush {
    fn layer_ready(&self, layer: &registry::Descriptor) {
        let _ = self.tx.send(layer.clone());
    }
}

/// Ctrl-C and SIGTERM stop the running step (forwarded into its sandbox) and make the build
/// unwind normally, so its temporary files and mounts are removed and the store stays clean.
fn forward_interrupts() -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing signal handlers")?;
    std::thread::spawn(move || {
        for sig in signals.forever() {
            builder::sandbox::interrupt::interrupt(sig);
        }
    });
    Ok(())
}

/// Pulls base images the store lacks, through the same path as `kiln pull`.
struct RegistryFetcher {
    remote: registry::remote::Remote,
    store: registry::store::Store,
}

impl builder::exec::base::ImageFetcher for RegistryFetcher {
    fn fetch(&self, reference: &Reference, platform: &Platform) -> Result<(), String> {
        let rt = super::remote::runtime().map_err(|e| format!("{e:#}"))?;
        rt.block_on(registry::remote::pull::pull(
            &self.remote,
            &self.store,
            reference,
            platform,
        ))
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
}

fn report(args: &Args, image: &BuiltImage, tags: &[Reference]) -> Result<()> {
    let id = image.id().to_string();
    if let Some(path) = &args.iidfile {
        std::fs::write(path, &id).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.quiet {
        println!("{id}");
    } else {
        eprintln!("writing image {id} done");
        for t in tags {
            eprintln!("naming to {t} done");
        }
    }
    Ok(())
}

fn read_input(args: &Args) -> Result<BuildInput> {
    let context = args.context.clone();
    anyhow::ensure!(
        context.is_dir(),
        "build context {} is not a directory",
        context.display()
    );
    let (name, text, path) = match args.file.as_deref() {
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the Dockerfile from stdin")?;
            ("Dockerfile".to_string(), s, None)
        }
        Some(f) => {
            let p = PathBuf::from(f);
            (f.to_string(), read_dockerfile(&p)?, Some(p))
        }
        None => {
            let p = context.join("Dockerfile");
            ("Dockerfile".to_string(), read_dockerfile(&p)?, Some(p))
        }
    };
    Ok(BuildInput {
        dockerfile_name: name,
        dockerfile: text,
        dockerfile_path: path,
        context,
    })
}

fn read_dockerfile(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("failed to read Dockerfile {}", path.display()))
}

fn options(args: &Args) -> Result<BuildOptions> {
    let mut build_args = BTreeMap::new();
    for a in &args.build_args {
        match a.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            // `--build-arg NAME` takes the value from the environment, if set.
            None => {
                if let Ok(v) = std::env::var(a) {
                    build_args.insert(a.clone(), v);
                }
            }
        }
    }
    let mut labels = BTreeMap::new();
    for l in &args.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let mut platforms = PlatformArgs::default();
    if let Some(p) = &args.platform {
        platforms.target = p
            .parse::<Platform>()
            .with_context(|| format!("invalid --platform {p:?}"))?;
    }
    let compression = match args.compression.as_str() {
        "gzip" => Compression::Gzip,
        "zstd" => Compression::Zstd,
        "none" | "uncompressed" => Compression::None,
        other => bail!("invalid --compression {other:?}: expected gzip, zstd or none"),
    };
    let epoch = build_args
        .get("SOURCE_DATE_EPOCH")
        .cloned()
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .with_context(|| format!("invalid SOURCE_DATE_EPOCH {s:?}"))
        })
        .transpose()?;
    let snapshotter = args
        .snapshotter
        .as_deref()
        .map(|s| s.parse::<SnapshotterKind>())
        .transpose()
        .map_err(|e| anyhow::anyhow!("invalid --snapshotter: {e}"))?;
    let network = match args.network.as_str() {
        "host" | "default" => NetworkMode::Host,
        "none" => NetworkMode::None,
        other => bail!("invalid --network {other:?}: expected host or none"),
    };
    let mut allow_insecure = false;
    for a in &args.allow {
        match a.as_str() {
            "security.insecure" => allow_insecure = true,
            "network.host" => {}
            other => bail!("unknown --allow entitlement {other:?}"),
        }
    }
    let secret_specs = args
        .secrets
        .iter()
        .map(|s| SecretSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let secrets = Secrets::load(&secret_specs)?;
    Ok(BuildOptions {
        pull: args.pull,
        no_cache_filter: args.no_cache_filter.clone(),
        secrets,
        snapshotter,
        network,
        allow_insecure,
        build_args: BuildArgs(build_args),
        platforms,
        target: args.target.clone(),
        labels,
        compression,
        source_date_epoch: epoch,
        no_cache: args.no_cache,
    })
}
