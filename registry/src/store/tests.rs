//! Store behaviour: tags, lookup, gc, fsck, concurrency.

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use super::testing::{make_image, make_image_for, make_index};
use super::*;
use crate::media_types::Compression;
use crate::reference::Reference;
use crate::Platform;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

#[test]
fn tag_resolve_untag_round_trip() {
    let (dir, store) = store();
    let img = make_image(&store, "a", 2, Compression::Gzip).unwrap();
    store.tag(&r("app:v1"), &img).unwrap();
    let got = store.resolve(&r("docker.io/library/app:v1")).unwrap();
    // What callers get back is the plain descriptor; the names live in index.json.
    assert_eq!(got, img);
    let index = store.read_index().unwrap();
    assert_eq!(index.schema_version, 2);
    let entry = &index.manifests[0];
    assert_eq!(
        entry.annotation(REF_NAME_ANNOTATION),
        Some("docker.io/library/app:v1")
    );
    assert_eq!(
        entry.annotation(CONTAINERD_NAME_ANNOTATION),
        Some("docker.io/library/app:v1")
    );
    assert!(fs::read_to_string(dir.path().join("index.json")).is_ok());
    assert_eq!(store.list().unwrap().len(), 1);
    assert_eq!(store.untag(&r("app:v1")).unwrap().digest, img.digest);
    assert!(matches!(
        store.resolve(&r("app:v1")),
        Err(Error::ImageNotFound(_))
    ));
    assert!(matches!(
        store.untag(&r("app:v1")),
        Err(Error::ImageNotFound(_))
    ));
}

#[test]
fn retag_moves_the_tag() {
    let (_dir, store) = store();
    let a = make_image(&store, "a", 1, Compression::None).unwrap();
    let b = make_image(&store, "b", 1, Compression::None).unwrap();
    store.tag(&r("app"), &a).unwrap();
    store.tag(&r("app"), &b).unwrap();
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].1.digest, b.digest);
}

#[test]
fn tagging_a_missing_blob_is_refused() {
    let (_dir, store) = store();
    let d = crate::Descriptor::new(crate::media_types::OCI_MANIFEST, crate::Digest::of(b"x"), 1);
    assert!(matches!(
        store.tag(&r("app"), &d),
        Err(Error::BlobNotFound(_))
    ));
}

#[test]
fn lookup_by_digest_id_prefix_and_name() {
    let (_dir, store) = store();
    let a = make_image(&store, "a", 1, Compression::None).unwrap();
    let b = make_image(&store, "b", 1, Compression::None).unwrap();
    store.tag(&r("app:a"), &a).unwrap();
    store.tag(&r("app:b"), &b).unwrap();
    let id_a = crate::image::image_id(&store, &a);
    let id_b = crate::image::image_id(&store, &b);
    assert_ne!(id_a, id_b);
    assert_eq!(store.lookup("app:a").unwrap().descriptor.digest, a.digest);
    assert_eq!(store.lookup("app:a").unwrap().reference, Some(r("app:a")));
    assert_eq!(
        store.lookup(&id_a.to_string()).unwrap().descriptor.digest,
        a.digest
    );
    assert_eq!(
        store.lookup(id_b.hex()).unwrap().descriptor.digest,
        b.digest
    );
    assert_eq!(
        store.lookup(&id_b.hex()[..12]).unwrap().descriptor.digest,
        b.digest
    );
    assert_eq!(
        store
            .lookup(&a.digest.to_string())
            .unwrap()
            .descriptor
            .digest,
        a.digest
    );
    assert!(matches!(store.lookup("nope"), Err(Error::ImageNotFound(_))));
    // The one hex character both IDs share (if any) is ambiguous; find a shared prefix.
    let shared: String = id_a
        .hex()
        .chars()
        .zip(id_b.hex().chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect();
    if !shared.is_empty() {
        assert!(store.lookup(&shared).is_err());
    }
    // By digest reference.
    let by_digest = Reference::parse(&format!("app@{}", a.digest)).unwrap();
    assert_eq!(store.resolve(&by_digest).unwrap().digest, a.digest);
}

#[test]
fn image_view_resolves_an_index_to_the_platform() {
    let (_dir, store) = store();
    let amd: Platform = "linux/amd64".parse().unwrap();
    let arm: Platform = "linux/arm64/v8".parse().unwrap();
    let m1 = make_image_for(&store, "x", 1, Compression::Gzip, &amd).unwrap();
    let m2 = make_image_for(&store, "y", 2, Compression::Gzip, &arm).unwrap();
    let idx = make_index(
        &store,
        &[(m1.clone(), amd.clone()), (m2.clone(), arm.clone())],
    )
    .unwrap();
    store.tag(&r("multi"), &idx).unwrap();
    let img = crate::image::LocalImage::open_ref(&store, &r("multi"), &arm).unwrap();
    assert_eq!(img.manifest_descriptor.digest, m2.digest);
    assert_eq!(img.layers().len(), 2);
    assert_eq!(img.diff_ids().len(), 2);
    assert_eq!(img.top_digest(), &idx.digest);
    let err = crate::image::LocalImage::open(&store, &idx, &"linux/s390x".parse().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("linux/s390x") && err.contains("linux/amd64"),
        "{err}"
    );
}

#[test]
fn image_view_rejects_a_corrupt_config() {
    let (_dir, store) = store();
    let m = make_image(&store, "a", 1, Compression::None).unwrap();
    let img = crate::image::LocalImage::open(&store, &m, &Platform::host()).unwrap();
    fs::write(store.blob_path(img.id()), b"{}").unwrap();
    assert!(matches!(
        crate::image::LocalImage::open(&store, &m, &Platform::host()),
        Err(Error::DigestMismatch { .. })
    ));
}

#[test]
fn gc_keeps_tagged_and_rooted_graphs_and_removes_the_rest() {
    let (_dir, store) = store();
    let kept = make_image(&store, "kept", 2, Compression::Gzip).unwrap();
    let rooted = make_image(&store, "rooted", 1, Compression::Gzip).unwrap();
    let dropped = make_image(&store, "dropped", 2, Compression::Gzip).unwrap();
    let loose = store.put_blob(b"cache blob").unwrap();
    store.tag(&r("kept"), &kept).unwrap();
    let before = store.all_blobs().unwrap().len();
    // A young store: nothing goes within the grace period.
    let report = store.gc(&[rooted.digest.clone(), loose.clone()]).unwrap();
    assert!(report.removed.is_empty());
    assert_eq!(report.spared, 4);
    let report = store
        .gc_with_grace(&[rooted.digest.clone(), loose.clone()], Duration::ZERO)
        .unwrap();
    // dropped: manifest + config + 2 layers.
    assert_eq!(report.removed.len(), 4, "{report:?}");
    assert!(report.removed.contains(&dropped.digest));
    assert_eq!(store.all_blobs().unwrap().len(), before - 4);
    for img in [&kept, &rooted] {
        crate::image::LocalImage::open(&store, img, &Platform::host()).unwrap();
    }
    assert!(store.has_blob(&loose));
    assert!(store.fsck().unwrap().is_ok());
}

#[test]
fn gc_refuses_to_guess_past_a_corrupt_manifest() {
    let (_dir, store) = store();
    let m = make_image(&store, "a", 1, Compression::None).unwrap();
    store.tag(&r("a"), &m).unwrap();
    fs::write(store.blob_path(&m.digest), b"garbage").unwrap();
    assert!(store.gc_with_grace(&[], Duration::ZERO).is_err());
    assert_eq!(store.all_blobs().unwrap().len(), 3);
}

#[test]
fn fsck_reports_corrupt_and_missing_blobs() {
    let (_dir, store) = store();
    let m = make_image(&store, "a", 2, Compression::Gzip).unwrap();
    store.tag(&r("a"), &m).unwrap();
    assert!(store.fsck().unwrap().is_ok());
    let img = crate::image::LocalImage::open(&store, &m, &Platform::host()).unwrap();
    let l0 = img.layers()[0].digest.clone();
    let l1 = img.layers()[1].digest.clone();
    fs::write(store.blob_path(&l0), b"bit rot").unwrap();
    fs::remove_file(store.blob_path(&l1)).unwrap();
    let report = store.fsck().unwrap();
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    assert!(report
        .problems
        .iter()
        .any(|p| matches!(p, FsckProblem::CorruptBlob { digest, .. } if digest == &l0)));
    assert!(report.problems.iter().any(|p| matches!(
        p,
        FsckProblem::MissingBlob { digest, needed_by } if digest == &l1 && needed_by.contains("manifest")
    )));
}

#[test]
fn threads_racing_tags_lose_none() {
    let (_dir, store) = store();
    let img = make_image(&store, "a", 1, Compression::None).unwrap();
    std::thread::scope(|s| {
        for t in 0..8 {
            let store = store.clone();
            let img = img.clone();
            s.spawn(move || {
                for i in 0..10 {
                    store.tag(&r(&format!("app:t{t}-{i}")), &img).unwrap();
                }
            });
        }
    });
    let tags: BTreeSet<String> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|(r, _)| r.familiar())
        .collect();
    assert_eq!(tags.len(), 80);
}

#[test]
fn untagged_entries_survive_gc_and_are_not_listed() {
    let (_dir, store) = store();
    let m = make_image(&store, "a", 1, Compression::None).unwrap();
    store.add_untagged(&m).unwrap();
    assert!(store.list().unwrap().is_empty());
    assert_eq!(store.list_all().unwrap().len(), 1);
    assert!(store
        .gc_with_grace(&[], Duration::ZERO)
        .unwrap()
        .removed
        .is_empty());
    // Tagging it replaces the dangling entry.
    store.tag(&r("a"), &m).unwrap();
    assert_eq!(store.list_all().unwrap().len(), 1);
}

#[test]
fn an_oversized_manifest_is_refused_not_read() {
    let (_dir, store) = store();
    let big = vec![b' '; (walk::MAX_MANIFEST_SIZE + 1) as usize];
    let digest = store.put_blob(&big).unwrap();
    let desc = crate::Descriptor::new(crate::media_types::OCI_MANIFEST, digest, big.len() as u64);
    let err = crate::image::LocalImage::open(&store, &desc, &Platform::host())
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than"), "{err}");
    store.tag(&r("big"), &desc).unwrap();
    let report = store.fsck().unwrap();
    assert!(matches!(
        report.problems.as_slice(),
        [FsckProblem::InvalidManifest { .. }]
    ));
}

#[test]
fn gc_racing_tags_never_breaks_a_tagged_image() {
    let (_dir, store) = store();
    let images: Vec<_> = (0..4)
        .map(|i| make_image(&store, &format!("img{i}"), 2, Compression::Gzip).unwrap())
        .collect();
    // One image is tagged up front; the others get tagged while gc runs (with the default
    // grace period, which protects the freshly written, not yet tagged blobs).
    store.tag(&r("first"), &images[0]).unwrap();
    std::thread::scope(|s| {
        let gc_store = store.clone();
        s.spawn(move || {
            for _ in 0..10 {
                gc_store.gc(&[]).unwrap();
            }
        });
        for (i, img) in images.iter().enumerate().skip(1) {
            let store = store.clone();
            s.spawn(move || store.tag(&r(&format!("late:{i}")), img).unwrap());
        }
    });
    assert_eq!(store.list().unwrap().len(), 4);
    assert!(store.fsck().unwrap().is_ok());
    for img in &images {
        crate::image::LocalImage::open(&store, img, &Platform::host()).unwrap();
    }
}

/// An unchanged rebuild re-tags its image: that must not rewrite (and fsync) index.json.
#[test]
fn retagging_the_same_digest_writes_nothing() {
    use std::os::unix::fs::MetadataExt;
    let (_dir, store) = store();
    let d = make_image(&store, "same", 1, Compression::Gzip).unwrap();
    store.tag(&r("app:1"), &d).unwrap();
    let before = fs::metadata(store.root().join("index.json")).unwrap();
    store.tag(&r("app:1"), &d).unwrap();
    let after = fs::metadata(store.root().join("index.json")).unwrap();
    assert_eq!(before.ino(), after.ino(), "index.json was replaced");
    // A different digest under the same name is a real change.
    let other = make_image(&store, "other", 1, Compression::Gzip).unwrap();
    store.tag(&r("app:1"), &other).unwrap();
    assert_eq!(store.resolve(&r("app:1")).unwrap().digest, other.digest);
}
