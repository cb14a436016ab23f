//! Several kiln processes sharing one cache: puts and gets from separate processes, and the
//! lease that keeps prune away from running builds.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

use builder::cache::{CacheKey, CacheRecord, CacheStore, LayerRef, PruneOptions};
use registry::media_types::Compression;
use registry::spec::History;
use registry::store::testing::write_layer;
use rustix::fs::{flock, FlockOperation};

const CHILD_ENV: &str = "KILN_CACHE_TEST_CHILD_ROOT";
const CHILDREN: u32 = 4;
const ROUNDS: u32 = 60;

fn key(n: u32) -> CacheKey {
    let root = CacheKey::root(None, &"linux/amd64".parse().unwrap());
    CacheKey::builder(&root)
        .instruction(format!("RUN {n}"))
        .finish()
}

fn record(cache: &CacheStore, who: u32, round: u32) -> CacheRecord {
    let (descriptor, diff_id) = write_layer(
        cache.store(),
        &[("f", format!("child {who}").as_bytes())],
        Compression::Gzip,
    )
    .unwrap();
    let history = History {
        created_by: Some(format!("child {who} round {round}")),
        ..History::default()
    };
    CacheRecord::new(
        Some(LayerRef {
            descriptor,
            diff_id,
        }),
        history,
    )
}

/// The body of a child process (run by `concurrent_processes_share_one_cache`); a no-op when
/// this test binary is run normally.
#[test]
fn child_process_body() {
    let Some(root) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let who: u32 = std::env::var("KILN_CACHE_TEST_CHILD_ID")
        .unwrap()
        .parse()
        .unwrap();
    let cache = CacheStore::open(Path::new(&root)).unwrap();
    let _lease = cache.lease().unwrap();
    for round in 0..ROUNDS {
        let rec = record(&cache, who, round);
        cache.put(&key(0), &rec).unwrap();
        cache.put(&key(1 + who * 1000 + round), &rec).unwrap();
        let got = cache
            .get(&key(0))
            .expect("the shared record is always whole");
        let by = got.history.created_by.unwrap();
        assert!(by.starts_with("child "), "{by}");
    }
}

#[test]
fn concurrent_processes_share_one_cache() {
    let dir = tempfile::tempdir().unwrap();
    CacheStore::open(dir.path()).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..CHILDREN)
        .map(|who| {
            Command::new(&exe)
                .args(["--exact", "child_process_body", "--test-threads=1"])
                .env(CHILD_ENV, dir.path())
                .env("KILN_CACHE_TEST_CHILD_ID", who.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a child failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let cache = CacheStore::open(dir.path()).unwrap();
    let records = cache.list().unwrap();
    assert_eq!(records.len() as u32, 1 + CHILDREN * ROUNDS);
    for (k, _) in &records {
        assert!(cache.get(k).is_some(), "{k} is whole and its layer present");
    }
    let leftovers = std::fs::read_dir(cache.dir().join("tmp")).unwrap().count();
    assert_eq!(leftovers, 0);
    // Every layer a record names is a root for the store gc.
    assert_eq!(cache.roots().unwrap().len() as u32, CHILDREN);
}

fn try_exclusive(path: &Path) -> bool {
    let f = File::options().write(true).open(path).unwrap();
    flock(&f, FlockOperation::NonBlockingLockExclusive).is_ok()
}

#[test]
fn a_lease_keeps_prune_out_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheStore::open(dir.path()).unwrap();
    let lock = cache.dir().join("lock");
    let lease = cache.lease().unwrap();
    let second = cache.lease().expect("builds share the cache");
    assert!(!try_exclusive(&lock), "prune's exclusive lock must wait");
    drop(lease);
    assert!(
        !try_exclusive(&lock),
        "one lease is enough to hold prune off"
    );
    drop(second);
    assert!(try_exclusive(&lock));
    // And prune itself runs once no lease is held.
    cache.prune(&PruneOptions::default()).unwrap();
}
