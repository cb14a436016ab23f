//! One instruction of a stage: expand it, then do what it says.

use std::collections::HashMap;

use registry::spec::History;

use crate::context::{Context, Ignore, SourceOptions};
use crate::dockerfile::{AddInstr, CopyInstr, Instruction, InstructionKind, Lexer};
use crate::layer::{sniff_archive, LayerWriter, SourceDateEpoch};
use crate::plan::{predefined_args, BuildGraph, FromRef};

use super::copy::{write_archive, write_copy, CopyEntry, CopySpec};
use super::error::BuildError;
use super::rootfs::RootfsView;
use super::stagefs::StageFs;
use super::state::{resolve_path, LayerRef, StageState};
use super::{base, config, Builder, StageOutput};

pub(super) struct StageRun<'r, 'a> {
    pub builder: &'r Builder<'a>,
    pub graph: &'r BuildGraph,
    pub context: &'r Context,
    pub done: &'r HashMap<usize, StageOutput>,
    pub state: &'r mut StageState,
    pub fs: &'r mut StageFs,
}

/// Where COPY reads from: the build context, or another stage's or image's files.
enum SourceRoot<'c> {
    Context(&'c Context),
    // The StageFs keeps the image's unpacked files alive while they are read.
    Other(Context, #[allow(dead_code)] StageFs),
    OtherStage(Context),
}

impl StageRun<'_, '_> {
    pub fn step(&mut self, ins: &Instruction) -> Result<(), BuildError> {
        let at = |e: &dyn std::fmt::Display| BuildError::at(&ins.span, &ins.original, e);
        let lexer = Lexer::new(self.graph.escape);
        let env = self.state.expansion_env();
        let (kind, _used) = ins
            .kind
            .expand_with_matches(&lexer, &env)
            .map_err(|e| at(&e))?;
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
                }
                Ok(())
            }
            InstructionKind::Copy(c) => self.copy(ins, c),
            InstructionKind::Add(a) => self.add(ins, a),
            InstructionKind::Run(_) => Err(at(
                &"RUN is not supported by this kiln build yet (sandboxed RUN is in progress)",
            )),
            InstructionKind::Workdir(_) => {
                config::apply(self.state, &kind).map_err(|e| at(&e))?;
                self.make_workdir(ins)
            }
            InstructionKind::From(_) => Err(at(&"FROM inside a stage")),
            _ => {
                config::apply(self.state, &kind).map_err(|e| at(&e))?;
                self.history(ins, false, None);
                Ok(())
            }
        }
    }

    fn history(&mut self, ins: &Instruction, fs_step: bool, layer: Option<LayerRef>) {
        let created_by = if fs_step {
            format!("{} # buildkit", one_line(&ins.original))
        } else {
            one_line(&ins.original)
        };
        let history = History {
            created: Some(self.builder.now_string()),
            created_by: Some(created_by),
            empty_layer: layer.is_none(),
            ..History::default()
        };
        self.state.commit(history, layer);
    }

    fn new_layer(&self) -> Result<LayerWriter, BuildError> {
        Ok(LayerWriter::new(
            self.builder.store,
            self.builder.opts.compression,
            self.builder.opts.source_date_epoch.map(SourceDateEpoch),
        )?)
    }

    fn finish_layer(&mut self, ins: &Instruction, writer: LayerWriter) -> Result<(), BuildError> {
        let info = writer.finish()?;
        let layer = LayerRef {
            descriptor: info.descriptor,
            diff_id: info.diff_id,
        };
        self.history(ins, true, Some(layer));
        Ok(())
    }

    fn sync_fs(&mut self) -> Result<(), BuildError> {
        self.fs.sync(self.builder.store, &self.state.layers)
    }

    fn owner(
        &self,
        ins: &Instruction,
        spec: Option<&str>,
    ) -> Result<Option<(u32, u32)>, BuildError> {
        let Some(spec) = spec else { return Ok(None) };
        let view = RootfsView::new(self.fs.root());
        view.resolve_owner(spec)
            .map(Some)
            .map_err(|e| BuildError::at(&ins.span, &ins.original, e))
    }

    fn copy_spec(
        &self,
        ins: &Instruction,
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
            owner: self.owner(ins, chown)?,
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
                let ctx = Context::with_ignore(out.fs.root(), no_ignore()).map_err(|e| at(&e))?;
                Ok(SourceRoot::OtherStage(ctx))
            }
            FromRef::Image(name) => {
                let state = base::load(self.builder.store, &name, &self.builder.opts.platforms)
                    .map_err(|e| at(&e))?;
                let mut fs = StageFs::new(self.builder.work.path())?;
                fs.sync(self.builder.store, &state.layers)?;
                let ctx = Context::with_ignore(fs.root(), no_ignore()).map_err(|e| at(&e))?;
                Ok(SourceRoot::Other(ctx, fs))
            }
        }
    }

    fn copy(&mut self, ins: &Instruction, c: &CopyInstr) -> Result<(), BuildError> {
        let at = |e: &dyn std::fmt::Display| BuildError::at(&ins.span, &ins.original, e);
        self.sync_fs()?;
        let root = self.source_root(ins, c.from.as_deref())?;
        let ctx = match &root {
            SourceRoot::Context(c) => *c,
            SourceRoot::Other(c, _) | SourceRoot::OtherStage(c) => c,
        };
        let opts = SourceOptions {
            excludes: c.exclude.clone(),
            parents: c.parents,
        };
        let sources = ctx.resolve_sources(&c.sources, &opts).map_err(|e| at(&e))?;
        let spec = self.copy_spec(
            ins,
            &c.dest,
            c.sources.len() + c.heredocs.len(),
            c.chown.as_deref(),
            c.chmod.as_deref(),
            c.from.is_some(),
        )?;
        let mut entries: Vec<CopyEntry> = sources.iter().map(CopyEntry::from_source).collect();
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
        let view = RootfsView::new(self.fs.root());
        write_copy(&view, &spec, &entries, &mut writer).map_err(|e| at(&e))?;
        drop(root);
        self.finish_layer(ins, writer)
    }

    fn add(&mut self, ins: &Instruction, a: &AddInstr) -> Result<(), BuildError> {
        let at = |e: &dyn std::fmt::Display| BuildError::at(&ins.span, &ins.original, e);
        if a.sources.iter().any(|s| is_url(s)) {
            return Err(at(
                &"ADD from a URL is not supported by this kiln build yet",
            ));
        }
        if a.checksum.is_some() {
            return Err(at(&"--checksum is only supported for HTTP(S) sources"));
        }
        self.sync_fs()?;
        let opts = SourceOptions {
            excludes: a.exclude.clone(),
            parents: false,
        };
        let sources = self
            .context
            .resolve_sources(&a.sources, &opts)
            .map_err(|e| at(&e))?;
        let spec = self.copy_spec(
            ins,
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
        let mut writer = self.new_layer()?;
        let view = RootfsView::new(self.fs.root());
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
        self.sync_fs()?;
        let wd = self.state.working_dir();
        let view = RootfsView::new(self.fs.root());
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
        let mut spec = self.copy_spec(ins, &format!("{wd}/"), 1, user.as_deref(), None, false)?;
        spec.now = self.builder.now().0;
        let mut writer = self.new_layer()?;
        write_copy(&view, &spec, &[], &mut writer)
            .map_err(|e| BuildError::at(&ins.span, &ins.original, e))?;
        self.finish_layer(ins, writer)
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn one_line(s: &str) -> String {
    s.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}
