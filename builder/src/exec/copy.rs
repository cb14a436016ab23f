//! COPY and ADD as layers: the resolved sources are written straight into a layer tar (one
//! pass: read, tar, compress, hash), at destinations resolved against the stage's rootfs the
//! way Docker resolves them (relative to WORKDIR, through symlinks inside the rootfs, a single
//! file named after a destination without a trailing slash).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;

use crate::context::{EntryKind, SourceEntry};
use crate::fs::name as names;
use crate::layer::writer::DeviceKind;
use crate::layer::{EntryMeta, LayerWriter};

use super::rootfs::RootfsView;
use super::state::resolve_path;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("when using COPY with more than one source file, the destination must be a directory and end with a /")]
    MultipleSourcesNeedDir,
    #[error("cannot copy to {path}: a parent is not a directory")]
    NotADirectory { path: String },
    #[error("chown {spec}: {reason}")]
    Owner { spec: String, reason: String },
    #[error(transparent)]
    Layer(#[from] crate::layer::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where an entry's bytes come from.
#[derive(Clone, Debug)]
pub enum Payload {
    /// A file on the host (the context or another stage's rootfs).
    Host(PathBuf),
    /// Inline content (heredocs).
    Inline(Vec<u8>),
    /// Nothing to read (dirs, links, devices).
    None,
}

/// One thing to put in the layer, relative to the COPY destination.
#[derive(Clone, Debug)]
pub struct CopyEntry {
    pub rel: String,
    pub kind: EntryKind,
    pub meta: EntryMeta,
    pub payload: Payload,
    /// A top-level, non-directory source (see [`SourceEntry::root`]).
    pub root: bool,
}

/// Moves the strings over: a context of 100k files is not cloned to be copied.
impl From<SourceEntry> for CopyEntry {
    fn from(e: SourceEntry) -> CopyEntry {
        let payload = match e.kind {
            EntryKind::File { .. } => Payload::Host(e.host_path),
            _ => Payload::None,
        };
        CopyEntry {
            rel: e.dest,
            kind: e.kind,
            meta: e.meta,
            payload,
            root: e.root,
        }
    }
}

impl CopyEntry {
    pub fn from_source(e: &SourceEntry) -> CopyEntry {
        CopyEntry::from(e.clone())
    }

    pub fn inline(name: &str, content: &[u8], mode: u32, mtime: i64) -> CopyEntry {
        CopyEntry {
            rel: name.to_string(),
            kind: EntryKind::File {
                size: content.len() as u64,
            },
            meta: EntryMeta::new(mode, mtime),
            payload: Payload::Inline(content.to_vec()),
            root: true,
        }
    }
}

/// The COPY destination and the ownership and mode rules of one COPY/ADD.
#[derive(Clone, Debug)]
pub struct CopySpec {
    /// The destination as written (expanded), maybe relative to `workdir`.
    pub dest: String,
    pub workdir: String,
    /// Number of source arguments (wildcards and heredocs count as given); more than one makes
    /// the destination a directory.
    pub source_args: usize,
    /// `--chown`, resolved.
    pub owner: Option<(u32, u32)>,
    /// Keep the sources' owners and xattrs (COPY --from a stage or image); the build context's
    /// owners are never kept: Docker makes them 0:0.
    pub preserve_owner: bool,
    /// `--chmod`.
    pub chmod: Option<u32>,
    /// mtime for directories this step creates.
    pub now: i64,
}

/// Writes the entries of one COPY/ADD into `writer`, creating missing parent directories.
pub fn write_copy(
    view: &RootfsView<'_>,
    spec: &CopySpec,
    entries: &[CopyEntry],
    writer: &mut LayerWriter,
) -> Result<(), CopyError> {
    let abs = resolve_path(&spec.workdir, &spec.dest, true);
    let slash = abs.ends_with('/');
    let dest = view.canonicalize(abs.trim_end_matches('/'), true);
    let single_file = spec.source_args == 1
        && entries.len() == 1
        && entries[0].root
        && entries[0].kind != EntryKind::Dir;
    let dest_is_dir = view.is_dir(&dest);
    if spec.source_args > 1 && !slash && !dest_is_dir {
        return Err(CopyError::MultipleSourcesNeedDir);
    }
    let file_mode = single_file && !slash && !dest_is_dir;

    let owner_of = |meta: &EntryMeta| -> (u64, u64) {
        match spec.owner {
            Some((u, g)) => (u as u64, g as u64),
            None if spec.preserve_owner => (meta.uid, meta.gid),
            None => (0, 0),
        }
    };
    let (new_uid, new_gid) = spec
        .owner
        .map(|(u, g)| (u as u64, g as u64))
        .unwrap_or((0, 0));
    let mut dirs = DirMaker {
        view,
        created: BTreeSet::new(),
        canonical: HashMap::new(),
        meta: EntryMeta {
            mode: 0o755,
            uid: new_uid,
            gid: new_gid,
            mtime: spec.now,
            xattrs: Default::default(),
        },
    };

    let base_dir = if file_mode {
        parent_of(&dest).to_string()
    } else {
        dest.clone()
    };
    dirs.make_all(&base_dir, writer)?;

    // Where each hard link's first name went; only names some link points at are kept
    // (a context of 100k files has no need for a 100k-entry map).
    let link_targets: HashSet<&str> = entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Hardlink { target } => Some(target.as_str()),
            _ => None,
        })
        .collect();
    let mut written: HashMap<&str, String> = HashMap::new();
    for e in entries {
        let path = if file_mode {
            dest.clone()
        } else {
            let (parent, name) = match e.rel.rsplit_once('/') {
                Some((p, n)) => (format!("{}/{p}", base_dir.trim_end_matches('/')), n),
                None => (base_dir.clone(), e.rel.as_str()),
            };
            let parent = dirs.canonical_dir(&parent);
            format!("{}/{name}", parent.trim_end_matches('/'))
        };
        let mut meta = e.meta.clone();
        (meta.uid, meta.gid) = owner_of(&e.meta);
        if !spec.preserve_owner {
            meta.xattrs.clear();
        }
        if let Some(m) = spec.chmod {
            if !matches!(e.kind, EntryKind::Symlink { .. }) {
                meta.mode = m;
            }
        }
        let rel = path.trim_start_matches('/');
        match &e.kind {
            EntryKind::Dir => {
                writer.add_dir(rel, &meta)?;
                dirs.created.insert(path.clone());
            }
            EntryKind::File { size } => match &e.payload {
                Payload::Host(host) => writer.add_file_from(rel, &meta, host)?,
                Payload::Inline(data) => writer.add_file(rel, &meta, *size, &data[..])?,
                Payload::None => writer.add_file(rel, &meta, 0, std::io::empty())?,
            },
            EntryKind::Symlink { target } => {
                meta.mode = 0o777;
                writer.add_symlink(rel, &meta, &names::encode(target.as_os_str()))?
            }
            EntryKind::Hardlink { target } => match written.get(target.as_str()) {
                Some(t) => writer.add_hardlink(rel, &meta, t)?,
                None => {
                    // The first name was not written (excluded); copy the content instead.
                    if let Payload::Host(host) = &e.payload {
                        writer.add_file_from(rel, &meta, host)?
                    }
                }
            },
            EntryKind::Fifo => writer.add_device(rel, &meta, DeviceKind::Fifo, 0, 0)?,
            EntryKind::CharDevice { major, minor } => {
                writer.add_device(rel, &meta, DeviceKind::Char, *major, *minor)?
            }
            EntryKind::BlockDevice { major, minor } => {
                writer.add_device(rel, &meta, DeviceKind::Block, *major, *minor)?
            }
        }
        if link_targets.contains(e.rel.as_str()) {
            written.insert(e.rel.as_str(), rel.to_string());
        }
    }
    Ok(())
}

/// Creates missing parent directories (as layer entries) and remembers where existing ones
/// really are.
struct DirMaker<'v, 'a> {
    view: &'v RootfsView<'a>,
    created: BTreeSet<String>,
    canonical: HashMap<String, String>,
    meta: EntryMeta,
}

impl DirMaker<'_, '_> {
    fn make_all(&mut self, dir: &str, writer: &mut LayerWriter) -> Result<(), CopyError> {
        let mut prefix = String::new();
        for comp in dir.split('/').filter(|c| !c.is_empty()) {
            prefix.push('/');
            prefix.push_str(comp);
            if self.created.contains(&prefix) {
                continue;
            }
            match self.view.lstat(&prefix) {
                // Existing parents go into the layer with their own metadata, as Docker's
                // layers carry them: a layer unpacked on its own (an overlay lower) must not
                // invent them with other owners or modes.
                Some(md) if md.is_dir() => {
                    writer.add_dir(prefix.trim_start_matches('/'), &existing_meta(&md))?;
                    self.created.insert(prefix.clone());
                }
                Some(_) => {
                    return Err(CopyError::NotADirectory {
                        path: prefix.clone(),
                    })
                }
                None => {
                    writer.add_dir(prefix.trim_start_matches('/'), &self.meta)?;
                    self.created.insert(prefix.clone());
                }
            }
        }
        Ok(())
    }

    /// The real location of a directory under the destination: directories this COPY created
    /// are where they are; existing ones may be symlinks inside the rootfs.
    fn canonical_dir(&mut self, dir: &str) -> String {
        if self.created.contains(dir) {
            return dir.to_string();
        }
        if let Some(c) = self.canonical.get(dir) {
            return c.clone();
        }
        let c = self.view.canonicalize(dir, true);
        self.canonical.insert(dir.to_string(), c.clone());
        c
    }
}

fn existing_meta(md: &std::fs::Metadata) -> EntryMeta {
    use std::os::unix::fs::MetadataExt;
    EntryMeta {
        mode: md.mode() & 0o7777,
        uid: md.uid() as u64,
        gid: md.gid() as u64,
        mtime: md.mtime(),
        xattrs: Default::default(),
    }
}

fn parent_of(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((p, _)) => p,
    }
}

/// Reads an ADD archive's entries into the layer under `dest_dir` (already canonical), with
/// the archive's owners unless `owner` is given. Paths are cleaned and confined: `..` and
/// absolute names cannot leave the destination.
pub fn write_archive(
    archive: impl Read,
    dest_dir: &str,
    owner: Option<(u32, u32)>,
    writer: &mut LayerWriter,
) -> Result<(), CopyError> {
    let io = |source| CopyError::Io {
        path: PathBuf::from(dest_dir),
        source,
    };
    let mut tar = tar::Archive::new(archive);
    for entry in tar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let raw_path = entry.path().map_err(io)?.into_owned();
        let raw = names::encode(raw_path.as_os_str()).into_owned();
        let cleaned = crate::context::glob::clean(&format!("/{raw}"));
        let rel = cleaned.trim_start_matches('/');
        if rel.is_empty() {
            continue;
        }
        let path = format!("{}/{rel}", dest_dir.trim_end_matches('/'));
        let path = path.trim_start_matches('/').to_string();
        let h = entry.header().clone();
        // PAX records override the header (large ids, exact mtimes) and carry xattrs such as
        // security.capability, which ADD keeps as Docker and buildah do.
        let read = crate::fs::unpack::entry_meta(&mut entry, &raw_path)
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let mut meta = EntryMeta::from(&read);
        if let Some((u, g)) = owner {
            (meta.uid, meta.gid) = (u as u64, g as u64);
        }
        let kind = h.entry_type();
        if kind.is_dir() {
            writer.add_dir(&path, &meta)?;
        } else if kind.is_symlink() {
            let target = entry.link_name().map_err(io)?.unwrap_or_default();
            writer.add_symlink(&path, &meta, &names::encode(target.as_os_str()))?;
        } else if kind.is_hard_link() {
            let target = entry.link_name().map_err(io)?.unwrap_or_default();
            let t = names::encode(target.as_os_str());
            let t = crate::context::glob::clean(&format!("/{t}"));
            let t = format!(
                "{}/{}",
                dest_dir.trim_end_matches('/'),
                t.trim_start_matches('/')
            );
            writer.add_hardlink(&path, &meta, t.trim_start_matches('/'))?;
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            let size = h.size().unwrap_or(0);
            writer.add_file(&path, &meta, size, &mut entry)?;
        } else if kind.is_fifo() {
            writer.add_device(&path, &meta, DeviceKind::Fifo, 0, 0)?;
        } else if kind.is_character_special() || kind.is_block_special() {
            let dk = if kind.is_character_special() {
                DeviceKind::Char
            } else {
                DeviceKind::Block
            };
            let major = h.device_major().ok().flatten().unwrap_or(0);
            let minor = h.device_minor().ok().flatten().unwrap_or(0);
            writer.add_device(&path, &meta, dk, major, minor)?;
        }
    }
    Ok(())
}
