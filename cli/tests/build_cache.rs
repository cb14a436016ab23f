//! The build cache: an unchanged rebuild runs nothing and gives the same image; an edit reruns
//! only what depends on it, even when the edit keeps the size and resets the mtime; --no-cache
//! and --no-cache-filter; a build killed mid-step leaves a store that a rerun completes.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Kiln;

const DOCKERFILE: &str = r#"FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]

FROM base
COPY a.txt /a.txt
RUN cat /a.txt > /a-copy && date +%s%N > /a-stamp
COPY b.txt /b.txt
RUN cat /b.txt > /b-copy && date +%s%N > /b-stamp
ENV DONE=1
"#;

fn context(k: &Kiln) -> PathBuf {
    let ctx = k.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::copy("/bin/busybox", ctx.join("busybox")).expect("busybox-static is installed");
    fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    fs::write(ctx.join("a.txt"), "aaaa\n").unwrap();
    fs::write(ctx.join("b.txt"), "bbbb\n").unwrap();
    ctx
}

/// Runs a build and returns (image id, step text -> "DONE"/"CACHED").
fn build(k: &Kiln, ctx: &Path, extra: &[&str]) -> (String, BTreeMap<String, String>) {
    let iid = k.path("iid");
    let out = k
        .cmd(["build", "--progress", "plain", "-t", "app:1", "--iidfile"])
        .arg(&iid)
        .args_all(extra)
        .arg(ctx)
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "build failed:\n{stderr}");
    let steps = common::step_statuses(&stderr).into_iter().collect();
    (fs::read_to_string(iid).unwrap(), steps)
}

fn ran(steps: &BTreeMap<String, String>) -> Vec<String> {
    steps
        .iter()
        .filter(|(text, status)| *status == "DONE" && !text.starts_with("FROM"))
        .map(|(text, _)| text.clone())
        .collect()
}

#[test]
fn unchanged_rebuild_runs_nothing_and_gives_the_same_image() {
    let k = Kiln::new();
    let ctx = context(&k);
    let (first, steps) = build(&k, &ctx, &[]);
    assert!(ran(&steps).len() >= 6, "{steps:?}");
    let (second, steps) = build(&k, &ctx, &[]);
    assert_eq!(ran(&steps), Vec::<String>::new(), "{steps:?}");
    assert_eq!(first, second);
}

/// A build of cache hits mounts nothing and makes no scratch dirs: a probe mount's unmount
/// syncs the whole host filesystem (slow after another build wrote a lot), so it must not
/// happen. Replacing the snapshot and scratch dirs by plain files makes any such use fail.
#[test]
fn an_unchanged_rebuild_touches_no_snapshot_or_scratch_dir() {
    let k = Kiln::new();
    let ctx = context(&k);
    let (first, _) = build(&k, &ctx, &[]);
    for dir in ["snapshots", "tmp"] {
        let p = k.root.join(dir);
        let _ = fs::remove_dir_all(&p);
        fs::write(&p, "not a directory").unwrap();
    }
    let (second, steps) = build(&k, &ctx, &[]);
    assert_eq!(ran(&steps), Vec::<String>::new(), "{steps:?}");
    assert_eq!(first, second);
}
#[test]
fn an_edit_reruns_only_its_dependents() {
    let k = Kiln::new();
    let ctx = context(&k);
    build(&k, &ctx, &[]);
    fs::write(ctx.join("b.txt"), "changed b\n").unwrap();
    let (_, steps) = build(&k, &ctx, &[]);
    assert_eq!(
        ran(&steps),
        vec![
            "COPY b.txt /b.txt".to_string(),
            "ENV DONE=1".to_string(),
            "RUN cat /b.txt > /b-copy && date +%s%N > /b-stamp".to_string(),
        ]
    );
}

/// BuildKit misses this: same size, mtime put back. The inode's ctime still moved.
#[test]
fn a_same_size_edit_with_the_mtime_reset_is_still_seen() {
    let k = Kiln::new();
    let ctx = context(&k);
    build(&k, &ctx, &[]);
    let a = ctx.join("a.txt");
    let mtime = fs::metadata(&a).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    fs::write(&a, "AAAA\n").unwrap();
    fs::File::options()
        .write(true)
        .open(&a)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let (_, steps) = build(&k, &ctx, &[]);
    assert!(
        ran(&steps).contains(&"COPY a.txt /a.txt".to_string()),
        "{steps:?}"
    );
    let out = k.path("out");
    k.cmd(["build", "-q", "-o"]).arg(&out).arg(&ctx).stdout();
    assert_eq!(fs::read_to_string(out.join("a-copy")).unwrap(), "AAAA\n");
}

#[test]
fn no_cache_and_no_cache_filter() {
    let k = Kiln::new();
    let ctx = context(&k);
    build(&k, &ctx, &[]);
    let (_, steps) = build(&k, &ctx, &["--no-cache"]);
    assert!(ran(&steps).len() >= 6, "{steps:?}");
    let (_, steps) = build(&k, &ctx, &["--no-cache-filter", "base"]);
    let ran = ran(&steps);
    assert!(
        ran.contains(&"COPY busybox /bin/busybox".to_string()),
        "{steps:?}"
    );
}

#[test]
fn a_build_killed_mid_step_leaves_a_store_a_rerun_completes() {
    let k = Kiln::new();
    let ctx = context(&k);
    fs::write(
        ctx.join("Dockerfile"),
        format!("{DOCKERFILE}RUN echo started > /started && sleep 30\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&k.root)
        .args(["build", "-q", "-t", "app:1"])
        .arg(&ctx)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the sleeping step runs, then kill kiln without warning.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let sleeping = Command::new("pgrep")
            .args(["-f", "sleep 30"])
            .output()
            .unwrap();
        if sleeping.status.success() || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    k.cmd(["fsck"]).stdout();
    fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    let (_, steps) = build(&k, &ctx, &[]);
    assert!(steps.values().any(|s| s == "CACHED"), "{steps:?}");
    k.cmd(["fsck"]).stdout();
}

#[test]
fn sigterm_stops_the_running_step_and_leaves_the_store_clean() {
    let k = Kiln::new();
    let ctx = context(&k);
    fs::write(
        ctx.join("Dockerfile"),
        format!("{DOCKERFILE}RUN echo started && sleep 1000\n"),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&k.root)
        .args(["build", "-q", "-t", "app:1"])
        .arg(&ctx)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !Command::new("pgrep")
        .args(["-f", "sleep 1000"])
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let started = std::time::Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the step was not stopped"
    );
    // Nothing of the step survives: no process, no mount, no partial blob, no tag.
    assert!(!Command::new("pgrep")
        .args(["-f", "sleep 1000"])
        .output()
        .unwrap()
        .status
        .success());
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&k.root.display().to_string()), "{mounts}");
    assert_eq!(fs::read_dir(k.root.join("ingest")).unwrap().count(), 0);
    k.cmd(["inspect", "app:1"]).fails();
    k.cmd(["fsck"]).stdout();
}

#[test]
fn a_bind_mounted_source_is_part_of_the_run_cache_key() {
    let k = Kiln::new();
    let ctx = context(&k);
    fs::write(
        ctx.join("Dockerfile"),
        format!(
            "{DOCKERFILE}RUN --mount=type=bind,source=a.txt,target=/mnt/a cat /mnt/a > /seen\n"
        ),
    )
    .unwrap();
    build(&k, &ctx, &[]);
    let (_, steps) = build(&k, &ctx, &[]);
    assert_eq!(ran(&steps), Vec::<String>::new(), "{steps:?}");
    fs::write(ctx.join("a.txt"), "edited\n").unwrap();
    let (_, steps) = build(&k, &ctx, &[]);
    assert!(
        ran(&steps).iter().any(|s| s.contains("--mount=type=bind")),
        "{steps:?}"
    );
}
