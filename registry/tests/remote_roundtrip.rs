//! Push and pull against the real `docker-registry`, anonymous: round trips, indexes,
//! mounts, tags, delete, inspect and registry-to-registry copy.

mod support;

use registry::media_types::Compression;
use registry::reference::Reference;
use registry::remote::{ops, pull, push};
use registry::store::testing::{make_image, make_image_for, make_index};
use registry::store::Store;
use registry::{Error, Platform};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    (dir, store)
}

#[test]
fn push_then_pull_round_trips_an_image_byte_for_byte() {
    let Some(reg) = support::RegistryServer::start() else {
        return;
    };
    let rt = support::runtime();
    let (dir, src) = store();
    let remote = support::remote(dir.path());
    let desc = make_image(&src, "round", 3, Compression::Gzip).unwrap();
    let dest = Reference::parse(&format!("{}/kiln/app:v1", reg.host)).unwrap();

    let pushed = rt
        .block_on(push::push(&remote, &src, &desc, &dest))
        .unwrap();
    assert_eq!(pushed.digest.as_ref(), Some(&desc.digest));
    assert_eq!(pushed.uploaded, 4, "3 layers + config");

    // A second push finds everything in place.
    let again = rt
        .block_on(push::push(&remote, &src, &desc, &dest))
        .unwrap();
    assert_eq!((again.uploaded, again.existed), (0, 4));

    let (_d2, dst) = store();
    let pulled = rt
        .block_on(pull::pull(&remote, &dst, &dest, &Platform::host()))
        .unwrap();
    assert_eq!(pulled.manifest.digest, desc.digest);
    assert_eq!(dst.resolve(&dest).unwrap().digest, desc.digest);
    let manifest = dst.read_blob(&desc.digest).unwrap();
    assert_eq!(manifest, src.read_blob(&desc.digest).unwrap());
    assert!(dst.fsck().unwrap().is_ok());

    // Pull by digest verifies and stores the same manifest, untagged.
    let by_digest = dest.name_only().with_digest(desc.digest.clone());
    let (_d3, dst3) = store();
    let p = rt
        .block_on(pull::pull(&remote, &dst3, &by_digest, &Platform::host()))
        .unwrap();
    assert_eq!(p.manifest.digest, desc.digest);
}

#[test]
fn index_with_two_platforms_pushes_and_pulls_the_requested_one() {
    let Some(reg) = support::RegistryServer::start() else {
        return;
    };
    let rt = support::runtime();
    let (dir, src) = store();
    let remote = support::remote(dir.path());
    let amd: Platform = "linux/amd64".parse().unwrap();
    let arm: Platform = "linux/arm64/v8".parse().unwrap();
    let a = make_image_for(&src, "amd", 1, Compression::Zstd, &amd).unwrap();
    let b = make_image_for(&src, "arm", 2, Compression::Gzip, &arm).unwrap();
    let index = make_index(&src, &[(a.clone(), amd.clone()), (b.clone(), arm.clone())]).unwrap();
    let dest = Reference::parse(&format!("{}/multi:latest", reg.host)).unwrap();
    let pushed = rt
        .block_on(push::push(&remote, &src, &index, &dest))
        .unwrap();
    assert_eq!(pushed.digest.as_ref(), Some(&index.digest));

    let (_d, dst) = store();
    let p = rt.block_on(pull::pull(&remote, &dst, &dest, &arm)).unwrap();
    assert_eq!(p.manifest.digest, b.digest);
    assert_eq!(p.index.as_ref().unwrap().digest, index.digest);
    assert_eq!(p.digest(), &index.digest);
    assert!(
        !dst.has_blob(&a.digest),
        "other platform's manifest is not pulled"
    );

    let s390x: Platform = "linux/s390x".parse().unwrap();
    let err = rt
        .block_on(pull::pull(&remote, &dst, &dest, &s390x))
        .unwrap_err();
    assert!(matches!(err, Error::NoMatchingPlatform { .. }), "{err}");

    let img = rt.block_on(ops::inspect(&remote, &dest, &amd)).unwrap();
    assert_eq!(img.manifest_digest, a.digest);
    assert_eq!(img.digest, index.digest);
    assert_eq!(img.architecture, "amd64");
    assert_eq!(img.diff_ids.len(), 1);
    let raw = rt.block_on(ops::raw_manifest(&remote, &dest)).unwrap();
    assert_eq!(raw.bytes, src.read_blob(&index.digest).unwrap());
}

#[test]
fn push_to_a_second_repository_mounts_known_blobs() {
    let Some(reg) = support::RegistryServer::start() else {
        return;
    };
    let rt = support::runtime();
    let (dir, src) = store();
    let remote = support::remote(dir.path());
    let desc = make_image(&src, "mount", 2, Compression::Gzip).unwrap();
    let first = Reference::parse(&format!("{}/team/base:1", reg.host)).unwrap();
    let second = Reference::parse(&format!("{}/team/app:1", reg.host)).unwrap();
    rt.block_on(push::push(&remote, &src, &desc, &first))
        .unwrap();
    let r = rt
        .block_on(push::push(&remote, &src, &desc, &second))
        .unwrap();
    assert_eq!((r.mounted, r.uploaded), (3, 0), "{r:?}");
    let img = rt
        .block_on(ops::inspect(&remote, &second, &Platform::host()))
        .unwrap();
    assert_eq!(img.manifest_digest, desc.digest);
}

#[test]
fn tags_paginate_and_delete_removes_a_manifest() {
    let Some(reg) = support::RegistryServer::start() else {
        return;
    };
    let rt = support::runtime();
    let (dir, src) = store();
    let remote = support::remote(dir.path());
    let desc = make_image(&src, "tags", 1, Compression::Gzip).unwrap();
    for t in ["a", "b", "c"] {
        let r = Reference::parse(&format!("{}/tagged:{t}", reg.host)).unwrap();
        rt.block_on(push::push(&remote, &src, &desc, &r)).unwrap();
    }
    let repo = Reference::parse(&format!("{}/tagged", reg.host)).unwrap();
    let mut tags = rt.block_on(ops::tags(&remote, &repo)).unwrap();
    tags.sort();
    assert_eq!(tags, ["a", "b", "c"]);

    let a = Reference::parse(&format!("{}/tagged:a", reg.host)).unwrap();
    let deleted = rt.block_on(ops::delete(&remote, &a)).unwrap();
    assert_eq!(deleted, desc.digest);
    let err = rt
        .block_on(ops::inspect(&remote, &a, &Platform::host()))
        .unwrap_err();
    assert!(matches!(err, Error::RemoteNotFound { .. }), "{err}");
    assert!(err.to_string().contains("tagged:a"), "{err}");
}

#[test]
fn missing_image_error_names_the_reference() {
    let Some(reg) = support::RegistryServer::start() else {
        return;
    };
    let rt = support::runtime();
    let (dir, dst) = store();
    let remote = support::remote(dir.path());
    let r = Reference::parse(&format!("{}/nope:v9", reg.host)).unwrap();
    let err = rt
        .block_on(pull::pull(&remote, &dst, &r, &Platform::host()))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("nope:v9") && msg.contains("not found"),
        "{msg}"
    );
}

#[test]
fn registry_to_registry_copy_streams_blobs_and_keeps_digests() {
    let (Some(a), Some(b)) = (
        support::RegistryServer::start(),
        support::RegistryServer::start(),
    ) else {
        return;
    };
    let rt = support::runtime();
    let (dir, src) = store();
    let remote = support::remote(dir.path());
    let amd: Platform = "linux/amd64".parse().unwrap();
    let arm: Platform = "linux/arm64".parse().unwrap();
    let x = make_image_for(&src, "cx", 2, Compression::Gzip, &amd).unwrap();
    let y = make_image_for(&src, "cy", 1, Compression::Gzip, &arm).unwrap();
    let index = make_index(&src, &[(x, amd.clone()), (y, arm)]).unwrap();
    let from = Reference::parse(&format!("{}/src/img:1", a.host)).unwrap();
    rt.block_on(push::push(&remote, &src, &index, &from))
        .unwrap();

    let to = Reference::parse(&format!("{}/dst/img:2", b.host)).unwrap();
    let r = rt
        .block_on(ops::copy_remote(&remote, &from, &to, &amd, true))
        .unwrap();
    assert_eq!(r.digest.as_ref(), Some(&index.digest));
    assert_eq!(r.uploaded, 5);

    // Same registry: blobs are mounted, not uploaded.
    let same = Reference::parse(&format!("{}/other/img:3", a.host)).unwrap();
    let r = rt
        .block_on(ops::copy_remote(&remote, &from, &same, &amd, true))
        .unwrap();
    assert_eq!((r.uploaded, r.mounted), (0, 5), "{r:?}");
    let (_d, dst) = store();
    rt.block_on(pull::pull(&remote, &dst, &same, &amd)).unwrap();
    assert!(dst.fsck().unwrap().is_ok());
}
