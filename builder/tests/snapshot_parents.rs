//! A foreign layer may name `a/b/file` without entries for `a/` or `a/b/`. Unpacked on its own
//! (an overlay lower dir), those directories are made implicitly and, in the merged view, hide
//! what the layers below said about them; unpacked onto the merged tree (native), the existing
//! `a` is written into. Both snapshotters must show `a` as the layer that listed it left it:
//! mode, owner and mtime.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use builder::snapshot::native::NativeSnapshotter;
use builder::snapshot::overlay::OverlaySnapshotter;
use builder::snapshot::{SnapshotView, Snapshotter};
use registry::Digest;

use common::require_root;

/// Mode, owner (uid = gid) and mtime of a tar entry or a directory in a view.
type Meta = (u32, u32, i64);

const A: Meta = (0o750, 1000, 1_234_567_890);
const B: Meta = (0o2700, 2000, 1_300_000_000);
const FILE: Meta = (0o644, 0, 1_400_000_000);

fn entry(b: &mut tar::Builder<Vec<u8>>, path: &str, kind: tar::EntryType, meta: Meta) {
    let (mode, owner, mtime) = meta;
    let data: &[u8] = if kind == tar::EntryType::Regular {
        path.as_bytes()
    } else {
        b""
    };
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(owner.into());
    h.set_gid(owner.into());
    h.set_mtime(mtime as u64);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

fn layer(entries: &[(&str, Meta)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for &(path, meta) in entries {
        let kind = if path.ends_with('/') {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        };
        entry(&mut b, path, kind, meta);
    }
    b.into_inner().unwrap()
}

/// Applies `layers` in order and returns a view of the top.
fn view(snap: &dyn Snapshotter, layers: &[Vec<u8>]) -> Box<dyn SnapshotView> {
    let mut chain = None;
    for l in layers {
        chain = Some(
            snap.apply_layer(chain.as_ref(), &Digest::of(l), &mut &l[..])
                .unwrap(),
        );
    }
    snap.view(chain.as_ref()).unwrap()
}

fn stat(root: &Path, rel: &str) -> Meta {
    let m = std::fs::symlink_metadata(root.join(rel)).unwrap();
    assert!(m.is_dir(), "{rel}");
    assert_eq!(m.uid(), m.gid(), "{rel}");
    (m.permissions().mode() & 0o7777, m.uid(), m.mtime())
}

fn snapshotters(tmp: &Path) -> [(&'static str, Box<dyn Snapshotter>); 2] {
    [
        (
            "overlay",
            Box::new(OverlaySnapshotter::new(tmp.join("overlay")).unwrap()),
        ),
        (
            "native",
            Box::new(NativeSnapshotter::new(tmp.join("native")).unwrap()),
        ),
    ]
}

#[test]
fn implicit_parents_keep_the_lower_layers_metadata_in_both_snapshotters() {
    if !require_root("implicit parent test (owners, overlay mounts)") {
        return;
    }
    let first = layer(&[("a/", A), ("a/x", FILE)]);
    let second = layer(&[("a/b/file", FILE)]);
    let tmp = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for (kind, snap) in snapshotters(tmp.path()) {
        let v = view(snap.as_ref(), &[first.clone(), second.clone()]);
        let root = v.rootfs();
        assert!(root.join("a/x").is_file(), "{kind}");
        assert!(root.join("a/b/file").is_file(), "{kind}");
        seen.push((kind, stat(root, "a")));
    }
    assert_eq!(seen[0].1, seen[1].1, "the snapshotters disagree: {seen:?}");
    assert_eq!(seen[0].1, A, "not the first layer's `a`: {seen:?}");
}

/// An opaque marker hides the lower contents of `a`, not `a` itself; `a/b`, needed and not
/// listed, keeps the lower metadata too: unpacked onto the merged tree (native) it stays
/// because the layer writes into it, and overlay must show the same.
#[test]
fn implicit_parents_under_an_opaque_dir_of_the_same_layer() {
    if !require_root("implicit parent test (owners, overlay mounts)") {
        return;
    }
    let first = layer(&[("a/", A), ("a/x", FILE), ("a/b/", B), ("a/b/old", FILE)]);
    let marker_first = layer(&[("a/.wh..wh..opq", FILE), ("a/b/new", FILE)]);
    let marker_last = layer(&[("a/b/new", FILE), ("a/.wh..wh..opq", FILE)]);
    for second in [marker_first, marker_last] {
        let tmp = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        for (kind, snap) in snapshotters(tmp.path()) {
            let v = view(snap.as_ref(), &[first.clone(), second.clone()]);
            let root = v.rootfs();
            assert!(!root.join("a/x").exists(), "{kind}: a/x not hidden");
            assert!(!root.join("a/b/old").exists(), "{kind}: a/b/old not hidden");
            assert!(root.join("a/b/new").is_file(), "{kind}");
            seen.push((kind, stat(root, "a"), stat(root, "a/b")));
        }
        assert_eq!(
            (seen[0].1, seen[0].2),
            (seen[1].1, seen[1].2),
            "the snapshotters disagree: {seen:?}"
        );
        assert_eq!((seen[0].1, seen[0].2), (A, B), "{seen:?}");
    }
}
