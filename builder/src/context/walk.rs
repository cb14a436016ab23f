//! The filtered walk: ignored entries are invisible, an ignored directory is entered only when
//! an exception could re-include something below it, and its entry appears (before its
//! children) only when something inside it does, as in BuildKit's `fsutil` walk.

use std::fs::{self, FileType, Metadata};
use std::path::{Path, PathBuf};

use super::ignore::{Ignore, ParentState};
use super::{join_rel, Context, Error, Result};

/// One path of the context, as [`Context::walk`] lists it.
#[derive(Clone, Debug)]
pub struct WalkEntry {
    /// Slash-separated, relative to the context root.
    pub path: String,
    pub file_type: FileType,
}

/// A visited entry.
pub(crate) struct Visited {
    /// Relative to the context root.
    pub ctx_rel: String,
    /// Relative to the directory the walk started in.
    pub src_rel: String,
    pub host: PathBuf,
    pub metadata: Metadata,
}

struct Node {
    ctx_rel: String,
    src_rel: String,
    ignore: ParentState,
    exclude: ParentState,
}

pub(crate) struct Walk<'a> {
    ignore: &'a Ignore,
    exclude: Option<&'a Ignore>,
    /// Ignored directories entered on the chance that something inside is re-included;
    /// the flag tells whether they were emitted already.
    pending: Vec<(Visited, bool)>,
}

pub(crate) fn read_sorted(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    let mut entries = fs::read_dir(dir)
        .and_then(|it| it.collect::<std::io::Result<Vec<_>>>())
        .map_err(|e| Error::io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

/// A directory entry's name in kiln's string form (see [`crate::fs::name`]).
pub(crate) fn name_of(name: &std::ffi::OsStr) -> String {
    crate::fs::name::encode(name).into_owned()
}

impl<'a> Walk<'a> {
    pub(crate) fn new(ctx: &'a Context, exclude: Option<&'a Ignore>) -> Self {
        Walk {
            ignore: ctx.ignore(),
            exclude,
            pending: Vec::new(),
        }
    }

    /// Walks below `host_dir`, which is `ctx_rel` in the context. Children are matched
    /// against the excludes relative to `host_dir`.
    pub(crate) fn run(
        &mut self,
        ctx_rel: &str,
        host_dir: &Path,
        visit: &mut dyn FnMut(Visited) -> Result<()>,
    ) -> Result<()> {
        let ignore = if ctx_rel.is_empty() {
            ParentState::default()
        } else {
            self.ignore.state_of(ctx_rel).1
        };
        let node = Node {
            ctx_rel: ctx_rel.to_string(),
            src_rel: String::new(),
            ignore,
            exclude: ParentState::default(),
        };
        self.dir(&node, host_dir, visit)
    }

    fn dir(
        &mut self,
        node: &Node,
        host_dir: &Path,
        visit: &mut dyn FnMut(Visited) -> Result<()>,
    ) -> Result<()> {
        for entry in read_sorted(host_dir)? {
            let host = entry.path();
            let name = name_of(&entry.file_name());
            let metadata = entry.metadata().map_err(|e| Error::io(&host, e))?;
            let ctx_rel = join_rel(&node.ctx_rel, &name);
            let src_rel = join_rel(&node.src_rel, &name);
            let (im, ignore) = self.ignore.matched_with_parent(&ctx_rel, &node.ignore);
            let (em, exclude) = match self.exclude {
                Some(ex) => ex.matched_with_parent(&src_rel, &node.exclude),
                None => (super::Match::None, ParentState::default()),
            };
            let skipped = im.is_ignored() || em.is_ignored();
            let is_dir = metadata.is_dir();
            if skipped {
                let descend = is_dir
                    && (!im.is_ignored() || self.ignore.must_descend(&ctx_rel))
                    && (!em.is_ignored()
                        || self.exclude.is_some_and(|ex| ex.must_descend(&src_rel)));
                if !descend {
                    continue;
                }
            } else {
                for (p, emitted) in self.pending.iter_mut().filter(|(_, e)| !*e) {
                    *emitted = true;
                    visit(Visited {
                        ctx_rel: p.ctx_rel.clone(),
                        src_rel: p.src_rel.clone(),
                        host: p.host.clone(),
                        metadata: p.metadata.clone(),
                    })?;
                }
            }
            let child = Node {
                ctx_rel: ctx_rel.clone(),
                src_rel: src_rel.clone(),
                ignore,
                exclude,
            };
            let v = Visited {
                ctx_rel,
                src_rel,
                host: host.clone(),
                metadata,
            };
            if !is_dir {
                visit(v)?;
                continue;
            }
            if skipped {
                self.pending.push((v, false));
            } else {
                visit(Visited {
                    ctx_rel: v.ctx_rel.clone(),
                    src_rel: v.src_rel.clone(),
                    host: v.host.clone(),
                    metadata: v.metadata.clone(),
                })?;
                self.pending.push((v, true));
            }
            let result = match self.dir(&child, &host, visit) {
                // An excluded directory we cannot read is skipped, as fsutil does: it was
                // only entered on the chance of an exception inside.
                Err(Error::Io { path, source })
                    if skipped
                        && path == host
                        && source.kind() == std::io::ErrorKind::PermissionDenied =>
                {
                    Ok(())
                }
                r => r,
            };
            self.pending.pop();
            result?;
        }
        Ok(())
    }
}
