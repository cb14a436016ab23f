//! Both snapshotters, same step, same change set: deletions, replaced directories,
//! hardlinks, symlinks, setuid bits and file capabilities. The diff, written as a tar and
//! applied onto the parent, reproduces the step's tree; committed snapshots stack.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use builder::fs::meta::read_xattrs;
use builder::fs::{unpack_layer, UnpackOptions};
use builder::snapshot::{open_snapshotter, Change, RecordingSink, SnapshotterKind, TarSink};
use registry::Digest;

use common::require_root;

const CAP_NET_BIND: [u8; 20] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

fn base_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        match link {
            Some(l) => b.append_link(&mut h, path, l).unwrap(),
            None => b.append_data(&mut h, path, data).unwrap(),
        }
    };
    use tar::EntryType::*;
    add("bin/", Directory, 0o755, b"", None);
    add("bin/busybox", Regular, 0o755, b"#!busybox", None);
    add("etc/", Directory, 0o755, b"", None);
    add(
        "etc/passwd",
        Regular,
        0o644,
        b"root:x:0:0::/root:/bin/sh\n",
        None,
    );
    add("etc/gone", Regular, 0o644, b"bye", None);
    add("etc/replaced/", Directory, 0o755, b"", None);
    add("etc/replaced/a", Regular, 0o644, b"a", None);
    add("etc/replaced/b", Regular, 0o644, b"b", None);
    add("data/", Directory, 0o755, b"", None);
    add("data/f1", Regular, 0o644, b"one", None);
    add("data/untouched", Regular, 0o644, b"same", None);
    add("link", Symlink, 0o777, b"", Some("data/f1"));
    add("file-becomes-dir", Regular, 0o644, b"f", None);
    b.into_inner().unwrap()
}

/// What a RUN step might do, done directly on the rootfs.
fn mutate(root: &Path) {
    std::fs::remove_file(root.join("etc/gone")).unwrap();
    std::fs::remove_dir_all(root.join("etc/replaced")).unwrap();
    std::fs::create_dir(root.join("etc/replaced")).unwrap();
    std::fs::write(root.join("etc/replaced/new"), b"n").unwrap();
    // Same size, content differs: only a content compare can see it in the native diff.
    std::fs::write(root.join("data/f1"), b"uno").unwrap();
    std::os::unix::fs::symlink("/bin/busybox", root.join("newlink")).unwrap();
    std::fs::hard_link(root.join("bin/busybox"), root.join("bin/bb2")).unwrap();
    let ping = root.join("bin/ping");
    std::fs::write(&ping, b"elf").unwrap();
    std::fs::set_permissions(&ping, std::fs::Permissions::from_mode(0o4755)).unwrap();
    rustix::fs::setxattr(
        &ping,
        "security.capability",
        &CAP_NET_BIND,
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("etc/passwd"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("opt/new")).unwrap();
    std::fs::write(root.join("opt/new/file"), b"x").unwrap();
    std::fs::remove_file(root.join("file-becomes-dir")).unwrap();
    std::fs::create_dir(root.join("file-becomes-dir")).unwrap();
}

/// Changes with mtimes zeroed: the two runs happen at different times.
fn normalized(changes: &[Change]) -> Vec<Change> {
    changes
        .iter()
        .cloned()
        .map(|mut c| {
            match &mut c {
                Change::Dir(_, m)
                | Change::File(_, m, _)
                | Change::Symlink(_, _, m)
                | Change::Device(_, _, m) => m.mtime = Default::default(),
                _ => {}
            }
            c
        })
        .collect()
}

/// A comparable view of a tree: type, mode, owner, xattrs, content or link target, and
/// mtime for non-directories.
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
        let what = if m.is_dir() {
            "dir".to_string()
        } else if m.file_type().is_symlink() {
            format!(
                "link {:?} {}",
                std::fs::read_link(e.path()).unwrap(),
                m.mtime()
            )
        } else {
            format!("file {:?} {}", std::fs::read(e.path()).unwrap(), m.mtime())
        };
        let x = read_xattrs(e.path()).unwrap();
        out.insert(
            rel,
            format!("{what} {:o} {}:{} {x:?}", m.mode(), m.uid(), m.gid()),
        );
    }
    out
}

struct Run {
    changes: Vec<Change>,
    tar: Vec<u8>,
    tree: BTreeMap<PathBuf, String>,
}

fn run(kind: SnapshotterKind, store: &Path) -> Run {
    let snap = open_snapshotter(store, Some(kind)).unwrap();
    assert_eq!(snap.kind(), kind);
    let layer = base_layer();
    let diff_id = Digest::of(&layer);
    let base = snap.apply_layer(None, &diff_id, &mut &layer[..]).unwrap();
    assert!(snap.exists(&base));
    let mut active = snap.prepare(Some(&base)).unwrap();
    mutate(active.rootfs());
    let step_tree = tree(active.rootfs());
    let mut rec = RecordingSink::default();
    active.diff(&mut rec).unwrap();
    let mut sink = TarSink::new(Vec::new());
    active.diff(&mut sink).unwrap();
    let tar = sink.finish().unwrap();

    // Commit and stack: the next step sees the changes without re-unpacking anything.
    let chain = active.commit(&Digest::of(&tar)).unwrap();
    assert_eq!(
        chain,
        builder::snapshot::chain_id(Some(&base), &Digest::of(&tar))
    );
    let next = snap.prepare(Some(&chain)).unwrap();
    assert_eq!(
        tree(next.rootfs()),
        step_tree,
        "{kind}: committed snapshot differs from the step's tree"
    );
    drop(next);
    Run {
        changes: rec.changes,
        tar,
        tree: step_tree,
    }
}

#[test]
fn overlay_and_native_produce_the_same_change_set() {
    if !require_root("overlay snapshotter test") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let overlay = run(SnapshotterKind::Overlay, &tmp.path().join("o"));
    let native = run(SnapshotterKind::Native, &tmp.path().join("n"));
    assert_eq!(normalized(&overlay.changes), normalized(&native.changes));

    let paths: Vec<_> = overlay
        .changes
        .iter()
        .map(|c| (kind(c), c.path().to_path_buf()))
        .collect();
    for expected in [
        ("whiteout", "etc/gone"),
        ("opaque", "etc/replaced"),
        ("file", "etc/replaced/new"),
        ("file", "data/f1"),
        ("symlink", "newlink"),
        ("file", "bin/bb2"),
        ("hardlink", "bin/busybox"),
        ("file", "bin/ping"),
        ("file", "etc/passwd"),
        ("file", "opt/new/file"),
        ("opaque", "file-becomes-dir"),
    ] {
        assert!(
            paths.contains(&(expected.0, PathBuf::from(expected.1))),
            "missing {expected:?} in {paths:#?}"
        );
    }
    for untouched in ["data/untouched", "link", "etc/replaced/a"] {
        assert!(
            !paths.iter().any(|(_, p)| p == Path::new(untouched)),
            "{untouched} reported as changed"
        );
    }
    let ping = overlay
        .changes
        .iter()
        .find(|c| c.path() == Path::new("bin/ping"))
        .unwrap();
    let Change::File(_, meta, _) = ping else {
        panic!("{ping:?}")
    };
    assert_eq!(meta.mode, 0o4755);
    assert!(meta
        .xattrs
        .contains(&("security.capability".into(), CAP_NET_BIND.to_vec())));

    // The diff tar applied on the base reproduces the step's tree, for both.
    for r in [&overlay, &native] {
        let t = tempfile::tempdir().unwrap();
        unpack_layer(&base_layer()[..], t.path(), UnpackOptions::default()).unwrap();
        unpack_layer(&r.tar[..], t.path(), UnpackOptions::default()).unwrap();
        assert_eq!(tree(t.path()), r.tree);
    }
}

fn kind(c: &Change) -> &'static str {
    match c {
        Change::Dir(..) => "dir",
        Change::File(..) => "file",
        Change::Symlink(..) => "symlink",
        Change::Hardlink(..) => "hardlink",
        Change::Device(..) => "device",
        Change::Whiteout(..) => "whiteout",
        Change::Opaque(..) => "opaque",
    }
}

#[test]
fn native_diff_of_an_untouched_copy_is_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let snap = open_snapshotter(tmp.path(), Some(SnapshotterKind::Native)).unwrap();
    let layer = base_layer();
    let base = snap
        .apply_layer(None, &Digest::of(&layer), &mut &layer[..])
        .unwrap();
    let mut active = snap.prepare(Some(&base)).unwrap();
    let mut rec = RecordingSink::default();
    active.diff(&mut rec).unwrap();
    assert_eq!(rec.changes, vec![]);
}

#[test]
fn dropping_an_active_snapshot_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let kinds: &[SnapshotterKind] = if rustix::process::geteuid().is_root() {
        &[SnapshotterKind::Overlay, SnapshotterKind::Native]
    } else {
        &[SnapshotterKind::Native]
    };
    for &kind in kinds {
        let snap = open_snapshotter(tmp.path(), Some(kind)).unwrap();
        let active = snap.prepare(None).unwrap();
        std::fs::write(active.rootfs().join("x"), b"x").unwrap();
        drop(active);
        let tmpdir = tmp.path().join("snapshots").join(kind.as_str()).join("tmp");
        assert_eq!(std::fs::read_dir(&tmpdir).unwrap().count(), 0, "{kind}");
    }
}

#[test]
fn auto_choice_picks_a_working_snapshotter() {
    let tmp = tempfile::tempdir().unwrap();
    let snap = open_snapshotter(tmp.path(), None).unwrap();
    if rustix::process::geteuid().is_root() {
        assert_eq!(snap.kind(), SnapshotterKind::Overlay);
    }
    let mut active = snap.prepare(None).unwrap();
    std::fs::write(active.rootfs().join("hello"), b"hi").unwrap();
    let mut rec = RecordingSink::default();
    active.diff(&mut rec).unwrap();
    assert_eq!(rec.changes.len(), 1, "{:?}", rec.changes);
}

#[test]
fn overlay_stacks_more_layers_than_fit_in_mount_options() {
    if !require_root("overlay snapshotter test") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let snap = open_snapshotter(tmp.path(), Some(SnapshotterKind::Overlay)).unwrap();
    let mut chain = None;
    for i in 0..60 {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(1);
        b.append_data(&mut h, format!("layer-{i}"), &b"x"[..])
            .unwrap();
        let layer = b.into_inner().unwrap();
        chain = Some(
            snap.apply_layer(chain.as_ref(), &Digest::of(&layer), &mut &layer[..])
                .unwrap(),
        );
    }
    let active = snap.prepare(chain.as_ref()).unwrap();
    for i in 0..60 {
        assert!(
            active.rootfs().join(format!("layer-{i}")).exists(),
            "layer {i} missing"
        );
    }
}
