//! One instruction of a stage: expand it, then do what it says.

use std::collections::HashMap;

use registry::spec::History;

use crate::cache::{CacheKey, CacheRecord};
use crate::context::{checksum::checksum, Context, Ignore, SourceOptions};
use crate::dockerfile::{AddInstr, CopyInstr, Instruction, InstructionKind, Lexer};
use crate::layer::{sniff_archive, LayerWriter, SourceDateEpoch};
use crate::plan::{predefined_args, BuildGraph, FromRef};

use super::copy::{write_archive, write_copy, CopyEntry, CopySpec};
use super::error::BuildError;
use super::git::GitSource;
use super::layers::ensure_chain;
use super::rootfs::RootfsView;
use super::state::{resolve_path, LayerRef, StageState};
use super::{base, config, Builder, StageOutput};
use crate::snapshot::SnapshotView;

pub(super) struct StageRun<'r, 'a> {
    pub builder: &'r Builder<'a>,
    pub graph: &'r BuildGraph,
    pub context: &'r Context,
    pub done: &'r HashMap<usize, StageOutput>,
    pub state: &'r mut StageState,
    /// The cache key of the stage so far.
    pub key: CacheKey,
    pub use_cache: bool,
    /// `ADD <url>` files fetched while computing a cache key, reused if the step runs.
    pub downloads: HashMap<String, super::fetch::Downloaded>,
    /// `ADD <git URL>` sources resolved to a commit while computing a cache key, checked out
    /// from there if the step runs.
    pub git: HashMap<String, super::git::Prepared>,
    /// Context sources resolved for this step's cache key, reused if the step runs (a walk of
    /// a large context is not done twice).
    pub resolved: Option<(Vec<String>, Vec<crate::context::SourceEntry>)>,
}

/// Where COPY reads from: the build context, or another stage's or image's files.
enum SourceRoot<'c> {
    Context(&'c Context),
    /// Another stage's or an image's files; the view keeps them readable meanwhile.
    Snapshot(Context, #[allow(dead_code)] Box<dyn SnapshotView>),
}

impl StageRun<'_, '_> {
    /// Runs one instruction, or takes its result from the cache. Returns whether it was cached.
    pub fn step(&mut self, ins: &Instruction) -> Result<bool, BuildError> {
        let at = |e: &dyn std::fmt::Display| BuildError::at(&ins.span, &ins.original, e);
        let lexer = Lexer::new(self.graph.escape);
        let env = self.state.expansion_env();
        let (kind, _used) = ins
            .kind
            .expand_with_matches(&lexer, &env)
            .map_err(|e| at(&e))?;
        self.resolved = None;
        let text = serde_json::to_string(&kind).expect("instructions serialize");
        let mut kb = CacheKey::builder(&self.key).instruction(format!("{} {text}", kind.name()));
        match &kind {
            InstructionKind::Arg(defs) => {
                let predefined = predefined_args(&self.builder.opts.platforms);
                for d in defs {
                    self.state.declare_arg(
                        &d.name,
                        d.default.clone(),
                        &self.builder.opts.build_args,
                        &self.graph.global_args,
                        &predefined,
                    );
                    let value = crate::dockerfile::Env::get(&self.state.args, &d.name);
                    kb = kb.build_arg(&d.name, value.unwrap_or_else(|| "\0unset".to_string()));
                }
                self.key = kb.finish();
                return Ok(self.use_cache);
            }
            InstructionKind::From(_) => return Err(at(&"FROM inside a stage")),
            InstructionKind::Copy(c) => {
                let opts = SourceOptions {
                    excludes: c.exclude.clone(),
                    parents: c.parents,
                };
                for d in self.copy_inputs(ins, c.from.as_deref(), &c.sources, &opts)? {
                    kb = kb.input(&d);
                }
            }
            InstructionKind::Add(a) => {
                let opts = SourceOptions {
                    excludes: a.exclude.clone(),
                    parents: false,
                };
                let local: Vec<String> =
                    a.sources.iter().filter(|s| is_local(s)).cloned().collect();
                for d in self.copy_inputs(ins, None, &local, &opts)? {
                    kb = kb.input(&d);
                }
                // A URL is keyed by its --checksum (no download on a cache hit), else by the
                // content fetched now.
                let expected = self.add_checksum(ins, a)?;
                for url in a.sources.iter().filter(|s| is_url(s)) {
                    let digest = match &expected {
                        Some(AddChecksum::Http(d)) => d.clone(),
                        _ => self.fetch(ins, url, None)?.digest,
                    };
                    kb = kb.input(&digest);
                }
                // A git source is keyed by the commit its ref names now (`git ls-remote`, even
                // with --checksum, so a moved branch is a mismatch and not a stale hit), its
                // subdir and --keep-git-dir; --chown/--chmod are in the instruction text.
                for src in &a.sources {
                    let parsed = GitSource::parse(src)
                        .map_err(|e| BuildError::at(&ins.span, &ins.original, e))?;
                    if let Some(g) = parsed {
                        let p = self.git_resolve(ins, src, g, expected.as_ref())?;
                        kb = kb.input(&p.key_input(a.keep_git_dir));
                    }
                }
            }
            InstructionKind::Run(r) => {
                for (k, v) in self.state.run_args(&self.builder.opts.build_args) {
                    kb = kb.build_arg(k, v);
                }
                for m in &r.mounts {
                    kb = kb.mount(m);
                    // A bind mount's content is an input like a COPY source.
                    if m.mount_type == crate::dockerfile::MountType::Bind {
                        let source = m.source.clone().unwrap_or_else(|| ".".to_string());
                        let opts = SourceOptions::default();
                        // A source that cannot be read fails in the mount code, with its own
                        // message; a failed step records nothing, so no stale hit is possible.
                        let inputs = self.copy_inputs(ins, m.from.as_deref(), &[source], &opts);
                        for d in inputs.unwrap_or_default() {
                            kb = kb.input(&d);
                        }
                    }
                }
            }
            _ => {
                // Config changes are cheap and always applied; the record keeps their history.
                config::apply(self.state, &kind).map_err(|e| at(&e))?;
            }
        }
        let key = kb.finish();
        if self.use_cache {
            if let Some(rec) = self.builder.cache.get(&key) {
                self.state.commit(rec.history, rec.layer);
                self.key = key;
                return Ok(true);
            }
        }
        let before = self.state.config.history.len();
        match &kind {
            InstructionKind::Copy(c) => self.copy(ins, c)?,
            InstructionKind::Add(a) => self.add(ins, a)?,
            InstructionKind::Run(r) => self.run(ins, r)?,
            InstructionKind::Workdir(_) => self.make_workdir(ins)?,
            _ => self.history(ins, false, None),
        }
        if let Some(history) = self.state.config.history.get(before).cloned() {
            let layer = (!history.empty_layer)
                .then(|| self.state.layers.last().cloned())
                .flatten();
            if let Err(e) = self
                .builder
                .cache
                .put(&key, &CacheRecord::new(layer, history))
            {
                tracing::warn!("could not record {} in the build cache: {e}", ins.original);
            }
        }
        self.key = key;
        Ok(false)
    }

    /// What a COPY/ADD reads, as digests for its cache key: the context files' checksums
    /// (cached by file metadata), a stage's final key, or an image's manifest digest.
    fn copy_inputs(
        &mut self,
        ins: &Instruction,
        from: Option<&str>,
        sources: &[String],
        opts: &SourceOptions,
    ) -> Result<Vec<registry::Digest>, BuildError> {
        let at = |e: &dyn std::fmt::Display| BuildError::at(&ins.span, &ins.original, e);
        match from.map(|f| self.graph.resolve_from(f)) {
            None => {
                if sources.is_empty() {
                    return Ok(Vec::new());
                }
                let entries = self
                    .context
                    .resolve_sources(sources, opts)
                    .map_err(|e| at(&e))?;
                let digest = {
                    let mut sums = self
                        .builder
                        .checksums
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    checksum(&entries, &mut sums).map_err(|e| at(&e))?
                };
                self.resolved = Some((sources.to_vec(), entries));
                Ok(vec![digest])
            }
            Some(FromRef::Stage(j)) => {
                let out = self
                    .done
                    .get(&j)
                    .ok_or_else(|| at(&format!("stage {j} was not built")))?;
                Ok(vec![out.key.digest().clone()])
            }
            Some(FromRef::Image(name)) => {
                let img = base::open(self.builder.resolver(), &name).map_err(|e| at(&e))?;
                Ok(vec![img.manifest_descriptor.digest.clone()])
            }
        }
    }

    pub(super) fn history(&mut self, ins: &Instruction, fs_step: bool, layer: Option<LayerRef>) {
        // An ADD URL's credentials stay out of the image's history.
        let text = match ins.kind {
            InstructionKind::Add(_) => super::error::redact_credentials(&ins.original),
            _ => ins.original.clone(),
        };
        let created_by = if fs_step {
            format!("{} # buildkit", one_line(&text))
        } else {
            one_line(&text)
        };
        self.history_as(&created_by, layer);
    }

    pub(super) fn history_as(&mut self, created_by: &str, layer: Option<LayerRef>) {
        let created_by = created_by.to_string();
        let history = History {
            created: Some(self.builder.now_string()),
            created_by: Some(created_by),
            empty_layer: layer.is_none(),
            ..History::default()
        };
        self.state.commit(history, layer);
    }

    pub(super) fn new_layer(&self) -> Result<LayerWriter, BuildError> {
        Ok(LayerWriter::new(
            self.builder.store,
            self.builder.opts.compression,
            self.builder.opts.source_date_epoch.map(SourceDateEpoch),
        )?)
    }

    pub(super) fn finish_layer(
        &mut self,
        ins: &Instruction,
        writer: LayerWriter,
    ) -> Result<(), BuildError> {
        let info = writer.finish()?;
        let layer = LayerRef {
            descriptor: info.descriptor,
            diff_id: info.diff_id,
        };
        self.history(ins, true, Some(layer));
        Ok(())
    }

    /// A read-only view of the stage's files as they are now.
    pub(super) fn view(&self) -> Result<Box<dyn SnapshotView>, BuildError> {
        view_of(self.builder, &self.state.layers)
    }

    fn owner(
        &self,
        ins: &Instruction,
        view: &RootfsView<'_>,
        spec: Option<&str>,
    ) -> Result<Option<(u32, u32)>, BuildError> {
        let Some(spec) = spec else { return Ok(None) };
        view.resolve_owner(spec)
            .map(Some)
            .map_err(|e| BuildError::at(&ins.span, &ins.original, e))
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_spec(
        &self,
        ins: &Instruction,
        view: &RootfsView<'_>,
        dest: &str,
        source_args: usize,
        chown: Option<&str>,
        chmod: Option<&str>,
        preserve_owner: bool,
    ) -> Result<CopySpec, BuildError> {
        let chmod = match chmod {
            None => None,
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        BuildError::at(
                            &ins.span,
                            &ins.original,
                            format!("invalid chmod parameter {m:?}"),
                        )
                    })?,
            ),
        };
        Ok(CopySpec {
            dest: dest.to_string(),
            workdir: self.state.working_dir(),
            source_args,
            owner: self.owner(ins, view, chown)?,
            preserve_owner,
            chmod,
            now: self.builder.now().0,
        })
    }

    fn source_root(
        &self,
        ins: &Instruction,
        from: Option<&str>,
    ) -> Result<SourceRoot<'_>, BuildError> {
        let at = |e: &dyn std::fmt::Display| BuildError::at(&ins.span, &ins.original, e);
        let Some(from) = from else {
            return Ok(SourceRoot::Context(self.context));
        };
        let no_ignore = || Ignore::from_patterns::<&str>(&[]).expect("empty pattern list");
        match self.graph.resolve_from(from) {
            FromRef::Stage(j) => {
                let out = self
                    .done
                    .get(&j)
                    .ok_or_else(|| at(&format!("stage {from:?} was not built")))?;
                let view = view_of(self.builder, &out.state.layers)?;
                let ctx = Context::with_ignore(view.rootfs(), no_ignore()).map_err(|e| at(&e))?;
                Ok(SourceRoot::Snapshot(ctx, view))
            }
            FromRef::Image(name) => {
                let state = base::load(self.builder.resolver(), &name).map_err(|e| at(&e))?;
                let view = view_of(self.builder, &state.layers)?;
                let ctx = Context::with_ignore(view.rootfs(), no_ignore()).map_err(|e| at(&e))?;
                Ok(SourceRoot::Snapshot(ctx, view))
            }
        }
    }

    fn copy(&mut self, ins: &Instruction, c: &CopyInstr) -> Result<(), BuildError> {
        let at = |e: &dyn std::fmt::Display| BuildError::at(&ins.span, &ins.original, e);
        let cached = self.resolved.take();
        let stage_view = self.view()?;
        let view = RootfsView::new(stage_view.rootfs());
        let root = self.source_root(ins, c.from.as_deref())?;
        let ctx = match &root {
            SourceRoot::Context(c) => *c,
            SourceRoot::Snapshot(c, _) => c,
        };
        let opts = SourceOptions {
            excludes: c.exclude.clone(),
            parents: c.parents,
        };
        let sources = match (&root, cached) {
            (SourceRoot::Context(_), Some((names, entries))) if names == c.sources => entries,
            _ => ctx.resolve_sources(&c.sources, &opts).map_err(|e| at(&e))?,
        };
        let spec = self.copy_spec(
            ins,
            &view,
            &c.dest,
            c.sources.len() + c.heredocs.len(),
            c.chown.as_deref(),
            c.chmod.as_deref(),
            c.from.is_some(),
        )?;
        let mut entries: Vec<CopyEntry> = sources.into_iter().map(CopyEntry::from).collect();
        for h in &c.heredocs {
            let mode = spec.chmod.unwrap_or(0o644);
            entries.push(CopyEntry::inline(
                &h.name,
                h.content.as_bytes(),
                mode,
                spec.now,
            ));
        }
        let mut writer = self.new_layer()?;
        write_copy(&view, &spec, &entries, &mut writer).map_err(|e| at(&e))?;
        drop(root);
        self.finish_layer(ins, writer)
    }

    /// `ADD --checksum`: `sha256:...` for URL sources, the full commit SHA for a git source.
    fn add_checksum(
        &self,
        ins: &Instruction,
        a: &AddInstr,
    ) -> Result<Option<AddChecksum>, BuildError> {
        let at = |e: &dyn std::fmt::Display| BuildError::at(&ins.span, &ins.original, e);
        let Some(c) = &a.checksum else {
            return Ok(None);
        };
        if a.sources.iter().any(|s| GitSource::is_git(s)) {
            if a.sources.len() != 1 || !a.heredocs.is_empty() {
                return Err(at(&"--checksum with a git source takes no other sources"));
            }
            if !super::git::is_commit_sha(c) {
                return Err(at(&format!(
                    "invalid --checksum {c:?} for a git source: expected a full commit SHA"
                )));
            }
            return Ok(Some(AddChecksum::GitCommit(c.to_ascii_lowercase())));
        }
        if !a.sources.iter().any(|s| is_url(s)) {
            return Err(at(
                &"--checksum is only supported for HTTP(S) and git sources",
            ));
        }
        c.parse::<registry::Digest>()
            .map(|d| Some(AddChecksum::Http(d)))
            .map_err(|e| at(&format!("invalid --checksum: {e}")))
    }

    /// Resolves a git source to a commit once per step; `--checksum` joins the source's own
    /// commit check (a different commit is an error naming both).
    fn git_resolve(
        &mut self,
        ins: &Instruction,
        src: &str,
        g: GitSource,
        expected: Option<&AddChecksum>,
    ) -> Result<super::git::Prepared, BuildError> {
        let at = |e: &dyn std::fmt::Display| BuildError::at(&ins.span, &ins.original, e);
        if let Some(p) = self.git.get(src) {
            return Ok(p.clone());
        }
        let mut g = g;
        if let Some(AddChecksum::GitCommit(want)) = expected {
            g.require_commit(want).map_err(|e| at(&e))?;
        }
        let p = super::git::Prepared::resolve(g, self.builder.work_dir()?).map_err(|e| at(&e))?;
        self.git.insert(src.to_string(), p.clone());
        Ok(p)
    }

    /// Downloads `url` once per step.
    fn fetch(
        &mut self,
        ins: &Instruction,
        url: &str,
        expected: Option<&registry::Digest>,
    ) -> Result<super::fetch::Downloaded, BuildError> {
        if let Some(d) = self.downloads.get(url) {
            if expected.is_none_or(|e| e == &d.digest) {
                return Ok(d.clone());
            }
        }
        let d = super::fetch::download(url, self.builder.work_dir()?, expected)
            .map_err(|e| BuildError::at(&ins.span, &ins.original, e))?;
        self.downloads.insert(url.to_string(), d.clone());
        Ok(d)
    }

    fn add(&mut self, ins: &Instruction, a: &AddInstr) -> Result<(), BuildError> {
        let at = |e: &dyn std::fmt::Display| BuildError::at(&ins.span, &ins.original, e);
        let expected = self.add_checksum(ins, a)?;
        let mut remote = Vec::new();
        let want = match &expected {
            Some(AddChecksum::Http(d)) => Some(d),
            _ => None,
        };
        for url in a.sources.iter().filter(|s| is_url(s)) {
            remote.push(self.fetch(ins, url, want)?);
        }
        let mut repos = Vec::new();
        for src in &a.sources {
            if let Some(g) = GitSource::parse(src).map_err(|e| at(&e))? {
                repos.push(self.git_resolve(ins, src, g, expected.as_ref())?);
            }
        }
        let local: Vec<String> = a.sources.iter().filter(|s| is_local(s)).cloned().collect();
        let stage_view = self.view()?;
        let view = RootfsView::new(stage_view.rootfs());
        let opts = SourceOptions {
            excludes: a.exclude.clone(),
            parents: false,
        };
        let cached = self.resolved.take();
        let sources = if local.is_empty() {
            Vec::new()
        } else if let Some((_, entries)) = cached.filter(|(names, _)| *names == local) {
            entries
        } else {
            self.context
                .resolve_sources(&local, &opts)
                .map_err(|e| at(&e))?
        };
        let spec = self.copy_spec(
            ins,
            &view,
            &a.dest,
            a.sources.len() + a.heredocs.len(),
            a.chown.as_deref(),
            a.chmod.as_deref(),
            false,
        )?;
        // Local archives are unpacked into the destination; everything else is copied.
        let mut archives = Vec::new();
        let mut entries = Vec::new();
        for s in &sources {
            let is_archive = s.root
                && matches!(s.kind, crate::context::EntryKind::File { .. })
                && sniff_archive(&s.host_path).map_err(|e| at(&e))?.is_some();
            if is_archive {
                archives.push(s.host_path.clone());
            } else {
                entries.push(CopyEntry::from_source(s));
            }
        }
        for h in &a.heredocs {
            let mode = spec.chmod.unwrap_or(0o644);
            entries.push(CopyEntry::inline(
                &h.name,
                h.content.as_bytes(),
                mode,
                spec.now,
            ));
        }
        // Downloaded files are never unpacked; Docker gives them mode 0600 and the server's
        // Last-Modified time.
        for d in remote {
            entries.push(CopyEntry {
                rel: d.name.clone(),
                kind: crate::context::EntryKind::File { size: d.size },
                meta: crate::layer::EntryMeta::new(spec.chmod.unwrap_or(0o600), d.mtime),
                payload: super::copy::Payload::Host(d.path.clone()),
                root: true,
            });
        }
        // A git repository is copied like a local directory: its working tree (or subdir),
        // owned by root unless --chown, modes and symlinks from git. Its mtimes are fixed so the
        // layer does not depend on when it was checked out: SOURCE_DATE_EPOCH when set, else
        // the Unix epoch (our choice for reproducibility, not copied from BuildKit).
        let git_mtime = self.builder.opts.source_date_epoch.unwrap_or(0);
        for p in &repos {
            // The commit checked out is the one resolved (and checked against --checksum).
            let (dir, commit) = p.checkout(a.keep_git_dir).map_err(|e| at(&e))?;
            let no_ignore = Ignore::from_patterns::<&str>(&[]).expect("empty pattern list");
            let repo = Context::with_ignore(&dir, no_ignore).map_err(|e| at(&e))?;
            let sub = p.source.subdir.clone().unwrap_or_else(|| ".".to_string());
            let found = repo
                .resolve_sources(std::slice::from_ref(&sub), &opts)
                .map_err(|e| match e {
                    crate::context::Error::SourceNotFound { .. } => at(&format!(
                        "subdirectory {sub:?} not found in {} at commit {commit}",
                        p.source.display()
                    )),
                    e => at(&e),
                })?;
            for e in &found {
                let mut entry = CopyEntry::from_source(e);
                entry.meta.mtime = git_mtime;
                entries.push(entry);
            }
        }
        let mut writer = self.new_layer()?;
        let mut spec = spec;
        if !archives.is_empty() {
            // Archives always unpack into a directory.
            spec.source_args = spec.source_args.max(2);
            if !spec.dest.ends_with('/') && !entries.is_empty() {
                return Err(at(&"when using ADD with more than one source, the destination must be a directory and end with a /"));
            }
            if !spec.dest.ends_with('/') {
                spec.dest.push('/');
            }
        }
        write_copy(&view, &spec, &entries, &mut writer).map_err(|e| at(&e))?;
        let abs = resolve_path(&spec.workdir, &spec.dest, false);
        let dest_dir = view.canonicalize(&abs, true);
        for path in archives {
            let reader = crate::layer::open_archive(&path)
                .map_err(|e| at(&e))?
                .ok_or_else(|| at(&format!("{}: not an archive", path.display())))?;
            write_archive(reader, &dest_dir, spec.owner, &mut writer).map_err(|e| at(&e))?;
        }
        self.finish_layer(ins, writer)
    }

    /// WORKDIR creates its directory (owned by USER, as BuildKit does) when it is missing.
    fn make_workdir(&mut self, ins: &Instruction) -> Result<(), BuildError> {
        let wd = self.state.working_dir();
        let stage_view = self.view()?;
        let view = RootfsView::new(stage_view.rootfs());
        if view.is_dir(&view.canonicalize(&wd, true)) {
            self.history(ins, false, None);
            return Ok(());
        }
        // An unknown user leaves the directory to root, as buildah does.
        let user = self
            .state
            .config
            .container_config()
            .user
            .filter(|u| !u.is_empty() && view.resolve_owner(u).is_ok());
        let mut spec = self.copy_spec(
            ins,
            &view,
            &format!("{wd}/"),
            1,
            user.as_deref(),
            None,
            false,
        )?;
        spec.now = self.builder.now().0;
        let mut writer = self.new_layer()?;
        write_copy(&view, &spec, &[], &mut writer)
            .map_err(|e| BuildError::at(&ins.span, &ins.original, e))?;
        self.finish_layer(ins, writer)
    }
}

/// A read-only view of the files of `layers` (unpacked once per chain).
fn view_of(
    builder: &Builder<'_>,
    layers: &[LayerRef],
) -> Result<Box<dyn SnapshotView>, BuildError> {
    let chain = ensure_chain(builder.store, builder.snapshotter.as_ref(), layers)?;
    builder.snapshotter.view(chain.as_ref()).map_err(|e| {
        BuildError::io(
            builder.store.root().join("snapshots"),
            std::io::Error::other(e.to_string()),
        )
    })
}

/// What `ADD --checksum` checks: a URL's content digest or a git source's commit.
enum AddChecksum {
    Http(registry::Digest),
    GitCommit(String),
}

/// An HTTP(S) URL that is not a git repository (those end in `.git`).
fn is_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://")) && !GitSource::is_git(s)
}

/// A source read from the build context: neither a URL nor a git repository.
fn is_local(s: &str) -> bool {
    !is_url(s) && !GitSource::is_git(s)
}

fn one_line(s: &str) -> String {
    s.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}
