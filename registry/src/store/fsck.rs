//! Store verification: every blob's digest, every tag's reachable graph.

use std::collections::HashSet;
use std::fmt;
use std::io;

use crate::descriptor::Descriptor;
use crate::digest::{Digest, DigestHasher};
use crate::error::{Error, IoContext, Result};
use crate::store::{index, walk, Store};

/// One thing wrong with a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FsckProblem {
    /// The blob's content does not hash to its name.
    CorruptBlob { digest: Digest, actual: Digest },
    /// A descriptor points at a blob the store lacks.
    MissingBlob { digest: Digest, needed_by: String },
    /// A blob's size differs from the descriptor pointing at it.
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
        needed_by: String,
    },
    /// A manifest or index that does not parse.
    InvalidManifest { digest: Digest, reason: String },
}

impl fmt::Display for FsckProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsckProblem::CorruptBlob { digest, actual } => {
                write!(f, "corrupt blob {digest}: content hashes to {actual}")
            }
            FsckProblem::MissingBlob { digest, needed_by } => {
                write!(f, "missing blob {digest} (needed by {needed_by})")
            }
            FsckProblem::SizeMismatch {
                digest,
                expected,
                actual,
                needed_by,
            } => write!(
                f,
                "blob {digest} is {actual} bytes, {needed_by} says {expected}"
            ),
            FsckProblem::InvalidManifest { digest, reason } => {
                write!(f, "invalid manifest {digest}: {reason}")
            }
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsckReport {
    pub blobs_checked: usize,
    pub problems: Vec<FsckProblem>,
}

impl FsckReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Store {
    /// Verifies every blob's digest (streaming) and that every index.json entry's graph is
    /// complete. Children of an index that are absent are allowed (a single-platform pull);
    /// a manifest's config and layers are not.
    pub fn fsck(&self) -> Result<FsckReport> {
        let mut report = FsckReport::default();
        let mut corrupt = HashSet::new();
        for (digest, path) in self.all_blobs()? {
            let mut file = std::fs::File::open(&path).at(&path)?;
            let mut h = DigestHasher::new(digest.algorithm());
            io::copy(&mut file, &mut h).at(&path)?;
            report.blobs_checked += 1;
            let actual = h.finish();
            if actual != digest {
                corrupt.insert(digest.clone());
                report
                    .problems
                    .push(FsckProblem::CorruptBlob { digest, actual });
            }
        }
        let mut seen = HashSet::new();
        let mut stack: Vec<(Descriptor, String, bool)> = self
            .read_index()?
            .manifests
            .into_iter()
            .map(|d| {
                let who = index::entry_ref(&d)
                    .map(|r| format!("tag {r}"))
                    .unwrap_or_else(|| "an untagged image".to_string());
                (d, who, true)
            })
            .collect();
        while let Some((desc, needed_by, required)) = stack.pop() {
            if !seen.insert(desc.digest.clone()) || corrupt.contains(&desc.digest) {
                continue;
            }
            let size = match self.blob_size(&desc.digest) {
                Ok(s) => s,
                Err(Error::BlobNotFound(_)) => {
                    if required {
                        report.problems.push(FsckProblem::MissingBlob {
                            digest: desc.digest.clone(),
                            needed_by,
                        });
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            if size != desc.size {
                report.problems.push(FsckProblem::SizeMismatch {
                    digest: desc.digest.clone(),
                    expected: desc.size,
                    actual: size,
                    needed_by: needed_by.clone(),
                });
            }
            let is_index = crate::media_types::is_index(&desc.media_type);
            match walk::children(self, &desc) {
                Ok(Some(children)) => {
                    let who = format!(
                        "{} {}",
                        if is_index { "index" } else { "manifest" },
                        desc.digest
                    );
                    stack.extend(children.into_iter().map(|c| (c, who.clone(), !is_index)));
                }
                Ok(None) => {}
                Err(e) => report.problems.push(FsckProblem::InvalidManifest {
                    digest: desc.digest.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        Ok(report)
    }
}
