//! CacheStore: hits, misses, corrupt and torn records, concurrency, secrets.

use std::fs;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use builder::cache::{CacheKey, CacheRecord, CacheStore, Error, LayerRef};
use builder::dockerfile::Mount;
use registry::media_types::Compression;
use registry::spec::History;
use registry::store::testing::write_layer;
use registry::{Digest, Platform};

fn cache() -> (tempfile::TempDir, CacheStore) {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheStore::open(dir.path()).unwrap();
    (dir, cache)
}

fn linux() -> Platform {
    "linux/amd64".parse().unwrap()
}

fn key(n: u32) -> CacheKey {
    let root = CacheKey::root(None, &linux());
    CacheKey::builder(&root)
        .instruction(format!("RUN echo {n}"))
        .finish()
}

fn layer(cache: &CacheStore, content: &str) -> LayerRef {
    let (descriptor, diff_id) = write_layer(
        cache.store(),
        &[("f.txt", content.as_bytes())],
        Compression::Gzip,
    )
    .unwrap();
    LayerRef {
        descriptor,
        diff_id,
    }
}

fn history(created_by: &str) -> History {
    History {
        created: Some("2024-01-02T03:04:05Z".to_string()),
        created_by: Some(created_by.to_string()),
        comment: Some("buildkit.dockerfile.v0".to_string()),
        ..History::default()
    }
}

#[test]
fn put_then_get_round_trips_and_survives_reopen() {
    let (dir, cache) = cache();
    let k = key(1);
    assert_eq!(cache.get(&k), None, "empty cache misses");
    let rec = CacheRecord::new(Some(layer(&cache, "one")), history("RUN echo 1"));
    assert_eq!(rec.size, rec.layer.as_ref().unwrap().descriptor.size);
    cache.put(&k, &rec).unwrap();

    let reopened = CacheStore::open(dir.path()).unwrap();
    let got = reopened.get(&k).expect("hit after reopen");
    assert_eq!(got.layer, rec.layer);
    assert_eq!(got.history, rec.history);
    assert_eq!(got.size, rec.size);
    assert_eq!(
        got.created, rec.created,
        "created keeps sub-second precision"
    );
    assert_eq!(reopened.get(&key(2)), None, "other keys miss");
}

#[test]
fn a_step_without_a_layer_still_hits() {
    let (_dir, cache) = cache();
    let k = key(1);
    let mut h = history("ENV A=b");
    h.empty_layer = true;
    cache.put(&k, &CacheRecord::new(None, h.clone())).unwrap();
    let got = cache.get(&k).unwrap();
    assert_eq!(got.layer, None);
    assert_eq!(got.history, h);
    assert_eq!(got.size, 0);
}

#[test]
fn a_hit_touches_last_used() {
    let (_dir, cache) = cache();
    let k = key(1);
    let mut rec = CacheRecord::new(None, history("RUN true"));
    let old = SystemTime::now() - Duration::from_secs(86_400);
    rec.last_used = old;
    cache.put(&k, &rec).unwrap();
    assert_eq!(
        cache.list().unwrap()[0].1.last_used,
        old,
        "put keeps last_used"
    );
    let got = cache.get(&k).unwrap();
    assert!(got.last_used > old);
    let listed = cache.list().unwrap();
    assert_eq!(listed[0].1.last_used, got.last_used, "the touch is stored");
    assert_eq!(
        cache.touch(&key(9)),
        None,
        "touching a missing record is a no-op"
    );
}

#[test]
fn missing_layer_blob_is_a_miss_and_the_record_is_dropped() {
    let (_dir, cache) = cache();
    let k = key(1);
    let l = layer(&cache, "gone soon");
    cache
        .put(&k, &CacheRecord::new(Some(l.clone()), history("RUN x")))
        .unwrap();
    fs::remove_file(cache.store().blob_path(&l.descriptor.digest)).unwrap();
    assert_eq!(cache.get(&k), None);
    assert!(
        !cache.record_path(&k).exists(),
        "a useless record is removed"
    );
}

#[test]
fn layer_blob_of_the_wrong_size_is_a_miss() {
    let (_dir, cache) = cache();
    let k = key(1);
    let mut l = layer(&cache, "sized");
    l.descriptor.size += 1;
    cache
        .put(&k, &CacheRecord::new(Some(l), history("RUN x")))
        .unwrap();
    assert_eq!(cache.get(&k), None);
}

#[test]
fn put_refuses_a_layer_that_is_not_in_the_store() {
    let (_dir, cache) = cache();
    let mut l = layer(&cache, "real");
    l.descriptor.digest = Digest::of(b"never stored");
    let err = cache
        .put(&key(1), &CacheRecord::new(Some(l), history("RUN x")))
        .unwrap_err();
    assert!(matches!(err, Error::MissingLayer { .. }), "{err}");
    assert!(err.to_string().contains("is not in the store"), "{err}");
    assert_eq!(cache.get(&key(1)), None);
}

/// Each way a record file can be damaged: a miss, the file removed, never a panic.
#[test]
fn corrupt_or_truncated_records_are_misses_and_removed() {
    let (_dir, cache) = cache();
    let k = key(1);
    let rec = CacheRecord::new(Some(layer(&cache, "c")), history("RUN c"));
    cache.put(&k, &rec).unwrap();
    let good = fs::read(cache.record_path(&k)).unwrap();
    let nl = good.iter().position(|&b| b == b'\n').unwrap();
    let mut flipped = good.clone();
    let last = flipped.len() - 2;
    flipped[last] ^= 0x01;
    let other_key = {
        cache.put(&key(2), &rec).unwrap();
        fs::read(cache.record_path(&key(2))).unwrap()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("header only", good[..=nl].to_vec()),
        ("truncated body", good[..good.len() - 10].to_vec()),
        ("half a header", good[..nl / 2].to_vec()),
        ("bit flip in body", flipped),
        ("garbage", b"\xff\xfe not a record \n {}".to_vec()),
        ("another key's record", other_key),
        ("valid json, no header", good[nl + 1..].to_vec()),
    ];
    for (name, bytes) in cases {
        fs::write(cache.record_path(&k), &bytes).unwrap();
        assert_eq!(cache.get(&k), None, "{name}: must miss");
        assert!(!cache.record_path(&k).exists(), "{name}: must be removed");
    }
    // And the untouched record still hits.
    assert!(cache.get(&key(2)).is_some());
}

#[test]
fn list_and_roots_skip_corrupt_records_and_stray_files() {
    let (_dir, cache) = cache();
    let a = layer(&cache, "a");
    let b = layer(&cache, "b");
    cache
        .put(&key(1), &CacheRecord::new(Some(a.clone()), history("1")))
        .unwrap();
    cache
        .put(&key(2), &CacheRecord::new(Some(b.clone()), history("2")))
        .unwrap();
    cache
        .put(&key(3), &CacheRecord::new(Some(a.clone()), history("3")))
        .unwrap();
    cache
        .put(&key(4), &CacheRecord::new(None, history("4")))
        .unwrap();
    fs::write(cache.record_path(&key(5)), b"junk").unwrap();
    let stray = cache.dir().join("records").join("not-a-key");
    fs::write(&stray, b"?").unwrap();

    assert_eq!(cache.list().unwrap().len(), 4);
    let mut want = vec![a.descriptor.digest, b.descriptor.digest];
    want.sort();
    assert_eq!(cache.roots().unwrap(), want, "unique layer digests, sorted");
    assert!(!stray.exists());
    assert!(!cache.record_path(&key(5)).exists());
}

#[test]
fn concurrent_puts_and_gets_never_see_a_torn_record() {
    let (dir, _cache) = cache();
    let root = Arc::new(dir.path().to_path_buf());
    let shared = key(0);
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let root = Arc::clone(&root);
            let shared = shared.clone();
            std::thread::spawn(move || {
                // Each thread opens its own handle, as separate processes would.
                let cache = CacheStore::open(root.as_path()).unwrap();
                let own = layer(&cache, &format!("thread {t}"));
                for i in 0..50u32 {
                    let rec = CacheRecord::new(Some(own.clone()), history(&format!("{t}/{i}")));
                    cache.put(&shared, &rec).unwrap();
                    cache.put(&key(1000 + t * 100 + i), &rec).unwrap();
                    let got = cache.get(&shared).expect("a whole record is always there");
                    let by = got.history.created_by.unwrap();
                    assert!(by.contains('/'), "{by}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let cache = CacheStore::open(root.as_path()).unwrap();
    assert_eq!(cache.list().unwrap().len(), 1 + 8 * 50);
    let tmp = fs::read_dir(cache.dir().join("tmp")).unwrap().count();
    assert_eq!(tmp, 0, "no temp files left behind");
}

#[test]
fn secrets_are_absent_from_record_files() {
    let (_dir, cache) = cache();
    let secret_id = "npm_token_id_7f3a";
    let secret_target = "/run/secrets/npm-target-9c2e";
    let mount = Mount::parse(&format!(
        "type=secret,id={secret_id},target={secret_target}"
    ))
    .unwrap();
    let root = CacheKey::root(None, &linux());
    let k = CacheKey::builder(&root)
        .instruction("RUN npm ci")
        .build_arg("HTTP_PROXY", "http://user:hunter2@proxy:3128")
        .mount(&mount)
        .finish();
    cache
        .put(&k, &CacheRecord::new(None, history("RUN npm ci")))
        .unwrap();
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(cache.dir()) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            files.push(fs::read(entry.path()).unwrap());
        }
    }
    assert!(!files.is_empty());
    for bytes in files {
        let text = String::from_utf8_lossy(&bytes);
        for needle in [secret_id, secret_target, "hunter2", "HTTP_PROXY"] {
            assert!(!text.contains(needle), "{needle} leaked into {text}");
        }
    }
}

#[test]
fn leftover_temp_files_are_cleaned_on_open() {
    let (dir, cache) = cache();
    let tmp = cache.dir().join("tmp");
    let old = tmp.join("abandoned.1.0");
    let fresh = tmp.join("in-flight.2.0");
    fs::write(&old, b"half").unwrap();
    fs::write(&fresh, b"half").unwrap();
    let f = fs::File::options().write(true).open(&old).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(2 * 3600))
        .unwrap();
    CacheStore::open(dir.path()).unwrap();
    assert!(!old.exists(), "stale temp file removed");
    assert!(fresh.exists(), "a live writer's file is left alone");
}
