//! Garbage collection: remove blobs no tag, untagged entry or caller root can reach.

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, SystemTime};

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::store::{walk, Store};

/// Blobs younger than this are spared: another process may have just written them and not
/// tagged them yet (committing a blob that already exists refreshes its age).
pub const DEFAULT_GC_GRACE: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs removed.
    pub removed: Vec<Digest>,
    /// Bytes freed.
    pub reclaimed: u64,
    /// Unreachable blobs kept because they are younger than the grace period.
    pub spared: usize,
}

impl Store {
    /// Removes unreachable blobs older than [`DEFAULT_GC_GRACE`]. `extra_roots` are blobs the
    /// caller keeps alive (the build cache's manifests and layers); a root that is a manifest
    /// or index keeps its whole graph.
    pub fn gc(&self, extra_roots: &[Digest]) -> Result<GcReport> {
        self.gc_with_grace(extra_roots, DEFAULT_GC_GRACE)
    }

    /// [`Store::gc`] with an explicit grace period (`Duration::ZERO` in tests).
    pub fn gc_with_grace(&self, extra_roots: &[Digest], grace: Duration) -> Result<GcReport> {
        let _lock = self.lock()?;
        let live = self.reachable(extra_roots)?;
        let now = SystemTime::now();
        let mut report = GcReport::default();
        for (digest, path) in self.all_blobs()? {
            if live.contains(&digest) {
                continue;
            }
            let meta = match fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(path, e)),
            };
            let age = meta
                .modified()
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default();
            if age < grace {
                report.spared += 1;
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(path, e)),
            }
            tracing::debug!(%digest, "gc removed blob");
            report.reclaimed += meta.len();
            report.removed.push(digest);
        }
        Ok(report)
    }

    /// Every blob reachable from index.json entries and `extra_roots`. A manifest that is
    /// present but unreadable is an error: gc must not guess what it points at.
    fn reachable(&self, extra_roots: &[Digest]) -> Result<HashSet<Digest>> {
        let mut live = HashSet::new();
        let mut stack: Vec<Descriptor> = self.read_index()?.manifests;
        for root in extra_roots {
            if live.insert(root.clone()) && self.has_blob(root) {
                stack.extend(walk::children_of_digest(self, root)?);
            }
        }
        while let Some(desc) = stack.pop() {
            if !live.insert(desc.digest.clone()) || !self.has_blob(&desc.digest) {
                continue;
            }
            if let Some(children) = walk::children(self, &desc)? {
                stack.extend(children);
            }
        }
        Ok(live)
    }

    /// Every blob file in the store with its digest; files with names that are not digests
    /// are skipped.
    pub(crate) fn all_blobs(&self) -> Result<Vec<(Digest, std::path::PathBuf)>> {
        let mut out = Vec::new();
        let blobs = self.root().join("blobs");
        for alg in fs::read_dir(&blobs).at(&blobs)? {
            let alg = alg.at(&blobs)?;
            let dir = alg.path();
            if !dir.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&dir).at(&dir)? {
                let entry = entry.at(&dir)?;
                let name = format!(
                    "{}:{}",
                    alg.file_name().to_string_lossy(),
                    entry.file_name().to_string_lossy()
                );
                if let Ok(d) = name.parse::<Digest>() {
                    out.push((d, entry.path()));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}
