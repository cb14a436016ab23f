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
    let mut failures = Vec::new();
    for case in cases("build") {
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
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
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
                "{} ({snapshotter}): file tree differs from buildah's\n--- buildah\n{want_tree}--- kiln\n{got_tree}",
                case.display()
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
