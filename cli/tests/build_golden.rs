//! Golden build cases: `testdata/build/<case>/` holds a `Dockerfile`, a `context/` directory, an
//! optional `args` file (extra `kiln build` flags, one per line, also given to buildah) and
//! `expected/{tree.txt,config.json}`: the flattened file tree and config buildah produces from the
//! same input. Adding a case is adding a folder. `KILN_UPDATE_GOLDEN=1` regenerates the expected
//! files by running buildah (the reference for Docker's behaviour).
//!
//! A case whose `expected/HAND-WRITTEN` exists is skipped by the regeneration (buildah 1.28 has
//! no heredocs); its goldens follow the Dockerfile reference and the file says why.
//!
//! `testdata/build-errors/<case>/` holds a Dockerfile and context that must fail, with
//! `error.txt` a substring the error must contain; the store must be unchanged afterwards.

mod tree;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

fn cases(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(testdata().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    v.sort();
    v
}

fn extra_args(case: &Path) -> Vec<String> {
    fs::read_to_string(case.join("args"))
        .map(|s| {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A scratch copy of the case's context (tests never write into the source tree, which the
/// rootless run cannot write to). Cases marked `needs-busybox` get the host's static busybox
/// copied in (Debian's busybox-static), to build their own base with `FROM scratch`.
fn context_dir(case: &Path) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path();
    let src = case.join("context");
    if src.is_dir() {
        let status = Command::new("cp")
            .arg("-a")
            .arg(src.join("."))
            .arg(c)
            .status()
            .expect("run cp");
        assert!(status.success(), "copying {} failed", src.display());
    }
    // Binary inputs (archives) are made by the case's own script, never committed.
    let generate = case.join("generate.sh");
    if generate.exists() {
        let status = Command::new("sh")
            .arg(&generate)
            .current_dir(c)
            .status()
            .expect("run generate.sh");
        assert!(status.success(), "{} failed", generate.display());
    }
    if case.join("needs-busybox").exists() && !c.join("busybox").exists() {
        fs::copy("/bin/busybox", c.join("busybox"))
            .expect("/bin/busybox (Debian package busybox-static) is needed by RUN cases");
    }
    tmp
}

fn kiln_build_to_layout(
    case: &Path,
    store: &Path,
    out: &Path,
    snapshotter: &str,
) -> std::process::Output {
    let context = context_dir(case);
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(store)
        .arg("build")
        .arg("-q")
        // Names the layout's manifest `latest`, for umoci and buildah to read it by tag.
        .args(["-t", "kiln-golden:latest"])
        .arg("--snapshotter")
        .arg(snapshotter)
        .arg("-f")
        .arg(case.join("Dockerfile"))
        .args(extra_args(case))
        .arg("--output")
        .arg(format!("type=oci,dest={},tar=false", out.display()))
        .arg(context.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .expect("run kiln")
}

/// Builds with buildah into an OCI layout and returns buildah's Docker-format config (pushing to
/// `oci:` converts the config to OCI's, which drops Healthcheck, OnBuild and Shell).
fn buildah_build_to_layout(case: &Path, out: &Path) -> serde_json::Value {
    let name = format!(
        "localhost/kiln-golden-{}",
        case.file_name().unwrap().to_string_lossy()
    );
    let context = context_dir(case);
    let status = Command::new("buildah")
        .args(["build", "--isolation", "chroot", "--format", "docker", "-q"])
        .arg("-f")
        .arg(case.join("Dockerfile"))
        .args(extra_args(case))
        .arg("-t")
        .arg(&name)
        .arg(context.path())
        .status()
        .expect("run buildah");
    assert!(
        status.success(),
        "buildah build failed for {}",
        case.display()
    );
    let status = Command::new("buildah")
        .args(["push", "-q", &name])
        .arg(format!("oci:{}:latest", out.display()))
        .status()
        .unwrap();
    assert!(status.success());
    let inspect = Command::new("buildah")
        .args(["inspect", "--type", "image", &name])
        .output()
        .unwrap();
    let _ = Command::new("buildah").args(["rmi", "-f", &name]).output();
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    v["Docker"].clone()
}

/// buildah's chroot isolation leaves its mount points in the image (empty `/dev`, `/proc`,
/// `/sys`, `/run` and empty `/etc/{hosts,hostname,resolv.conf}`, and `/etc` itself when it
/// made it); BuildKit and kiln never capture them. Drop them when they are empty placeholders.
fn without_buildah_mount_points(tree: &str) -> String {
    let lines: Vec<&str> = tree
        .lines()
        .filter(|l| {
            let path = l.rsplit(' ').next().unwrap_or("");
            !(l.starts_with("f ")
                && l.contains(" 0 e3b0c44298fc1c14 ")
                && matches!(path, "/etc/hosts" | "/etc/hostname" | "/etc/resolv.conf"))
        })
        .collect();
    let has_children = |dir: &str| lines.iter().any(|l| l.contains(&format!(" {dir}/")));
    lines
        .iter()
        .filter(|l| {
            let path = l.rsplit(' ').next().unwrap_or("");
            let placeholder_dir = l.starts_with("d ")
                && matches!(path, "/dev" | "/proc" | "/sys" | "/run" | "/etc")
                && !has_children(path);
            !placeholder_dir
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The lines only one side has, `-` for `a` and `+` for `b`.
fn line_diff(a: &str, b: &str) -> String {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out = String::new();
    for l in la.iter().filter(|l| !lb.contains(l)) {
        out.push_str(&format!("- {l}\n"));
    }
    for l in lb.iter().filter(|l| !la.contains(l)) {
        out.push_str(&format!("+ {l}\n"));
    }
    out
}

fn store_snapshot(store: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(store)
        .into_iter()
        .flatten()
        .filter(|e| !e.path().starts_with(store.join("ingest")))
        .map(|e| e.path().strip_prefix(store).unwrap().display().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn build_cases_match_buildah_goldens() {
    let update = std::env::var_os("KILN_UPDATE_GOLDEN").is_some();
    // KILN_GOLDEN_CASE=NAME limits the run (and a regeneration) to the cases containing NAME.
    let only = std::env::var("KILN_GOLDEN_CASE").unwrap_or_default();
    let mut failures = Vec::new();
    for case in cases("build") {
        if !case.file_name().unwrap().to_string_lossy().contains(&only) {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let expected = case.join("expected");
        // Cases buildah 1.28 cannot build (heredocs) carry hand-written goldens.
        let hand_written = expected.join("HAND-WRITTEN").exists();
        if update && !hand_written {
            let docker_config = buildah_build_to_layout(&case, &out);
            fs::create_dir_all(&expected).unwrap();
            let tree = without_buildah_mount_points(&tree::tree(&out, None));
            fs::write(expected.join("tree.txt"), tree).unwrap();
            let cfg =
                serde_json::to_string_pretty(&tree::summarize_config(&docker_config)).unwrap();
            fs::write(expected.join("config.json"), cfg + "\n").unwrap();
            continue;
        }
        if update {
            continue;
        }
        for snapshotter in ["overlay", "native"] {
            let out = tmp.path().join(format!("out-{snapshotter}"));
            let store = tmp.path().join(format!("store-{snapshotter}"));
            let output = kiln_build_to_layout(&case, &store, &out, snapshotter);
            if !output.status.success() {
                failures.push(format!(
                    "{} ({snapshotter}): kiln build failed:\n{}",
                    case.display(),
                    String::from_utf8_lossy(&output.stderr)
                ));
                continue;
            }
            compare(&case, &expected, &out, snapshotter, &mut failures);
            if snapshotter == "overlay" {
                peers_read_the_same_tree(&case, &expected, &out, &mut failures);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// umoci and buildah unpack kiln's layout to the tree kiln itself flattens from its layers
/// (the expected tree). Needs root to keep owners, so the rootless run leaves it to the rootful.
fn peers_read_the_same_tree(case: &Path, expected: &Path, out: &Path, failures: &mut Vec<String>) {
    if !rustix::process::geteuid().is_root() || std::env::var_os("KILN_ROOTLESS_TEST").is_some() {
        return;
    }
    let want = fs::read_to_string(expected.join("tree.txt")).unwrap_or_default();
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    // `raw unpack`: the rootfs only (the full bundle also needs the image's USER in passwd).
    let o = Command::new("umoci")
        .args(["raw", "unpack", "--image"])
        .arg(format!("{}:latest", out.display()))
        .arg(&bundle)
        .output()
        .expect("umoci (Debian package umoci) is needed");
    if !o.status.success() {
        failures.push(format!(
            "{}: umoci unpack of kiln's layout failed: {}",
            case.display(),
            String::from_utf8_lossy(&o.stderr)
        ));
    } else {
        let got = tree::dir_tree(&bundle);
        if got != want {
            failures.push(format!(
                "{}: umoci reads kiln's layers differently (- kiln, + umoci)\n{}",
                case.display(),
                line_diff(&want, &got)
            ));
        }
    }
    // `buildah from` runs an image's ONBUILD triggers (in the test's directory): not a read.
    let config: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(expected.join("config.json")).unwrap()).unwrap();
    if config["OnBuild"].as_array().is_some_and(|t| !t.is_empty()) {
        return;
    }
    let case_name = case.file_name().unwrap().to_string_lossy();
    let name = format!("kiln-golden-read-{}-{case_name}", std::process::id());
    // buildah names the image after the layout's path, which must be lower case.
    let link = std::env::temp_dir().join(&name);
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(out, &link).unwrap();
    let from = Command::new("buildah")
        .args(["from", "--pull-never", "--name", &name])
        .arg(format!("oci:{}:latest", link.display()))
        .output()
        .expect("run buildah");
    let _ = fs::remove_file(&link);
    if !from.status.success() {
        failures.push(format!(
            "{}: buildah from kiln's layout failed: {}",
            case.display(),
            String::from_utf8_lossy(&from.stderr)
        ));
        return;
    }
    let image = Command::new("buildah")
        .args(["inspect", "--format", "{{.FromImageID}}", &name])
        .output()
        .unwrap();
    let image = String::from_utf8_lossy(&image.stdout).trim().to_string();
    let mount = Command::new("buildah")
        .args(["mount", &name])
        .output()
        .unwrap();
    let dir = String::from_utf8_lossy(&mount.stdout).trim().to_string();
    let got = mount
        .status
        .success()
        .then(|| tree::dir_tree(Path::new(&dir)));
    let _ = Command::new("buildah").args(["rm", &name]).output();
    let _ = Command::new("buildah").args(["rmi", "-f", &image]).output();
    match got {
        Some(got) if got == want => {}
        Some(got) => failures.push(format!(
            "{}: buildah reads kiln's layers differently (- kiln, + buildah)\n{}",
            case.display(),
            line_diff(&want, &got)
        )),
        None => failures.push(format!("{}: buildah mount failed", case.display())),
    }
}

fn compare(
    case: &Path,
    expected: &Path,
    out: &Path,
    snapshotter: &str,
    failures: &mut Vec<String>,
) {
    {
        let got_tree = tree::tree(out, None);
        let want_tree = fs::read_to_string(expected.join("tree.txt")).unwrap_or_default();
        if got_tree != want_tree {
            failures.push(format!(
                "{} ({snapshotter}): file tree differs from buildah's (- buildah, + kiln)\n{}",
                case.display(),
                line_diff(&want_tree, &got_tree)
            ));
        }
        let got_cfg = tree::config_summary(out, None);
        let want_cfg: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(expected.join("config.json")).unwrap())
                .unwrap();
        if got_cfg != want_cfg {
            failures.push(format!(
                "{} ({snapshotter}): config differs from buildah's\n--- buildah\n{want_cfg:#}\n--- kiln\n{got_cfg:#}",
                case.display()
            ));
        }
    }
}

#[test]
fn failing_builds_name_the_fault_and_leave_the_store_unchanged() {
    let mut failures = Vec::new();
    for case in cases("build-errors") {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        fs::create_dir_all(&store).unwrap();
        // A store that already holds content must not change on a failed build.
        let before = store_snapshot(&store);
        let output = kiln_build_to_layout(&case, &store, &tmp.path().join("out"), "overlay");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let want = fs::read_to_string(case.join("error.txt")).unwrap();
        if output.status.success() {
            failures.push(format!("{}: build succeeded", case.display()));
        } else if !stderr.contains(want.trim()) {
            failures.push(format!(
                "{}: error should contain {:?}, got:\n{stderr}",
                case.display(),
                want.trim()
            ));
        }
        let after = store_snapshot(&store);
        let new_blobs: Vec<_> = after
            .iter()
            .filter(|p| !before.contains(p) && p.starts_with("blobs/sha256/"))
            .collect();
        let tags_changed = fs::read(store.join("index.json")).ok().map(|b| {
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            v["manifests"].as_array().map(|a| a.len()).unwrap_or(0)
        });
        if tags_changed.unwrap_or(0) != 0 {
            failures.push(format!(
                "{}: a failed build tagged an image",
                case.display()
            ));
        }
        let _ = new_blobs; // Cache blobs of completed steps may stay; tags must not.
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
