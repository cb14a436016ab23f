//! The executor: runs a [`BuildGraph`]'s stages step by step. It never parses text of its own;
//! it expands each instruction with the stage's variables at that point and dispatches on the
//! instruction kind.
//!
//! - [`state`]: the stage's config, layers and variables in scope.
//! - [`config`]: instructions that only change the config.
//! - [`copy`]: COPY/ADD written straight into a layer.
//! - [`layers`]: stored layers unpacked into snapshots (verified), and diffs written as layers.
//! - [`rootfs`]: questions about a stage's files (destinations, users), asked of a snapshot view.
//! - [`run`]: RUN in the sandbox.
//! - [`container`]: `kiln run`, an image run once in the foreground on a throwaway snapshot.
//! - [`image`]: the finished stage stored as config + manifest.

pub mod base;
pub mod config;
pub mod container;
pub mod copy;
pub mod error;
pub mod image;
pub mod layers;
pub mod rootfs;
mod run;
pub mod state;
mod steps;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use registry::media_types::Compression;
use registry::store::Store;

use crate::context::Context;
use crate::dockerfile::{self, Instruction};
use crate::plan::{Base, BuildArgs, BuildGraph, PlatformArgs};
use crate::sandbox::{NetworkMode, Sandbox};
use crate::snapshot::{open_snapshotter, Snapshotter, SnapshotterKind};

pub use error::BuildError;
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
}

pub struct Builder<'a> {
    store: &'a Store,
    opts: &'a BuildOptions,
    progress: &'a dyn Progress,
    sandbox: &'a dyn Sandbox,
    snapshotter: Box<dyn Snapshotter>,
    /// Scratch space for this build; removed when the builder is dropped.
    work: tempfile::TempDir,
}

impl<'a> Builder<'a> {
    pub fn new(
        store: &'a Store,
        opts: &'a BuildOptions,
        progress: &'a dyn Progress,
        sandbox: &'a dyn Sandbox,
    ) -> Result<Builder<'a>, BuildError> {
        let tmp = store.root().join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| BuildError::io(&tmp, e))?;
        let work = tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(&tmp)
            .map_err(|e| BuildError::io(&tmp, e))?;
        let snapshotter = open_snapshotter(store.root(), opts.snapshotter).map_err(|e| {
            BuildError::io(
                store.root().join("snapshots"),
                std::io::Error::other(e.to_string()),
            )
        })?;
        Ok(Builder {
            store,
            opts,
            progress,
            sandbox,
            snapshotter,
            work,
        })
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
        for i in graph.needed()? {
            let out = self.run_stage(&graph, i, &context, &done)?;
            done.insert(i, out);
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
        state.config.created = Some(self.now_string());
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
        let mut state = match &stage.base {
            Base::Scratch => StageState::scratch(&self.opts.platforms),
            Base::Stage(j) => {
                let parent = &done[j].state;
                StageState::from_config(
                    parent.config.clone(),
                    parent.layers.clone(),
                    parent.base_digest.clone(),
                )
            }
            Base::Image(name) => base::load(self.store, name, &self.opts.platforms)
                .map_err(|e| BuildError::at(&stage.from.span, &stage.from.original, e))?,
        };
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
        };
        for (n, ins) in instructions.iter().enumerate() {
            let started = std::time::Instant::now();
            self.progress.step(&name, n + 2, total, &ins.original);
            run.step(ins)?;
            self.progress.step_done(false, started.elapsed());
        }
        Ok(StageOutput { state })
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
