//! Layer unpacking tests: a hostile-tar corpus built in code, whiteouts, hardlinks, xattrs,
//! setuid bits. Every case runs with openat2 and with the user-space resolver.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;

/// A tar under construction; names are written raw so hostile ones survive.
pub(crate) struct Layer(tar::Builder<Vec<u8>>);

pub(crate) const CAP_NET_BIND: [u8; 20] = [
    0x01, 0, 0, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

impl Layer {
    pub(crate) fn new() -> Layer {
        Layer(tar::Builder::new(Vec::new()))
    }

    fn raw(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        link: &str,
        data: &[u8],
    ) -> &mut Self {
        let mut h = tar::Header::new_ustar();
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        if !link.is_empty() {
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    pub(crate) fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.raw(name, tar::EntryType::Regular, mode, "", data)
    }
    pub(crate) fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.raw(name, tar::EntryType::Directory, mode, "", b"")
    }
    pub(crate) fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(name, tar::EntryType::Symlink, 0o777, target, b"")
    }
    pub(crate) fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(name, tar::EntryType::Link, 0o644, target, b"")
    }
    pub(crate) fn owned(
        &mut self,
        name: &str,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
    ) -> &mut Self {
        let owner = (uid, gid, mtime);
        self.owned_entry(name, tar::EntryType::Regular, mode, owner, b"hi")
    }
    pub(crate) fn owned_dir(
        &mut self,
        name: &str,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
    ) -> &mut Self {
        let owner = (uid, gid, mtime);
        self.owned_entry(name, tar::EntryType::Directory, mode, owner, b"")
    }
    /// An entry with explicit `(uid, gid, mtime)`.
    fn owned_entry(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        (uid, gid, mtime): (u64, u64, u64),
        data: &[u8],
    ) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(mtime);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }
    pub(crate) fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        self.0
            .append_pax_extensions(records.iter().copied())
            .unwrap();
        self
    }
    pub(crate) fn char_dev(&mut self, name: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(tar::EntryType::Char);
        h.set_mode(0o666);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_size(0);
        h.set_cksum();
        self.0.append(&h, &[][..]).unwrap();
        self
    }
    pub(crate) fn bytes(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()))
            .into_inner()
            .unwrap()
    }
}

fn apply_both(
    layers: &[Vec<u8>],
    opts: UnpackOptions,
    check: impl Fn(&Path, Result<UnpackStats, FsError>),
) {
    for fallback in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let r = if fallback {
            Root::open(&root).unwrap().without_openat2()
        } else {
            Root::open(&root).unwrap()
        };
        let mut last = None;
        for l in layers {
            last = Some(unpack_into(&l[..], &r, opts.clone()));
            if matches!(last, Some(Err(_))) {
                break;
            }
        }
        check(tmp.path(), last.unwrap());
    }
}

/// True when running as root; otherwise prints a note, or fails under `CI=true`.
pub(crate) fn require_root(what: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} needs root and CI=true forbids skipping"
    );
    eprintln!("note: skipping {what}: needs root");
    false
}

#[test]
fn files_dirs_symlinks_hardlinks_and_modes() {
    let layer = Layer::new()
        .dir("bin/", 0o755)
        .file("bin/su", 0o4755, b"suid")
        .file("bin/sg", 0o2711, b"sgid")
        .dir("tmp/", 0o1777)
        .symlink("bin/sh", "su")
        .hardlink("bin/su2", "bin/su")
        .file("implicit/parent/file", 0o600, b"x")
        .bytes();
    apply_both(&[layer], UnpackOptions::default(), |tmp, res| {
        let stats = res.unwrap();
        assert_eq!(
            (stats.files, stats.dirs, stats.symlinks, stats.hardlinks),
            (3, 2, 1, 1)
        );
        let root = tmp.join("root");
        let su = std::fs::symlink_metadata(root.join("bin/su")).unwrap();
        assert_eq!(su.permissions().mode() & 0o7777, 0o4755);
        assert_eq!(su.nlink(), 2);
        assert_eq!(
            su.ino(),
            std::fs::metadata(root.join("bin/su2")).unwrap().ino()
        );
        assert_eq!(su.mtime(), 1_600_000_000);
        let sg = std::fs::metadata(root.join("bin/sg")).unwrap();
        assert_eq!(sg.permissions().mode() & 0o7777, 0o2711);
        let t = std::fs::metadata(root.join("tmp")).unwrap();
        assert_eq!(t.permissions().mode() & 0o7777, 0o1777);
        assert_eq!(
            std::fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("su")
        );
        // Directory mtimes are set after their contents were written.
        let bin = std::fs::metadata(root.join("bin")).unwrap();
        assert_eq!(bin.mtime(), 1_600_000_000);
        assert_eq!(
            std::fs::read(root.join("implicit/parent/file")).unwrap(),
            b"x"
        );
    });
}

#[test]
fn owners_and_pax_overrides() {
    if !require_root("owner test") {
        return;
    }
    let layer = Layer::new()
        .owned("a", 0o640, 1234, 5678, 1_500_000_000)
        .pax(&[("uid", b"2000000"), ("mtime", b"1500000001.25")])
        .owned("b", 0o644, 1, 1, 1)
        .bytes();
    apply_both(&[layer], UnpackOptions::default(), |tmp, res| {
        if crate::fs::idmap::in_user_namespace() {
            // Rootless: uid 2000000 is beyond the subordinate ranges, an error naming it.
            let err = res.unwrap_err().to_string();
            assert!(
                err.contains("\"b\"") && err.contains("uid 2000000"),
                "{err}"
            );
            return;
        }
        res.unwrap();
        let a = std::fs::metadata(tmp.join("root/a")).unwrap();
        assert_eq!((a.uid(), a.gid(), a.mtime()), (1234, 5678, 1_500_000_000));
        let b = std::fs::metadata(tmp.join("root/b")).unwrap();
        assert_eq!((b.uid(), b.gid()), (2_000_000, 1));
        assert_eq!((b.mtime(), b.mtime_nsec()), (1_500_000_001, 250_000_000));
    });
    let map = IdMap {
        uids: vec![IdRange {
            container: 0,
            host: 10_000,
            size: 65536,
        }],
        gids: vec![IdRange {
            container: 0,
            host: 20_000,
            size: 65536,
        }],
    };
    let opts = UnpackOptions {
        ownership: Ownership::Map(map),
        ..Default::default()
    };
    let layer = Layer::new().owned("a", 0o640, 12, 34, 1).bytes();
    apply_both(&[layer], opts.clone(), |tmp, res| {
        res.unwrap();
        let a = std::fs::metadata(tmp.join("root/a")).unwrap();
        assert_eq!((a.uid(), a.gid()), (10_012, 20_034));
    });
    let layer = Layer::new().owned("a", 0o640, 70000, 0, 1).bytes();
    apply_both(&[layer], opts, |_, res| {
        let err = res.unwrap_err().to_string();
        assert!(err.contains("\"a\"") && err.contains("uid 70000"), "{err}");
    });
}

#[test]
fn xattrs_and_file_capabilities_survive() {
    if !require_root("security.capability test") {
        return;
    }
    let layer = Layer::new()
        .pax(&[
            ("SCHILY.xattr.security.capability", &CAP_NET_BIND[..]),
            ("SCHILY.xattr.user.note", b"v"),
        ])
        .file("ping", 0o4755, b"elf")
        .bytes();
    apply_both(&[layer], UnpackOptions::default(), |tmp, res| {
        res.unwrap();
        let xattrs = meta::read_xattrs(&tmp.join("root/ping")).unwrap();
        assert!(
            xattrs.contains(&("security.capability".into(), CAP_NET_BIND.to_vec())),
            "{xattrs:?}"
        );
        assert!(xattrs.contains(&("user.note".into(), b"v".to_vec())));
        let m = std::fs::metadata(tmp.join("root/ping")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o4755);
    });
}

#[test]
fn whiteouts_and_opaque_dirs() {
    let lower = Layer::new()
        .file("etc/keep", 0o644, b"k")
        .file("etc/gone", 0o644, b"g")
        .file("var/cache/a", 0o644, b"a")
        .file("var/cache/sub/b", 0o644, b"b")
        .file("opt/tree/x", 0o644, b"x")
        .bytes();
    let upper = Layer::new()
        .file("etc/.wh.gone", 0o644, b"")
        .file("opt/.wh.tree", 0o644, b"")
        .file("var/cache/new-before", 0o644, b"n")
        .file("var/cache/sub/c", 0o644, b"c")
        .file("var/cache/.wh..wh..opq", 0o644, b"")
        .file("var/cache/new-after", 0o644, b"n")
        .file("nothing/.wh.here", 0o644, b"")
        .bytes();
    apply_both(&[lower, upper], UnpackOptions::default(), |tmp, res| {
        res.unwrap();
        let root = tmp.join("root");
        assert!(root.join("etc/keep").exists());
        assert!(!root.join("etc/gone").exists());
        assert!(!root.join("etc/.wh.gone").exists());
        assert!(!root.join("opt/tree").exists());
        assert!(!root.join("var/cache/a").exists());
        assert!(
            !root.join("var/cache/sub/b").exists(),
            "lower content under an opaque dir"
        );
        assert!(root.join("var/cache/sub/c").exists());
        assert!(root.join("var/cache/new-before").exists());
        assert!(root.join("var/cache/new-after").exists());
        assert!(!root.join("var/cache/.wh..wh..opq").exists());
    });
}

#[test]
fn overlay_form_whiteouts() {
    if !require_root("overlay-form whiteouts") {
        return;
    }
    let layer = Layer::new()
        .file("etc/.wh.gone", 0o644, b"")
        .file("var/.wh..wh..opq", 0o644, b"")
        .bytes();
    let opts = UnpackOptions {
        whiteouts: WhiteoutMode::Overlay,
        ..Default::default()
    };
    apply_both(&[layer], opts, |tmp, res| {
        res.unwrap();
        let m = std::fs::symlink_metadata(tmp.join("root/etc/gone")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(
            &m.file_type()
        ));
        assert_eq!(m.rdev(), 0);
        let x = meta::read_xattrs(&tmp.join("root/var")).unwrap();
        // Rootless overlay (userxattr) reads the user.* form of the marker.
        let name = if crate::fs::idmap::in_user_namespace() {
            "user.overlay.opaque"
        } else {
            "trusted.overlay.opaque"
        };
        assert!(x.contains(&(name.into(), b"y".to_vec())), "{x:?}");
    });
}

#[test]
fn device_nodes_when_root() {
    if !require_root("device node test") {
        return;
    }
    let layer = Layer::new().char_dev("dev/null", 1, 3).bytes();
    apply_both(&[layer], UnpackOptions::default(), |tmp, res| {
        let stats = res.unwrap();
        if crate::fs::idmap::in_user_namespace() {
            // A user namespace may not make device nodes: skipped and counted, as rootless
            // Docker and buildah do.
            assert_eq!((stats.devices, stats.skipped_devices), (0, 1));
            return;
        }
        assert_eq!(stats.devices, 1);
        let m = std::fs::symlink_metadata(tmp.join("root/dev/null")).unwrap();
        assert_eq!(m.rdev(), rustix::fs::makedev(1, 3));
    });
}

// ---- hostile input ----

#[test]
fn dotdot_entry_is_rejected_naming_it() {
    let layer = Layer::new().file("a/../../escape", 0o644, b"x").bytes();
    apply_both(&[layer], UnpackOptions::default(), |tmp, res| {
        let err = res.unwrap_err().to_string();
        assert!(err.contains("a/../../escape"), "{err}");
        assert!(!tmp.join("escape").exists());
    });
}

#[test]
fn absolute_entry_is_rejected() {
    let layer = Layer::new().file("/abs-escape", 0o644, b"x").bytes();
    apply_both(&[layer], UnpackOptions::default(), |_, res| {
        assert!(matches!(res, Err(FsError::AbsolutePath { .. })));
    });
}

#[test]
fn symlinked_parent_pointing_out_is_confined() {
    let tmp_outside = tempfile::tempdir().unwrap();
    let outside = tmp_outside.path().to_str().unwrap().to_string();
    let layer = Layer::new()
        .symlink("evil", &outside)
        .file("evil/pwned", 0o644, b"x")
        .symlink("up", "../../../../..")
        .file("up/pwned2", 0o644, b"x")
        .bytes();
    apply_both(&[layer], UnpackOptions::default(), |tmp, res| {
        res.unwrap();
        assert!(!tmp_outside.path().join("pwned").exists());
        assert!(!tmp.join("pwned2").exists());
        let inside = tmp.join("root").join(outside.trim_start_matches('/'));
        assert!(inside.join("pwned").exists());
        assert!(tmp.join("root/pwned2").exists());
    });
}

#[test]
fn file_over_symlink_replaces_the_link_not_its_target() {
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().join("victim");
    std::fs::write(&victim, b"original").unwrap();
    let layer = Layer::new()
        .symlink("link", victim.to_str().unwrap())
        .file("link", 0o644, b"overwritten")
        .bytes();
    apply_both(&[layer], UnpackOptions::default(), |tmp, res| {
        res.unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"original");
        assert_eq!(
            std::fs::read(tmp.join("root/link")).unwrap(),
            b"overwritten"
        );
    });
}

#[test]
fn hardlinks_to_outside_are_rejected() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"s").unwrap();
    let o = outside.path().to_str().unwrap();
    for (target, reason) in [
        ("../../etc/passwd", "leaves"),
        ("/etc/passwd", "absolute"),
        ("missing", "does not exist"),
    ] {
        let layer = Layer::new().hardlink("h", target).bytes();
        apply_both(&[layer], UnpackOptions::default(), |_, res| {
            let err = res.unwrap_err().to_string();
            assert!(
                err.contains("\"h\"") && err.contains(reason),
                "{target}: {err}"
            );
        });
    }
    // Through a symlinked parent the target resolves inside the root, where it is missing.
    let layer = Layer::new()
        .symlink("evil", o)
        .hardlink("h", "evil/secret")
        .bytes();
    apply_both(&[layer], UnpackOptions::default(), |tmp, res| {
        assert!(res.is_err());
        assert!(!tmp.join("root/h").exists());
        assert_eq!(
            std::fs::metadata(outside.path().join("secret"))
                .unwrap()
                .nlink(),
            1
        );
    });
}

#[test]
fn whiteout_through_symlink_cannot_delete_outside() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("precious"), b"p").unwrap();
    let layer = Layer::new()
        .symlink("evil", outside.path().to_str().unwrap())
        .file("evil/.wh.precious", 0o644, b"")
        .symlink("evil2", outside.path().to_str().unwrap())
        .file("evil2/.wh..wh..opq", 0o644, b"")
        .bytes();
    apply_both(&[layer], UnpackOptions::default(), |_, res| {
        res.unwrap();
        assert!(outside.path().join("precious").exists());
    });
}

// ---- directories a layer needs but does not list ----

/// Mode (with setgid/sticky), owner and mtime of `path`, not followed.
fn dir_meta(path: &Path) -> (u32, u32, u32, i64) {
    let m = std::fs::symlink_metadata(path).unwrap();
    assert!(m.is_dir(), "{}", path.display());
    (m.permissions().mode() & 0o7777, m.uid(), m.gid(), m.mtime())
}

/// A lower dir as the overlay snapshotter leaves one: `layer` unpacked in overlay form.
fn lower(dir: &Path, layer: Vec<u8>) -> std::path::PathBuf {
    std::fs::create_dir(dir).unwrap();
    let opts = UnpackOptions {
        whiteouts: WhiteoutMode::Overlay,
        ..Default::default()
    };
    unpack_layer(&layer[..], dir, opts).unwrap();
    dir.to_path_buf()
}

fn with_parents(parents: Vec<std::path::PathBuf>) -> UnpackOptions {
    UnpackOptions {
        whiteouts: WhiteoutMode::Overlay,
        parents,
        ..Default::default()
    }
}

/// Newer than any mtime the test layers carry: the directory got the time it was made.
const RECENT: i64 = 1_700_000_000;

#[test]
fn implicit_parents_copy_the_first_lower_dir_that_has_them() {
    if !require_root("implicit parent owner test") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let top = lower(
        &tmp.path().join("top"),
        Layer::new().dir("other/", 0o755).bytes(),
    );
    let mid = lower(
        &tmp.path().join("mid"),
        Layer::new()
            .pax(&[("SCHILY.xattr.user.note", b"mid")])
            .owned_dir("a/", 0o2750, 2000, 3000, 1_500_000_000)
            .bytes(),
    );
    let bottom = lower(
        &tmp.path().join("bottom"),
        Layer::new()
            .owned_dir("a/", 0o700, 1, 1, 1)
            .owned_dir("a/b/", 0o1777, 4000, 4000, 1_400_000_000)
            .bytes(),
    );
    let layer = Layer::new().file("a/b/c/file", 0o644, b"x").bytes();
    let opts = with_parents(vec![top, mid, bottom]);
    apply_both(&[layer], opts, |tmp, res| {
        res.unwrap();
        let root = tmp.join("root");
        // Set after `b` was made in it, and `c` in `b`.
        assert_eq!(
            dir_meta(&root.join("a")),
            (0o2750, 2000, 3000, 1_500_000_000)
        );
        let x = meta::read_xattrs(&root.join("a")).unwrap();
        assert_eq!(x, vec![("user.note".to_string(), b"mid".to_vec())]);
        assert_eq!(
            dir_meta(&root.join("a/b")),
            (0o1777, 4000, 4000, 1_400_000_000)
        );
        let (mode, uid, gid, mtime) = dir_meta(&root.join("a/b/c"));
        assert_eq!((mode, uid, gid), (0o755, 0, 0), "no lower dir has a/b/c");
        assert!(mtime > RECENT, "{mtime}");
        assert_eq!(std::fs::read(root.join("a/b/c/file")).unwrap(), b"x");
    });
}

#[test]
fn lower_symlinks_whiteouts_and_opaque_dirs_end_the_lookup() {
    if !require_root("overlay-form lower dirs") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mid = lower(
        &tmp.path().join("mid"),
        Layer::new()
            .owned_dir("a/", 0o750, 2000, 2000, 1_500_000_000)
            .file("a/.wh..wh..opq", 0o644, b"")
            .symlink("s", "a")
            .file(".wh.w", 0o644, b"")
            .bytes(),
    );
    let bottom = lower(
        &tmp.path().join("bottom"),
        Layer::new()
            .owned_dir("a/", 0o700, 1, 1, 1)
            .owned_dir("a/b/", 0o700, 4000, 4000, 1)
            .owned_dir("s/", 0o700, 4000, 4000, 1)
            .owned_dir("s/t/", 0o700, 4000, 4000, 1)
            .owned_dir("w/", 0o700, 4000, 4000, 1)
            .bytes(),
    );
    let layer = Layer::new()
        .file("a/b/f", 0o644, b"")
        .file("s/t/f", 0o644, b"")
        .file("w/f", 0o644, b"")
        .bytes();
    apply_both(&[layer], with_parents(vec![mid, bottom]), |tmp, res| {
        res.unwrap();
        let root = tmp.join("root");
        assert_eq!(
            dir_meta(&root.join("a")),
            (0o750, 2000, 2000, 1_500_000_000)
        );
        // The lower dir's opaque marker is its own: copied, it would hide `bottom`'s a/*.
        assert_eq!(meta::read_xattrs(&root.join("a")).unwrap(), vec![]);
        // Under the opaque a/, behind the symlink s (overlay cannot follow it, see
        // parents.rs) and under the whiteout w, the lower layers' dirs are hidden.
        for hidden in ["a/b", "s", "s/t", "w"] {
            let (mode, uid, gid, _) = dir_meta(&root.join(hidden));
            assert_eq!((mode, uid, gid), (0o755, 0, 0), "{hidden}");
        }
    });
}

#[test]
fn lookups_in_lower_dirs_stay_inside_them() {
    if !require_root("implicit parent owner test") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(outside.join("y")).unwrap();
    for d in [&outside, &outside.join("y")] {
        std::os::unix::fs::chown(d, Some(4242), Some(4242)).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let parent = lower(
        &tmp.path().join("parent"),
        Layer::new()
            .symlink("rel", "../outside")
            .symlink("abs", outside.to_str().unwrap())
            .bytes(),
    );
    let before = dir_meta(&outside.join("y"));

    let layer = Layer::new()
        .file("rel/y/f", 0o644, b"")
        .file("abs/y/f", 0o644, b"")
        .bytes();
    apply_both(&[layer], with_parents(vec![parent.clone()]), |tmp, res| {
        res.unwrap();
        for dir in ["rel", "rel/y", "abs", "abs/y"] {
            let (mode, uid, gid, _) = dir_meta(&tmp.join("root").join(dir));
            assert_eq!((mode, uid, gid), (0o755, 0, 0), "{dir} copied from outside");
        }
    });
    let layer = Layer::new().file("../outside/y/f", 0o644, b"").bytes();
    apply_both(&[layer], with_parents(vec![parent.clone()]), |_, res| {
        assert!(matches!(res, Err(FsError::ParentComponent { .. })));
    });
    assert!(!outside.join("y/f").exists());
    assert_eq!(dir_meta(&outside.join("y")), before);
    for hostile in ["../outside", "/outside", "rel/../../outside"] {
        let res = super::parents::lower_dir_meta(std::slice::from_ref(&parent), Path::new(hostile));
        assert!(res.is_err(), "{hostile}: {res:?}");
    }
}

#[test]
fn directories_the_layer_writes_into_without_listing_keep_their_mtime() {
    let lower = Layer::new()
        .dir("d/", 0o755)
        .dir("e/", 0o755)
        .file("e/gone", 0o644, b"")
        .dir("o/", 0o755)
        .file("o/old", 0o644, b"")
        .bytes();
    let upper = Layer::new()
        .file("d/sub/new", 0o644, b"")
        .file("e/.wh.gone", 0o644, b"")
        .file("o/.wh..wh..opq", 0o644, b"")
        .bytes();
    apply_both(&[lower, upper], UnpackOptions::default(), |tmp, res| {
        res.unwrap();
        let root = tmp.join("root");
        assert!(!root.join("e/gone").exists() && !root.join("o/old").exists());
        for dir in ["d", "e", "o"] {
            assert_eq!(dir_meta(&root.join(dir)).3, 1_600_000_000, "{dir}");
        }
        assert!(dir_meta(&root.join("d/sub")).3 > RECENT);
    });
}

#[test]
fn a_directory_listed_after_it_was_needed_takes_its_own_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let parent = lower(
        &tmp.path().join("parent"),
        Layer::new().dir("a/", 0o700).bytes(),
    );
    let layer = Layer::new()
        .file("a/f", 0o644, b"")
        .owned_dir("a/", 0o751, 0, 0, 1_000_000_000)
        .bytes();
    apply_both(&[layer], with_parents(vec![parent]), |tmp, res| {
        res.unwrap();
        let (mode, _, _, mtime) = dir_meta(&tmp.join("root/a"));
        assert_eq!((mode, mtime), (0o751, 1_000_000_000));
    });
}
