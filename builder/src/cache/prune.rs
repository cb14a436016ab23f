//! Pruning cache records by age and size, least recently used first, then the store gc.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use registry::spec::ManifestKind;
use registry::store::{GcReport, Store};
use registry::{Descriptor, Digest};

use super::key::CacheKey;
use super::lock;
use super::record::CacheRecord;
use super::store::CacheStore;
use super::Result;

/// What `kiln prune` removes (docker's `builder prune` flags).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneOptions {
    /// After the age filter, remove least recently used records until the layers the remaining
    /// records hold total at most this many bytes.
    pub keep_storage: Option<u64>,
    /// Remove records last used longer ago than this.
    pub until: Option<Duration>,
    /// Also remove records whose layer a stored image uses (they free no space, but keep
    /// rebuilds fast). Without it, only records holding layers no image uses are candidates.
    pub all: bool,
}

/// What a prune did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Records removed, least recently used first.
    pub removed: Vec<CacheKey>,
    /// Bytes of layers that no remaining record holds any more (the store gc frees them unless
    /// an image uses them).
    pub released: u64,
    /// Records kept.
    pub kept: usize,
}

impl CacheStore {
    /// Removes records per `opts`: with neither `until` nor `keep_storage`, every candidate;
    /// otherwise those last used before `now - until`, then the least recently used until the
    /// remaining records hold at most `keep_storage` bytes. Waits for running builds' leases.
    pub fn prune(&self, opts: &PruneOptions) -> Result<PruneReport> {
        let _lock = lock::exclusive(&self.lock_path())?;
        self.prune_locked(opts, SystemTime::now())
    }

    /// [`CacheStore::prune`], then the store's gc with the remaining records as roots, under one
    /// lock so no build can take a hit on a record in between. `grace` spares blobs younger than
    /// that (`registry::store::DEFAULT_GC_GRACE` outside tests).
    pub fn prune_and_gc(
        &self,
        opts: &PruneOptions,
        grace: Duration,
    ) -> Result<(PruneReport, GcReport)> {
        let _lock = lock::exclusive(&self.lock_path())?;
        let report = self.prune_locked(opts, SystemTime::now())?;
        let roots = self.roots()?;
        let gc = self.store().gc_with_grace(&roots, grace)?;
        Ok((report, gc))
    }

    pub(super) fn prune_locked(&self, opts: &PruneOptions, now: SystemTime) -> Result<PruneReport> {
        let mut records = self.list()?;
        // Least recently used first; ties broken by age, then key, so the order is stable.
        records.sort_by(|(ka, a), (kb, b)| {
            (a.last_used, a.created, ka).cmp(&(b.last_used, b.created, kb))
        });
        let in_use = if opts.all {
            HashSet::new()
        } else {
            image_layers(self.store())
        };
        let candidate = |r: &CacheRecord| {
            r.layer
                .as_ref()
                .is_none_or(|l| !in_use.contains(&l.descriptor.digest))
        };
        let mut held = Holdings::new(&records);
        let mut doomed = vec![false; records.len()];
        let mut order = Vec::new();
        let mut report = PruneReport::default();
        let filtered = opts.until.is_some() || opts.keep_storage.is_some();
        let cutoff = opts.until.and_then(|u| now.checked_sub(u));
        for (i, (_, rec)) in records.iter().enumerate() {
            let too_old = cutoff.is_some_and(|c| rec.last_used < c);
            if candidate(rec) && (!filtered || too_old) {
                doomed[i] = true;
                order.push(i);
                report.released += held.release(rec);
            }
        }
        if let Some(keep) = opts.keep_storage {
            for (i, (_, rec)) in records.iter().enumerate() {
                if held.total <= keep {
                    break;
                }
                if !doomed[i] && candidate(rec) {
                    doomed[i] = true;
                    order.push(i);
                    report.released += held.release(rec);
                }
            }
        }
        for i in order {
            let key = &records[i].0;
            self.remove(key)?;
            report.removed.push(key.clone());
        }
        report.kept = records.len() - report.removed.len();
        Ok(report)
    }
}

/// The layer bytes a set of records holds, counting a layer shared by several records once.
struct Holdings {
    refs: HashMap<Digest, (usize, u64)>,
    total: u64,
}

impl Holdings {
    fn new(records: &[(CacheKey, CacheRecord)]) -> Holdings {
        let mut refs: HashMap<Digest, (usize, u64)> = HashMap::new();
        for l in records.iter().filter_map(|(_, r)| r.layer.as_ref()) {
            let d = &l.descriptor;
            refs.entry(d.digest.clone()).or_insert((0, d.size)).0 += 1;
        }
        let total = refs.values().map(|(_, size)| size).sum();
        Holdings { refs, total }
    }

    /// Drops one record's hold; returns the bytes no record holds any more.
    fn release(&mut self, rec: &CacheRecord) -> u64 {
        let Some(l) = &rec.layer else { return 0 };
        let Some(entry) = self.refs.get_mut(&l.descriptor.digest) else {
            return 0;
        };
        entry.0 -= 1;
        if entry.0 > 0 {
            return 0;
        }
        let size = entry.1;
        self.refs.remove(&l.descriptor.digest);
        self.total -= size;
        size
    }
}

/// Layers of the images index.json names (tagged or untagged). An unreadable manifest is
/// skipped: this only decides which records count as in use, never what gc deletes.
fn image_layers(store: &Store) -> HashSet<Digest> {
    let mut layers = HashSet::new();
    let mut stack: Vec<Descriptor> = match store.read_index() {
        Ok(index) => index.manifests,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the store index; no record counts as in use");
            return layers;
        }
    };
    let mut seen = HashSet::new();
    while let Some(desc) = stack.pop() {
        if !seen.insert(desc.digest.clone()) || !store.has_blob(&desc.digest) {
            continue;
        }
        let parsed = store
            .read_blob(&desc.digest)
            .and_then(|b| ManifestKind::parse(&b, Some(&desc.media_type)));
        match parsed {
            Ok(ManifestKind::Image(m)) => layers.extend(m.layers.into_iter().map(|l| l.digest)),
            Ok(ManifestKind::Index(i)) => stack.extend(i.manifests),
            Err(e) => tracing::debug!(digest = %desc.digest, error = %e, "skipping manifest"),
        }
    }
    layers
}
