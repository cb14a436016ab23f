//! Pruning: by age, by size in least-recently-used order, images' layers, and the store gc.

use std::fs;
use std::time::{Duration, SystemTime};

use builder::cache::{CacheKey, CacheRecord, CacheStore, LayerRef, PruneOptions};
use registry::media_types::Compression;
use registry::spec::History;
use registry::store::testing::{make_image, write_layer};
use registry::Platform;

const HOUR: Duration = Duration::from_secs(3600);

fn key(n: u32) -> CacheKey {
    let root = CacheKey::root(None, &"linux/amd64".parse::<Platform>().unwrap());
    CacheKey::builder(&root)
        .instruction(format!("RUN step {n}"))
        .finish()
}

/// A layer whose blob is exactly `size` bytes (an uncompressed tar padded by content).
fn layer_of_size(cache: &CacheStore, name: &str) -> LayerRef {
    let (descriptor, diff_id) = write_layer(
        cache.store(),
        &[(name, name.repeat(200).as_bytes())],
        Compression::None,
    )
    .unwrap();
    LayerRef {
        descriptor,
        diff_id,
    }
}

/// Puts record `n` holding `layer`, last used `age` ago.
fn put(cache: &CacheStore, n: u32, layer: Option<LayerRef>, age: Duration) {
    let mut rec = CacheRecord::new(
        layer,
        History {
            created_by: Some(format!("RUN step {n}")),
            ..History::default()
        },
    );
    rec.last_used = SystemTime::now() - age;
    rec.created = rec.last_used;
    cache.put(&key(n), &rec).unwrap();
}

fn remaining(cache: &CacheStore) -> Vec<CacheKey> {
    cache.list().unwrap().into_iter().map(|(k, _)| k).collect()
}

fn sorted(mut keys: Vec<CacheKey>) -> Vec<CacheKey> {
    keys.sort();
    keys
}

fn setup() -> (tempfile::TempDir, CacheStore) {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheStore::open(dir.path()).unwrap();
    (dir, cache)
}

#[test]
fn prune_until_removes_records_last_used_before_the_cutoff() {
    let (_dir, cache) = setup();
    put(&cache, 1, Some(layer_of_size(&cache, "a")), 48 * HOUR);
    put(&cache, 2, None, 30 * HOUR);
    put(&cache, 3, Some(layer_of_size(&cache, "c")), HOUR);
    let report = cache
        .prune(&PruneOptions {
            until: Some(24 * HOUR),
            ..PruneOptions::default()
        })
        .unwrap();
    assert_eq!(report.removed, vec![key(1), key(2)], "oldest first");
    assert_eq!(report.kept, 1);
    assert_eq!(remaining(&cache), vec![key(3)]);
    assert!(report.released > 0);
}

#[test]
fn a_hit_keeps_an_old_record_from_being_pruned_by_age() {
    let (_dir, cache) = setup();
    put(&cache, 1, None, 48 * HOUR);
    assert!(cache.get(&key(1)).is_some(), "the hit refreshes last_used");
    let report = cache
        .prune(&PruneOptions {
            until: Some(24 * HOUR),
            ..PruneOptions::default()
        })
        .unwrap();
    assert!(report.removed.is_empty());
}

#[test]
fn keep_storage_removes_least_recently_used_first() {
    let (_dir, cache) = setup();
    let layers: Vec<LayerRef> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| layer_of_size(&cache, n))
        .collect();
    let size = |i: usize| layers[i].descriptor.size;
    // Ages: record 2 is the least recently used, then 4, 1, 3.
    put(&cache, 1, Some(layers[0].clone()), 3 * HOUR);
    put(&cache, 2, Some(layers[1].clone()), 9 * HOUR);
    put(&cache, 3, Some(layers[2].clone()), HOUR);
    put(&cache, 4, Some(layers[3].clone()), 5 * HOUR);
    let keep = size(0) + size(2); // room for exactly the two most recent
    let report = cache
        .prune(&PruneOptions {
            keep_storage: Some(keep),
            ..PruneOptions::default()
        })
        .unwrap();
    assert_eq!(report.removed, vec![key(2), key(4)]);
    assert_eq!(report.released, size(1) + size(3));
    assert_eq!(sorted(remaining(&cache)), sorted(vec![key(1), key(3)]));

    // Already under the limit: nothing more goes.
    let again = cache
        .prune(&PruneOptions {
            keep_storage: Some(keep),
            ..PruneOptions::default()
        })
        .unwrap();
    assert!(again.removed.is_empty());
    let zero = cache
        .prune(&PruneOptions {
            keep_storage: Some(0),
            ..PruneOptions::default()
        })
        .unwrap();
    assert_eq!(zero.removed, vec![key(1), key(3)]);
}

#[test]
fn until_then_keep_storage() {
    let (_dir, cache) = setup();
    let l: Vec<LayerRef> = ["a", "b", "c"]
        .iter()
        .map(|n| layer_of_size(&cache, n))
        .collect();
    put(&cache, 1, Some(l[0].clone()), 100 * HOUR);
    put(&cache, 2, Some(l[1].clone()), 10 * HOUR);
    put(&cache, 3, Some(l[2].clone()), HOUR);
    let report = cache
        .prune(&PruneOptions {
            until: Some(50 * HOUR),
            keep_storage: Some(l[2].descriptor.size),
            all: false,
        })
        .unwrap();
    assert_eq!(report.removed, vec![key(1), key(2)]);
    assert_eq!(remaining(&cache), vec![key(3)]);
}

#[test]
fn a_layer_shared_by_records_counts_once_and_is_released_with_the_last() {
    let (_dir, cache) = setup();
    let shared = layer_of_size(&cache, "shared");
    let own = layer_of_size(&cache, "own");
    put(&cache, 1, Some(shared.clone()), 3 * HOUR);
    put(&cache, 2, Some(shared.clone()), 2 * HOUR);
    put(&cache, 3, Some(own.clone()), HOUR);
    // Total held is shared + own, not 2*shared + own: keeping that much removes nothing.
    let keep = shared.descriptor.size + own.descriptor.size;
    let report = cache
        .prune(&PruneOptions {
            keep_storage: Some(keep),
            ..PruneOptions::default()
        })
        .unwrap();
    assert!(report.removed.is_empty());
    // Keeping only `own`'s size: both records holding `shared` go, in LRU order.
    let report = cache
        .prune(&PruneOptions {
            keep_storage: Some(own.descriptor.size),
            ..PruneOptions::default()
        })
        .unwrap();
    assert_eq!(report.removed, vec![key(1), key(2)]);
    assert_eq!(report.released, shared.descriptor.size);
}

#[test]
fn without_all_records_holding_an_images_layers_stay() {
    let (_dir, cache) = setup();
    let store = cache.store().clone();
    let image = make_image(&store, "img", 1, Compression::Gzip).unwrap();
    store
        .tag(&"example.com/app:1".parse().unwrap(), &image)
        .unwrap();
    let manifest: registry::spec::Manifest =
        serde_json::from_slice(&store.read_blob(&image.digest).unwrap()).unwrap();
    let image_layer = LayerRef {
        descriptor: manifest.layers[0].clone(),
        diff_id: registry::Digest::of(b"unused here"),
    };
    put(&cache, 1, Some(image_layer), 10 * HOUR);
    put(
        &cache,
        2,
        Some(layer_of_size(&cache, "cache only")),
        10 * HOUR,
    );
    put(&cache, 3, None, 10 * HOUR);

    let report = cache.prune(&PruneOptions::default()).unwrap();
    assert_eq!(sorted(report.removed), sorted(vec![key(2), key(3)]));
    assert_eq!(remaining(&cache), vec![key(1)]);

    let report = cache
        .prune(&PruneOptions {
            all: true,
            ..PruneOptions::default()
        })
        .unwrap();
    assert_eq!(report.removed, vec![key(1)]);
    assert!(remaining(&cache).is_empty());
}

#[test]
fn prune_and_gc_frees_the_blobs_of_removed_records_only() {
    let (_dir, cache) = setup();
    let old = layer_of_size(&cache, "old");
    let fresh = layer_of_size(&cache, "fresh");
    put(&cache, 1, Some(old.clone()), 48 * HOUR);
    put(&cache, 2, Some(fresh.clone()), HOUR);
    let (report, gc) = cache
        .prune_and_gc(
            &PruneOptions {
                until: Some(24 * HOUR),
                ..PruneOptions::default()
            },
            Duration::ZERO,
        )
        .unwrap();
    assert_eq!(report.removed, vec![key(1)]);
    assert_eq!(gc.removed, vec![old.descriptor.digest.clone()]);
    assert_eq!(gc.reclaimed, old.descriptor.size);
    assert!(!cache.store().has_blob(&old.descriptor.digest));
    assert!(cache.store().has_blob(&fresh.descriptor.digest));
    assert!(cache.get(&key(2)).is_some(), "the kept record still hits");
}

#[test]
fn prune_skips_corrupt_records_without_failing() {
    let (_dir, cache) = setup();
    put(&cache, 1, None, 48 * HOUR);
    fs::write(cache.record_path(&key(2)), b"kiln-cache-record/1 garbage").unwrap();
    let report = cache.prune(&PruneOptions::default()).unwrap();
    assert_eq!(report.removed, vec![key(1)]);
    assert!(!cache.record_path(&key(2)).exists());
}
