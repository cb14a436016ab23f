//! The Linux sandbox, for real: namespaces, a busybox rootfs made from Debian's static
//! busybox. These need root (or a user namespace) and fail instead of skipping when CI=true.

mod common;

use std::path::{Path, PathBuf};

use builder::sandbox::{
    ExitStatus, LinuxSandbox, Mount, MountKind, NetworkMode, RunOutcome, RunSpec, Sandbox,
    SandboxError, Stream,
};

use common::sandbox;

/// A rootfs with busybox and its applets in /bin, plus /tmp.
fn busybox_root() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(tmp.path().join("tmp")).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    tmp
}

fn run(sb: &LinuxSandbox, spec: &RunSpec) -> (RunOutcome, String) {
    let mut out = Vec::new();
    let mut sink = |_: Stream, d: &[u8]| out.extend_from_slice(d);
    let outcome = sb.run(spec, &mut sink).unwrap();
    (outcome, String::from_utf8_lossy(&out).into_owned())
}

fn sh(root: &Path, script: &str) -> RunSpec {
    RunSpec::new(root, &["/bin/sh", "-c", script])
}

fn listing(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap().path().strip_prefix(root).unwrap().to_path_buf())
        .collect();
    v.sort();
    v
}

#[test]
fn runs_a_command_and_streams_its_output() {
    let Some(sb) = sandbox() else { return };
    let root = busybox_root();
    let (outcome, out) = run(&sb, &sh(root.path(), "echo hello; echo oops >&2; hostname"));
    assert_eq!(outcome.status, ExitStatus::Code(0));
    assert!(
        out.contains("hello\n") && out.contains("oops\n") && out.contains("kiln\n"),
        "{out}"
    );
    assert_eq!(outcome.tail.len(), 3);
}

#[test]
fn exit_codes_and_signals_pass_through() {
    let Some(sb) = sandbox() else { return };
    let root = busybox_root();
    assert_eq!(
        run(&sb, &sh(root.path(), "exit 42")).0.status,
        ExitStatus::Code(42)
    );
    assert_eq!(
        run(&sb, &sh(root.path(), "kill -9 $$")).0.status,
        ExitStatus::Signal(9)
    );
    let (outcome, _) = run(
        &sb,
        &sh(root.path(), "echo one; echo two; echo last words; exit 3"),
    );
    assert_eq!(outcome.status.code(), 3);
    assert_eq!(outcome.tail.last().map(String::as_str), Some("last words"));
}

#[test]
fn cannot_see_host_processes() {
    let Some(sb) = sandbox() else { return };
    let root = busybox_root();
    let (outcome, out) = run(
        &sb,
        &sh(
            root.path(),
            "ls /proc | grep -E '^[0-9]+$' | wc -l; ps -o pid,comm",
        ),
    );
    assert!(outcome.status.success(), "{out}");
    let count: usize = out.lines().next().unwrap().trim().parse().unwrap();
    // pid 1 (init), the shell, ls, grep, wc: nothing from the host.
    assert!(count <= 6, "{out}");
    assert!(!out.contains("cargo") && !out.contains("systemd"), "{out}");
}

#[test]
fn cannot_write_outside_the_rootfs() {
    let Some(sb) = sandbox() else { return };
    let root = busybox_root();
    let name = format!("kiln-escape-{}", std::process::id());
    let script = format!("echo pwned > /../../../../tmp/{name}; echo pwned > /proc/../tmp/{name}2");
    let (outcome, _) = run(&sb, &sh(root.path(), &script));
    assert!(outcome.status.success());
    assert!(!Path::new("/tmp").join(&name).exists());
    assert!(root.path().join("tmp").join(&name).exists());
}

#[test]
fn cannot_read_host_files() {
    let Some(sb) = sandbox() else { return };
    let root = busybox_root();
    let secret = std::env::temp_dir().join(format!("kiln-secret-{}", std::process::id()));
    std::fs::write(&secret, b"host secret").unwrap();
    let (outcome, out) = run(&sb, &sh(root.path(), &format!("cat {}", secret.display())));
    std::fs::remove_file(&secret).unwrap();
    assert!(!outcome.status.success());
    assert!(!out.contains("host secret"));
}

#[test]
fn network_none_has_only_loopback_up() {
    let Some(sb) = sandbox() else { return };
    let root = busybox_root();
    let mut spec = sh(
        root.path(),
        "ls /sys/class/net; cat /sys/class/net/lo/flags",
    );
    spec.network = NetworkMode::None;
    let (outcome, out) = run(&sb, &spec);
    assert!(outcome.status.success(), "{out}");
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines[0], "lo", "{out}");
    let flags = u32::from_str_radix(lines[1].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is not up: {out}");
}

#[test]
fn background_processes_die_with_the_step() {
    let Some(sb) = sandbox() else { return };
    let root = busybox_root();
    let marker = format!("{}", 4000 + std::process::id() % 1000);
    let (outcome, out) = run(
        &sb,
        &sh(root.path(), &format!("sleep {marker} & echo started")),
    );
    assert!(outcome.status.success(), "{out}");
    let needle = format!("sleep\0{marker}");
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            assert!(
                !String::from_utf8_lossy(&cmdline).contains(&needle),
                "survivor: {:?}",
                entry.path()
            );
        }
    }
}

#[test]
fn etc_files_are_provided_but_never_captured() {
    let Some(sb) = sandbox() else { return };
    let root = busybox_root();
    let before = listing(root.path());
    let (outcome, out) = run(
        &sb,
        &sh(
            root.path(),
            "cat /etc/hosts /etc/hostname; echo junk >> /etc/hosts",
        ),
    );
    assert!(outcome.status.success(), "{out}");
    assert!(out.contains("localhost") && out.contains("kiln"), "{out}");
    assert_eq!(listing(root.path()), before, "stubs left in the rootfs");

    // An image's own /etc/hosts is covered, not changed.
    std::fs::create_dir(root.path().join("etc")).unwrap();
    std::fs::write(root.path().join("etc/hosts"), b"mine\n").unwrap();
    let (outcome, out) = run(
        &sb,
        &sh(root.path(), "echo junk >> /etc/hosts; cat /etc/hosts"),
    );
    assert!(outcome.status.success(), "{out}");
    assert!(out.contains("junk") && !out.contains("mine"), "{out}");
    assert_eq!(
        std::fs::read(root.path().join("etc/hosts")).unwrap(),
        b"mine\n"
    );
}

#[test]
fn mounts_env_cwd_and_user() {
    let Some(sb) = sandbox() else { return };
    let root = busybox_root();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("input"), b"from host").unwrap();
    let mut spec = sh(root.path(), "cat /src/input; touch /src/x 2>/dev/null && echo WROTE; echo $FOO; pwd; id -u; id -G; touch /cache/y && echo TMPFS");
    spec.env.push("FOO=bar".into());
    spec.cwd = "/tmp".into();
    spec.uid = 1000;
    spec.gid = 1000;
    spec.additional_gids = vec![1000, 2000];
    spec.mounts = vec![
        Mount {
            target: "/src".into(),
            kind: MountKind::Bind {
                source: src.path().into(),
                readonly: true,
            },
        },
        Mount {
            target: "/cache".into(),
            kind: MountKind::Tmpfs {
                size: Some(1 << 20),
                mode: Some(0o1777),
            },
        },
    ];
    let (outcome, out) = run(&sb, &spec);
    assert!(outcome.status.success(), "{out}");
    assert!(out.contains("from host"), "{out}");
    assert!(!out.contains("WROTE"), "read-only bind was writable: {out}");
    assert!(out.contains("bar\n/tmp\n1000\n1000 2000\n"), "{out}");
    assert!(out.contains("TMPFS"), "{out}");
    assert!(!src.path().join("x").exists());
    assert!(!root.path().join("src").exists() && !root.path().join("cache").exists());
}

#[test]
fn missing_executable_is_a_setup_error_naming_it() {
    let Some(sb) = sandbox() else { return };
    let root = busybox_root();
    let mut sink = |_: Stream, _: &[u8]| {};
    let err = sb
        .run(
            &RunSpec::new(root.path(), &["no-such-tool", "x"]),
            &mut sink,
        )
        .unwrap_err();
    assert!(matches!(err, SandboxError::Setup { .. }), "{err}");
    assert!(err.to_string().contains("no-such-tool"), "{err}");
}

#[test]
fn planted_symlinks_cannot_redirect_mounts_to_the_host() {
    let Some(sb) = sandbox() else { return };
    let root = busybox_root();
    let victim = std::env::temp_dir().join(format!("kiln-victim-{}", std::process::id()));
    std::fs::write(&victim, b"host file\n").unwrap();
    // The symlink's target must be creatable inside the rootfs too (TMPDIR may be deep).
    let inside_dir = victim.parent().unwrap().strip_prefix("/").unwrap();
    std::fs::create_dir_all(root.path().join(inside_dir)).unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    std::os::unix::fs::symlink(&victim, root.path().join("etc/hosts")).unwrap();
    let (outcome, out) = run(
        &sb,
        &sh(root.path(), "echo junk > /etc/hosts; cat /etc/hosts; ls /"),
    );
    let host = std::fs::read(&victim).unwrap();
    std::fs::remove_file(&victim).unwrap();
    assert!(outcome.status.success(), "{out}");
    assert_eq!(host, b"host file\n");
    // The write landed inside the rootfs, where the symlink resolves when `/` is the rootfs.
    let inside = root.path().join(victim.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(inside).unwrap(), b"junk\n");

    // A mount point that resolves to the rootfs itself is refused, naming it.
    std::os::unix::fs::symlink("/", root.path().join("sys")).unwrap();
    let mut sink = |_: Stream, _: &[u8]| {};
    let err = sb
        .run(&sh(root.path(), "true"), &mut sink)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/sys"), "{err}");
}

#[test]
fn sigterm_to_the_init_stops_the_step() {
    let Some(sb) = sandbox() else { return };
    let root = busybox_root();
    let spec = RunSpec::new(root.path(), &["sleep", "3000"]);
    let handle = std::thread::spawn(move || {
        let mut sink = |_: Stream, _: &[u8]| {};
        let res = sb.run(&spec, &mut sink);
        drop(root);
        res
    });
    // Find the init (a child of this test process running the init binary) and signal it.
    let me = std::process::id().to_string();
    let init = env!("CARGO_BIN_EXE_kiln-sandbox-init");
    let pid = loop {
        let found = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .to_string();
            let exe = std::fs::read_link(e.path().join("exe")).ok()?;
            let children =
                std::fs::read_to_string(e.path().join("task").join(e.file_name()).join("children"))
                    .ok()?;
            (ppid == me && exe == Path::new(init) && !children.trim().is_empty())
                .then(|| e.file_name())
        });
        if let Some(pid) = found {
            // Give pid 1 time to start the command: wait until the namespace runs `sleep`.
            let pid: i32 = pid.to_str().unwrap().parse().unwrap();
            let running_sleep = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
                std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == b"sleep\x003000\x00")
            });
            if running_sleep {
                break pid;
            }
        }
        std::thread::yield_now();
    };
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let outcome = handle.join().unwrap().unwrap();
    assert_eq!(outcome.status, ExitStatus::Signal(libc::SIGTERM));
}
