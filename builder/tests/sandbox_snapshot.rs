//! RUN steps end to end: a busybox base layer unpacked by each snapshotter, a command run in
//! the sandbox on the snapshot, its diff (without kiln's mount stubs), commit and the next
//! step on top. Both snapshotters must report the same changes.

mod common;

use std::path::{Path, PathBuf};

use builder::sandbox::{LinuxSandbox, RunSpec, Sandbox, Stream};
use builder::snapshot::{open_snapshotter, Change, RecordingSink, SnapshotterKind};
use registry::Digest;

use common::sandbox;

/// `FROM scratch` + `COPY busybox /bin/` + applet symlinks, as a layer tar.
fn busybox_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    b.append_data(&mut dir.clone(), "bin/", std::io::empty())
        .unwrap();
    b.append_data(&mut dir, "tmp/", std::io::empty()).unwrap();
    let data = std::fs::read("/bin/busybox").unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, "bin/busybox", &data[..]).unwrap();
    for applet in [
        "sh", "echo", "rm", "ln", "chmod", "mkdir", "cat", "ls", "mv",
    ] {
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_mode(0o777);
        l.set_size(0);
        b.append_link(&mut l, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    b.into_inner().unwrap()
}

fn run(sb: &LinuxSandbox, rootfs: &Path, script: &str) -> String {
    let mut out = Vec::new();
    let mut sink = |_: Stream, d: &[u8]| out.extend_from_slice(d);
    let outcome = sb
        .run(&RunSpec::new(rootfs, &["/bin/sh", "-c", script]), &mut sink)
        .unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(outcome.status.success(), "{script}: {out}");
    out
}

const STEP: &str = "echo hi > /new; rm /bin/cat; mkdir -p /d; ln /new /d/link; \
                    echo s > /suid; chmod 4755 /suid; mv /tmp /tmp2";

fn step(kind: SnapshotterKind, sb: &LinuxSandbox, store: &Path) -> Vec<Change> {
    let snap = open_snapshotter(store, Some(kind)).unwrap();
    let layer = busybox_layer();
    let base = snap
        .apply_layer(None, &Digest::of(&layer), &mut &layer[..])
        .unwrap();
    let mut active = snap.prepare(Some(&base)).unwrap();
    run(sb, active.rootfs(), STEP);
    let mut rec = RecordingSink::default();
    active.diff(&mut rec).unwrap();
    let next_chain = active.commit(&Digest::of(b"step-1")).unwrap();

    let next = snap.prepare(Some(&next_chain)).unwrap();
    let out = run(
        sb,
        next.rootfs(),
        "read x < /d/link; echo $x; ls /bin/cat 2>&1; ls -d /tmp2",
    );
    assert!(out.starts_with("hi\n"), "{kind}: {out}");
    assert!(
        out.contains("No such file"),
        "{kind}: /bin/cat came back: {out}"
    );
    assert!(out.contains("/tmp2"), "{kind}: {out}");
    rec.changes
}

#[test]
fn run_step_diffs_match_across_snapshotters_and_skip_mount_stubs() {
    let Some(sb) = sandbox() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let overlay = step(SnapshotterKind::Overlay, &sb, &tmp.path().join("o"));
    let native = step(SnapshotterKind::Native, &sb, &tmp.path().join("n"));
    let shape = |changes: &[Change]| -> Vec<(String, PathBuf)> {
        changes
            .iter()
            .map(|c| {
                (
                    format!("{c:?}").split('(').next().unwrap().to_string(),
                    c.path().to_path_buf(),
                )
            })
            .collect()
    };
    assert_eq!(shape(&overlay), shape(&native));
    let paths: Vec<_> = overlay.iter().map(|c| c.path().to_path_buf()).collect();
    for stub in ["proc", "dev", "sys", "etc", "etc/hosts"] {
        assert!(
            !paths.contains(&PathBuf::from(stub)),
            "mount stub {stub} captured: {paths:?}"
        );
    }
    for expected in ["new", "d/link", "bin/cat", "suid", "tmp", "tmp2"] {
        assert!(
            paths.contains(&PathBuf::from(expected)),
            "{expected} missing: {paths:?}"
        );
    }
    let suid = overlay
        .iter()
        .find(|c| c.path() == Path::new("suid"))
        .unwrap();
    assert!(
        matches!(suid, Change::File(_, m, _) if m.mode == 0o4755),
        "{suid:?}"
    );
    assert!(overlay.contains(&Change::Whiteout("bin/cat".into())));
    assert!(overlay.contains(&Change::Whiteout("tmp".into())));
}
