//! Interop with skopeo both ways: what kiln pushes, skopeo reads and copies; what skopeo
//! pushes (an OCI index with two platforms, zstd layers), kiln pulls with the same diff_ids.

mod support;

use std::process::Command;

use registry::media_types::Compression;
use registry::reference::Reference;
use registry::remote::{ops, pull, push};
use registry::spec::{ImageConfig, Manifest};
use registry::store::testing::{make_image, make_image_for, make_index};
use registry::store::Store;
use registry::{Descriptor, Platform};

const SKOPEO: &str = "/usr/bin/skopeo";

fn skopeo(args: &[&str]) -> String {
    let out = Command::new(SKOPEO)
        .args(args)
        .output()
        .expect("skopeo runs");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn skopeo_reads_and_copies_what_kiln_pushes() {
    if !support::require(SKOPEO) {
        return;
    }
    let Some(reg) = support::RegistryServer::start() else {
        return;
    };
    let rt = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let src = Store::open(dir.path().join("store")).unwrap();
    let remote = support::remote(dir.path());
    let desc = make_image(&src, "to-skopeo", 2, Compression::Gzip).unwrap();
    let dest = Reference::parse(&format!("{}/kiln/out:v1", reg.host)).unwrap();
    rt.block_on(push::push(&remote, &src, &desc, &dest))
        .unwrap();

    let url = format!("docker://{}/kiln/out:v1", reg.host);
    let info: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &url])).unwrap();
    assert_eq!(info["Digest"], desc.digest.to_string());
    assert_eq!(info["Layers"].as_array().unwrap().len(), 2);

    let oci = dir.path().join("oci-out");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &url,
        &format!("oci:{}:v1", oci.display()),
    ]);
    assert!(oci.join("index.json").is_file());
}

#[test]
fn buildah_pulls_what_kiln_pushes() {
    const BUILDAH: &str = "/usr/bin/buildah";
    if !support::require(BUILDAH) {
        return;
    }
    let Some(reg) = support::RegistryServer::start() else {
        return;
    };
    let rt = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let src = Store::open(dir.path().join("store")).unwrap();
    let remote = support::remote(dir.path());
    let desc = make_image(&src, "to-buildah", 2, Compression::Zstd).unwrap();
    let dest = Reference::parse(&format!("{}/kiln/buildah:v1", reg.host)).unwrap();
    rt.block_on(push::push(&remote, &src, &desc, &dest))
        .unwrap();
    // A private containers storage, so the test leaves no global state behind.
    let root = dir.path().join("buildah-root");
    let runroot = dir.path().join("buildah-run");
    let out = Command::new(BUILDAH)
        .arg("--root")
        .arg(&root)
        .arg("--runroot")
        .arg(&runroot)
        .args([
            "--storage-driver",
            "vfs",
            "pull",
            "--tls-verify=false",
            "-q",
        ])
        .arg(format!("docker://{}/kiln/buildah:v1", reg.host))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "buildah pull failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config_digest = {
        let m: Manifest = serde_json::from_slice(&src.read_blob(&desc.digest).unwrap()).unwrap();
        m.config.digest
    };
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        format!("sha256:{id}"),
        config_digest.to_string(),
        "image ID is the config digest"
    );
}

/// Writes `desc` into a plain OCI layout at `path` under tag `tag` (skopeo's `oci:` form).
fn oci_layout(store: &Store, desc: &Descriptor, tag: &str) -> std::path::PathBuf {
    let mut d = desc.clone();
    d.annotations = Some(
        [(
            "org.opencontainers.image.ref.name".to_string(),
            tag.to_string(),
        )]
        .into(),
    );
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [d]});
    std::fs::write(
        store.root().join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    store.root().to_path_buf()
}

#[test]
fn kiln_pulls_a_two_platform_zstd_index_pushed_by_skopeo() {
    if !support::require(SKOPEO) {
        return;
    }
    let Some(reg) = support::RegistryServer::start() else {
        return;
    };
    let rt = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let layout = Store::open(dir.path().join("layout")).unwrap();
    let amd: Platform = "linux/amd64".parse().unwrap();
    let arm: Platform = "linux/arm64".parse().unwrap();
    let a = make_image_for(&layout, "sk-amd", 2, Compression::Gzip, &amd).unwrap();
    let b = make_image_for(&layout, "sk-arm", 1, Compression::Gzip, &arm).unwrap();
    let index = make_index(&layout, &[(a, amd.clone()), (b, arm.clone())]).unwrap();
    let path = oci_layout(&layout, &index, "multi");

    let url = format!("docker://{}/skopeo/multi:1", reg.host);
    skopeo(&[
        "copy",
        "--multi-arch",
        "all",
        "--dest-tls-verify=false",
        "--dest-compress-format",
        "zstd",
        &format!("oci:{}:multi", path.display()),
        &url,
    ]);

    let remote = support::remote(dir.path());
    let r = Reference::parse(&format!("{}/skopeo/multi:1", reg.host)).unwrap();
    for (platform, arch) in [(&amd, "amd64"), (&arm, "arm64")] {
        let dst = Store::open(dir.path().join(format!("pull-{arch}"))).unwrap();
        let p = rt
            .block_on(pull::pull(&remote, &dst, &r, platform))
            .unwrap();
        let manifest: Manifest =
            serde_json::from_slice(&dst.read_blob(&p.manifest.digest).unwrap()).unwrap();
        assert!(
            manifest
                .layers
                .iter()
                .all(|l| l.media_type.ends_with("zstd")),
            "skopeo recompressed to zstd: {:?}",
            manifest.layers
        );
        let config = ImageConfig::parse(&dst.read_blob(&manifest.config.digest).unwrap()).unwrap();
        let skopeo_config: serde_json::Value = serde_json::from_str(&skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--override-arch",
            arch,
            "--config",
            &url,
        ]))
        .unwrap();
        let theirs: Vec<String> = skopeo_config["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let ours: Vec<String> = config
            .rootfs
            .diff_ids
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(ours, theirs, "{arch}");
        let inspected = rt.block_on(ops::inspect(&remote, &r, platform)).unwrap();
        assert_eq!(inspected.diff_ids, config.rootfs.diff_ids);
        assert!(dst.fsck().unwrap().is_ok());
    }
}
