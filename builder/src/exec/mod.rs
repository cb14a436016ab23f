//! The executor: runs a [`BuildGraph`]'s stages step by step. It never parses text of its own;
//! it expands each instruction with the stage's variables at that point and dispatches on the
//! instruction kind.
//!
//! - [`state`]: the stage's config, layers and variables in scope.
//! - [`config`]: instructions that only change the config.
//! - [`copy`]: COPY/ADD written straight into a layer; [`fetch`]: ADD's URLs; [`git`]: ADD's
//!   git repositories.
//! - [`layers`]: stored layers unpacked into snapshots (verified), and diffs written as layers.
//! - [`rootfs`]: questions about a stage's files (destinations, users), asked of a snapshot view.
//! - [`run`]: RUN in the sandbox; [`mounts`]: its `--mount`s; [`secrets`]: `--secret` values.
//! - [`container`]: `kiln run`, an image run once in the foreground on a throwaway snapshot.
//! - [`image`]: the finished stage stored as config + manifest.

pub mod base;
pub mod config;
pub mod container;
pub mod copy;
pub mod error;
pub mod fetch;
pub mod git;
pub mod image;
pub mod layers;
mod mounts;
pub mod rootfs;
mod run;
pub mod secrets;
pub mod state;
mod steps;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use registry::media_types::Compression;
use registry::store::Store;

use crate::cache::{CacheKey, CacheLease, CacheStore};
use crate::context::{ChecksumCache, Context};
use crate::dockerfile::{self, Instruction};
use crate::plan::{Base, BuildArgs, BuildGraph, PlatformArgs};
use crate::sandbox::{NetworkMode, Sandbox};
use crate::snapshot::{open_snapshotter, Snapshotter, SnapshotterKind};

pub use error::BuildError;

/// Told about each layer of the target stage as soon as its blob is in the store (base image
/// layers first), so a `--push` can upload while later steps still run.
pub trait LayerObserver: Sync {
    fn layer_ready(&self, layer: &registry::Descriptor);
}
pub use image::BuiltImage;
use state::StageState;

/// How to build, as given on the command line.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub build_args: BuildArgs,
    pub platforms: PlatformArgs,
    pub target: Option<String>,
    /// `--label`: added to the final image's config.
    pub labels: BTreeMap<String, String>,
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`: clamps file mtimes and sets every `created` timestamp.
    pub source_date_epoch: Option<i64>,
    pub no_cache: bool,
    /// `--snapshotter`; `None` picks overlay where it can be mounted.
    pub snapshotter: Option<SnapshotterKind>,
    /// `--network` for RUN steps without their own `--network`.
    pub network: NetworkMode,
    /// `--allow security.insecure`: lets `RUN --security=insecure` run privileged.
    pub allow_insecure: bool,
    /// `--no-cache-filter`: stages (by name or index) that ignore the cache.
    pub no_cache_filter: Vec<String>,
    /// `--pull`: fetch base images even when the store has them.
    pub pull: bool,
    /// `--secret`: values for `RUN --mount=type=secret` (never stored or printed).
    pub secrets: secrets::Secrets,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            build_args: BuildArgs::default(),
            platforms: PlatformArgs::default(),
            target: None,
            labels: BTreeMap::new(),
            compression: Compression::Gzip,
            source_date_epoch: None,
            no_cache: false,
            snapshotter: None,
            network: NetworkMode::Host,
            allow_insecure: false,
            no_cache_filter: Vec::new(),
            pull: false,
            secrets: secrets::Secrets::default(),
        }
    }
}

/// What to build: a Dockerfile's text and the context directory.
#[derive(Clone, Debug)]
pub struct BuildInput {
    /// Name used in messages (`Dockerfile`, or the `-f` path as given).
    pub dockerfile_name: String,
    pub dockerfile: String,
    /// The Dockerfile on disk, if it is a file (for `<Dockerfile>.dockerignore`).
    pub dockerfile_path: Option<PathBuf>,
    pub context: PathBuf,
}

/// Where the executor reports what it does. Implementations print, draw or record.
pub trait Progress: Sync {
    /// A step starts: `[stage 2/5] COPY a.txt /`.
    fn step(&self, stage: &str, index: usize, total: usize, text: &str);
    /// The step started last finished.
    fn step_done(&self, cached: bool, elapsed: Duration);
    fn note(&self, message: &str);
    /// Output of the running step (RUN's stdout and stderr).
    fn output(&self, data: &[u8]);
}

/// A progress sink that says nothing.
pub struct Silent;

impl Progress for Silent {
    fn step(&self, _: &str, _: usize, _: usize, _: &str) {}
    fn step_done(&self, _: bool, _: Duration) {}
    fn note(&self, _: &str) {}
    fn output(&self, _: &[u8]) {}
}

/// A finished stage (its layers are the source of `COPY --from`).
struct StageOutput {
    state: StageState,
    /// The cache key after its last step: names its content for later stages.
    key: CacheKey,
}

pub struct Builder<'a> {
    store: &'a Store,
    opts: &'a BuildOptions,
    progress: &'a dyn Progress,
    sandbox: &'a dyn Sandbox,
    snapshotter: Box<dyn Snapshotter>,
    cache: CacheStore,
    /// Context file checksums, cached by file metadata across builds.
    checksums: std::sync::Mutex<ChecksumCache>,
    /// Held for the whole build: prune waits, so no layer this build reuses can vanish.
    _lease: CacheLease,
    fetcher: Option<&'a dyn base::ImageFetcher>,
    observer: Option<&'a dyn LayerObserver>,
    fetched: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Scratch space for this build, made on first use (a build of cache hits needs none);
    /// removed when the builder is dropped.
    work: std::sync::OnceLock<tempfile::TempDir>,
}

impl<'a> Builder<'a> {
    pub fn new(
        store: &'a Store,
        opts: &'a BuildOptions,
        progress: &'a dyn Progress,
        sandbox: &'a dyn Sandbox,
    ) -> Result<Builder<'a>, BuildError> {
        let snapshotter = open_snapshotter(store.root(), opts.snapshotter).map_err(|e| {
            BuildError::io(
                store.root().join("snapshots"),
                std::io::Error::other(e.to_string()),
            )
        })?;
        let cache = CacheStore::for_store(store.clone()).map_err(|e| {
            BuildError::io(
                store.root().join("cache"),
                std::io::Error::other(e.to_string()),
            )
        })?;
        let lease = cache.lease().map_err(|e| {
            BuildError::io(
                store.root().join("cache"),
                std::io::Error::other(e.to_string()),
            )
        })?;
        let sums_dir = store.root().join("cache/checksums");
        let checksums = ChecksumCache::open(&sums_dir).map_err(|e| BuildError::Context {
            path: sums_dir.clone(),
            source: e,
        })?;
        Ok(Builder {
            store,
            opts,
            progress,
            sandbox,
            snapshotter,
            cache,
            checksums: std::sync::Mutex::new(checksums),
            _lease: lease,
            fetcher: None,
            observer: None,
            fetched: Default::default(),
            work: std::sync::OnceLock::new(),
        })
    }

    /// This build's scratch directory under `<store>/tmp`.
    fn work_dir(&self) -> Result<&std::path::Path, BuildError> {
        if let Some(w) = self.work.get() {
            return Ok(w.path());
        }
        let tmp = self.store.root().join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| BuildError::io(&tmp, e))?;
        let made = tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(&tmp)
            .map_err(|e| BuildError::io(&tmp, e))?;
        // A racing step may have made one first; keep that one (ours is removed on drop).
        let _ = self.work.set(made);
        Ok(self.work.get().expect("just set").path())
    }

    /// Reports the target stage's layers as they are written (see [`LayerObserver`]).
    pub fn with_layer_observer(mut self, observer: &'a dyn LayerObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Lets the build fetch base images the store lacks (from a registry).
    pub fn with_fetcher(mut self, fetcher: &'a dyn base::ImageFetcher) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    pub(crate) fn resolver(&self) -> base::Resolver<'_> {
        base::Resolver {
            store: self.store,
            platforms: &self.opts.platforms,
            fetcher: self.fetcher,
            always_pull: self.opts.pull,
            fetched: &self.fetched,
        }
    }

    /// Parses and plans without building (`kiln build --check`).
    pub fn check(input: &BuildInput, opts: &BuildOptions) -> Result<BuildGraph, BuildError> {
        let df = dockerfile::parse(&input.dockerfile_name, &input.dockerfile)?;
        let graph = BuildGraph::plan(
            &df,
            &input.dockerfile_name,
            &opts.build_args,
            &opts.platforms,
            opts.target.as_deref(),
        )?;
        Ok(graph)
    }

    /// Builds the target stage and stores it as an image (not tagged: the caller names it).
    pub fn build(&self, input: &BuildInput) -> Result<BuiltImage, BuildError> {
        let graph = Self::check(input, self.opts)?;
        let context =
            Context::open(&input.context, input.dockerfile_path.as_deref()).map_err(|source| {
                BuildError::Context {
                    path: input.context.clone(),
                    source,
                }
            })?;
        let mut done: HashMap<usize, StageOutput> = HashMap::new();
        let mut pending = graph.needed()?;
        // Stages run in waves: every stage whose dependencies are built runs now, side by side
        // (independent stages of a multi-stage build overlap).
        while !pending.is_empty() {
            let (ready, rest): (Vec<usize>, Vec<usize>) = pending
                .iter()
                .partition(|i| graph.stages[**i].deps.iter().all(|d| done.contains_key(d)));
            debug_assert!(!ready.is_empty(), "the planner rejects cycles");
            let results: Vec<(usize, Result<StageOutput, BuildError>)> = if ready.len() == 1 {
                vec![(ready[0], self.run_stage(&graph, ready[0], &context, &done))]
            } else {
                let done = &done;
                let graph = &graph;
                let context = &context;
                std::thread::scope(|scope| {
                    let handles: Vec<_> = ready
                        .iter()
                        .map(|&i| {
                            (
                                i,
                                scope.spawn(move || self.run_stage(graph, i, context, done)),
                            )
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|(i, h)| (i, h.join().expect("stage thread panicked")))
                        .collect()
                })
            };
            for (i, result) in results {
                done.insert(i, result?);
            }
            pending = rest;
        }
        if let Ok(mut sums) = self.checksums.lock() {
            if let Err(e) = sums.save() {
                tracing::warn!("saving the context checksum cache: {e}");
            }
        }
        let mut last = done.remove(&graph.target).expect("target stage was built");
        self.finish_config(&mut last.state);
        image::write_image(self.store, &last.state)
    }

    fn finish_config(&self, state: &mut StageState) {
        if !self.opts.labels.is_empty() {
            let labels = state
                .config
                .container_config_mut()
                .labels
                .get_or_insert_with(BTreeMap::new);
            for (k, v) in &self.opts.labels {
                labels.insert(k.clone(), v.clone());
            }
        }
        // The image is as new as its newest step: an unchanged rebuild, whose steps all come
        // from the cache, gives the same config and so the same image ID.
        state.config.created = state
            .config
            .history
            .iter()
            .filter_map(|h| h.created.clone())
            .max_by(|a, b| {
                let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
                parse(a).cmp(&parse(b))
            })
            .or_else(|| Some(self.now_string()));
    }

    /// The time stamped on this build's history and config.
    fn now(&self) -> (i64, u32) {
        match self.opts.source_date_epoch {
            Some(e) => (e, 0),
            None => {
                let d = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                (d.as_secs() as i64, d.subsec_nanos())
            }
        }
    }

    fn now_string(&self) -> String {
        let (s, n) = self.now();
        image::timestamp(s, n)
    }

    fn run_stage(
        &self,
        graph: &BuildGraph,
        index: usize,
        context: &Context,
        done: &HashMap<usize, StageOutput>,
    ) -> Result<StageOutput, BuildError> {
        let stage = &graph.stages[index];
        let platform = &self.opts.platforms.target;
        let mut key = CacheKey::root(None, platform);
        let mut state = match &stage.base {
            Base::Scratch => StageState::scratch(&self.opts.platforms),
            Base::Stage(j) => {
                let parent = &done[j].state;
                key = done[j].key.clone();
                StageState::from_config(
                    parent.config.clone(),
                    parent.layers.clone(),
                    parent.base_digest.clone(),
                )
            }
            Base::Image(name) => {
                // `FROM --platform=` picks the base image's platform for this stage.
                let stage_platforms = match &stage.platform {
                    Some(p) => PlatformArgs {
                        target: p.parse().map_err(|e| {
                            BuildError::at(&stage.from.span, &stage.from.original, e)
                        })?,
                        build: self.opts.platforms.build.clone(),
                    },
                    None => self.opts.platforms.clone(),
                };
                let resolver = base::Resolver {
                    platforms: &stage_platforms,
                    ..self.resolver()
                };
                let state = base::load(resolver, name)
                    .map_err(|e| BuildError::at(&stage.from.span, &stage.from.original, e))?;
                key = CacheKey::root(state.base_digest.as_ref(), platform);
                state
            }
        };
        let use_cache =
            !self.opts.no_cache
                && !self.opts.no_cache_filter.iter().any(|f| {
                    f.eq_ignore_ascii_case(&stage.display_name()) || f == &index.to_string()
                });
        let mut instructions = onbuild_triggers(&mut state, &stage.from)?;
        instructions.extend(stage.instructions.iter().cloned());

        let name = stage.display_name();
        let total = instructions.len() + 1;
        self.progress.step(&name, 1, total, &stage.from.original);
        self.progress.step_done(false, Duration::ZERO);
        let mut run = steps::StageRun {
            builder: self,
            graph,
            context,
            done,
            state: &mut state,
            key,
            use_cache,
            downloads: HashMap::new(),
            git: HashMap::new(),
            resolved: None,
        };
        // Only the target stage's layers end up in the image.
        let observer = self.observer.filter(|_| index == graph.target);
        let mut reported = 0;
        for (n, ins) in instructions.iter().enumerate() {
            if let Some(o) = observer {
                for l in &run.state.layers[reported..] {
                    o.layer_ready(&l.descriptor);
                }
                reported = run.state.layers.len();
            }
            let started = std::time::Instant::now();
            if let Some(sig) = crate::sandbox::interrupt::interrupted() {
                return Err(BuildError::Interrupted(sig));
            }
            self.progress.step(
                &name,
                n + 2,
                total,
                &error::redact_credentials(&ins.original),
            );
            let cached = run.step(ins).map_err(|e| {
                // A step killed by the interrupt fails; say why the build stopped.
                match crate::sandbox::interrupt::interrupted() {
                    Some(sig) => BuildError::Interrupted(sig),
                    None => e,
                }
            })?;
            self.progress.step_done(cached, started.elapsed());
        }
        if let Some(o) = observer {
            for l in &run.state.layers[reported..] {
                o.layer_ready(&l.descriptor);
            }
        }
        let key = run.key;
        Ok(StageOutput { state, key })
    }
}

/// ONBUILD triggers of the base image run first, as if written right after FROM; they are
/// consumed, not inherited.
fn onbuild_triggers(
    state: &mut StageState,
    from: &Instruction,
) -> Result<Vec<Instruction>, BuildError> {
    let Some(triggers) = state.config.config.as_mut().and_then(|c| c.on_build.take()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for t in triggers {
        let df = dockerfile::parse(&from.span.file, &format!("FROM scratch\n{t}\n"))
            .map_err(|e| BuildError::at(&from.span, &from.original, format!("ONBUILD {t}: {e}")))?;
        for mut ins in df.instructions.into_iter().skip(1) {
            ins.span = from.span.clone();
            out.push(ins);
        }
    }
    Ok(out)
}
