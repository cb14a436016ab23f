//! Where blobs came from: `<root>/origins.json` maps a blob digest to the repositories
//! (`registry/repository`) it was pulled from or pushed to, so a push to the same registry can
//! mount it instead of uploading. Updated under the store lock; a missing or unreadable file
//! only costs mounts, never correctness.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::store::Store;

/// Repositories remembered per blob (most recent last).
const MAX_PER_BLOB: usize = 8;

type Origins = BTreeMap<String, Vec<String>>;

fn path(store: &Store) -> std::path::PathBuf {
    store.root().join("origins.json")
}

fn read(store: &Store) -> Origins {
    std::fs::read(path(store))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Records that `digests` exist in `repository` (`registry/repo`).
pub fn record(store: &Store, repository: &str, digests: &[Digest]) -> Result<()> {
    let _lock = store.lock()?;
    let mut all = read(store);
    for d in digests {
        let list = all.entry(d.to_string()).or_default();
        list.retain(|r| r != repository);
        list.push(repository.to_string());
        if list.len() > MAX_PER_BLOB {
            list.remove(0);
        }
    }
    let bytes = serde_json::to_vec(&all).expect("origins serialize");
    let p = path(store);
    let dir = store.root();
    let mut tmp = tempfile::Builder::new()
        .prefix(".origins-")
        .tempfile_in(dir)
        .at(dir)?;
    std::io::Write::write_all(&mut tmp, &bytes).at(tmp.path().to_path_buf())?;
    tmp.persist(&p).map_err(|e| crate::Error::io(&p, e.error))?;
    Ok(())
}

/// A repository of `registry`, other than `except`, known to hold `digest`.
pub fn mount_source(
    store: &Store,
    digest: &Digest,
    registry: &str,
    except: &str,
) -> Option<String> {
    let all = read(store);
    let prefix = format!("{registry}/");
    all.get(&digest.to_string())?
        .iter()
        .rev()
        .filter_map(|r| r.strip_prefix(&prefix))
        .find(|repo| *repo != except)
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_finds_mount_sources_on_the_same_registry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of(b"layer");
        record(&store, "localhost:5000/base", std::slice::from_ref(&d)).unwrap();
        record(&store, "other.io/base", std::slice::from_ref(&d)).unwrap();
        assert_eq!(
            mount_source(&store, &d, "localhost:5000", "app").as_deref(),
            Some("base")
        );
        assert_eq!(mount_source(&store, &d, "localhost:5000", "base"), None);
        assert_eq!(mount_source(&store, &d, "ghcr.io", "app"), None);
    }

    #[test]
    fn a_corrupt_file_costs_only_mounts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("origins.json"), b"{not json").unwrap();
        let d = Digest::of(b"x");
        assert_eq!(mount_source(&store, &d, "r", "a"), None);
        record(&store, "r/b", std::slice::from_ref(&d)).unwrap();
        assert_eq!(mount_source(&store, &d, "r", "a").as_deref(), Some("b"));
    }
}
