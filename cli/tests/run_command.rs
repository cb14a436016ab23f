//! `kiln run` end to end on a busybox image built by `kiln build`: docker's exit codes, the
//! image's config applied and overridden, bind volumes, `--network none`, stdin, and a
//! writable layer that never outlives the run. Needs root (or the rootless test run) and
//! /bin/busybox (busybox-static);
//! fails instead of skipping when CI=true.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::Kiln;

fn can_run() -> bool {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    // /proc/self belongs to the effective user. scripts/test-rootless.sh runs these tests as
    // a user with subordinate ids (KILN_ROOTLESS_TEST=1): kiln then enters its own namespace.
    let root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let rootless = std::env::var_os("KILN_ROOTLESS_TEST").is_some();
    let problem = if !root && !rootless {
        Some("not root")
    } else if !Path::new("/bin/busybox").exists() {
        Some("/bin/busybox (busybox-static) missing")
    } else {
        None
    };
    match problem {
        Some(p) => {
            assert!(
                !ci,
                "kiln run tests cannot run ({p}) and CI=true forbids skipping"
            );
            eprintln!("note: skipping kiln run test: {p}");
            false
        }
        None => true,
    }
}

const BASE: &str = r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /etc /tmp /root /home/app \
 && printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' > /etc/passwd \
 && printf 'root:x:0:\napp:x:1000:\nextra:x:2000:app\n' > /etc/group
ENV GREETING=hello
WORKDIR /srv/app
CMD ["echo", "default cmd"]
"#;

/// Builds `dockerfile` (with `/bin/busybox` in its context) as `tag`.
fn build(k: &Kiln, tag: &str, dockerfile: &str) {
    let ctx = k.path(&format!("ctx-{}", tag.replace(':', "-")));
    fs::create_dir_all(&ctx).unwrap();
    fs::copy("/bin/busybox", ctx.join("busybox")).unwrap();
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    k.cmd(["build", "-q", "-t", tag]).arg(&ctx).stdout();
}

fn busybox() -> Option<Kiln> {
    if !can_run() {
        return None;
    }
    let k = Kiln::new();
    build(&k, "bb", BASE);
    Some(k)
}

/// `kiln run ARGS...`: (exit code, stdout, stderr).
fn run(k: &Kiln, args: &[&str]) -> (i32, String, String) {
    run_with_stdin(k, args, None)
}

fn run_with_stdin(k: &Kiln, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut cmd = k.cmd(["run"]);
    for a in args {
        cmd = cmd.arg(a);
    }
    if let Some(data) = stdin {
        cmd = cmd.stdin(data.as_bytes().to_vec());
    }
    let out = cmd.output();
    (
        out.status.code().expect("kiln exited, not killed"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_codes_pass_through_like_docker() {
    let Some(k) = busybox() else { return };
    assert_eq!(run(&k, &["bb", "true"]).0, 0);
    assert_eq!(run(&k, &["bb", "sh", "-c", "exit 3"]).0, 3);
    assert_eq!(run(&k, &["--rm", "bb", "sh", "-c", "kill -KILL $$"]).0, 137);

    let (code, _, err) = run(&k, &["bb", "no-such-command", "x"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("no-such-command"), "{err}");
    let (code, _, err) = run(&k, &["bb", "/etc/passwd"]);
    assert_eq!(code, 126, "{err}");
    assert!(err.contains("/etc/passwd"), "{err}");

    // kiln's own failures are 125 and name what is at fault.
    let (code, _, err) = run(&k, &["no-such-image", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("no such image: no-such-image"), "{err}");
    let (code, _, err) = run(&k, &["-v", "relative:/data", "bb", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("relative:/data"), "{err}");
    let (code, _, err) = run(&k, &["-u", "nobody", "bb", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("nobody"), "{err}");
    let (code, _, err) = run(&k, &["--entrypoint", "", "bb"]);
    assert_eq!(code, 125);
    assert!(err.contains("no command specified"), "{err}");
}

#[test]
fn image_config_applies_and_flags_override_it() {
    let Some(k) = busybox() else { return };
    let (code, out, err) = run(&k, &["bb"]);
    assert_eq!((code, out.as_str()), (0, "default cmd\n"), "{err}");

    let script = r#"echo "$GREETING"; pwd; id -u; id -G; echo "$HOME"; echo "$HOSTNAME"; hostname"#;
    let (code, out, err) = run(&k, &["bb", "sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..5],
        ["hello", "/srv/app", "0", "0", "/root"],
        "{out}"
    );
    assert_eq!(lines[5], lines[6], "HOSTNAME is the host name: {out}");
    assert_eq!(lines[5].len(), 12, "{out}");

    let (code, out, err) = run(
        &k,
        &[
            "-e",
            "GREETING=bye",
            "-e",
            "EXTRA=1",
            "-w",
            "/new/dir",
            "-u",
            "app",
            "--hostname",
            "box",
            "bb",
            "sh",
            "-c",
            r#"echo "$GREETING $EXTRA"; pwd; id -u; id -G; echo "$HOME"; hostname"#,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "bye 1\n/new/dir\n1000\n1000 2000\n/home/app\nbox\n");

    // ENTRYPOINT and USER from a derived image; arguments replace CMD; --entrypoint replaces
    // ENTRYPOINT and drops CMD.
    build(
        &k,
        "ep",
        "FROM bb\nUSER app\nENTRYPOINT [\"echo\", \"ep\"]\nCMD [\"from-cmd\"]\n",
    );
    assert_eq!(run(&k, &["ep"]).1, "ep from-cmd\n");
    assert_eq!(run(&k, &["ep", "a", "-b"]).1, "ep a -b\n");
    assert_eq!(run(&k, &["--entrypoint", "id", "ep", "-u"]).1, "1000\n");
    assert_eq!(run(&k, &["--entrypoint", "pwd", "ep"]).1, "/srv/app\n");
}

#[test]
fn volumes_bind_read_write_and_read_only() {
    let Some(k) = busybox() else { return };
    let rw = k.path("rw");
    let ro = k.path("ro");
    fs::create_dir_all(&ro).unwrap();
    fs::write(ro.join("in.txt"), "from host\n").unwrap();
    let missing: PathBuf = k.path("created/by/run");
    let vol = |p: &Path, spec: &str| format!("{}:{spec}", p.display());
    let (code, out, err) = run(
        &k,
        &[
            "-v",
            &vol(&rw, "/rw"),
            "-v",
            &vol(&ro, "/ro:ro"),
            "-v",
            &vol(&missing, "/m"),
            "bb",
            "sh",
            "-c",
            "echo written > /rw/out.txt; cat /ro/in.txt; \
             (echo x > /ro/new.txt) 2>/dev/null && echo RO-WRITABLE; touch /m/f",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "from host\n");
    assert_eq!(fs::read_to_string(rw.join("out.txt")).unwrap(), "written\n");
    assert!(!ro.join("new.txt").exists());
    assert!(missing.join("f").exists());
}

#[test]
fn network_none_has_only_loopback() {
    let Some(k) = busybox() else { return };
    let script = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '";
    let (code, out, err) = run(&k, &["--network", "none", "bb", "sh", "-c", script]);
    assert_eq!((code, out.as_str()), (0, "lo\n"), "{err}");
    let (code, _, err) = run(&k, &["--network", "bridge", "bb", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("bridge"), "{err}");
}

#[test]
fn stdin_is_passed_only_with_interactive() {
    let Some(k) = busybox() else { return };
    let (code, out, err) = run_with_stdin(&k, &["-i", "bb", "cat"], Some("piped in\n"));
    assert_eq!((code, out.as_str()), (0, "piped in\n"), "{err}");
    let (code, out, _) = run_with_stdin(&k, &["bb", "cat"], Some("piped in\n"));
    assert_eq!((code, out.as_str()), (0, ""));
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut all: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    all.sort();
    all
}

#[test]
fn nothing_persists_after_a_run() {
    let Some(k) = busybox() else { return };
    for snapshotter in ["overlay", "native"] {
        let run_in = |args: &[&str]| {
            let mut all = vec!["--snapshotter", snapshotter];
            all.extend_from_slice(args);
            run(&k, &all)
        };
        let write = "touch /marker && echo changed > /srv/app/f && rm /bin/ls";
        assert_eq!(run_in(&["bb", "sh", "-c", write]).0, 0, "{snapshotter}");
        let snapshots = k.root.join("snapshots");
        let before = tree(&snapshots);
        let (code, out, err) = run_in(&[
            "bb",
            "sh",
            "-c",
            "ls /marker /srv/app/f 2>&1; test -e /bin/ls && echo ls-present",
        ]);
        assert_eq!(code, 0, "{snapshotter}: {err}");
        assert!(out.contains("No such file"), "{snapshotter}: {out}");
        assert!(out.ends_with("ls-present\n"), "{snapshotter}: {out}");
        assert_eq!(
            tree(&snapshots),
            before,
            "{snapshotter}: a run left files behind"
        );
        // A failing run leaves nothing either.
        assert_eq!(run_in(&["bb", "sh", "-c", "touch /x; exit 9"]).0, 9);
        assert_eq!(tree(&snapshots), before, "{snapshotter}");
    }
}

#[test]
fn sigterm_to_kiln_reaches_the_command() {
    let Some(k) = busybox() else { return };
    // An argument no other test uses, to find this run's command in /proc.
    let marker = format!("{}", 4000 + std::process::id() % 1000);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&k.root)
        .args(["run", "bb", "sleep", &marker])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let cmdline = format!("sleep\0{marker}\0");
    let mut started = false;
    for _ in 0..3000 {
        started = fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .any(|e| fs::read(e.path().join("cmdline")).is_ok_and(|c| c == cmdline.as_bytes()));
        if started {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(started, "the command never started");
    let kill = std::process::Command::new("/bin/busybox")
        .args(["kill", "-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(128 + 15),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
