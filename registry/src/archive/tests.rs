//! Archive round trips, hostile input, and interop with skopeo and umoci.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::*;
use crate::descriptor::Platform;
use crate::error::Error;
use crate::image::LocalImage;
use crate::media_types::Compression;
use crate::reference::Reference;
use crate::store::testing::{layer_tar, make_image};
use crate::store::Store;

fn new_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    (dir, store)
}

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn save_to(store: &Store, tags: &[&str], seed: &str, c: Compression, path: &Path) -> LocalImage {
    let desc = make_image(store, seed, 2, c).unwrap();
    let image = LocalImage::open(store, &desc, &Platform::host()).unwrap();
    let tags: Vec<Reference> = tags.iter().map(|t| r(t)).collect();
    for t in &tags {
        store.tag(t, &desc).unwrap();
    }
    let f = fs::File::create(path).unwrap();
    save(
        store,
        &[SaveImage {
            image: image.clone(),
            tags,
        }],
        f,
    )
    .unwrap();
    image
}

/// A tool the test needs: missing is a failure under CI, a printed skip elsewhere.
fn tool(name: &str) -> bool {
    let found = Command::new(name).arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is required under CI"
        );
        eprintln!("note: {name} not installed; skipping");
    }
    found
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn save_then_load_round_trips_for_every_compression() {
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let (dir, src) = new_store();
        let file = dir.path().join("img.tar");
        let image = save_to(&src, &["app:v1", "localhost:5000/x/app:v2"], "rt", c, &file);
        let (_d2, dst) = new_store();
        let loaded = load(&dst, fs::File::open(&file).unwrap()).unwrap();
        assert_eq!(loaded.len(), 1, "{c:?}");
        assert_eq!(&loaded[0].id, image.id());
        assert_eq!(
            loaded[0].tags,
            vec![r("app:v1"), r("localhost:5000/x/app:v2")]
        );
        let back =
            LocalImage::open_ref(&dst, &r("localhost:5000/x/app:v2"), &Platform::host()).unwrap();
        assert_eq!(back.config_bytes, image.config_bytes);
        assert_eq!(back.diff_ids(), image.diff_ids());
        assert!(dst.fsck().unwrap().is_ok());
    }
}

#[test]
fn compressed_archives_load() {
    let (dir, src) = new_store();
    let file = dir.path().join("img.tar");
    let image = save_to(&src, &["app"], "cz", Compression::None, &file);
    let plain = fs::read(&file).unwrap();
    for c in [Compression::Gzip, Compression::Zstd] {
        let (_d, dst) = new_store();
        let packed = crate::store::testing::compress(&plain, c);
        let loaded = load(&dst, &packed[..]).unwrap();
        assert_eq!(&loaded[0].id, image.id(), "{c:?}");
    }
}

#[test]
fn saving_two_names_of_one_image_writes_one_entry() {
    let (dir, store) = new_store();
    let desc = make_image(&store, "two", 1, Compression::Gzip).unwrap();
    let image = LocalImage::open(&store, &desc, &Platform::host()).unwrap();
    let file = dir.path().join("two.tar");
    let tags = vec![r("a:1"), r("b:2")];
    save(
        &store,
        &[SaveImage { image, tags }],
        fs::File::create(&file).unwrap(),
    )
    .unwrap();
    let (_d2, dst) = new_store();
    let loaded = load(&dst, fs::File::open(&file).unwrap()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].tags, vec![r("a:1"), r("b:2")]);
}

#[test]
fn saved_archive_has_docker_and_oci_metadata() {
    let (dir, store) = new_store();
    let file = dir.path().join("img.tar");
    let image = save_to(&store, &["busybox"], "meta", Compression::Gzip, &file);
    let mut names = Vec::new();
    let mut manifest_json = String::new();
    let mut ar = tar::Archive::new(fs::File::open(&file).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        if p == "manifest.json" {
            std::io::Read::read_to_string(&mut e, &mut manifest_json).unwrap();
        }
        names.push(p);
    }
    for want in ["oci-layout", "index.json", "manifest.json", "repositories"] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    let v: serde_json::Value = serde_json::from_str(&manifest_json).unwrap();
    assert_eq!(v[0]["RepoTags"][0], "busybox:latest");
    assert_eq!(v[0]["Config"], format!("blobs/sha256/{}", image.id().hex()));
    // Layers are the uncompressed diffs.
    assert_eq!(
        v[0]["Layers"][1],
        format!("blobs/sha256/{}", image.diff_ids()[1].hex())
    );
}

#[test]
fn tampered_blob_in_archive_is_rejected_and_nothing_is_tagged() {
    let (dir, src) = new_store();
    let file = dir.path().join("img.tar");
    let image = save_to(&src, &["app"], "bad", Compression::None, &file);
    // Flip a byte inside the first layer's content (its file name is known).
    let mut bytes = fs::read(&file).unwrap();
    let needle = b"bad layer 0";
    let pos = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[pos] = b'B';
    let tampered = dir.path().join("bad.tar");
    fs::write(&tampered, &bytes).unwrap();
    let (_d2, dst) = new_store();
    let err = load(&dst, fs::File::open(&tampered).unwrap()).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(image.diff_ids()[0].hex()), "{err}");
    assert!(dst.list().unwrap().is_empty());
    assert!(!dst.has_blob(&image.diff_ids()[0]));
}

#[test]
fn classic_archive_with_symlinked_layer_loads() {
    // The layout `docker save` wrote before Docker 25: <id>/layer.tar, <config>.json, and a
    // symlink for a layer shared by two entries.
    let (dir, store) = new_store();
    let layer = layer_tar(&[("etc/hello", b"hi\n")]);
    let diff_id = crate::Digest::of(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}","{diff_id}"]}}}}"#
    );
    let config_hex = crate::Digest::of(config.as_bytes()).hex().to_string();
    let manifest = format!(
        r#"[{{"Config":"{config_hex}.json","RepoTags":["old:style"],"Layers":["aaa/layer.tar","bbb/layer.tar"]}}]"#
    );
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, data).unwrap();
    };
    add("aaa/layer.tar", &layer);
    add(&format!("{config_hex}.json"), config.as_bytes());
    add("manifest.json", manifest.as_bytes());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "bbb/layer.tar", "../aaa/layer.tar")
        .unwrap();
    let bytes = b.into_inner().unwrap();
    let file = dir.path().join("classic.tar");
    fs::write(&file, bytes).unwrap();
    let loaded = load(&store, fs::File::open(&file).unwrap()).unwrap();
    assert_eq!(loaded[0].tags, vec![r("old:style")]);
    let img =
        LocalImage::open_ref(&store, &r("old:style"), &"linux/amd64".parse().unwrap()).unwrap();
    assert_eq!(img.layers().len(), 2);
    assert_eq!(img.layers()[1].digest, diff_id);
}

#[test]
fn archive_path_escaping_the_root_is_refused() {
    let (_dir, store) = new_store();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    // tar::Builder refuses `..` in paths, so write the name into the header directly.
    h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    let bytes = b.into_inner().unwrap();
    let err = load(&store, &bytes[..]).unwrap_err().to_string();
    assert!(err.contains("climbs out"), "{err}");
}

#[test]
fn oci_layout_export_then_load_keeps_digests() {
    let (dir, store) = new_store();
    let desc = make_image(&store, "oci", 2, Compression::Gzip).unwrap();
    let img = OciImage {
        descriptor: desc.clone(),
        tags: vec![r("app:v1")],
    };
    let tarfile = dir.path().join("oci.tar");
    write_oci_archive(
        &store,
        std::slice::from_ref(&img),
        fs::File::create(&tarfile).unwrap(),
    )
    .unwrap();
    let (_d2, dst) = new_store();
    let loaded = load(&dst, fs::File::open(&tarfile).unwrap()).unwrap();
    assert_eq!(loaded[0].descriptor.digest, desc.digest);
    assert_eq!(loaded[0].tags, vec![r("app:v1")]);
    let layout = dir.path().join("layout");
    export_oci_layout(&store, &[img], &layout).unwrap();
    let index = fs::read_to_string(layout.join("index.json")).unwrap();
    assert!(
        index.contains(r#""org.opencontainers.image.ref.name":"v1""#),
        "{index}"
    );
    assert!(layout
        .join(format!("blobs/sha256/{}", desc.digest.hex()))
        .is_file());
}

#[test]
fn skopeo_reads_what_kiln_saves_and_kiln_loads_what_skopeo_writes() {
    if !tool("skopeo") {
        return;
    }
    let (dir, store) = new_store();
    let file = dir.path().join("img.tar");
    let image = save_to(&store, &["app:v1"], "sk", Compression::Gzip, &file);
    let spec = format!("docker-archive:{}", file.display());
    let inspect = run(Command::new("skopeo").args(["inspect", &spec]));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
    let oci_dir = dir.path().join("oci");
    run(Command::new("skopeo").args(["copy", &spec, &format!("oci:{}:v1", oci_dir.display())]));
    let back = dir.path().join("back.tar");
    run(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:v1", oci_dir.display()),
        &format!("docker-archive:{}:localhost/round:trip", back.display()),
    ]));
    let (_d2, dst) = new_store();
    let loaded = load(&dst, fs::File::open(&back).unwrap()).unwrap();
    assert_eq!(loaded[0].tags, vec![r("localhost/round:trip")]);
    let img = LocalImage::open_ref(&dst, &r("localhost/round:trip"), &Platform::host()).unwrap();
    assert_eq!(img.diff_ids(), image.diff_ids());
}

#[test]
fn umoci_unpacks_an_exported_layout() {
    if !tool("umoci") {
        return;
    }
    let (dir, store) = new_store();
    let desc = make_image(&store, "um", 2, Compression::Gzip).unwrap();
    let layout = dir.path().join("layout");
    export_oci_layout(
        &store,
        &[OciImage {
            descriptor: desc,
            tags: vec![r("app:v1")],
        }],
        &layout,
    )
    .unwrap();
    let bundle = dir.path().join("bundle");
    run(Command::new("umoci").args([
        "unpack",
        "--rootless",
        "--image",
        &format!("{}:v1", layout.display()),
        bundle.to_str().unwrap(),
    ]));
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/um/file-1.txt")).unwrap(),
        "um layer 1\n"
    );
}
