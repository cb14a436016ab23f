//! Transfers through a fault-injecting proxy: transient 500/429 and dropped connections are
//! survived; corrupt content is refused with nothing corrupt stored; mirrors fall back.

mod support;

use registry::media_types::Compression;
use registry::reference::Reference;
use registry::remote::{pull, push, Mirrors, Remote, RemoteOptions};
use registry::store::testing::{make_image, make_image_for};
use registry::store::Store;
use registry::{Error, Platform};
use support::proxy::FaultProxy;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    (dir, store)
}

/// Pushes a 3-layer image to `reg` directly and returns (manifest digest, reference via
/// the proxy).
fn seed(
    rt: &tokio::runtime::Runtime,
    reg: &support::RegistryServer,
    proxy: &FaultProxy,
    name: &str,
) -> (registry::Descriptor, Reference) {
    let (dir, src) = store();
    let remote = support::remote(dir.path());
    let desc = make_image(&src, name, 3, Compression::None).unwrap();
    let direct = Reference::parse(&format!("{}/{name}:1", reg.host)).unwrap();
    rt.block_on(push::push(&remote, &src, &desc, &direct))
        .unwrap();
    let via = Reference::parse(&format!("{}/{name}:1", proxy.host)).unwrap();
    (desc, via)
}

#[test]
fn pull_survives_500s_429s_and_dropped_connections() {
    let Some(reg) = support::RegistryServer::start() else {
        return;
    };
    let rt = support::runtime();
    let proxy = FaultProxy::start(&rt, &reg.host);
    let (desc, via) = seed(&rt, &reg, &proxy, "flaky");
    proxy.set(|f| {
        f.any_429 = 1;
        f.blob_500 = 2;
        f.blob_drop = 2;
    });
    let (dir, dst) = store();
    let remote = support::remote(dir.path());
    let p = rt
        .block_on(pull::pull(&remote, &dst, &via, &Platform::host()))
        .unwrap();
    assert_eq!(p.manifest.digest, desc.digest);
    assert!(dst.fsck().unwrap().is_ok());
    let log = proxy.log();
    assert!(
        log.iter().any(|l| l.contains("bytes=")),
        "a dropped download resumes with Range: {log:#?}"
    );
}

#[test]
fn corrupt_blobs_are_refused_and_nothing_is_stored() {
    let Some(reg) = support::RegistryServer::start() else {
        return;
    };
    let rt = support::runtime();
    let proxy = FaultProxy::start(&rt, &reg.host);
    let (desc, via) = seed(&rt, &reg, &proxy, "corrupt");
    proxy.set(|f| f.corrupt_blobs = true);
    let (dir, dst) = store();
    let remote = support::remote(dir.path());
    let err = rt
        .block_on(pull::pull(&remote, &dst, &via, &Platform::host()))
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("corrupt"),
        "names the repository: {err}"
    );
    assert!(!dst.has_blob(&desc.digest));
    assert!(dst.list().unwrap().is_empty(), "nothing tagged");
    let blobs = std::fs::read_dir(dst.root().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0, "no blob stored under a digest it did not prove");
    assert_eq!(
        std::fs::read_dir(dst.root().join("ingest"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn pull_by_digest_refuses_a_manifest_that_does_not_match() {
    let Some(reg) = support::RegistryServer::start() else {
        return;
    };
    let rt = support::runtime();
    let proxy = FaultProxy::start(&rt, &reg.host);
    let (desc, via) = seed(&rt, &reg, &proxy, "digested");
    proxy.set(|f| f.corrupt_manifests = true);
    let by_digest = via.name_only().with_digest(desc.digest.clone());
    let (dir, dst) = store();
    let remote = support::remote(dir.path());
    let err = rt
        .block_on(pull::pull(&remote, &dst, &by_digest, &Platform::host()))
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("manifest"), "{err}");
    assert!(dst.list_all().unwrap().is_empty());

    // By tag, the registry's Docker-Content-Digest header is checked too.
    let err = rt
        .block_on(pull::pull(&remote, &dst, &via, &Platform::host()))
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
}

#[test]
fn pull_of_an_unknown_digest_is_not_found() {
    let Some(reg) = support::RegistryServer::start() else {
        return;
    };
    let rt = support::runtime();
    let (dir, src) = store();
    let remote = support::remote(dir.path());
    let a = make_image(&src, "one", 1, Compression::Gzip).unwrap();
    let b = make_image(&src, "two", 1, Compression::Gzip).unwrap();
    let r = Reference::parse(&format!("{}/dig:1", reg.host)).unwrap();
    rt.block_on(push::push(&remote, &src, &a, &r)).unwrap();
    let wrong = r.name_only().with_digest(b.digest.clone());
    let (_d, dst) = store();
    let err = rt
        .block_on(pull::pull(&remote, &dst, &wrong, &Platform::host()))
        .unwrap_err();
    assert!(matches!(err, Error::RemoteNotFound { .. }), "{err}");
}

#[test]
fn push_survives_upload_faults() {
    let Some(reg) = support::RegistryServer::start() else {
        return;
    };
    let rt = support::runtime();
    let proxy = FaultProxy::start(&rt, &reg.host);
    let (dir, src) = store();
    let remote = support::remote(dir.path());
    let desc = make_image_for(&src, "up", 2, Compression::Gzip, &Platform::host()).unwrap();
    proxy.set(|f| {
        f.upload_500 = 2;
        f.upload_body_500 = 3;
        f.any_429 = 1;
    });
    let via = Reference::parse(&format!("{}/up:1", proxy.host)).unwrap();
    let pushed = rt.block_on(push::push(&remote, &src, &desc, &via)).unwrap();
    assert_eq!(pushed.digest.as_ref(), Some(&desc.digest));
    assert_eq!(
        proxy.faults.lock().unwrap().upload_body_500,
        0,
        "body faults were hit"
    );
    let direct = Reference::parse(&format!("{}/up:1", reg.host)).unwrap();
    let (_d, dst) = store();
    rt.block_on(pull::pull(&remote, &dst, &direct, &Platform::host()))
        .unwrap();
    assert!(dst.fsck().unwrap().is_ok());
}

#[test]
fn rate_limit_error_shows_headers_and_advice() {
    let Some(reg) = support::RegistryServer::start() else {
        return;
    };
    let rt = support::runtime();
    let proxy = FaultProxy::start(&rt, &reg.host);
    proxy.set(|f| f.any_429 = 100);
    let (dir, dst) = store();
    let remote = support::remote(dir.path());
    let via = Reference::parse(&format!("{}/limited:1", proxy.host)).unwrap();
    let err = rt
        .block_on(pull::pull(&remote, &dst, &via, &Platform::host()))
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::RateLimited { .. }), "{msg}");
    assert!(
        msg.contains("ratelimit-remaining") && msg.contains("mirror"),
        "{msg}"
    );
}

#[test]
fn a_failing_mirror_falls_back_to_the_registry_and_a_lying_one_cannot_change_content() {
    let Some(reg) = support::RegistryServer::start() else {
        return;
    };
    let rt = support::runtime();
    let proxy = FaultProxy::start(&rt, &reg.host);
    let (desc, _) = seed(&rt, &reg, &proxy, "mirrored");
    let direct = Reference::parse(&format!("{}/mirrored:1", reg.host)).unwrap();
    let (dir, dst) = store();
    let mut opts = RemoteOptions::isolated(support::isolated_credentials(dir.path()));
    opts.transport.retry_base = std::time::Duration::from_millis(10);
    let dead = format!("127.0.0.1:{}", support::free_port());
    opts.mirrors = Mirrors::load(
        &dir.path().join("none"),
        &dir.path().join("none"),
        &[
            format!("{}={dead}", reg.host),
            format!("{}={}", reg.host, proxy.host),
        ],
    )
    .unwrap();
    let remote = Remote::new(opts);
    // The proxy mirror serves corrupt blobs: refused, and the registry itself serves.
    proxy.set(|f| f.corrupt_blobs = true);
    let p = rt
        .block_on(pull::pull(&remote, &dst, &direct, &Platform::host()))
        .unwrap();
    assert_eq!(p.manifest.digest, desc.digest);
    assert_eq!(p.endpoint, reg.host);
    assert!(
        proxy.log().iter().any(|l| l.contains("/blobs/")),
        "mirror was tried"
    );
    assert!(dst.fsck().unwrap().is_ok());
}

/// An image with one 3 MiB layer (above the monolithic-PUT limit), built in the store.
fn large_image(store: &Store) -> registry::Descriptor {
    use registry::media_types::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};
    use registry::spec::Manifest;
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let layer: Vec<u8> = (0..3 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let l = store.put_blob(&layer).unwrap();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let c = store.put_blob(config).unwrap();
    let m = Manifest::oci(
        registry::Descriptor::new(OCI_CONFIG, c, config.len() as u64),
        vec![registry::Descriptor::new(
            OCI_LAYER_GZIP,
            l,
            layer.len() as u64,
        )],
    );
    let bytes = m.to_bytes();
    let d = store.put_blob(&bytes).unwrap();
    registry::Descriptor::new(OCI_MANIFEST, d, bytes.len() as u64)
}

#[test]
fn large_blobs_upload_in_a_patch_and_resume_after_a_drop() {
    let Some(reg) = support::RegistryServer::start() else {
        return;
    };
    let rt = support::runtime();
    let proxy = FaultProxy::start(&rt, &reg.host);
    let (dir, src) = store();
    let remote = support::remote(dir.path());
    let desc = large_image(&src);
    let via = Reference::parse(&format!("{}/large:1", proxy.host)).unwrap();
    proxy.set(|f| f.upload_body_500 = 1);
    let pushed = rt.block_on(push::push(&remote, &src, &desc, &via)).unwrap();
    assert_eq!(pushed.digest.as_ref(), Some(&desc.digest));
    assert!(
        proxy
            .log()
            .iter()
            .any(|l| l.starts_with("PATCH /v2/large/blobs/uploads/")),
        "a large blob goes through PATCH"
    );

    let bytes = src.read_blob(&desc.digest).unwrap();
    let manifest: registry::spec::Manifest = serde_json::from_slice(&bytes).unwrap();
    let layer = manifest.layers[0].digest.to_string();
    proxy.set(|f| {
        f.blob_drop = 1;
        f.drop_only = Some(layer);
    });
    let (_d, dst) = store();
    let amd: Platform = "linux/amd64".parse().unwrap();
    rt.block_on(pull::pull(&remote, &dst, &via, &amd)).unwrap();
    let log = proxy.log();
    assert!(
        log.iter().any(|l| l.contains("bytes=1572864-")),
        "resumed from the half received: {log:#?}"
    );
    assert!(dst.fsck().unwrap().is_ok());
}
