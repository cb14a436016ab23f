//! COPY/ADD source resolution with Docker's (BuildKit's) rules:
//!
//! - a source is cleaned relative to the context root, so `../x` is `x` and nothing escapes;
//! - wildcards follow Go's `filepath.Match`, one path component at a time;
//! - ignored paths are invisible, and a source that matches nothing is an error naming it;
//! - a directory source copies its contents, not the directory itself;
//! - symlinks on the way to a source (and the source itself) are followed, inside the
//!   context; symlinks found inside a copied directory stay symlinks;
//! - `--exclude` patterns match paths relative to the source (for a wildcard match, relative
//!   to the directory the wildcard was expanded in);
//! - `--parents` keeps the source's path, or the part of it after a `/./` pivot.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, Metadata};
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::glob::{clean, has_wildcards, Glob};
use super::ignore::Ignore;
use super::walk::{name_of, read_sorted, Visited, Walk};
use super::{join_rel, Context, Error, Result};
use crate::fs::name as names;
use crate::layer::EntryMeta;

/// Options of a COPY/ADD.
#[derive(Clone, Debug, Default)]
pub struct SourceOptions {
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
    /// `--parents`.
    pub parents: bool,
}

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File {
        size: u64,
    },
    Symlink {
        target: PathBuf,
    },
    /// A second name of a file already in the list (same device and inode).
    Hardlink {
        target: String,
    },
    Fifo,
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
}

/// The stat fields the checksum cache is keyed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileStat {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Nanoseconds since the epoch (i64 lasts until 2262 and keeps entries small).
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub nlink: u64,
}

impl FileStat {
    fn of(md: &Metadata) -> FileStat {
        FileStat {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime_ns: md.mtime().saturating_mul(1_000_000_000) + md.mtime_nsec(),
            ctime_ns: md.ctime().saturating_mul(1_000_000_000) + md.ctime_nsec(),
            nlink: md.nlink(),
        }
    }
}

/// One entry to copy.
#[derive(Clone, Debug)]
pub struct SourceEntry {
    /// Where it goes, relative to the COPY destination (slash-separated, never empty).
    pub dest: String,
    pub kind: EntryKind,
    /// Host metadata (mode bits, owner, mtime, xattrs); COPY's `--chown`/`--chmod` are the
    /// executor's business.
    pub meta: EntryMeta,
    /// Where to read it from.
    pub host_path: PathBuf,
    pub stat: FileStat,
    /// A top-level source that is not a directory. With a single such source and a
    /// destination without a trailing `/`, the executor names the file after the destination.
    pub root: bool,
    /// Added "if absent" while resolving (see `Found`); no meaning afterwards.
    weak: bool,
    /// Insertion order while resolving (fits the struct's padding: free).
    seq: u32,
}

/// Entries as the sources are walked, in a flat list (a context of 100k files must not be held
/// twice, as a map and then a list): a later entry replaces an earlier one with the same
/// destination, except one added "if absent" (a `--parents` directory), which yields to any.
#[derive(Default)]
struct Found {
    entries: Vec<SourceEntry>,
}

impl Found {
    fn insert(&mut self, e: SourceEntry) {
        let seq = self.entries.len() as u32;
        self.entries.push(SourceEntry { seq, ..e });
    }

    fn insert_if_absent(&mut self, e: SourceEntry) {
        let seq = self.entries.len() as u32;
        self.entries.push(SourceEntry {
            weak: true,
            seq,
            ..e
        });
    }

    fn extend(&mut self, e: Option<SourceEntry>) {
        if let Some(e) = e {
            self.insert(e);
        }
    }

    /// Sorted by destination, one entry per destination: the last one inserted, or the first
    /// "if absent" one when there is no other.
    fn into_sorted(mut self) -> Vec<SourceEntry> {
        // Equal destinations stay in insertion order. Unstable with the order as tiebreak: a
        // stable sort would allocate half the list again (10 MB for 100k files).
        self.entries
            .sort_unstable_by(|a, b| a.dest.cmp(&b.dest).then(a.seq.cmp(&b.seq)));
        let mut keep = vec![false; self.entries.len()];
        let mut start = 0;
        while start < self.entries.len() {
            let dest = &self.entries[start].dest;
            let end = start
                + self.entries[start..]
                    .iter()
                    .take_while(|e| &e.dest == dest)
                    .count();
            let run = &self.entries[start..end];
            let chosen = run.iter().rposition(|e| !e.weak).unwrap_or(0);
            keep[start + chosen] = true;
            start = end;
        }
        let mut i = 0;
        self.entries.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        self.entries.shrink_to_fit();
        self.entries
    }
}

impl Context {
    /// Resolves COPY/ADD sources to a sorted, de-duplicated list of entries (later sources
    /// win on equal destinations, parents come before their children).
    pub fn resolve_sources(
        &self,
        sources: &[String],
        opts: &SourceOptions,
    ) -> Result<Vec<SourceEntry>> {
        let excludes = if opts.excludes.is_empty() {
            None
        } else {
            Some(Ignore::from_patterns(&opts.excludes)?)
        };
        let mut out = Found::default();
        for src in sources {
            self.resolve_one(src, opts.parents, excludes.as_ref(), &mut out)?;
        }
        let mut entries = out.into_sorted();
        link_hardlinks(&mut entries);
        Ok(entries)
    }

    fn resolve_one(
        &self,
        src: &str,
        parents: bool,
        excludes: Option<&Ignore>,
        out: &mut Found,
    ) -> Result<()> {
        let not_found = || Error::SourceNotFound {
            path: src.to_string(),
        };
        // The part of the path kept by --parents starts after a `/./` pivot, if any.
        let pivot = if parents {
            src.find("/./").map(|i| rel_clean(&src[..i]))
        } else {
            None
        };
        let rel = rel_clean(src);
        let (base, matches) = if has_wildcards(&rel) {
            let comps: Vec<&str> = rel.split('/').collect();
            let first_wild = comps.iter().position(|c| has_wildcards(c)).unwrap_or(0);
            let base = comps[..first_wild].join("/");
            let mut found = Vec::new();
            self.expand(&base, &comps[first_wild..], &mut found, src)?;
            (base, found)
        } else {
            let base = parent_of(&rel).to_string();
            (base, vec![rel.clone()])
        };
        let mut any = false;
        for m in matches {
            let Some((real, host, md)) = self.lookup(&m, true, src)? else {
                continue;
            };
            let hidden = !self.visible(&m) || !self.visible(&real);
            if hidden && !(md.is_dir() && self.has_visible_inside(&real, &host)?) {
                continue;
            }
            let rel_to_base = m
                .strip_prefix(&base)
                .map(|s| s.trim_start_matches('/'))
                .unwrap_or(&m);
            if let Some(ex) = excludes {
                if !rel_to_base.is_empty() && ex.matched(rel_to_base).is_ignored() {
                    continue;
                }
            }
            let dest_base = if parents {
                match &pivot {
                    Some(p) => m
                        .strip_prefix(p.as_str())
                        .map(|s| s.trim_start_matches('/').to_string())
                        .unwrap_or_else(|| m.clone()),
                    None => m.clone(),
                }
            } else {
                String::new()
            };
            if parents {
                self.add_parents(&m, &dest_base, out)?;
            }
            any = true;
            if md.is_dir() {
                if parents && !dest_base.is_empty() {
                    let e = entry(dest_base.clone(), &host, &md, false)?;
                    out.extend(e);
                }
                Walk::new(self, excludes).run(&real, &host, &mut |v: Visited| {
                    let dest = join_rel(&dest_base, &v.src_rel);
                    if let Some(e) = entry(dest, &v.host, &v.metadata, false)? {
                        out.insert(e);
                    }
                    Ok(())
                })?;
            } else {
                let dest = if parents {
                    dest_base
                } else {
                    m.rsplit('/').next().unwrap_or(&m).to_string()
                };
                if let Some(e) = entry(dest, &host, &md, !parents)? {
                    out.insert(e);
                }
            }
        }
        if any {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// With --parents, the directories above a source (below the pivot) are copied too.
    fn add_parents(&self, lexical: &str, dest: &str, out: &mut Found) -> Result<()> {
        let skip = lexical.len() - dest.len();
        let mut idx = skip;
        while let Some(i) = lexical[idx..].find('/') {
            let dir = &lexical[..idx + i];
            if let Some((_, host, md)) = self.lookup(dir, true, lexical)? {
                let d = dir[skip..].to_string();
                if let Some(e) = entry(d, &host, &md, false)? {
                    out.insert_if_absent(e);
                }
            }
            idx += i + 1;
        }
        Ok(())
    }

    /// Expands wildcard components below `dir` (a lexical path in the context).
    fn expand(&self, dir: &str, comps: &[&str], found: &mut Vec<String>, src: &str) -> Result<()> {
        let Some((first, rest)) = comps.split_first() else {
            found.push(dir.to_string());
            return Ok(());
        };
        if !has_wildcards(first) {
            return self.expand(&join_rel(dir, first), rest, found, src);
        }
        let glob = Glob::new(first).map_err(|_| Error::BadSourcePattern {
            source_path: src.to_string(),
        })?;
        let Some((_, host, md)) = self.lookup(dir, true, src)? else {
            return Ok(());
        };
        if !md.is_dir() {
            return Ok(());
        }
        for entry in read_sorted(&host)? {
            let name = name_of(&entry.file_name());
            if glob.matches(&name) {
                self.expand(&join_rel(dir, &name), rest, found, src)?;
            }
        }
        Ok(())
    }

    /// Resolves a lexical context path, following symlinks without ever leaving the context
    /// (an absolute target or `..` restarts from, or stops at, the root). Returns the real
    /// relative path, the host path and its lstat; `None` when it does not exist.
    fn lookup(
        &self,
        rel: &str,
        follow_last: bool,
        src: &str,
    ) -> Result<Option<(String, PathBuf, Metadata)>> {
        let mut todo: Vec<String> = rel.split('/').rev().map(str::to_string).collect();
        let mut real: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(c) = todo.pop() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    real.pop();
                    continue;
                }
                _ => {}
            }
            let host = self
                .root()
                .join(names::decode_path(&real.join("/")))
                .join(names::decode_path(&c));
            let md = match fs::symlink_metadata(&host) {
                Ok(md) => md,
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                    return Ok(None)
                }
                Err(e) => return Err(Error::io(host, e)),
            };
            if md.file_type().is_symlink() && (follow_last || !todo.is_empty()) {
                links += 1;
                if links > 255 {
                    return Err(Error::SymlinkLoop {
                        path: src.to_string(),
                    });
                }
                let target = fs::read_link(&host).map_err(|e| Error::io(&host, e))?;
                let target = names::encode(target.as_os_str());
                if target.starts_with('/') {
                    real.clear();
                }
                todo.extend(target.split('/').rev().map(str::to_string));
                continue;
            }
            real.push(c);
        }
        let real = real.join("/");
        let host = if real.is_empty() {
            self.root().to_path_buf()
        } else {
            self.root().join(names::decode_path(&real))
        };
        let md = fs::symlink_metadata(&host).map_err(|e| Error::io(&host, e))?;
        Ok(Some((real, host, md)))
    }

    /// Whether a path is sent with the context (not ignored).
    fn visible(&self, rel: &str) -> bool {
        rel.is_empty() || !self.ignore().matched(rel).is_ignored()
    }

    /// Whether an ignored directory still shows up because something inside is re-included.
    fn has_visible_inside(&self, rel: &str, host: &Path) -> Result<bool> {
        if rel.is_empty() || !self.ignore().must_descend(rel) {
            return Ok(false);
        }
        let mut any = false;
        Walk::new(self, None).run(rel, host, &mut |_| {
            any = true;
            Ok(())
        })?;
        Ok(any)
    }
}

/// `filepath.Clean("/" + p)` without the leading slash (`""` for the root).
fn rel_clean(p: &str) -> String {
    clean(&format!("/{p}")).trim_start_matches('/').to_string()
}

fn parent_of(rel: &str) -> &str {
    rel.rfind('/').map_or("", |i| &rel[..i])
}

/// Builds an entry from an lstat; sockets are skipped, as nothing can be copied from them.
fn entry(dest: String, host: &Path, md: &Metadata, root: bool) -> Result<Option<SourceEntry>> {
    let ft = md.file_type();
    let dev = || (rustix::fs::major(md.rdev()), rustix::fs::minor(md.rdev()));
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File { size: md.len() }
    } else if ft.is_symlink() {
        EntryKind::Symlink {
            target: fs::read_link(host).map_err(|e| Error::io(host, e))?,
        }
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else if ft.is_char_device() {
        let (major, minor) = dev();
        EntryKind::CharDevice { major, minor }
    } else if ft.is_block_device() {
        let (major, minor) = dev();
        EntryKind::BlockDevice { major, minor }
    } else {
        return Ok(None);
    };
    let meta = EntryMeta {
        mode: md.mode() & 0o7777,
        uid: md.uid() as u64,
        gid: md.gid() as u64,
        mtime: md.mtime(),
        xattrs: read_xattrs(host)?,
    };
    Ok(Some(SourceEntry {
        dest,
        kind,
        meta,
        host_path: host.to_path_buf(),
        stat: FileStat::of(md),
        root,
        weak: false,
        seq: 0,
    }))
}

/// The extended attributes of a path (not following symlinks). SELinux labels are host
/// policy, not content, and are left out (as BuildKit and Buildah do).
fn read_xattrs(path: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 1024];
    let n = loop {
        match rustix::fs::llistxattr(path, &mut names) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => names.resize(names.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => return Ok(out),
            Err(e) => return Err(Error::io(path, e.into())),
        }
    };
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(key) = std::str::from_utf8(name) else {
            continue;
        };
        if key == "security.selinux" {
            continue;
        }
        let mut value = vec![0u8; 256];
        loop {
            match rustix::fs::lgetxattr(path, key, &mut value) {
                Ok(len) => {
                    value.truncate(len);
                    break;
                }
                Err(rustix::io::Errno::RANGE) => value.resize(value.len() * 4, 0),
                Err(rustix::io::Errno::NODATA) => break,
                Err(e) => return Err(Error::io(path, e.into())),
            }
        }
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

/// Files with more than one link that appear twice become hard links to the first name.
fn link_hardlinks(entries: &mut [SourceEntry]) {
    let mut seen: HashMap<(u64, u64), String> = HashMap::new();
    for e in entries.iter_mut() {
        if !matches!(e.kind, EntryKind::File { .. }) || e.stat.nlink < 2 {
            continue;
        }
        match seen.get(&(e.stat.dev, e.stat.ino)) {
            Some(first) => {
                e.kind = EntryKind::Hardlink {
                    target: first.clone(),
                }
            }
            None => {
                seen.insert((e.stat.dev, e.stat.ino), e.dest.clone());
            }
        }
    }
}
